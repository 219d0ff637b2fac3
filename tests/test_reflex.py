"""The reflex against moto_server and real loopback candidates: each fault kind rolls production back to the
recorded stable target group with one modify_listener call and marks the listener; a healthy candidate is
never rolled back; AWS faults (throttled, denied, unreadable) are survived or reported, never raised."""

from __future__ import annotations

import json

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from rollout.reflex import (
    TAG_ABORTED,
    BreachCounter,
    Check,
    TAG_STABLE_TG,
    ListenerView,
    ReflexSettings,
    ReflexSetupError,
    abort_value,
    parse_abort,
    recorded_stable_target_group,
    run,
)
from tests.fixtures.candidate import CandidateServer

# ELBv2 tag values: letters, numbers, spaces and _ . : / = + - @ (AWS API reference, Tag.Value).
ELB_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{0,256}$")


@pytest.fixture
def candidate():
    server = CandidateServer()
    yield server
    server.stop()


class Rig:
    """A moto ALB: blue stable, green the candidate at `weight` %, the test listener on the candidate's port."""

    def __init__(self, aws, port: int, *, weight: int = 25):
        self.aws = aws
        self.alb = aws.build_alb(candidate_weight=weight)
        self.elbv2 = aws.client("elbv2")
        self.ec2 = aws.client("ec2")
        self.elbv2.modify_listener(ListenerArn=self.alb.test_listener, Port=port)
        self.notes: list[str] = []

    def settings(self, **kw) -> ReflexSettings:
        base = dict(
            stack="test", load_balancer_arn=self.alb.load_balancer, listener_arn=self.alb.production_listener,
            probes=4, timeout_s=0.5, interval_s=0.2, budget_s=3.0,
        )
        return ReflexSettings(**{**base, **kw})

    def run(self, elbv2=None, **kw):
        budget = kw.pop("budget_s", None)
        return run(
            self.settings(**kw), elbv2=elbv2 or self.elbv2, ec2=self.ec2, addresses=lambda: ["127.0.0.1"],
            notify=lambda text: self.notes.append(text) or "", budget_s=budget,
        )

    def weights(self) -> dict[str, int]:
        (ls,) = self.elbv2.describe_listeners(ListenerArns=[self.alb.production_listener])["Listeners"]
        groups = ls["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
        colour = {arn: c for c, arn in self.alb.target_groups.items()}
        return {colour[g["TargetGroupArn"]]: g["Weight"] for g in groups}

    def tags(self) -> dict[str, str]:
        (d,) = self.elbv2.describe_tags(ResourceArns=[self.alb.production_listener])["TagDescriptions"]
        return {t["Key"]: t["Value"] for t in d["Tags"]}

    def kill_targets(self, colour: str = "green") -> None:
        """The ALB's view of a dead colour: no target of its target group is healthy."""
        self.elbv2.deregister_targets(
            TargetGroupArn=self.alb.target_groups[colour], Targets=[{"Id": t, "Port": 8080} for t in self.alb.targets[colour]]
        )


def assert_rolled_back(rig: Rig, report, code: str) -> None:
    assert rig.weights() == {"blue": 100, "green": 0}, (rig.weights(), report.to_dict())
    marker = rig.tags().get(TAG_ABORTED)
    assert marker and ELB_TAG_VALUE.match(marker), marker
    parsed = parse_abort(marker)
    assert (parsed.code, parsed.colour, parsed.weight) == (code, "green", 25), marker
    assert report.rollback.moved and report.rollback.marked and report.breach.code == code, report.to_dict()


# --------------------------------------------------------------------------- each fault kind


@pytest.mark.parametrize("fault", ["dead", "5xx", "slow"])
def test_a_failing_candidate_is_rolled_back_to_stable_and_marked(aws, candidate, fault):
    rig = Rig(aws, candidate.port)
    candidate.fail(fault, delay_s=1.5)
    report = rig.run()
    assert_rolled_back(rig, report, "probes-failed")
    assert report.rollbacks == 1 and len(rig.notes) == 1 and "rolled back: probes-failed" in rig.notes[0], rig.notes
    assert {"timeout", "connect", "status"} & set(report.breach.detail.replace("(", " ").split()), report.breach.detail


def test_no_healthy_targets_is_a_breach_even_when_probes_pass(aws, candidate):
    rig = Rig(aws, candidate.port)
    rig.kill_targets()
    report = rig.run()
    assert_rolled_back(rig, report, "no-healthy-targets")
    assert "0/0 targets healthy" in report.breach.detail


def test_a_healthy_candidate_is_never_rolled_back(aws, candidate):
    rig = Rig(aws, candidate.port)
    report = rig.run(budget_s=3)
    assert report.active and report.checks >= 5 and report.rollback is None and report.breach is None, report.to_dict()
    assert rig.weights() == {"blue": 75, "green": 25} and TAG_ABORTED not in rig.tags() and rig.notes == []
    assert candidate.hits >= 5 * 4  # it really probed


def test_one_bad_check_is_not_a_breach(aws, candidate):
    """A single failed round between good ones resets: K consecutive bad checks are needed."""
    rig = Rig(aws, candidate.port)
    candidate.fail("5xx")
    calls = {"n": 0}
    real = rig.elbv2.describe_target_health

    def heal_after_first(**kw):  # the candidate recovers after the first check
        calls["n"] += 1
        if calls["n"] == 2:
            candidate._server.mode = "healthy"
        return real(**kw)

    rig.elbv2.describe_target_health = heal_after_first
    report = rig.run(budget_s=2)
    assert report.rollback is None and rig.weights() == {"blue": 75, "green": 25}, report.to_dict()


def test_idle_when_no_candidate_carries_traffic(aws, candidate):
    rig = Rig(aws, candidate.port, weight=0)
    candidate.fail("dead")
    report = rig.run(budget_s=5)
    assert report.checks == 1 and not report.active and report.rollback is None, report.to_dict()
    assert rig.weights() == {"blue": 100, "green": 0} and TAG_ABORTED not in rig.tags()


# --------------------------------------------------------------------------- the record


def test_the_stable_tg_record_wins_over_the_colour_tag(aws, candidate):
    """The record is the target group ARN in bluegreen:stable-tg; a colour tag that says otherwise loses."""
    rig = Rig(aws, candidate.port)
    green, blue = rig.alb.target_groups["green"], rig.alb.target_groups["blue"]
    rig.elbv2.add_tags(ResourceArns=[rig.alb.production_listener], Tags=[{"Key": TAG_STABLE_TG, "Value": green}])
    view = ListenerView(rig.alb.production_listener, ((blue, 75), (green, 25)), {}, rig.tags())
    assert recorded_stable_target_group(rig.elbv2, view) == green
    rig.kill_targets("blue")  # blue is the candidate now: it carries 75 % and has no healthy target
    report = rig.run()
    assert rig.weights() == {"blue": 0, "green": 100} and parse_abort(rig.tags()[TAG_ABORTED]).colour == "blue", report.to_dict()


def test_old_deployments_fall_back_to_the_colour_tag(aws, candidate):
    rig = Rig(aws, candidate.port)
    view = ListenerView(rig.alb.production_listener, tuple((a, 50) for a in rig.alb.target_groups.values()), {}, {"bluegreen:stable": "blue"})
    assert recorded_stable_target_group(rig.elbv2, view) == rig.alb.target_groups["blue"]
    assert recorded_stable_target_group(rig.elbv2, ListenerView(view.arn, view.groups, {}, {})) is None


def test_no_record_no_rollback(aws, candidate):
    """Without a record of stable the reflex cannot know where 'back' is: it never guesses."""
    rig = Rig(aws, candidate.port)
    rig.elbv2.remove_tags(ResourceArns=[rig.alb.production_listener], TagKeys=["bluegreen:stable"])
    candidate.fail("dead")
    report = rig.run(budget_s=1)
    assert report.rollback is None and rig.weights() == {"blue": 75, "green": 25}
    assert any("no stable target group recorded" in n for n in report.last_notes), report.last_notes


# --------------------------------------------------------------------------- AWS faults


def test_rolls_back_when_the_probe_reads_fail(aws, candidate, closed_endpoint):
    """EC2 unreachable (no probe round at all): the target-health signal still rolls back."""
    rig = Rig(aws, candidate.port)
    rig.ec2 = aws.client("ec2", endpoint_url=closed_endpoint)
    rig.kill_targets()
    report = run(rig.settings(), elbv2=rig.elbv2, ec2=rig.ec2, notify=lambda t: "")
    assert_rolled_back(rig, report, "no-healthy-targets")
    assert any("no probe round" in n for n in report.breach.detail.split("; ")), report.breach.detail


class _ThrottleWrites(BaseHTTPRequestHandler):
    """Forwards to moto, except the first `server.throttle` ModifyListener calls get a real Throttling error."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if b"Action=ModifyListener" in body and self.server.throttle > 0:
            self.server.throttle -= 1
            self.server.throttled += 1
            out, status, ctype = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
                b"<RequestId>0</RequestId></ErrorResponse>", 400, "text/xml",
            )
        else:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            resp = requests.post(self.server.upstream + self.path, data=body, headers=headers, timeout=10)
            out, status, ctype = resp.content, resp.status_code, resp.headers.get("Content-Type", "text/xml")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def throttled_writes(aws):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ThrottleWrites)
    server.daemon_threads = True
    server.upstream, server.throttle, server.throttled = aws.endpoint, 3, 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_throttled_rollback_is_retried_until_traffic_is_on_stable(aws, candidate, throttled_writes):
    rig = Rig(aws, candidate.port)
    elbv2 = aws.client("elbv2", endpoint_url=f"http://127.0.0.1:{throttled_writes.server_address[1]}")
    candidate.fail("dead")
    report = rig.run(elbv2=elbv2, budget_s=10)  # botocore backs off between its own retries
    assert throttled_writes.throttled == 3  # all of one call's attempts (botocore's retries), then one more
    assert report.rollbacks >= 2 and report.rollback.moved, report.to_dict()
    assert_rolled_back(rig, report, "probes-failed")
    assert len(rig.notes) == 2 and "ROLLBACK FAILED" in rig.notes[0] and "throttling" in rig.notes[0].lower(), rig.notes


def _declared_actions() -> list[str]:
    """The AWS actions the program's reflex role is given (components/reflex.py), so these tests prove
    the declared policy, not a copy of it."""
    from components.reflex import reflex_policy

    doc = json.loads(reflex_policy("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/bg/1/2", "arn:aws:logs:us-east-1:123456789012:log-group:x"))
    out: list[str] = []
    for statement in doc["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        out += [a for a in actions if a.startswith(("elasticloadbalancing:", "ec2:"))]
    return out


WRITES = ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddTags", "elasticloadbalancing:ModifyRule"]
REFLEX_ACTIONS = [a for a in _declared_actions() if a not in WRITES]


def test_denied_rollback_is_reported_and_notified_never_raised(aws, candidate):
    rig = Rig(aws, candidate.port)
    key, secret = aws.iam_user("reads-only", REFLEX_ACTIONS)
    elbv2 = aws.client("elbv2", aws_access_key_id=key, aws_secret_access_key=secret)
    candidate.fail("5xx")
    with aws.enforce_iam():
        report = rig.run(elbv2=elbv2, budget_s=3)  # two checks make a breach; room for them on a loaded machine
    assert not report.rollback.moved and "AccessDenied on ModifyListener" in report.rollback.error, report.to_dict()
    assert rig.weights() == {"blue": 75, "green": 25} and TAG_ABORTED not in rig.tags()
    assert len(rig.notes) == 1 and "ROLLBACK FAILED" in rig.notes[0]


def test_the_reflex_policy_actions_are_enough(aws, candidate):
    """moto's IAM enforces actions (not Resource): the reads plus ModifyListener and AddTags roll back."""
    rig = Rig(aws, candidate.port)
    key, secret = aws.iam_user("reflex", _declared_actions())
    elbv2 = aws.client("elbv2", aws_access_key_id=key, aws_secret_access_key=secret)
    candidate.fail("5xx")
    with aws.enforce_iam():
        report = rig.run(elbv2=elbv2)
    assert_rolled_back(rig, report, "probes-failed")


def test_a_racing_update_that_sends_traffic_back_is_rolled_back_again(aws, candidate):
    """A `pulumi up` judged before the marker existed lands right after the rollback: the reflex undoes it."""
    rig = Rig(aws, candidate.port)
    candidate.fail("dead")
    blue, green = rig.alb.target_groups["blue"], rig.alb.target_groups["green"]

    def racing_update(text: str) -> str:
        rig.notes.append(text)
        if len(rig.notes) == 1:
            rig.elbv2.modify_listener(ListenerArn=rig.alb.production_listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": blue, "Weight": 50}, {"TargetGroupArn": green, "Weight": 50}]}}])
        return ""

    report = run(rig.settings(), elbv2=rig.elbv2, ec2=rig.ec2, addresses=lambda: ["127.0.0.1"], notify=racing_update)
    assert report.rollbacks == 2 and rig.weights() == {"blue": 100, "green": 0}, report.to_dict()


# --------------------------------------------------------------------------- the Lambda handler


class _Context:
    def __init__(self, ms: int):
        self.ms = ms

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


def test_the_handler_reads_its_environment_and_rolls_back(aws, monkeypatch):
    """The real handler with boto3 from the environment (aimed at moto): no ENIs, so no probes; the
    ALB's target health alone rolls back."""
    from rollout import reflex_lambda

    rig = Rig(aws, 1)
    rig.kill_targets()
    env = rig.settings(interval_s=0.2).to_env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = reflex_lambda.handler({}, _Context(10_000))  # 10 s left - 8 s margin = 2 s budget
    assert out["rollback"]["moved"] and out["breach"]["code"] == "no-healthy-targets", out
    assert rig.weights() == {"blue": 100, "green": 0} and TAG_ABORTED in rig.tags()


@pytest.mark.parametrize(
    "env, words",
    [
        ({}, "BLUEGREEN_STACK is not set"),
        ({"BLUEGREEN_STACK": "p", "BLUEGREEN_LOAD_BALANCER_ARN": "a"}, "BLUEGREEN_LISTENER_ARN is not set"),
        ({"BLUEGREEN_STACK": "p", "BLUEGREEN_LOAD_BALANCER_ARN": "a", "BLUEGREEN_LISTENER_ARN": "l", "BLUEGREEN_REFLEX_BREACH_CHECKS": "0"},
         "BLUEGREEN_REFLEX_BREACH_CHECKS must be between 1 and 20"),
    ],
)
def test_settings_name_the_variable_that_is_wrong(env, words):
    with pytest.raises(ReflexSetupError, match=words):
        ReflexSettings.from_env(env)


def test_settings_round_trip_through_the_environment():
    s = ReflexSettings("p", "lb", "l", hostname="canary.example.com", interval_s=5, budget_s=50, breach_checks=3, topic_arn="arn:aws:sns:x")
    assert ReflexSettings.from_env(s.to_env()) == s


def test_the_marker_is_elb_legal_and_parses_back():
    value = abort_value(1_790_000_000, "probes-failed", "green", 25)
    assert value == "2026-09-21T14:13:20Z probes-failed green=25" and ELB_TAG_VALUE.match(value)
    a = parse_abort(value)
    assert (a.when, a.code, a.colour, a.weight) == ("2026-09-21T14:13:20Z", "probes-failed", "green", 25)
    assert parse_abort("") is None and parse_abort(None) is None
    assert parse_abort("garbage!").code == "unknown"  # a stop sign that cannot be read still stops


# --------------------------------------------------------------------------- the breach rule, pure


signal = st.sampled_from([True, False, None])


def _breaches(seq, k):
    """The rule in its plainest words: k bad looks with no good look in between (blind looks skipped)."""
    run = 0
    for bad in seq:
        if bad is True:
            run += 1
            if run >= k:
                return True
        elif bad is False:
            run = 0
    return False


@given(st.lists(st.tuples(signal, signal), max_size=30), st.integers(1, 4))
def test_a_breach_is_k_consecutive_bad_looks_of_one_signal(checks, k):
    counter = BreachCounter(k)
    first = None
    for i, (targets, probes) in enumerate(checks):
        if counter.add(Check(0.0, None, "tg", {"c": 10}, targets, probes)) is not None:
            first = i
            break
    seen = checks[: (first + 1) if first is not None else len(checks)]
    expected = _breaches([t for t, _ in seen], k) or _breaches([p for _, p in seen], k)
    assert (first is not None) == expected, (checks, k, first)
    if first is not None:  # it fires at the first check where the rule holds, not later
        earlier = checks[:first]
        assert not (_breaches([t for t, _ in earlier], k) or _breaches([p for _, p in earlier], k))


@given(st.lists(st.tuples(st.sampled_from([False, None]), st.sampled_from([False, None])), max_size=40))
def test_never_a_breach_without_a_bad_look(checks):
    counter = BreachCounter(1)
    assert all(counter.add(Check(0.0, None, "tg", {"c": 10}, t, p)) is None for t, p in checks)


def test_a_record_naming_a_target_group_the_listener_does_not_forward_to_moves_nothing(aws, candidate):
    """A hand-edited or foreign `bluegreen:stable-tg` must not receive all production traffic."""
    from rollout.reflex import ListenerView, roll_back

    rig = Rig(aws, candidate.port)
    before = rig.weights()
    blue, green = rig.alb.target_groups["blue"], rig.alb.target_groups["green"]
    listener = ListenerView(rig.alb.production_listener, ((blue, 75), (green, 25)), {}, {})
    foreign = blue.replace("/bg-blue/", "/elsewhere/")
    result = roll_back(rig.elbv2, listener, foreign, "2026-11-23T16:05:03Z probes-failed green=25")
    assert not result.moved and "not one the production listener forwards to" in result.error, result
    assert rig.weights() == before
