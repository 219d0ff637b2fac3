"""After an abort no production route forwards to the candidate: the reflex also moves every rule of the
production listener that forwards to the candidate (the header route) to the recorded stable target
group, with ModifyRule scoped to that listener's rules; the program then declares the header route on
stable while the marker stands, so the converging step-0 update passes the pack and clears the marker."""

from __future__ import annotations

import json

import pytest

from components.reflex import reflex_policy
from rollout.reflex import TAG_ABORTED, parse_abort, run
from tests.fixtures.candidate import CandidateServer
from tests.policy_harness import UNKNOWN
from tests.test_reflex import Rig, _declared_actions

HEADER = [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["always"]}}]


@pytest.fixture
def candidate():
    server = CandidateServer()
    yield server
    server.stop()


def header_rule(rig, colour="green", priority=10, conditions=HEADER) -> str:
    return rig.elbv2.create_rule(
        ListenerArn=rig.alb.production_listener, Priority=priority, Conditions=conditions,
        Actions=[{"Type": "forward", "TargetGroupArn": rig.alb.target_groups[colour]}],
    )["Rules"][0]["RuleArn"]


def rule_forwards(rig, arn) -> dict[str, int]:
    (rule,) = rig.elbv2.describe_rules(RuleArns=[arn])["Rules"]
    colour = {a: c for c, a in rig.alb.target_groups.items()}
    out = {}
    for action in rule["Actions"]:
        if action["Type"] != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
        out.update({colour[g["TargetGroupArn"]]: g.get("Weight", 1) for g in groups})
    return {c: w for c, w in out.items() if w}


def test_after_an_abort_the_header_route_forwards_to_stable(aws, candidate):
    rig = Rig(aws, candidate.port)
    rule = header_rule(rig)
    candidate.fail("5xx")
    report = rig.run()
    assert rig.weights() == {"blue": 100, "green": 0}, report.to_dict()
    assert rule_forwards(rig, rule) == {"blue": 1}, report.to_dict()
    assert report.rollback.moved and report.rollback.marked and not report.rollback.error, report.to_dict()
    (r,) = rig.elbv2.describe_rules(RuleArns=[rule])["Rules"]
    assert r["Conditions"][0]["HttpHeaderConfig"] == HEADER[0]["HttpHeaderConfig"] and r["Priority"] == "10"  # only the forward moved


