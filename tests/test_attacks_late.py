"""Attacks on the newest config keys and the promises made with them, as a user editing only the stack file would.

`bluegreen:aborted` (the reflex's abort marker held in git), `bluegreen:autopilot.*` and the synthetic-load keys
`bluegreen:probe.syntheticPerMinute` / `probe.syntheticPath`: each bad value must be refused with a one-line error
naming the key before any resource is registered (the real program under the mock runtime, the real stack file);
the CLI must print no traceback for them; every value the validator accepts must give AWS something it accepts;
and a rollback must pass the pack even when the live Kubernetes record is garbage.
"""

from __future__ import annotations

import re

import pulumi
import pytest
import yaml

from rollout.config import parse_stack_config
from rollout.simulate import RecordingMocks, load_stack_file, run_program, set_path
from tests.test_cli import expect, invoke, make_project, no_pulumi  # noqa: F401 - fixture

# --------------------------------------------------------------------------- 1. refused before any resource

LONG = "x" * 300
ELB_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{0,256}$")  # ELBv2 tag values: letters, digits, spaces, _ . : / = + - @; 256 at most

CASES = [
    # bluegreen:aborted
    ({"bluegreen:aborted": 42}, "bluegreen:aborted", "abort marker text"),
    ({"bluegreen:aborted": ["probes-failed"]}, "bluegreen:aborted", "abort marker text"),
    ({"bluegreen:aborted": LONG}, "bluegreen:aborted", "1..256"),
    ({"bluegreen:aborted": "probes-failed\ngreen=25"}, "bluegreen:aborted", "abort marker text"),
    ({"bluegreen:aborted": "probes failed!"}, "bluegreen:aborted", "abort marker text"),
    ({"bluegreen:aborted": "green=25, blue=75"}, "bluegreen:aborted", "abort marker text"),
    ({"bluegreen:aborted": "2026-11-23T16:05:03Z probes-failed green=25", "bluegreen:rollout.step": 2}, "bluegreen:aborted", "step 0"),
    # bluegreen:autopilot
    ({"bluegreen:autopilot.approveAbove": 50.5}, "bluegreen:autopilot.approveAbove", "must be an integer 0..100"),
    ({"bluegreen:autopilot.maxBakeMinutes": 30.0}, "bluegreen:autopilot.maxBakeMinutes", "must be an integer 1..1440"),
    ({"bluegreen:autopilot.enabled": "true"}, "bluegreen:autopilot.enabled", "true | false"),
    ({"bluegreen:autopilot.enabled": 1}, "bluegreen:autopilot.enabled", "true | false"),
    ({"bluegreen:autopilot.minBakeMinutes": -5}, "bluegreen:autopilot.minBakeMinutes", "between 0 and 1440"),
    ({"bluegreen:autopilot.maxBakeMinutes": float("nan")}, "bluegreen:autopilot.maxBakeMinutes", "must be an integer"),
    ({"bluegreen:autopilot.minBakeMinutes": "NaN"}, "bluegreen:autopilot.minBakeMinutes", "must be an integer"),
    ({"bluegreen:autopilot.maxBakeMinutes": float("inf")}, "bluegreen:autopilot.maxBakeMinutes", "must be an integer"),
    ({"bluegreen:autopilot.approvAbove": 50}, "bluegreen:autopilot.approvAbove", "did you mean 'approveAbove'"),
    ({"bluegreen:autopilot": "on"}, "bluegreen:autopilot", "must be an object"),
    ({"bluegreen:autopilot.minBakeMinutes": 90, "bluegreen:autopilot.maxBakeMinutes": 60}, "bluegreen:autopilot.minBakeMinutes", "at most maxBakeMinutes"),
    # bluegreen:probe synthetic load
    ({"bluegreen:probe.syntheticPerMinute": 1001}, "bluegreen:probe.syntheticPerMinute", "between 0 and 1000"),
    ({"bluegreen:probe.syntheticPerMinute": -1}, "bluegreen:probe.syntheticPerMinute", "between 0 and 1000"),
    ({"bluegreen:probe.syntheticPerMinute": 2.5}, "bluegreen:probe.syntheticPerMinute", "must be an integer 0..1000"),
    ({"bluegreen:probe.syntheticPerMinute": "300"}, "bluegreen:probe.syntheticPerMinute", "must be an integer 0..1000"),
    ({"bluegreen:probe.syntheticPerMinute": True}, "bluegreen:probe.syntheticPerMinute", "must be an integer 0..1000"),
    ({"bluegreen:probe.syntheticPath": "api/ping"}, "bluegreen:probe.syntheticPath", "absolute URL path"),
    ({"bluegreen:probe.syntheticPath": "/api ping"}, "bluegreen:probe.syntheticPath", "absolute URL path"),
    ({"bluegreen:probe.syntheticPath": 5}, "bluegreen:probe.syntheticPath", "non-empty string"),
    ({"bluegreen:probe.syntheticPerMinute": 300, "bluegreen:probe.enabled": False}, "bluegreen:probe.syntheticPerMinute", "bluegreen:probe.enabled is false"),
]


