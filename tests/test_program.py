"""The real program (`__main__.py` + the real stack files) under Pulumi's mock runtime."""

from functools import lru_cache

import pytest

from rollout.rules import COLORS, weights_for
from rollout.simulate import SIM_EPOCH, diff_resources, load_stack_file, run_program

STACKS = ("staging", "production")
LISTENER = "aws:lb/listener:Listener"
TG = "aws:lb/targetGroup:TargetGroup"
SG = "aws:ec2/securityGroup:SecurityGroup"
SERVICE = "aws:ecs/service:Service"


@lru_cache(maxsize=None)
def sim(stack, step=None, stable=None, **extra):
    overrides = {}
    if step is not None:
        overrides["bluegreen:rollout.step"] = step
    if stable is not None:
        overrides["bluegreen:rollout.stable"] = stable
    for k, v in extra.items():
        overrides[k.replace("__", ".").replace("_COLON_", ":")] = v
    return run_program(stack, overrides=overrides)


def forward_weights(simulation):
    """colour -> weight of the production listener, colours resolved through the target groups' tags."""
    arn_color = {r.outputs["arn"]: r.inputs["tags"]["bluegreen:color"] for r in simulation.by_type(TG)}
    listener = simulation.one(LISTENER, "-production")
    (action,) = listener.inputs["defaultActions"]
    assert action["type"] == "forward", f"{listener.urn}: {action}"
    return {arn_color[tg["arn"]]: tg["weight"] for tg in action["forward"]["targetGroups"]}


def steps_of(stack):
    return load_stack_file(stack)["bluegreen:rollout"]["steps"]


@pytest.mark.parametrize("stack", STACKS)
def test_listener_weights_at_every_step(stack):
    steps = steps_of(stack)
    for step in range(len(steps) + 1):
        s = sim(stack, step)
        got = forward_weights(s)
        want = weights_for("blue", steps, step)
        assert got == want, f"{stack} step {step}: listener weights {got}, want {want}"
        assert all(float(w).is_integer() for w in got.values()), f"{stack} step {step}: non-integer weights {got}"
        assert s.outputs["weights"] == want and s.outputs["step"] == step


@pytest.mark.parametrize("stack", STACKS)
def test_each_step_changes_exactly_the_production_listener(stack):
    n = len(steps_of(stack))
    for step in range(n):
        d = diff_resources(sim(stack, step), sim(stack, step + 1))
        assert d["create"] == [] and d["delete"] == [], f"{stack} {step}->{step + 1}: {d}"
        assert len(d["update"]) == 1 and d["update"][0].endswith("::web-traffic-production"), f"{stack} {step}->{step + 1}: {d}"


@pytest.mark.parametrize("stack", STACKS)
def test_a_rollback_changes_exactly_the_production_listener(stack):
    n = len(steps_of(stack))
    for frm in range(1, n + 1):
        for to in range(frm):
            d = diff_resources(sim(stack, frm), sim(stack, to))
            assert d["update"] == [d["update"][0]] and d["update"][0].endswith("::web-traffic-production"), f"{stack} {frm}->{to}: {d}"
            assert not d["create"] and not d["delete"]


@pytest.mark.parametrize("stack", STACKS)
def test_finish_moves_no_traffic(stack):
    n = len(steps_of(stack))
    before, after = sim(stack, n), sim(stack, 0, "green")
    assert forward_weights(before) == forward_weights(after) == {"blue": 0, "green": 100}
    before_action = before.one(LISTENER, "-production").inputs["defaultActions"]
    after_action = after.one(LISTENER, "-production").inputs["defaultActions"]
    assert before_action == after_action, "finish must leave the forward action untouched"
    d = diff_resources(before, after)
    assert not d["create"] and not d["delete"]
    assert not any("Service" in u or "TaskDefinition" in u for u in d["update"]), d
    # what does change: the stable tag, and the test listener now points at the new candidate (blue)
    tags = after.one(LISTENER, "-production").inputs["tags"]
    assert tags["bluegreen:stable"] == "green"
    test_tg = after.one(LISTENER, "-test").inputs["defaultActions"][0]["targetGroupArn"]
    assert test_tg == after.one(TG, "-tg-blue").outputs["arn"]


