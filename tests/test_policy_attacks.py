"""One regression test per attack of issue 9, through the real pack over gRPC against moto_server.

Each asserts the promise (docs/safety-model.md): no unhealthy target group gains traffic through any
route except a return to the live-recorded stable target group, and rollbacks are never refused.
"""

from __future__ import annotations

import pytest

from tests.test_policy_traffic import analyze, configure, live_alb, pack, proposed, stamp, weights_at  # noqa: F401

RULE = "aws:lb/listenerRule:ListenerRule"
LISTENER_TYPE = "aws:lb/listener:Listener"


def _record(aws, alb, stable="blue"):
    """Record stable as a target group ARN on the live listener, as the program now does."""
    aws.client("elbv2").add_tags(
        ResourceArns=[alb.production_listener], Tags=[{"Key": "bluegreen:stable-tg", "Value": alb.target_groups[stable]}]
    )


def _mandatory(result, policy=None):
    return [v for v in result.mandatory if policy is None or v.policy == policy]


def test_stable_flip_then_step_0_is_refused(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=1)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=1, **{"bluegreen:rollout.stable": "green"})
    # the program at stable green step 1 sends green 90: force the "weights unchanged" flip of the attack
    for tg in props["defaultActions"][0]["forward"]["targetGroups"]:
        tg["weight"] = 90 if tg["arn"] == alb.target_groups["blue"] else 10
    props["tags"]["bluegreen:weights-since"] = stamp(weights_at(1), 0)
    result = analyze(pack, props, name, urn)
    assert _mandatory(result, "stable-by-finish"), result
    # and even then, green 10 -> 100 is never a rollback while the live record says blue
    props, name, urn = proposed(alb, step=0, **{"bluegreen:rollout.stable": "green"})
    assert _mandatory(analyze(pack, props, name, urn), "healthy-promotion")


@pytest.mark.parametrize(
    "conditions",
    [
        [{"httpHeader": {"httpHeaderName": "User-Agent", "values": ["*"]}}],
        [{"pathPattern": {"values": ["/*"]}}],
    ],
    ids=["header-user-agent-star", "path-star"],
)
def test_a_listener_rule_to_an_unhealthy_candidate_is_gated(aws, pack, configure, conditions):
    configure("unhealthy")
    alb = live_alb(aws, step=0)
    _record(aws, alb)
    props = {
        "listenerArn": alb.production_listener,
        "priority": 10,
        "conditions": conditions,
        "actions": [{"type": "forward", "targetGroupArn": alb.target_groups["green"]}],
    }
    result = pack.analyze(RULE, props, name="web-traffic-header-route")
    assert any("green must pass its health gate" in v.message for v in _mandatory(result, "healthy-promotion")), result


def test_a_rule_back_to_the_recorded_stable_passes_even_unhealthy(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=2)
    _record(aws, alb)
    props = {
        "listenerArn": alb.production_listener,
        "priority": 11,
        "conditions": [{"pathPattern": {"values": ["/*"]}}],
        "actions": [{"type": "forward", "targetGroupArn": alb.target_groups["blue"]}],
    }
    assert pack.analyze(RULE, props, name="r").mandatory == []


@pytest.mark.parametrize("tag", [None, "Production", "prod"], ids=["dropped", "capitalised", "misspelt"])
def test_the_listener_tag_does_not_decide_what_is_production(aws, pack, configure, tag):
    configure("unhealthy")
    alb = live_alb(aws, step=1)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=5)
    if tag is None:
        props["tags"].pop("bluegreen:listener")
    else:
        props["tags"]["bluegreen:listener"] = tag
    assert _mandatory(analyze(pack, props, name, urn), "healthy-promotion")


def test_a_new_listener_on_the_same_alb_to_the_candidate_is_gated(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=0)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=5)  # 100% green ...
    props["port"] = 8443  # ... on a listener that does not exist live
    props["tags"] = {}
    assert _mandatory(analyze(pack, props, "web-traffic-extra", urn + "-extra"), "healthy-promotion")


def test_a_colour_tag_swap_is_refused(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    name = alb.target_groups["green"].split(":targetgroup/")[1].split("/")[0]
    props = {"name": name, "port": 8080, "protocol": "HTTP", "tags": {"bluegreen:color": "blue"}}
    result = pack.analyze("aws:lb/targetGroup:TargetGroup", props, name="web-traffic-tg-green")
    assert _mandatory(result, "colour-identity"), result
    tag = {"resourceArn": alb.target_groups["blue"], "key": "bluegreen:color", "value": "green"}
    assert _mandatory(pack.analyze("aws:lb/tag:Tag", tag, name="swap"), "colour-identity")
    record = {"resourceArn": alb.production_listener, "key": "bluegreen:stable-tg", "value": alb.target_groups["green"]}
    assert _mandatory(pack.analyze("aws:lb/tag:Tag", record, name="rec"), "colour-identity")


def test_stable_taken_from_the_proposed_tag_when_live_is_unreadable_is_refused(aws, pack, configure):
    """AWS unreadable: the proposal claims green stable and sends green 50%; not the narrow shape."""
    configure("unhealthy")
    alb = live_alb(aws, step=2)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=3, **{"bluegreen:rollout.stable": "green"})
    with aws.enforce_iam():
        result = analyze(pack, props, name, urn)
    assert _mandatory(result, "healthy-promotion"), result