def _ids(case) -> str:
    return ",".join(f"{k.split(':', 1)[1]}={v!r}" for k, v in case[0].items())[:70]


@pytest.mark.parametrize("edits, key, words", CASES, ids=[_ids(c) for c in CASES])
def test_a_bad_new_key_is_one_line_naming_the_key_before_any_resource(edits, key, words):
    cfg = load_stack_file("production")
    for path, value in edits.items():
        cfg = set_path(cfg, path, value)
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program("production", cfg, mocks=mocks)
    message = str(err.value)
    assert f"{key}:" in message and words in message, message
    assert "Traceback" not in message, message
    line = next(li for li in message.splitlines() if f"{key}:" in li)
    assert words in line, f"the error is not one line: {message!r}"
    assert [(a.typ, a.name) for a, _ in mocks.records] == [], f"{key}: resources registered before the error"


def test_the_aborted_marker_is_refused_at_every_step_but_zero():
    cfg = set_path(load_stack_file("production"), "bluegreen:aborted", "2026-11-23T16:05:03Z probes-failed green=25")
    for step in range(1, 6):
        with pytest.raises(pulumi.RunError, match=r"bluegreen:aborted: is set"):
            run_program("production", set_path(cfg, "bluegreen:rollout.step", step), mocks=RecordingMocks())


@pytest.mark.parametrize("path", ["/ping?probe=synthetic", "/v1/ping"])
def test_a_synthetic_path_the_validator_accepts_reaches_the_function_unchanged(path):
    s = run_program("production", overrides={"bluegreen:probe": {"syntheticPerMinute": 300, "syntheticPath": path}})
    env = s.one("aws:lambda/function:Function", "-probe-fn").inputs["environment"]["variables"]
    from rollout.probe_runner import ProbeSettings

    back = ProbeSettings.from_env(env)
    assert (back.synthetic_per_minute, back.synthetic_path) == (300, path), env


# --------------------------------------------------------------------------- 3. what AWS is handed


def _raw(cfg: dict) -> dict:
    return {k.split(":", 1)[1]: v for k, v in cfg.items() if k.startswith("bluegreen:")}


def test_the_longest_aborted_marker_the_validator_accepts_leaves_every_tag_and_the_header_rule_valid():
    marker = "2026-11-23T16:05:03Z probes-failed green=25 " + "a" * (256 - 44)
    assert len(marker) == 256
    cfg = set_path(load_stack_file("production"), "bluegreen:aborted", marker)
    assert parse_stack_config(_raw(cfg)).aborted == marker
    s = run_program("production", cfg)
    rules = s.by_type("aws:lb/listenerRule:ListenerRule")
    header = [r for r in rules if r.name.endswith("-header-route")]
    assert header, [r.name for r in rules]
    stable_tg = s.one("aws:lb/targetGroup:TargetGroup", "-blue")
    for rule in header:
        assert rule.inputs["actions"][0]["targetGroupArn"] == stable_tg.outputs["arn"], rule.inputs["actions"]
        assert 1 <= rule.inputs["priority"] <= 50000
        cond = rule.inputs["conditions"][0]["httpHeader"]
        assert re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}", cond["httpHeaderName"]), cond
        assert all(len(v) <= 128 for v in cond["values"]), cond
    for r in s.resources:
        for k, v in (r.inputs.get("tags") or {}).items():
            assert len(k) <= 128 and isinstance(v, str) and ELB_TAG_VALUE.match(v), f"{r.name}: tag {k}={v!r}"