@pytest.mark.parametrize("stack", STACKS)
def test_target_groups_tagged_with_health_check(stack):
    s = sim(stack)
    port, path = {"staging": (80, "/"), "production": (8080, "/healthz")}[stack]  # staging runs stock nginx
    for color in COLORS:
        tg = s.one(TG, f"-tg-{color}")
        assert tg.inputs["tags"]["bluegreen:color"] == color, tg.urn
        hc = tg.inputs["healthCheck"]
        assert hc["enabled"] is True and hc["path"] == path and hc["matcher"] == "200", f"{tg.urn}: {hc}"
        assert tg.inputs["targetType"] == "ip" and tg.inputs["port"] == port, tg.urn


def test_production_is_https_with_redirect_and_modern_tls():
    s = sim("production")
    prod = s.one(LISTENER, "-production").inputs
    assert (prod["port"], prod["protocol"]) == (443, "HTTPS")
    assert prod["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-1-2") and prod["certificateArn"].startswith("arn:aws:acm:")
    redirect = s.one(LISTENER, "-http-redirect").inputs
    assert redirect["port"] == 80 and redirect["defaultActions"][0]["redirect"] == {
        "port": "443",
        "protocol": "HTTPS",
        "statusCode": "HTTP_301",
    }
    alb = s.by_type("aws:lb/loadBalancer:LoadBalancer")[0].inputs
    assert alb["enableDeletionProtection"] is True and alb["dropInvalidHeaderFields"] is True
    assert alb["accessLogs"]["enabled"] is True and alb["accessLogs"]["bucket"] == "web-alb-access-logs"


def test_staging_without_certificate_is_plain_http_without_redirect():
    s = sim("staging")
    prod = s.one(LISTENER, "-production").inputs
    assert (prod["port"], prod["protocol"]) == (80, "HTTP") and "certificateArn" not in prod
    assert [r for r in s.by_type(LISTENER) if r.name.endswith("-http-redirect")] == []
    assert len(s.by_type("aws:ec2/vpc:Vpc")) == 1 and len(s.by_type("aws:ec2/subnet:Subnet")) == 2


@pytest.mark.parametrize("stack", STACKS)
def test_test_listener_sends_everything_to_the_candidate(stack):
    for stable, candidate in (("blue", "green"), ("green", "blue")):
        s = sim(stack, 0, stable)
        test = s.one(LISTENER, "-test").inputs
        assert test["port"] == 8443
        assert test["defaultActions"] == [{"type": "forward", "targetGroupArn": s.one(TG, f"-tg-{candidate}").outputs["arn"]}]


def test_header_route_goes_to_the_candidate():
    s = sim("production")
    rule = s.one("aws:lb/listenerRule:ListenerRule", "-header-route").inputs
    assert rule["conditions"][0]["httpHeader"] == {"httpHeaderName": "X-Canary", "values": ["always"]}
    assert rule["actions"][0]["targetGroupArn"] == s.one(TG, "-tg-green").outputs["arn"]
    assert rule["listenerArn"] == s.one(LISTENER, "-production").outputs["arn"]


@pytest.mark.parametrize("stack", STACKS)
def test_services_admit_only_the_alb(stack):
    s = sim(stack)
    alb_sg = s.one(SG, "-alb-sg")
    for color in COLORS:
        sg = s.one(SG, f"-{color}-sg").inputs
        assert len(sg["ingress"]) == 1, sg["ingress"]
        rule = sg["ingress"][0]
        assert rule["securityGroups"] == [alb_sg.outputs["id"] if "id" in alb_sg.outputs else alb_sg.id]
        port = {"staging": 80, "production": 8080}[stack]  # the stack file's service.port
        assert not rule.get("cidrBlocks") and rule["fromPort"] == rule["toPort"] == port
        svc = s.one(SERVICE, f"-{color}-service").inputs
        assert svc["networkConfiguration"]["securityGroups"] == [s.one(SG, f"-{color}-sg").id]
        assert svc["loadBalancers"][0]["targetGroupArn"] == s.one(TG, f"-tg-{color}").outputs["arn"]