def test_rules_to_stable_or_elsewhere_are_left_alone(aws, candidate):
    """Only the candidate's routes move: a rule to stable, a fixed response and a rule to another service's
    target group on the same listener stay as they are."""
    rig = Rig(aws, candidate.port)
    to_stable = header_rule(rig, "blue", 20, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/old/*"]}}])
    foreign = rig.elbv2.create_target_group(Name="billing", Protocol="HTTP", Port=8080, VpcId=rig.alb.vpc_id,
                                            TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    rig.elbv2.create_rule(ListenerArn=rig.alb.production_listener, Priority=40,
                          Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/billing/*"]}}],
                          Actions=[{"Type": "forward", "TargetGroupArn": foreign}])
    fixed = rig.elbv2.create_rule(
        ListenerArn=rig.alb.production_listener, Priority=30, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/ping"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}],
    )["Rules"][0]["RuleArn"]
    calls = []
    rig.elbv2.meta.events.register("before-call.elasticloadbalancing.ModifyRule", lambda **kw: calls.append(kw["params"]["RuleArn"]))
    candidate.fail("dead")
    rig.run()
    assert rig.weights() == {"blue": 100, "green": 0} and calls == [], calls
    assert rule_forwards(rig, to_stable) == {"blue": 1}
    (r,) = rig.elbv2.describe_rules(RuleArns=[fixed])["Rules"]
    assert r["Actions"][0]["Type"] == "fixed-response"


def reflex_client(aws, name: str, *, modify_rule: bool = True):
    """An elbv2 client with the reflex's declared actions (without ModifyRule when `modify_rule` is false)."""
    actions = [a for a in _declared_actions() if modify_rule or a != "elasticloadbalancing:ModifyRule"]
    key, secret = aws.iam_user(name, actions)
    return aws.client("elbv2", aws_access_key_id=key, aws_secret_access_key=secret)


def test_a_denied_rule_move_is_reported_and_retried_the_default_action_still_moves(aws, candidate):
    rig = Rig(aws, candidate.port)
    rule = header_rule(rig)
    elbv2 = reflex_client(aws, "no-rules", modify_rule=False)
    candidate.fail("5xx")
    with aws.enforce_iam():
        report = rig.run(elbv2=elbv2, budget_s=4)  # two checks to breach, at least one more to retry, on a loaded machine
    assert rig.weights() == {"blue": 100, "green": 0} and report.rollback.moved, report.to_dict()
    assert "AccessDenied on ModifyRule" in report.rollback.error and rule_forwards(rig, rule) == {"green": 1}, report.to_dict()
    assert report.rollbacks >= 2  # retried at the later checks
    assert parse_abort(rig.tags()[TAG_ABORTED]).code == "probes-failed"  # the marker still stands


def test_a_rule_left_on_the_candidate_is_moved_by_a_later_invocation(aws, candidate):
    """The invocation that rolled back could not move the header route (denied); the next one finds the
    default action already on stable, but the marker stands, so it moves the rule then."""
    rig = Rig(aws, candidate.port)
    rule = header_rule(rig)
    denied = reflex_client(aws, "no-rules-yet", modify_rule=False)
    candidate.fail("5xx")
    with aws.enforce_iam():
        first = rig.run(elbv2=denied, budget_s=1)
    assert rig.weights() == {"blue": 100, "green": 0} and rule_forwards(rig, rule) == {"green": 1}, first.to_dict()
    allowed_now = reflex_client(aws, "reflex-fixed")  # the permission restored
    with aws.enforce_iam():
        later = rig.run(elbv2=allowed_now)
    assert not later.active and later.checks == 1, later.to_dict()  # nothing carries traffic: one check, then return
    assert rule_forwards(rig, rule) == {"blue": 1}, later.to_dict()
    assert any("1 rule(s) moved to stable" in n for n in later.last_notes), later.to_dict()


def test_without_the_marker_an_idle_invocation_leaves_the_header_route_alone(aws, candidate):
    """At step 0 with no abort, the header route to the candidate is the deployed, gated route: not the
    reflex's to move (and no DescribeRules on the cheap path)."""
    rig = Rig(aws, candidate.port, weight=0)
    rule = header_rule(rig)
    calls = []
    for op in ("DescribeRules", "ModifyRule"):
        rig.elbv2.meta.events.register(f"before-call.elasticloadbalancing.{op}", lambda model, **kw: calls.append(model.name))
    report = rig.run()
    assert not report.active and calls == [] and rule_forwards(rig, rule) == {"green": 1}, report.to_dict()


def test_the_declared_actions_move_the_rule(aws, candidate):
    rig = Rig(aws, candidate.port)
    rule = header_rule(rig)
    elbv2 = reflex_client(aws, "reflex")
    candidate.fail("5xx")
    with aws.enforce_iam():
        report = rig.run(elbv2=elbv2)
    assert rule_forwards(rig, rule) == {"blue": 1} and not report.rollback.error, report.to_dict()


def test_modify_rule_is_scoped_to_the_production_listeners_rules():
    listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/bg/50dc6c495c0c9188/f2f7dc8efc522ab2"
    doc = json.loads(reflex_policy(listener, "arn:aws:logs:us-east-1:123456789012:log-group:x"))
    (st,) = [st for st in doc["Statement"] if "elasticloadbalancing:ModifyRule" in st["Action"]]
    assert st["Action"] == ["elasticloadbalancing:ModifyRule"]
    assert st["Resource"] == "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/bg/50dc6c495c0c9188/f2f7dc8efc522ab2/*"


# --------------------------------------------------------------------------- the program follows the marker

RULE = "aws:lb/listenerRule:ListenerRule"


def _rule_target(sim):
    rule = sim.one(RULE, "-header-route")
    (action,) = rule.inputs["actions"]
    tgs = {r.name.rsplit("-", 1)[-1]: r.outputs["arn"] for r in sim.by_type("aws:lb/targetGroup:TargetGroup")}
    colour = {arn: c for c, arn in tgs.items()}
    return colour.get(action["targetGroupArn"], action["targetGroupArn"])


def test_while_the_config_holds_the_abort_the_program_declares_the_header_route_on_stable():
    """The hold is git's (`bluegreen:aborted`, committed with step 0), not a read of the eventually consistent
    tagging API: with the key the header route is on stable whatever the index says; without it, on the
    candidate (gated by the pack), even while the index still lists the marker."""
    from rollout.simulate import run_program

    marker = "2026-11-23T16:05:03Z judge green=25 e=41.2"
    held = run_program("production", overrides={"bluegreen:rollout.step": 0, "bluegreen:aborted": marker}, previous_outputs={})
    assert _rule_target(held) == "blue", held.one(RULE, "-header-route").inputs
    released = run_program("production", overrides={"bluegreen:rollout.step": 0}, previous_outputs={"aborted": marker})
    assert _rule_target(released) == "green"


# --------------------------------------------------------------------------- the pack over gRPC: reconciliation holds

from tests.test_cli import no_pulumi  # noqa: E402,F401 - fixture
from tests.test_policy_traffic import analyze, configure, live_alb, pack, proposed  # noqa: E402,F401 - fixtures


def _aborted_with_header_route(aws, before_abort=None):
    """A live ALB at step 2 with the header route on green; the real reflex rolls green back. (alb, elbv2, rule ARN)
    `before_abort(alb)` sets up what was live before the reflex acted."""
    from tests.test_reflex_reconcile import reflex_rolls_back

    alb = live_alb(aws, step=2)
    if before_abort is not None:
        before_abort(alb)
    elbv2 = aws.client("elbv2")
    elbv2.add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": "bluegreen:stable-tg", "Value": alb.target_groups["blue"]}])
    rule = elbv2.create_rule(ListenerArn=alb.production_listener, Priority=10, Conditions=HEADER,
                             Actions=[{"Type": "forward", "TargetGroupArn": alb.target_groups["green"]}])["Rules"][0]["RuleArn"]
    reflex_rolls_back(aws, alb, fault="dead")
    (live_rule,) = elbv2.describe_rules(RuleArns=[rule])["Rules"]
    assert [g["TargetGroupArn"] for g in live_rule["Actions"][0]["ForwardConfig"]["TargetGroups"]] == [alb.target_groups["blue"]]
    return alb, elbv2, rule


def _analyze_rule(pack, alb, colour: str):
    """The pack on the header route as the program registers it, forwarding to `colour` of the moto ALB."""
    urn = "urn:pulumi:production::bluegreen::aws:lb/listenerRule:ListenerRule::web-traffic-header-route"
    props = {"listenerArn": alb.production_listener, "priority": 10, "tags": {},
             "conditions": [{"httpHeader": {"httpHeaderName": "X-Canary", "values": ["always"]}}],
             "actions": [{"type": "forward", "targetGroupArn": alb.target_groups[colour]}]}
    return pack.analyze(RULE, props, name="web-traffic-header-route", urn=urn)


def test_after_the_reflex_the_converging_update_passes_and_a_rule_back_to_the_candidate_does_not(aws, pack, configure):
    """The real reflex moves the listener and the header route to stable; then the step-0 update with the
    header route on stable passes the pack, and the header route back on the candidate is refused by
    abort-marker while the marker stands."""
    configure("healthy")
    alb, _, _ = _aborted_with_header_route(aws)
    back = _analyze_rule(pack, alb, "green")
    assert [v for v in back.mandatory if v.policy == "abort-marker"], back
    stays = _analyze_rule(pack, alb, "blue")
    assert not stays.mandatory, stays
    listener, name, lurn = proposed(alb, step=0)
    assert not analyze(pack, listener, name, lurn).mandatory


def test_from_abort_to_release_the_header_route_stays_on_stable_and_verify_shows_no_changes(aws, pack, configure, tmp_path, no_pulumi):
    """abort -> the watcher's step-0 commit (with the marker) -> the converging update (the pack passes it)
    -> AWS drops the marker -> verify (`preview --expect-no-changes`: the program still declares the rule
    that is live) -> `release` to the idle colour clears the hold -> the header route goes back on the
    new candidate, gated by the pack."""
    from rollout.simulate import load_stack_file, run_program
    from tests.test_cli import expect, invoke, make_project

    configure("healthy")
    alb, elbv2, rule = _aborted_with_header_route(aws)
    marker = {t["Key"]: t["Value"] for t in elbv2.describe_tags(ResourceArns=[alb.production_listener])["TagDescriptions"][0]["Tags"]}[TAG_ABORTED]
    proj = make_project(tmp_path, step=2)
    cli = ("--project-dir", str(proj))

    def declared() -> str:  # the program under mocks, on the stack file as committed; no marker in the tagging index
        return _rule_target(run_program("production", config=load_stack_file("production", proj), previous_outputs={}))

    def live() -> str:
        (r,) = elbv2.describe_rules(RuleArns=[rule])["Rules"]
        (g,) = r["Actions"][0]["ForwardConfig"]["TargetGroups"]
        return {a: c for c, a in alb.target_groups.items()}[g["TargetGroupArn"]]

    out = tmp_path / "gh-output"
    expect(invoke(*cli, "watch", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--github-output", str(out)), 1, "rollback")
    decided = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert decided["aborted"] == marker, decided
    expect(invoke(*cli, "rollback", "--stack", "production", "--config-only", "--yes", "--aborted", decided["aborted"]), 0, "not deployed")
    assert load_stack_file("production", proj)["bluegreen:aborted"] == marker

    # the converging `up --refresh`: what the program declares passes the pack while the marker stands
    assert declared() == "blue"
    assert not _analyze_rule(pack, alb, "blue").mandatory
    assert not analyze(pack, *proposed(alb, step=0)).mandatory
    elbv2.remove_tags(ResourceArns=[alb.production_listener], TagKeys=[TAG_ABORTED])  # applied: the program never writes it
    # verify: nothing differs between what the program declares and what is live
    assert declared() == live() == "blue"
    expect(invoke(*cli, "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer), 0,
           "in sync", "held", "until the next release")

    expect(invoke(*cli, "release", "--stack", "production", "--image", "web:9.9.9", "--config-only", "--yes"), 0, "clears bluegreen:aborted")
    assert not load_stack_file("production", proj).get("bluegreen:aborted")
    assert declared() == "green"  # back on the new candidate ...
    assert not analyze(pack, *proposed(alb, step=0)).mandatory  # the release's run begins with its listener: no marker now
    configure("unhealthy")
    assert _analyze_rule(pack, alb, "green").mandatory  # ... gated: refused while the candidate fails its probes
    configure("healthy")
    assert not _analyze_rule(pack, alb, "green").mandatory


# --------------------------------------------------------------------------- a release while the marker still stands


def _green_service(aws, alb):
    """ECS before the abort: green's service on green's target group, running web:1.0.0 (what the reflex aborts)."""
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="web")
    td = ecs.register_task_definition(family="web-green", containerDefinitions=[{"name": "web", "image": "web:1.0.0", "memory": 512}])
    ecs.create_service(cluster="web", serviceName="web-green", taskDefinition=td["taskDefinition"]["taskDefinitionArn"], desiredCount=2,
                       loadBalancers=[{"targetGroupArn": alb.target_groups["green"], "containerName": "web", "containerPort": 8080}])


def _release_to_green(aws) -> None:
    """After the abort, a genuine release: a new task definition revision (a new image) deployed on green's service."""
    ecs = aws.client("ecs")
    td = ecs.register_task_definition(family="web-green", containerDefinitions=[{"name": "web", "image": "web:9.9.9", "memory": 512}])
    ecs.update_service(cluster="web", service="web-green", taskDefinition=td["taskDefinition"]["taskDefinitionArn"])


def test_a_config_edit_that_only_pretends_to_release_keeps_the_header_route_off_the_aborted_colour(aws, pack, configure):
    """The attack: while the marker still stands (the converging deploy failed), the stack file is edited to
    drop the hold (`bluegreen:aborted` removed, step 0) without a new release: the program then declares the
    header route on green, the colour the reflex just aborted, running what it ran. Refused, by a live fact
    (the marker on the listener), however healthy green looks and whatever the config says."""
    from rollout.simulate import run_program

    configure("healthy")
    alb, _, _ = _aborted_with_header_route(aws, before_abort=lambda a: _green_service(aws, a))
    pretend = run_program("production", overrides={"bluegreen:rollout.step": 0}, previous_outputs={})
    assert _rule_target(pretend) == "green"  # what the edited config declares
    refused = _analyze_rule(pack, alb, "green")
    assert [v for v in refused.mandatory if v.policy == "abort-marker"], refused


def _marker_refusals(result) -> list:
    return [v for v in result.mandatory if v.policy == "abort-marker"]


def _up(aws, pack, alb, between=None):
    """One `pulumi up --refresh` of a step-0 config whose header route goes to green, in the engine's order: the
    listener is judged, then applied (the program never declares bluegreen:aborted, so the tag goes); then the colours'
    workloads are updated (`between`); the header route, registered after both, is judged last."""
    assert not analyze(pack, *proposed(alb, step=0)).mandatory  # all on stable: the listener itself always passes
    aws.client("elbv2").remove_tags(ResourceArns=[alb.production_listener], TagKeys=[TAG_ABORTED])
    if between is not None:
        between()
    return _analyze_rule(pack, alb, "green")


def test_up_skipping_the_preview_cannot_drop_the_hold_by_applying_the_listener_first(aws, pack, configure):
    """The attack in `up --skip-preview`: the listener's step removes the live marker before the header route is
    judged; the marker the run began with still holds the route on stable."""
    configure("healthy")
    alb, _, _ = _aborted_with_header_route(aws, before_abort=lambda a: _green_service(aws, a))
    result = _up(aws, pack, alb)
    assert _marker_refusals(result), result
    assert "may follow only a new release of that colour" in _marker_refusals(result)[0].message


def test_a_genuine_release_to_the_idle_colour_passes_while_the_marker_stands(aws, pack, configure):
    """The converging step-0 update failed, the marker still stands, and a release goes to green: in the same `up`, green's
    service gets a task definition with new containers before the header route is judged, so the route may follow."""
    configure("healthy")
    alb, _, _ = _aborted_with_header_route(aws, before_abort=lambda a: _green_service(aws, a))
    result = _up(aws, pack, alb, between=lambda: _release_to_green(aws))
    assert not _marker_refusals(result), result


def _redeploy_green(aws, **container) -> None:
    ecs = aws.client("ecs")
    spec = {"name": "web", "image": "web:1.0.0", "memory": 512, **container}
    td = ecs.register_task_definition(family="web-green", containerDefinitions=[spec])
    ecs.update_service(cluster="web", service="web-green", taskDefinition=td["taskDefinition"]["taskDefinitionArn"])


@pytest.mark.parametrize("pretence", ["same containers, new revision", "another family, same containers", "no change"])
def test_a_release_that_runs_what_was_aborted_does_not_move_the_header_route(aws, pack, configure, pretence):
    configure("healthy")
    alb, _, _ = _aborted_with_header_route(aws, before_abort=lambda a: _green_service(aws, a))
    ecs = aws.client("ecs")

    def redeploy():
        if pretence == "same containers, new revision":
            _redeploy_green(aws)
        elif pretence == "another family, same containers":
            td = ecs.register_task_definition(family="web-green-2", containerDefinitions=[{"name": "web", "image": "web:1.0.0", "memory": 512}])
            ecs.update_service(cluster="web", service="web-green", taskDefinition=td["taskDefinition"]["taskDefinitionArn"])

    refused = _marker_refusals(_up(aws, pack, alb, between=redeploy))
    assert refused and "its ECS services still run containers it ran when this update began" in refused[0].message, (pretence, refused)


def test_without_an_ecs_service_on_the_aborted_colour_the_route_stays_held_and_says_why(aws, pack, configure):
    """A Kubernetes colour (nothing in ECS on its target group): the pack cannot see a release, so the hold stands."""
    configure("healthy")
    alb, _, _ = _aborted_with_header_route(aws)
    refused = _marker_refusals(_up(aws, pack, alb))
    assert refused and "no ECS service runs on its target group" in refused[0].message, refused


def test_a_release_to_the_stable_colour_does_not_free_the_route_to_the_aborted_one(aws, pack, configure):
    """Only what runs behind the colour the route gains counts: a new release of blue does not let it go to green."""
    configure("healthy")

    def services(alb):
        _green_service(aws, alb)
        ecs = aws.client("ecs")
        td = ecs.register_task_definition(family="web-blue", containerDefinitions=[{"name": "web", "image": "web:0.9.0", "memory": 512}])
        ecs.create_service(cluster="web", serviceName="web-blue", taskDefinition=td["taskDefinition"]["taskDefinitionArn"], desiredCount=2,
                           loadBalancers=[{"targetGroupArn": alb.target_groups["blue"], "containerName": "web", "containerPort": 8080}])

    alb, _, _ = _aborted_with_header_route(aws, before_abort=services)

    def release_blue():
        ecs = aws.client("ecs")
        td = ecs.register_task_definition(family="web-blue", containerDefinitions=[{"name": "web", "image": "web:9.9.9", "memory": 512}])
        ecs.update_service(cluster="web", service="web-blue", taskDefinition=td["taskDefinition"]["taskDefinitionArn"])

    assert _marker_refusals(_up(aws, pack, alb, between=release_blue))


def test_an_environment_change_is_a_release_of_other_containers(aws, pack, configure):
    """What the colour runs changes with its containers, not only its image: a fix by environment alone counts."""
    configure("healthy")
    alb, _, _ = _aborted_with_header_route(aws, before_abort=lambda a: _green_service(aws, a))
    fixed = _up(aws, pack, alb, between=lambda: _redeploy_green(aws, environment=[{"name": "FEATURE_X", "value": "off"}]))
    assert not _marker_refusals(fixed), fixed


def test_the_preview_of_a_genuine_release_passes_and_up_judges_what_ecs_then_runs(aws, pack, configure):
    """In the preview nothing has run: green's service declares a new task definition (unknown until `up` creates it), so
    the header route passes there; `up` judges it again against ECS, and a service left on the aborted containers fails."""
    configure("healthy")
    alb, _, _ = _aborted_with_header_route(aws, before_abort=lambda a: _green_service(aws, a))
    service = {"cluster": "web", "name": "web-green", "taskDefinition": UNKNOWN, "desiredCount": 2, "launchType": "FARGATE",
               "loadBalancers": [{"targetGroupArn": alb.target_groups["green"], "containerName": "web", "containerPort": 8080}]}
    urn = "urn:pulumi:production::bluegreen::bluegreen:index:ColorEnvironment$aws:ecs/service:Service::web-green-service"
    # preview: listener, then green's service (a new revision to come), then the header route; nothing is applied
    assert not analyze(pack, *proposed(alb, step=0)).mandatory
    pack.analyze("aws:ecs/service:Service", service, name="web-green-service", urn=urn)
    assert not _marker_refusals(_analyze_rule(pack, alb, "green"))
    # the `up` that follows, judged in the same process: its listener's call clears the preview's note
    assert _marker_refusals(_up(aws, pack, alb))