def _env_bytes(env: dict) -> int:
    from rollout.probe_path import environment_size

    return environment_size(env)  # as Lambda measures it: one compact JSON object


@pytest.mark.parametrize("per_minute", [1, 1000])
def test_synthetic_load_keeps_the_function_env_and_egress_rule_valid(per_minute):
    s = run_program("production", overrides={"bluegreen:probe": {"syntheticPerMinute": per_minute, "syntheticPath": "/ping?from=bluegreen"}})
    env = s.one("aws:lambda/function:Function", "-probe-fn").inputs["environment"]["variables"]
    assert all(re.fullmatch(r"[a-zA-Z]([a-zA-Z0-9_])+", k) for k in env), env
    assert all(isinstance(v, str) for v in env.values()), env
    assert _env_bytes(env) <= 4096, env  # Lambda: all environment variables together at most 4 KB
    sg = s.one("aws:ec2/securityGroup:SecurityGroup", "-probe-sg")
    port = load_stack_file("production")["bluegreen:service"]["port"]
    egress = sg.inputs["egress"]
    assert any(e["fromPort"] == port == e["toPort"] and e["protocol"] == "tcp" for e in egress), egress


SG_RULE_DESCRIPTION = re.compile(r"[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}")  # EC2: a security group rule's description


def test_with_synthetic_load_every_security_group_rule_description_is_one_ec2_accepts():
    s = run_program("production", overrides={"bluegreen:probe": {"syntheticPerMinute": 300}})
    sgs = s.by_type("aws:ec2/securityGroup:SecurityGroup")
    rules = [(sg.name, r) for sg in sgs for r in [*(sg.inputs.get("ingress") or []), *(sg.inputs.get("egress") or [])]]
    rules += [(r.name, r.inputs) for r in s.resources if r.type in ("aws:ec2/securityGroupRule:SecurityGroupRule",
                                                                    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                                                                    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
    assert any("synthetic" in (r.get("description") or "") for _, r in rules), rules  # the synthetic-load rule is among them
    bad = [(name, r.get("description")) for name, r in rules if not SG_RULE_DESCRIPTION.fullmatch(r.get("description") or "")]
    assert bad == [], bad


def test_the_longest_synthetic_path_the_validator_accepts_fits_the_lambda_environment():
    """Lambda measures all variables together as one JSON object (its error quotes the "String measured") against
    4 KB: the longest path the validator accepts, next to the longest value of every other variable, fits."""
    from rollout.probe_path import LAMBDA_ENVIRONMENT_LIMIT, LONGEST_OTHER_VALUES, SYNTHETIC_PATH_MAX_LENGTH, environment_size
    from rollout.probe_runner import ProbeSettings

    longest = "/" + "p" * (SYNTHETIC_PATH_MAX_LENGTH - 1)
    assert _accepted(longest) and not _accepted(longest + "p") and not _accepted("/" + "p" * 4100)
    cfg = set_path(set_path(load_stack_file("production"), "bluegreen:probe.syntheticPerMinute", 60), "bluegreen:probe.syntheticPath", longest)
    s = run_program("production", cfg)
    env = s.one("aws:lambda/function:Function", "-probe-fn").inputs["environment"]["variables"]
    assert env["BLUEGREEN_SYNTHETIC_PATH"] == longest and environment_size(env) <= LAMBDA_ENVIRONMENT_LIMIT, environment_size(env)
    # every other variable at the longest value the program can give it (the names are the function's own)
    assert set(LONGEST_OTHER_VALUES) == set(ProbeSettings.ENV.values()) - {"BLUEGREEN_SYNTHETIC_PATH"}
    worst = ProbeSettings(stack="s" * 100, load_balancer_arn=LONGEST_OTHER_VALUES["BLUEGREEN_LOAD_BALANCER_ARN"], hostname="h" * 253,
                          probes=50, timeout_s=10.0, expected_status=599, synthetic_per_minute=1000, synthetic_path=longest,
                          synthetic_representative=True).to_env()
    assert set(worst) == set(ProbeSettings.ENV.values()) and all(len(worst[k]) == len(v) for k, v in LONGEST_OTHER_VALUES.items()), worst
    assert environment_size(worst) <= LAMBDA_ENVIRONMENT_LIMIT, environment_size(worst)
    assert environment_size({**worst, "BLUEGREEN_SYNTHETIC_PATH": longest + "p" * 1400}) > LAMBDA_ENVIRONMENT_LIMIT  # the measure bites


# --------------------------------------------------------------------------- 2. the CLI prints no traceback


@pytest.mark.parametrize("bad", ["x" * 300, "probes failed!\nsecond line", "green=25, blue=75"])
def test_rollback_with_a_bad_aborted_marker_leaves_a_stack_file_that_deploys(tmp_path, no_pulumi, bad):
    proj = make_project(tmp_path, step=3)
    r = invoke("--project-dir", str(proj), "rollback", "--stack", "production", "--to-step", "0", "--config-only", "--yes",
               "--aborted", bad)
    cfg = yaml.safe_load((proj / "Pulumi.production.yaml").read_text())["config"]
    if r.exit_code != 0:  # refused the marker with a one-line error naming it, the stack file untouched
        assert "aborted" in r.output and cfg["bluegreen:rollout"]["step"] == 3, r.output
        return
    assert cfg["bluegreen:rollout"]["step"] == 0, cfg["bluegreen:rollout"]
    parse_stack_config(_raw(cfg))  # the stack file the rollback deploys must load


@pytest.mark.parametrize("marker", ["2026-11-23T16:05:03Z probes-failed green=25", "a" * 256])
def test_rollback_with_a_valid_aborted_marker_records_it_and_the_stack_loads(tmp_path, no_pulumi, marker):
    proj = make_project(tmp_path, step=3)
    r = invoke("--project-dir", str(proj), "rollback", "--stack", "production", "--to-step", "0", "--config-only", "--yes",
               "--aborted", marker)
    expect(r, 0, "bluegreen:aborted")
    cfg = yaml.safe_load((proj / "Pulumi.production.yaml").read_text())["config"]
    assert cfg["bluegreen:rollout"]["step"] == 0 and cfg["bluegreen:aborted"] == marker, cfg
    assert parse_stack_config(_raw(cfg)).aborted == marker


@pytest.mark.parametrize(
    "autopilot, key",
    [
        ({"enabled": "yes"}, "bluegreen:autopilot.enabled"),
        ({"enabled": True, "approveAbove": 12.5}, "bluegreen:autopilot.approveAbove"),
        ({"enabled": True, "maxBakeMinutes": -1}, "bluegreen:autopilot.maxBakeMinutes"),
        ({"enabled": True, "bake": 5}, "bluegreen:autopilot.bake"),
        ("on", "bluegreen:autopilot"),
    ],
)
def test_autopilot_with_a_malformed_section_is_a_one_line_usage_error(tmp_path, no_pulumi, autopilot, key):
    proj = make_project(tmp_path, step=2, autopilot=autopilot)
    r = invoke("--project-dir", str(proj), "autopilot", "--stack", "production")
    assert r.exit_code == 2, r.output
    lines = [li for li in r.output.splitlines() if key in li]
    assert len(lines) == 1 and "Traceback" not in r.output, r.output


def test_status_with_the_abort_held_says_so(aws, tmp_path, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=0)
    marker = "2026-11-23T16:05:03Z probes-failed green=25"
    proj = make_project(tmp_path, step=0, aborted=marker)
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    expect(r, 0, "held", marker, "stays on blue")


def test_status_with_a_bad_aborted_value_is_a_usage_error_naming_it(tmp_path, no_pulumi):
    proj = make_project(tmp_path, step=0, aborted="probes failed!")
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/0123456789abcdef")
    expect(r, 2, "bluegreen:aborted")


# --------------------------------------------------------------------------- 4. rollbacks pass whatever the live record says

from tests.test_policy_workload import elb_only_pack, hook, pack, passes  # noqa: E402, F401 - fixtures
from tests.test_policy_workload_k8s import K8S_SERVICE, TGB, deployment, judge, judge_as, k8s_record, listener, live_k8s, route  # noqa: E402


def _garbled(record: str, group: str, entries: str) -> str:
    """`record` with `group`'s entries (up to the next group) replaced by `entries`."""
    tokens = record.split()
    start = tokens.index(group) + 1
    end = next((i for i in range(start, len(tokens)) if tokens[i] in ("svc", "tgb", "id")), len(tokens))
    return " ".join([*tokens[:start], *entries.split(), *tokens[end:]]).strip()


GARBLED = [
    ("id", "blue=NOT-A-DIGEST green=??"),
    ("id", ""),
    ("id", "blue=cfd740808aac blue=cfd740808aac"),
    ("svc", "blue= green=zz"),
    ("svc", "purple=05c9d7fc849a green=6a8ce21aca7d"),
]


@pytest.mark.parametrize("group, entries", GARBLED, ids=[f"{g}:{e or 'empty'}" for g, e in GARBLED])
def test_a_step_0_rollback_passes_with_a_garbled_kubernetes_record_on_the_live_listener(aws, pack, group, entries):
    record = _garbled(k8s_record(**{"bluegreen:rollout.step": 3}), group, entries)
    assert record.startswith("pod ") and f" {group}" in record and len(record) <= 256, record
    from rollout.workload import parse_workload_record

    assert parse_workload_record(record) is None, record  # the attack: the pack cannot read the record
    alb = live_k8s(aws, step=3, since_minutes=1, record=record)
    back = listener(pack, alb, 0)
    passes(back)
    for color in ("blue", "green"):
        passes(judge(pack, deployment(alb, color, **{"bluegreen:rollout.step": 0})))
        for kind in (K8S_SERVICE, TGB):
            passes(judge_as(pack, kind, route(alb, color, kind, **{"bluegreen:rollout.step": 0})))


# --------------------------------------------------------------------------- the reflex's own marker is one the validator accepts

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rollout.reflex import REASON_JUDGE, REASONS, abort_value  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(when=st.integers(0, 4102444800), code=st.sampled_from(sorted({*REASONS, REASON_JUDGE})), colour=st.sampled_from(["blue", "green", None]),
       weight=st.integers(0, 100), e_value=st.one_of(st.none(), st.floats(allow_nan=True)))
def test_every_marker_the_reflex_writes_can_be_committed_as_bluegreen_aborted(when, code, colour, weight, e_value):
    marker = abort_value(when, code, colour, weight, e_value)
    cfg = set_path(load_stack_file("production"), "bluegreen:aborted", marker)
    assert parse_stack_config(_raw(cfg)).aborted == marker


# --------------------------------------------------------------------------- a synthetic path the validator accepts can be requested


def _accepted(path: str) -> bool:
    from rollout.errors import ConfigError

    cfg = set_path(load_stack_file("production"), "bluegreen:probe.syntheticPerMinute", 60)
    try:
        parse_stack_config(_raw(set_path(cfg, "bluegreen:probe.syntheticPath", path)))
    except ConfigError as e:
        assert e.key == "bluegreen:probe.syntheticPath" and "\n" not in str(e), str(e)
        return False
    return True


def _healthy_target_answers(url: str, path: str) -> str:
    from urllib.parse import urlsplit

    from rollout.synthetic_load import _synthetic_request

    u = urlsplit(url)
    return _synthetic_request(u.hostname, u.port, path, "canary.example.com", 5.0)


@pytest.mark.parametrize("path", ["/ping?from=bluegreen", "/v1/ping", "/ping#frag"])
def test_a_plain_synthetic_path_reaches_a_healthy_target(healthy_url, path):
    assert _accepted(path)
    assert _healthy_target_answers(healthy_url, path) == "", path


@pytest.mark.parametrize("path", ["/ping\tx", "/ping\nx", "/pïng", "/ping\x7f", "/ping%zz", "/ping x", "/a\"b", "/a<b>"])
def test_a_synthetic_path_with_control_or_non_ascii_characters_is_refused_or_requestable(healthy_url, path):
    if _accepted(path):
        assert _healthy_target_answers(healthy_url, path) == "", f"{path!r}: a healthy target's synthetic request fails"
    assert not _accepted(path), path  # none of these is a URL path as it stands: refused, with the key named


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=st.text(st.characters(min_codepoint=0, max_codepoint=0x17F), max_size=40))
def test_every_synthetic_path_the_validator_accepts_reaches_a_healthy_target(healthy_url, tail):
    path = "/" + tail
    if _accepted(path):
        assert _healthy_target_answers(healthy_url, path) == "", f"{path!r}: accepted, but a healthy target's synthetic request fails"


def test_autopilot_without_a_load_balancer_arn_or_pulumi_is_a_usage_error(tmp_path, no_pulumi):
    proj = make_project(tmp_path, step=2, autopilot={"enabled": True})
    r = invoke("--project-dir", str(proj), "autopilot", "--stack", "production")
    assert r.exit_code in (1, 2) and "Traceback" not in r.output and r.output.strip(), r.output


def test_autopilot_against_an_unknown_load_balancer_never_advances_and_says_why(aws, tmp_path, no_pulumi):
    """Fails closed for a promotion: no advance, the stack file untouched, the reason named, no traceback."""
    proj = make_project(tmp_path, step=2, autopilot={"enabled": True})
    before = (proj / "Pulumi.production.yaml").read_text()
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/gone/0123456789abcdef"
    r = invoke("--project-dir", str(proj), "autopilot", "--stack", "production", "--load-balancer-arn", arn, "--commit")
    assert "advance" not in r.output.split(":")[0] and "not found" in r.output and arn in r.output, r.output
    assert (proj / "Pulumi.production.yaml").read_text() == before


@pytest.mark.parametrize("group, entries", GARBLED[:2], ids=[f"{g}:{e or 'empty'}" for g, e in GARBLED[:2]])  # every shape: test_an_unreadable_record_is_told_from_no_record
def test_a_garbled_live_record_does_not_let_a_live_colours_pods_change(aws, pack, group, entries):
    """The other half: what cannot be read fails closed for a change to a colour carrying traffic (the record was
    damaged out of band, e.g. a hand-edited tag; an absent record is the documented first-deploy case, not this).
    Both halves of the update refuse it, each in one line naming the tag, what it found and the way out."""
    from rollout.workload import TAG_WORKLOAD, read_record_tag
    from tests.test_policy_workload import NEW

    record = _garbled(k8s_record(**{"bluegreen:rollout.step": 3}), group, entries)
    alb = live_k8s(aws, step=3, since_minutes=1, record=record)
    edit = {"bluegreen:rollout.step": 3, "bluegreen:colors.blue.image": NEW}
    pods = judge(pack, deployment(alb, "blue", **edit))
    shift = listener(pack, alb, 3, since=None, **{"bluegreen:colors.blue.image": NEW})
    for result, policy in ((pods, "workload-frozen-while-live"), (shift, "workload-steady-during-shift")):
        found = [v for v in result.mandatory if v.policy == policy]
        assert found, (policy, result)
        description, _, message = found[0].message.rpartition("\n")  # the SDK puts the policy's description first
        assert description and "bluegreen:workload tag cannot be read" in message, found[0].message
        assert f"found {record[:30]!r}"[:-1] in message and read_record_tag({TAG_WORKLOAD: record}).why in message, message
        assert "bluegreen:breakGlass.reason" in message and "rollback" in message, message


def test_with_the_record_intact_the_same_edit_is_refused(aws, pack):
    """The control for the case above: the same edit against the record as the program writes it."""
    from tests.test_policy_workload import NEW

    alb = live_k8s(aws, step=3, since_minutes=1, record=k8s_record(**{"bluegreen:rollout.step": 3}))
    edit = {"bluegreen:rollout.step": 3, "bluegreen:colors.blue.image": NEW}
    results = [judge(pack, deployment(alb, "blue", **edit)), listener(pack, alb, 3, since=None, **{"bluegreen:colors.blue.image": NEW})]
    assert any(r.mandatory for r in results), results