def test_alb_security_group_opens_production_and_test_ports_only():
    s = sim("production")
    ingress = s.one(SG, "-alb-sg").inputs["ingress"]
    ports = sorted((r["fromPort"], tuple(r["cidrBlocks"])) for r in ingress)
    assert ports == [(80, ("0.0.0.0/0",)), (443, ("0.0.0.0/0",)), (8443, ("10.0.0.0/8",))]


@pytest.mark.parametrize("stack", STACKS)
def test_each_colour_runs_its_image(stack):
    s = sim(stack, 0, None, bluegreen_COLON_colors__green__image="example.com/web:2.0")
    for color, image in (("blue", load_stack_file(stack)["bluegreen:colors"]["blue"]["image"]), ("green", "example.com/web:2.0")):
        td = s.one("aws:ecs/taskDefinition:TaskDefinition", f"-{color}-task").inputs
        assert f'"image": "{image}"' in td["containerDefinitions"], td["containerDefinitions"]
    assert s.outputs["images"]["green"] == "example.com/web:2.0"


def test_idle_policy_scales_the_parked_colour_only():
    assert sim("staging").one(SERVICE, "-green-service").inputs["desiredCount"] == 1  # not parked: full size
    parked = sim("staging", 0, None, bluegreen_COLON_idle__parked=True)  # staging policy: zero
    assert parked.one(SERVICE, "-green-service").inputs["desiredCount"] == 0
    assert parked.one(SERVICE, "-blue-service").inputs["desiredCount"] == 1
    warm = sim("production", 0, None, bluegreen_COLON_idle__parked=True)  # production policy: warm
    assert warm.one(SERVICE, "-green-service").inputs["desiredCount"] == 3
    scaled = sim("production", 0, None, bluegreen_COLON_idle__parked=True, bluegreen_COLON_idle__policy="scale")
    assert scaled.one(SERVICE, "-green-service").inputs["desiredCount"] == 1


def test_stack_outputs():
    o = sim("production", 2).outputs
    assert o["stable"] == "blue" and o["candidate"] == "green" and o["step"] == 2
    assert o["weights"] == {"blue": 75, "green": 25}
    assert o["productionUrl"].startswith("https://") and o["testUrl"].endswith(":8443")
    assert set(o["targetGroupArns"]) == {"blue", "green"} and o["listenerArn"].startswith("arn:aws:elasticloadbalancing:")
    assert o["albDnsName"] in o["productionUrl"]


def test_stickiness_only_while_traffic_is_split():
    def sticky(step):
        return sim("production", step).one(LISTENER, "-production").inputs["defaultActions"][0]["forward"]["stickiness"]["enabled"]

    assert [sticky(s) for s in range(6)] == [False, True, True, True, True, False]


_ELBV2_TAG = None


def _elbv2_tag_rules():
    """ELBv2's own tag key/value rules, from botocore's service model (what the real API enforces)."""
    global _ELBV2_TAG
    if _ELBV2_TAG is None:
        import botocore.session
        import regex  # noqa: F401  (\\p{L} classes need the regex module)

        m = botocore.session.get_session().get_service_model("elbv2")
        _ELBV2_TAG = (m.shape_for("TagKey").metadata, m.shape_for("TagValue").metadata)
    return _ELBV2_TAG


@pytest.mark.parametrize("stack", STACKS)
def test_every_tag_is_one_the_elbv2_api_accepts(stack):
    import regex

    key_rule, value_rule = _elbv2_tag_rules()
    s = sim(stack, 3)
    for r in s.resources:
        if not r.type.startswith("aws:lb/"):
            continue
        for k, v in (r.inputs.get("tags") or {}).items():
            assert regex.fullmatch(key_rule["pattern"], k) and len(k) <= key_rule["max"], f"{r.urn}: tag key {k!r}"
            assert regex.fullmatch(value_rule["pattern"], v) and len(v) <= value_rule["max"], f"{r.urn}: tag {k}={v!r} is not a valid ELBv2 tag value"