def test_ladder_edit_mid_rollout_is_refused(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=1, **{"bluegreen:rollout.steps": [10, 100]})
    props["tags"]["bluegreen:weights-since"] = stamp(weights_at(1), 30)
    result = analyze(pack, props, name, urn)
    assert any("ladder may change only while no candidate traffic is live" in v.message for v in _mandatory(result)), result


def test_a_replacement_listener_cannot_start_the_ladder_over(aws, pack, configure):
    """A new port (the engine replaces the listener) carrying the same record still moves one rung at a time."""
    configure("healthy")
    alb = live_alb(aws, step=1)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=5)
    props["port"] = 8443
    result = analyze(pack, props, name, urn)
    assert _mandatory(result, "one-step-at-a-time"), result


def test_a_backdated_rollback_stamp_is_refused_and_a_fresh_one_passes(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=3, since_minutes=1)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=1, since=stamp(weights_at(1), 120))
    assert _mandatory(analyze(pack, props, name, urn), "bake-time")
    props, name, urn = proposed(alb, step=1)
    assert analyze(pack, props, name, urn).mandatory == []


def test_partial_rollback_passes_when_the_gate_reads_fail(aws, pack, configure):
    configure("healthy", healthy_promotion={"probeBaseUrl": "http://127.0.0.1:9"})
    alb = live_alb(aws, step=3, since_minutes=1)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=1)
    assert analyze(pack, props, name, urn).mandatory == []


@pytest.mark.parametrize("live_stable", [None, "Blue"], ids=["missing", "capitalised"])
def test_full_rollback_passes_with_the_live_stable_tag_missing_or_odd(aws, pack, configure, live_stable):
    configure("unhealthy")
    alb = live_alb(aws, step=3)
    _record(aws, alb)  # the record is the target group ARN; the colour label is only a label
    elbv2 = aws.client("elbv2")
    elbv2.remove_tags(ResourceArns=[alb.production_listener], TagKeys=["bluegreen:stable"])
    if live_stable:
        elbv2.add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": "bluegreen:stable", "Value": live_stable}])
    props, name, urn = proposed(alb, step=0)
    assert analyze(pack, props, name, urn).mandatory == []


def test_a_removed_record_is_not_a_licence(aws, pack, configure):
    """An update can remove the record (replace the recorded listener: the pack never sees deletes),
    so with no record every gain is gated -- the unhealthy candidate at 100% is refused."""
    configure("unhealthy")
    alb = live_alb(aws, step=1)
    aws.client("elbv2").remove_tags(ResourceArns=[alb.production_listener], TagKeys=["bluegreen:stable"])
    props, name, urn = proposed(alb, step=5)
    assert _mandatory(analyze(pack, props, name, urn), "healthy-promotion")


def test_full_rollback_passes_while_aws_is_unreadable(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=3)
    _record(aws, alb)
    props, name, urn = proposed(alb, step=0)
    with aws.enforce_iam():
        assert analyze(pack, props, name, urn).mandatory == []


def test_the_baseline_does_not_refuse_a_rollback_over_an_alb_that_already_lacks_access_logs(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=3)
    props = {"name": "bg", "loadBalancerType": "application", "enableDeletionProtection": True, "dropInvalidHeaderFields": True}
    elbv2 = aws.client("elbv2")
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=alb.load_balancer,
        Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}, {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                    {"Key": "access_logs.s3.enabled", "Value": "false"}],
    )
    assert pack.analyze("aws:lb/loadBalancer:LoadBalancer", props, name="web-traffic-alb").mandatory == []
    # a NEW load balancer without access logs is still refused
    new = dict(props, name="brand-new")
    assert _mandatory(pack.analyze("aws:lb/loadBalancer:LoadBalancer", new, name="web-traffic-alb2"), "alb-access-logs")


def test_migration_guard_never_refuses_a_committed_rollback(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=3, extra_tags={"bluegreen:breaking-migration": "green"})
    _record(aws, alb)
    props, name, urn = proposed(alb, step=0, **{"bluegreen:colors.green.breakingMigration": True})
    assert analyze(pack, props, name, urn).mandatory == []


