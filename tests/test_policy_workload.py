"""Invariant 4 attacked through the real pack over gRPC: a colour carrying traffic keeps its workload.

Live state is a moto_server ALB (tests/fixtures/aws.py) plus an ECS cluster with one service per colour
bound to that colour's target group. Proposed state is what the REAL program registers
(rollout.simulate), with its ARNs and names pointed at the moto resources. Each attack first, then
what must still pass (a release to the idle colour, every traffic step, rollbacks under faults).
"""

from __future__ import annotations

import copy
import re
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.simulate import run_program
from rollout.workload import BREAK_GLASS_RE, TAG_BREAK_GLASS, TAG_WORKLOAD
from tests.fixtures.aws import AlbArns, AwsEnv
from tests.fixtures.servers import serving
from tests.policy_harness import POLICY_DIR, UNKNOWN, AnalyzeResult, PolicyPackClient, policy_pack_env
from tests.test_policy_traffic import live_alb, proposed

SERVICE = "aws:ecs/service:Service"
LISTENER = "aws:lb/listener:Listener"
OLD = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.1"
NEW = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:9.9.9-untested"
REASON = "INC-4711 revert a config leak on stable"


class _Hook(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def hook():
    """A loopback Slack-style webhook that records every body the pack posts."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []
    with serving(server):
        yield server


@pytest.fixture(scope="module")
def pack(moto_endpoint: str, hook, tmp_path_factory: pytest.TempPathFactory):
    url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    env = policy_pack_env(moto_endpoint, tmp_path_factory.mktemp("pack-aws"), BLUEGREEN_WEBHOOK_URL=url)
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        client.configure_file(POLICY_DIR / "production.json", {"healthy-promotion": {"probeBaseUrl": "http://127.0.0.1:9", "probes": 1}})
        yield client


# --------------------------------------------------------------------------- live ECS in moto


class LiveEcs:
    """An ECS cluster in moto with one service per colour, each on its colour's target group."""

    def __init__(self, aws: AwsEnv, alb: AlbArns, images: dict[str, str] | None = None, desired: int = 2):
        self.aws, self.alb = aws, alb
        self.ecs = aws.client("ecs")
        self.cluster = self.ecs.create_cluster(clusterName="web-ecs-cluster")["cluster"]["clusterArn"]
        self.task_definitions: dict[str, str] = {}
        self.services: dict[str, str] = {}
        for color in ("blue", "green"):
            self.task_definitions[color] = self.register(color, (images or {}).get(color, OLD))
            self.services[color] = self.ecs.create_service(
                cluster=self.cluster,
                serviceName=f"web-{color}-service",
                taskDefinition=self.task_definitions[color],
                desiredCount=desired,
                loadBalancers=[{"targetGroupArn": alb.target_groups[color], "containerName": "app", "containerPort": 8080}],
            )["service"]["serviceName"]

    def register(self, color: str, image: str) -> str:
        return self.ecs.register_task_definition(
            family=f"web-{color}",
            containerDefinitions=[{"name": "app", "image": image, "essential": True, "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]


_SIMS: dict[tuple, object] = {}


def _sim(overrides: dict):
    key = tuple(sorted((k, json.dumps(v)) for k, v in overrides.items()))
    if key not in _SIMS:
        _SIMS[key] = run_program("production", overrides=overrides)
    return _SIMS[key]


def service_props(live: LiveEcs, color: str, *, task_definition: str | None = None, **overrides) -> tuple[dict, str, str]:
    """(props, name, urn) of `color`'s ECS service as the real program registers it, pointed at moto."""
    sim = _sim(overrides)
    svc = sim.one(SERVICE, f"{color}-service")
    props = copy.deepcopy(dict(svc.inputs))
    props["cluster"] = live.cluster
    props["name"] = live.services[color]
    props["taskDefinition"] = task_definition or live.task_definitions[color]
    for lb in props["loadBalancers"]:
        lb["targetGroupArn"] = live.alb.target_groups[color]
    return props, svc.name, svc.urn


def workload_tag(**overrides) -> str:
    """The program's bluegreen:workload record on the production listener for a config."""
    sim = _sim(overrides)
    listener = next(r for r in sim.by_type(LISTENER) if r.inputs["tags"].get("bluegreen:listener") == "production")
    return listener.inputs["tags"][TAG_WORKLOAD]


def analyze(pack: PolicyPackClient, props_name_urn: tuple[dict, str, str], type_: str = SERVICE) -> AnalyzeResult:
    props, name, urn = props_name_urn
    return pack.analyze(type_, props, name=name, urn=urn)


def refused(result: AnalyzeResult, policy: str, *substrings: str) -> None:
    found = [v for v in result.mandatory if v.policy == policy]
    assert found, f"expected a mandatory {policy} violation; got {result}"
    for s in substrings:
        assert any(s in v.message for v in found), f"expected {s!r} in a {policy} violation; got {result}"


def passes(result: AnalyzeResult) -> None:
    assert not result.mandatory, f"expected no mandatory violation; got {result}"


# --------------------------------------------------------------------------- attacks (each must be refused)


def test_new_image_on_the_stable_colour_is_refused(aws, pack):
    alb = live_alb(aws, step=1)  # blue 90 %, green 10 %
    live = LiveEcs(aws, alb)
    new_td = live.register("blue", NEW)
    result = analyze(pack, service_props(live, "blue", task_definition=new_td, **{"bluegreen:colors.blue.image": NEW}))
    refused(result, "workload-frozen-while-live", "with 90% of live production traffic", f"image {OLD} -> {NEW}", "rollout release --image")


def test_new_image_on_the_stable_colour_is_refused_in_preview(aws, pack):
    """Preview: the new task definition revision does not exist yet, so the service's taskDefinition is unknown."""
    alb = live_alb(aws, step=0)  # blue 100 %
    live = LiveEcs(aws, alb)
    result = analyze(pack, service_props(live, "blue", task_definition=UNKNOWN, **{"bluegreen:colors.blue.image": NEW}))
    refused(result, "workload-frozen-while-live", "with 100% of live production traffic", "a new task definition revision replaces")


def test_new_image_on_a_candidate_carrying_ten_percent_is_refused(aws, pack):
    alb = live_alb(aws, step=1)
    live = LiveEcs(aws, alb)
    new_td = live.register("green", NEW)
    result = analyze(pack, service_props(live, "green", task_definition=new_td, **{"bluegreen:colors.green.image": NEW}))
    refused(result, "workload-frozen-while-live", "with 10% of live production traffic", NEW)


def test_image_and_step_in_one_update_are_refused_at_preview(aws, pack):
    """The listener of the same update records the candidate's new workload: weights and workload move together."""
    alb = live_alb(aws, step=0, extra_tags={TAG_WORKLOAD: workload_tag()})
    result = analyze(pack, proposed(alb, step=1, **{"bluegreen:colors.green.image": NEW}), LISTENER)
    refused(result, "workload-steady-during-shift", "blue 100% -> 90% / green 0% -> 10%", "changes what green runs")


@pytest.mark.parametrize("platform", [{}, {"bluegreen:platform": "kubernetes", "bluegreen:kubernetes.context": "prod"}], ids=["ecs", "kubernetes"])
def test_a_new_stable_image_is_refused_on_the_listener_too(aws, pack, platform):
    """The listener's record shows it before any workload resource is judged: the way Kubernetes colours are guarded."""
    alb = live_alb(aws, step=1, extra_tags={TAG_WORKLOAD: workload_tag(**platform, **{"bluegreen:rollout.step": 1})})
    result = analyze(pack, proposed(alb, step=1, since=None, **platform, **{"bluegreen:colors.blue.image": NEW}), LISTENER)
    refused(result, "workload-steady-during-shift", "changes what blue runs", "while it carries blue 90% of live traffic")


def test_a_release_to_the_idle_colour_passes_on_the_listener(aws, pack):
    alb = live_alb(aws, step=0, extra_tags={TAG_WORKLOAD: workload_tag()})
    result = analyze(pack, proposed(alb, step=0, since=None, **{"bluegreen:colors.green.image": NEW}), LISTENER)
    assert result.of("workload-steady-during-shift") == [], result


def test_image_and_step_in_one_update_are_refused_when_the_listener_went_first(aws, pack):
    """`pulumi up`: the service depends on the listener, so when the service is judged the new weights are live."""
    alb = live_alb(aws, step=1)  # the listener of this update has just been applied: green 10 %
    live = LiveEcs(aws, alb)
    new_td = live.register("green", NEW)
    result = analyze(pack, service_props(live, "green", task_definition=new_td, **{"bluegreen:colors.green.image": NEW, "bluegreen:rollout.step": 1}))
    refused(result, "workload-frozen-while-live", "with 10% of live production traffic")


def test_replicas_below_the_floor_on_a_live_colour_are_refused(aws, pack):
    alb = live_alb(aws, step=2)  # blue 75 %, green 25 %
    live = LiveEcs(aws, alb, desired=2)
    props, name, urn = service_props(live, "green")
    props["desiredCount"] = 1
    refused(analyze(pack, (props, name, urn)), "workload-frozen-while-live", "desired count 2 -> 1, below the floor of 2")
    props["desiredCount"] = 4  # scaling up a live colour is not a workload change
    passes(analyze(pack, (props, name, urn)))


def test_task_definition_swap_is_refused(aws, pack):
    """Blue's service pointed at green's task definition: a different workload on the stable colour."""
    alb = live_alb(aws, step=0)
    live = LiveEcs(aws, alb, images={"blue": OLD, "green": NEW})
    result = analyze(pack, service_props(live, "blue", task_definition=live.task_definitions["green"]))
    refused(result, "workload-frozen-while-live", "web-blue:1 -> web-green:1", f"image {OLD} -> {NEW}")


def test_rebinding_the_idle_service_to_the_live_target_group_is_refused(aws, pack):
    alb = live_alb(aws, step=0)
    live = LiveEcs(aws, alb)
    props, name, urn = service_props(live, "green")
    props["loadBalancers"][0]["targetGroupArn"] = alb.target_groups["blue"]
    refused(analyze(pack, (props, name, urn)), "workload-frozen-while-live", "the target groups it registers tasks in")


def test_a_workload_change_fails_closed_when_aws_is_unreadable(aws, pack):
    alb = live_alb(aws, step=1)
    live = LiveEcs(aws, alb)
    props = service_props(live, "blue", task_definition=UNKNOWN, **{"bluegreen:colors.blue.image": NEW})
    with aws.enforce_iam():
        result = analyze(pack, props)
    refused(result, "workload-frozen-while-live", "may carry production traffic", "credentials rejected")


def test_a_cluster_in_a_made_up_region_is_not_an_unreadable_fault(aws, pack):
    """The update cannot manufacture the fault: the ECS region comes from the target groups."""
    alb = live_alb(aws, step=0)
    live = LiveEcs(aws, alb)
    props, name, urn = service_props(live, "blue", task_definition=UNKNOWN)
    props["cluster"] = live.cluster.replace("us-east-1", "xx-nowhere-9")
    refused(analyze(pack, (props, name, urn)), "workload-frozen-while-live", "target group bg-blue with 100% of live")


# --------------------------------------------------------------------------- what must still pass


def test_release_to_the_idle_colour_passes(aws, pack):
    alb = live_alb(aws, step=0)  # green idle
    live = LiveEcs(aws, alb)
    new_td = live.register("green", NEW)
    passes(analyze(pack, service_props(live, "green", task_definition=new_td, **{"bluegreen:colors.green.image": NEW})))
    passes(analyze(pack, service_props(live, "green", task_definition=UNKNOWN, **{"bluegreen:colors.green.image": NEW})))


def test_a_first_deploy_preview_of_a_service_never_blocks(aws, pack):
    alb = live_alb(aws, step=0)
    live = LiveEcs(aws, alb)
    props, name, urn = service_props(live, "blue", task_definition=UNKNOWN)
    props["cluster"] = props["name"] = UNKNOWN
    props["loadBalancers"][0]["targetGroupArn"] = UNKNOWN
    result = analyze(pack, (props, name, urn))
    passes(result)
    assert any("not known yet" in v.message or "during preview" in v.message for v in result.of("workload-frozen-while-live")), result


def test_parking_the_idle_colour_passes(aws, pack):
    alb = live_alb(aws, step=0)
    live = LiveEcs(aws, alb)
    props, name, urn = service_props(live, "green")
    props["desiredCount"] = 0
    passes(analyze(pack, (props, name, urn)))


@pytest.mark.parametrize("step", [0, 1, 3, 5])
def test_an_unchanged_service_passes_at_every_step(aws, pack, step):
    alb = live_alb(aws, step=step)
    live = LiveEcs(aws, alb)
    for color in ("blue", "green"):
        passes(analyze(pack, service_props(live, color, **{"bluegreen:rollout.step": step})))


def test_a_traffic_step_without_a_workload_change_passes_the_listener_check(aws, pack):
    alb = live_alb(aws, step=1, extra_tags={TAG_WORKLOAD: workload_tag()})
    result = analyze(pack, proposed(alb, step=2), LISTENER)
    assert result.of("workload-steady-during-shift") == [], result


def test_a_rollback_with_a_changed_record_is_never_refused(aws, pack):
    alb = live_alb(aws, step=3, since_minutes=1, extra_tags={TAG_WORKLOAD: workload_tag()})
    result = analyze(pack, proposed(alb, step=0, **{"bluegreen:colors.green.image": NEW}), LISTENER)
    assert result.of("workload-steady-during-shift") == [], result


def test_an_unchanged_service_passes_while_ecs_is_unreadable(aws, pack):
    """A rollback changes the listener only; the services it leaves alone must not block it when ECS is down."""
    alb = live_alb(aws, step=3, extra_tags={TAG_WORKLOAD: workload_tag()})
    live = LiveEcs(aws, alb)
    props = service_props(live, "green")
    with aws.enforce_iam():
        result = analyze(pack, props)
    passes(result)


def test_a_promotion_that_drops_the_record_fails_closed(aws, pack):
    alb = live_alb(aws, step=1, extra_tags={TAG_WORKLOAD: workload_tag()})
    props, name, urn = proposed(alb, step=2)
    del props["tags"][TAG_WORKLOAD]
    refused(analyze(pack, (props, name, urn), LISTENER), "workload-steady-during-shift", "the proposed production listener has no valid bluegreen:workload tag")


def test_a_live_listener_from_before_the_record_does_not_hold_promotions(aws, pack):
    alb = live_alb(aws, step=1)  # deployed before the record existed
    result = analyze(pack, proposed(alb, step=2), LISTENER)
    assert result.of("workload-steady-during-shift") == [], result


# --------------------------------------------------------------------------- break-glass


def test_break_glass_lets_a_live_image_change_through_recorded_and_notified(aws, pack, hook):
    alb = live_alb(aws, step=0)
    live = LiveEcs(aws, alb)
    new_td = live.register("blue", NEW)
    overrides = {"bluegreen:colors.blue.image": NEW, "bluegreen:breakGlass.reason": REASON}
    props, name, urn = service_props(live, "blue", task_definition=new_td, **overrides)
    assert props["tags"][TAG_BREAK_GLASS] == REASON, props["tags"]
    sim = _sim(overrides)
    listener = next(r for r in sim.by_type(LISTENER) if r.inputs["tags"].get("bluegreen:listener") == "production")
    assert listener.inputs["tags"][TAG_BREAK_GLASS] == REASON, "the reason must be recorded on the production listener"
    before = len(hook.received)
    result = analyze(pack, (props, name, urn))
    passes(result)
    notes = [v for v in result.advisory if v.policy == "workload-break-glass"]
    assert notes and REASON in notes[0].message and "with 100% of live" not in notes[0].message, result
    sent = hook.received[before:]
    assert len(sent) == 1 and REASON in sent[0]["text"] and sent[0]["text"].startswith(":rotating_light: bluegreen break-glass on *production*"), sent
    analyze(pack, (props, name, urn))  # the same change again (preview, then up): notified once
    assert len(hook.received) == before + 1, hook.received[before:]


def test_a_reason_that_is_not_one_does_not_break_the_glass(aws, pack):
    alb = live_alb(aws, step=0)
    live = LiveEcs(aws, alb)
    new_td = live.register("blue", NEW)
    props, name, urn = service_props(live, "blue", task_definition=new_td)
    props["tags"][TAG_BREAK_GLASS] = "yes"  # too short to say why
    refused(analyze(pack, (props, name, urn)), "workload-frozen-while-live")


def test_break_glass_lets_image_and_step_through_on_the_listener(aws, pack):
    alb = live_alb(aws, step=0, extra_tags={TAG_WORKLOAD: workload_tag()})
    result = analyze(pack, proposed(alb, step=1, **{"bluegreen:colors.green.image": NEW, "bluegreen:breakGlass.reason": REASON}), LISTENER)
    assert result.of("workload-steady-during-shift") == [], result
    assert any(REASON in v.message for v in result.of("workload-break-glass")), result


@pytest.mark.parametrize("reason", ["short", "x" * 201, "naughty\nnewline here", "quote ' marks are not tag characters"])
def test_bad_break_glass_reasons_are_refused_before_any_resource(reason):
    from rollout.config import parse_stack_config
    from rollout.errors import ConfigError
    from rollout.simulate import load_stack_file

    raw = {k.split(":", 1)[1]: v for k, v in load_stack_file("production").items() if k.startswith("bluegreen:")}
    raw["breakGlass"] = {"reason": reason}
    with pytest.raises(ConfigError, match=r"bluegreen:breakGlass.reason: must be 10..200 characters"):
        parse_stack_config(raw)



# --------------------------------------------------------------------------- ECS unreadable, ELBv2 readable


@pytest.fixture
def elb_only_pack(aws, tmp_path):
    """A pack whose credentials may read ELBv2 but not ECS (moto enforcing IAM)."""
    key, secret = aws.iam_user("pack-elb-only", ["elasticloadbalancing:Describe*"])
    env = policy_pack_env(aws.endpoint, tmp_path, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret)
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        client.configure_file(POLICY_DIR / "production.json")
        yield client


def test_with_ecs_unreadable_the_listener_record_tells_a_change_from_none(aws, elb_only_pack):
    alb = live_alb(aws, step=1, extra_tags={TAG_WORKLOAD: workload_tag()})
    live = LiveEcs(aws, alb)
    new_td = live.register("blue", NEW)
    unchanged = service_props(live, "blue")
    changed = service_props(live, "blue", task_definition=new_td, **{"bluegreen:colors.blue.image": NEW})
    with aws.enforce_iam():
        kept = analyze(elb_only_pack, unchanged)
        swapped = analyze(elb_only_pack, changed)
    passes(kept)
    refused(swapped, "workload-frozen-while-live", "what it runs, by its bluegreen:workload record", "AccessDenied")


# --------------------------------------------------------------------------- the reason is a valid tag everywhere it goes

AWS_TAG_VALUE = re.compile(r"\A[\w\s.:/=+\-@]{0,256}\Z", re.UNICODE)  # ELBv2, ECS and SSM tag values (AWS docs)


_LISTENER: dict[str, str] = {}  # one moto listener per test (moto is reset per test, not per example)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(reason=st.from_regex(BREAK_GLASS_RE.pattern.replace("^", r"\A").replace("$", r"\Z")))
def test_every_accepted_reason_is_a_tag_value_aws_takes(aws, reason):
    from rollout.config import parse_stack_config
    from rollout.simulate import load_stack_file

    raw = {k.split(":", 1)[1]: v for k, v in load_stack_file("production").items() if k.startswith("bluegreen:")}
    raw["breakGlass"] = {"reason": reason}
    assert parse_stack_config(raw).break_glass_reason == reason
    assert AWS_TAG_VALUE.match(reason), repr(reason)
    if _LISTENER.get("endpoint") != f"{aws.endpoint}#{id(aws)}":
        alb = aws.build_alb(name="bgtag", test_listener=False, targets_per_color=0)
        _LISTENER.update(endpoint=f"{aws.endpoint}#{id(aws)}", arn=alb.production_listener)
    elbv2 = aws.client("elbv2")
    elbv2.add_tags(ResourceArns=[_LISTENER["arn"]], Tags=[{"Key": TAG_BREAK_GLASS, "Value": reason}])
    tags = elbv2.describe_tags(ResourceArns=[_LISTENER["arn"]])["TagDescriptions"][0]["Tags"]
    assert {"Key": TAG_BREAK_GLASS, "Value": reason} in tags


@pytest.mark.parametrize(
    ("header_values", "frozen"),
    [(["always"], False), (["*"], True)],
    ids=["opt-in header route", "wildcard header rule"],
)
def test_a_header_route_to_the_idle_colour_does_not_freeze_it_but_a_wildcard_rule_does(aws, pack, header_values, frozen):
    """The header route (an exact `X-Canary: always`) is opt-in test traffic: a release to the idle colour
    behind it passes. A rule any request matches (`User-Agent: *`) is users' traffic: the colour is live."""
    alb = live_alb(aws, step=0)  # green idle
    aws.client("elbv2").create_rule(
        ListenerArn=alb.production_listener, Priority=10,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary" if not frozen else "User-Agent", "Values": header_values}}],
        Actions=[{"Type": "forward", "TargetGroupArn": alb.target_groups["green"]}],
    )
    live = LiveEcs(aws, alb)
    new_td = live.register("green", NEW)
    result = analyze(pack, service_props(live, "green", task_definition=new_td, **{"bluegreen:colors.green.image": NEW}))
    if frozen:
        refused(result, "workload-frozen-while-live", "green")
    else:
        passes(result)