def test_bake_stamp_kept_while_weights_stay_and_restarted_when_they_move():
    prev = "2025-12-31T23:00:00Z blue=75 green=25"
    same = run_program("production", overrides={"bluegreen:rollout.step": 2}, previous_outputs={"weightsSince": prev})
    moved = run_program("production", overrides={"bluegreen:rollout.step": 3}, previous_outputs={"weightsSince": prev})
    first = run_program("production", overrides={"bluegreen:rollout.step": 0}, previous_outputs={})
    tag = lambda s: s.one(LISTENER, "-production").inputs["tags"]["bluegreen:weights-since"]  # noqa: E731
    assert tag(same) == prev and same.outputs["weightsSince"] == prev
    assert tag(moved) == "2026-01-01T00:00:00Z blue=50 green=50"
    assert tag(first) == "2026-01-01T00:00:00Z blue=100 green=0"
    # a finish moves no traffic, so it keeps the bake clock too
    fin_prev = "2025-12-31T22:00:00Z blue=0 green=100"
    fin = run_program("production", overrides={"bluegreen:rollout.step": 0, "bluegreen:rollout.stable": "green"}, previous_outputs={"weightsSince": fin_prev})
    assert tag(fin) == fin_prev
    # the stamp is read from the live listener, never from the stack's own outputs (issue 10 item 8)
    assert not [r for r in same.resources if r.type == "pulumi:pulumi:StackReference"]


def test_preview_and_up_register_the_same_inputs_so_a_saved_plan_applies():
    """`preview --save-plan` then `up --plan`: every input known at preview must be what `up` sends.

    Weights unchanged: the stamp is the live one at both. Weights moving: the new stamp is "now",
    unknown at preview (None here) -- a plan accepts any value for an unknown -- and known at `up`.
    """
    prev = "2025-12-31T23:00:00Z blue=75 green=25"
    for step, moves in ((2, False), (3, True)):
        over = {"bluegreen:rollout.step": step}
        preview = run_program("production", overrides=over, previous_outputs={"weightsSince": prev}, preview=True, now=SIM_EPOCH)
        up = run_program("production", overrides=over, previous_outputs={"weightsSince": prev}, now=SIM_EPOCH + 3600)
        p_tags = preview.one(LISTENER, "-production").inputs["tags"]
        u_tags = up.one(LISTENER, "-production").inputs["tags"]
        assert (p_tags.get("bluegreen:weights-since") is None) == moves, p_tags
        if not moves:
            assert p_tags["bluegreen:weights-since"] == u_tags["bluegreen:weights-since"] == prev
        for r in preview.custom:
            after = up.one(r.type, r.name).inputs
            for key, value in r.inputs.items():
                if value is not None and key != "tags":
                    assert after.get(key) == value, f"{r.urn}: {key} differs between preview and up"


def test_the_program_clock_ignores_the_environment(monkeypatch):
    """BLUEGREEN_NOW (the old simulation override) moves nothing: a real run stamps time.time()."""
    import time as _time

    import rollout.desired as desired

    monkeypatch.setenv("BLUEGREEN_NOW", "0")
    assert desired.SIMULATED_NOW is None
    assert abs(desired.stamp_clock() - _time.time()) < 5


def test_only_the_simulation_harness_can_pin_the_clock():
    """The engine runs the program in a fresh interpreter: there the pin is None whatever the
    environment says, and the only code that sets it is rollout.simulate (in-process, then restored)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import rollout.desired as desired

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "BLUEGREEN_NOW": "0", "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", "import time, rollout.desired as d; print(d.SIMULATED_NOW, abs(d.stamp_clock() - time.time()) < 5)"],
        env=env, cwd=root, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out == ["None", "True"], out
    setters = [
        p.relative_to(root).as_posix()
        for p in [*root.glob("*.py"), *root.glob("rollout/*.py"), *root.glob("components/*.py"), *root.glob("policy/*.py")]
        if "SIMULATED_NOW =" in p.read_text().replace("desired.SIMULATED_NOW =", "SIMULATED_NOW =")
        and p.name != "desired.py"
    ]
    assert setters == ["rollout/simulate.py"], setters
    run_program("production", overrides={"bluegreen:rollout.step": 1})
    assert desired.SIMULATED_NOW is None  # restored after the simulation