def test_a_first_deployment_passes_in_the_programs_order_with_nothing_running(aws, pack, configure):
    """The program creates the test listener first, then the production listener (step 0): no
    production traffic exists yet, so neither waits for a workload that is not running."""
    configure("unhealthy")
    alb = live_alb(aws, step=0, test_listener=False)
    elbv2 = aws.client("elbv2")
    elbv2.delete_listener(ListenerArn=alb.production_listener)
    test_props = {
        "loadBalancerArn": alb.load_balancer, "port": 8443, "protocol": "HTTPS",
        "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/test", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "defaultActions": [{"type": "forward", "targetGroupArn": alb.target_groups["green"]}],
        "tags": {"bluegreen:listener": "test"},
    }
    assert pack.analyze(LISTENER_TYPE, test_props, name="web-traffic-test").mandatory == []
    elbv2.create_listener(
        LoadBalancerArn=alb.load_balancer, Protocol="HTTP", Port=8443,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": alb.target_groups["green"]}],
    )
    props, name, urn = proposed(alb, step=0)
    assert analyze(pack, props, name, urn).mandatory == []
    # but once a production listener records stable, a new listener to the unhealthy candidate is gated
    props, name, urn = proposed(alb, step=5)
    props["port"] = 9443
    props["tags"].pop("bluegreen:stable-tg")
    elbv2.create_listener(
        LoadBalancerArn=alb.load_balancer, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": alb.target_groups["blue"], "Weight": 100}, {"TargetGroupArn": alb.target_groups["green"], "Weight": 0}]}}],
        Tags=[{"Key": "bluegreen:stable-tg", "Value": alb.target_groups["blue"]}],
    )
    assert _mandatory(analyze(pack, props, "extra", urn + "-extra"), "healthy-promotion")


@pytest.mark.parametrize("health,refused", [("healthy", False), ("unhealthy", True)])
def test_a_legitimate_finish_passes_only_through_the_gate(aws, pack, configure, health, refused):
    """Green holds 100% live; the finish records green's target group as stable if green passes its gate."""
    configure(health)
    alb = live_alb(aws, step=5)
    _record(aws, alb)
    (desc,) = aws.client("elbv2").describe_tags(ResourceArns=[alb.production_listener])["TagDescriptions"]
    live_since = next(t["Value"] for t in desc["Tags"] if t["Key"] == "bluegreen:weights-since")
    # a finish moves no traffic, so the program keeps the live stamp
    props, name, urn = proposed(alb, step=0, since=live_since, **{"bluegreen:rollout.stable": "green"})
    assert props["tags"]["bluegreen:stable-tg"] == alb.target_groups["green"]
    result = analyze(pack, props, name, urn)
    assert bool(result.mandatory) is refused, result
    if refused:
        assert any("makes green" in v.message for v in _mandatory(result, "healthy-promotion")), result


# --------------------------------------------------------------------------- seams found in review


@pytest.mark.parametrize("candidate_5xx", [0, 3])
def test_a_finish_is_not_judged_against_a_stable_colour_without_traffic(aws, pack, configure, candidate_5xx):
    """At a finish the old stable serves nothing (as AWS reports it: zero requests), so the relative
    judge has no baseline: a few 5xx of the colour that holds 100 % must not refuse the finish forever."""
    from tests.test_policy_traffic import SINCE, proposed, stamp, weights_at

    configure("healthy")
    alb = aws.build_alb(stable="blue", candidate_weight=100)
    aws.put_minutes(alb, stable=(0, 0), candidate=(20000, candidate_5xx), ago=range(2, 30))
    tags = {"bluegreen:steps": "10/25/50/75/100", SINCE: stamp(weights_at(5, "blue"), 30)}
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    _record(aws, alb)
    props, name, urn = proposed(alb, step=0, since=tags[SINCE], **{"bluegreen:rollout.stable": "green"})
    result = analyze(pack, props, name, urn)
    assert not result.mandatory, result


def test_adding_the_header_route_while_the_candidate_carries_nothing_rests_on_probes_and_health(aws, pack, configure):
    """A new header rule to the idle candidate (0 % of production) is gated on probes and target health;
    the relative judge has nothing to compare yet and must not hold it forever."""
    from tests.test_policy_traffic import live_alb

    configure("healthy")
    alb = live_alb(aws, step=0)
    _record(aws, alb)
    props = {"listenerArn": alb.production_listener, "priority": 10,
             "conditions": [{"httpHeader": {"httpHeaderName": "X-Canary", "values": ["always"]}}],
             "actions": [{"type": "forward", "targetGroupArn": alb.target_groups["green"]}], "tags": {}}
    result = pack.analyze("aws:lb/listenerRule:ListenerRule", props, name="hr",
                          urn="urn:pulumi:production::bluegreen::aws:lb/listenerRule:ListenerRule::hr")
    assert not result.mandatory, result
    configure("unhealthy")
    result = pack.analyze("aws:lb/listenerRule:ListenerRule", props, name="hr",
                          urn="urn:pulumi:production::bluegreen::aws:lb/listenerRule:ListenerRule::hr")
    assert result.mandatory, "an unhealthy candidate must not get the header route"
