"""The judge's verdict as a reflex signal, against moto_server: once a minute the reflex reads both target
groups' per-minute counts from CloudWatch since the live weights began and rolls back on `fail` only;
`pass`, `insufficient`, a missing bake clock and a CloudWatch fault never move traffic."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from components.reflex import reflex_policy
from rollout.desired import TAG_SINCE, format_since
from rollout.reflex import TAG_ABORTED, ReflexSettings, abort_value, parse_abort, run

LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/bg/1/2"


class JudgeRig:
    """Blue stable 75 %, green candidate 25 %, the bake clock stamped `since_min` minutes ago; no probe
    round (no interface addresses) and healthy targets, so only the judge can breach."""

    def __init__(self, aws, *, since_min: int = 12, stamp_weights=None):
        self.aws = aws
        self.alb = aws.build_alb(candidate_weight=25)
        self.elbv2 = aws.client("elbv2")
        stamp = format_since(time.time() - since_min * 60, stamp_weights or {"blue": 75, "green": 25})
        self.elbv2.add_tags(ResourceArns=[self.alb.production_listener], Tags=[{"Key": TAG_SINCE, "Value": stamp}])
        self.notes: list[str] = []

    def minutes(self, *, stable=(2250, 22), candidate=(750, 7), ago=range(2, 11)):
        self.aws.put_minutes(self.alb, stable=stable, candidate=candidate, ago=ago)

    def run(self, cloudwatch=None, elbv2=None, budget_s=0.5, **kw):
        settings = ReflexSettings("test", self.alb.load_balancer, self.alb.production_listener, interval_s=0.2, budget_s=budget_s, **kw)
        return run(settings, elbv2=elbv2 or self.elbv2, ec2=self.aws.client("ec2"), addresses=lambda: [],
                   cloudwatch=cloudwatch or self.aws.client("cloudwatch"), notify=lambda t: self.notes.append(t) or "")

    def weights(self):
        (ls,) = self.elbv2.describe_listeners(ListenerArns=[self.alb.production_listener])["Listeners"]
        colour = {arn: c for c, arn in self.alb.target_groups.items()}
        return {colour[g["TargetGroupArn"]]: g["Weight"] for g in ls["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}

    def tags(self):
        (d,) = self.elbv2.describe_tags(ResourceArns=[self.alb.production_listener])["TagDescriptions"]
        return {t["Key"]: t["Value"] for t in d["Tags"]}


def test_a_judge_fail_rolls_back_with_the_e_value_in_the_marker(aws):
    rig = JudgeRig(aws)
    rig.minutes(candidate=(750, 35))  # 5x stable's error rate while carrying 25 %
    report = rig.run()
    assert report.judge.verdict == "fail" and report.breach.code == "judge", report.to_dict()
    assert rig.weights() == {"blue": 100, "green": 0}
    marker = parse_abort(rig.tags()[TAG_ABORTED])
    assert (marker.code, marker.colour, marker.weight) == ("judge", "green", 25), marker
    assert marker.e_value is not None and marker.e_value >= 20 and abs(marker.e_value - report.judge.e_value) / report.judge.e_value < 0.01
    assert len(rig.notes) == 1 and "rolled back: judge" in rig.notes[0] and "e-value" in rig.notes[0], rig.notes


@pytest.mark.parametrize("candidate, verdicts", [((750, 7), {"pass"}), ((0, 0), {"insufficient"}), ((20, 0), {"insufficient"})])
def test_pass_and_insufficient_never_roll_back(aws, candidate, verdicts):
    rig = JudgeRig(aws)
    rig.minutes(candidate=candidate)
    report = rig.run()
    assert report.judge.verdict in verdicts and report.rollback is None, report.to_dict()
    assert rig.weights() == {"blue": 75, "green": 25} and TAG_ABORTED not in rig.tags()


def test_a_step_held_past_the_max_minutes_keeps_its_first_minutes(aws):
    """The step's verdict reads the whole step: a regression 75-85 minutes ago, in a 90-minute step, is still
    caught, where a window sliding at judge_max_minutes would have forgotten it (and a fresh e-process
    at every look is what made a healthy candidate held a day fail one time in four)."""
    rig = JudgeRig(aws, since_min=91)
    rig.minutes(candidate=(750, 75), ago=range(75, 85))  # 10x, early in the step
    rig.minutes(candidate=(750, 7), ago=range(2, 75))  # healthy since
    report = rig.run()
    assert report.judge.verdict == "fail" and "a change" not in report.judge.reason, (report.judge, report.to_dict())


def test_the_step_verdict_is_the_gate_s_early_look_included():
    """The reflex's step verdict is the gate's judge on the same minutes: the early look counts once settled."""
    ms = [Minute(270, 30, {"errors": 1}, {"errors": 0}), Minute(270, 30, {"errors": 2}, {"errors": 3})]
    gate = judge(ms, _S.judge_config(), kinds=("errors",), from_step_start=True)
    assert gate.verdict == "fail"
    assert judge_step(_S, ms, ("errors",), early_look_ready=True)[:2] == ("fail", gate.e_value)
    assert judge_step(_S, ms, ("errors",), early_look_ready=False)[0] != "fail"


def test_the_window_starts_at_the_bake_clock(aws):
    """Bad minutes before the live weights began (another step, another release) are not this step's evidence."""
    rig = JudgeRig(aws, since_min=4)
    rig.minutes(candidate=(750, 60), ago=range(6, 15))  # all before the stamp
    report = rig.run()
    assert report.judge.verdict == "insufficient" and report.rollback is None, report.to_dict()


def test_no_bake_clock_for_the_live_weights_means_no_verdict(aws):
    rig = JudgeRig(aws, stamp_weights={"blue": 90, "green": 10})  # the stamp of an earlier step
    rig.minutes(candidate=(750, 60))
    report = rig.run()
    assert report.judge.verdict is None and "waits for the bake clock" in report.judge.reason and report.rollback is None, report.to_dict()


@pytest.mark.parametrize("fault", ["closed", "throttled"])
def test_a_cloudwatch_fault_is_reported_and_never_a_rollback(aws, fault, closed_endpoint, throttling_endpoint):
    rig = JudgeRig(aws)
    rig.minutes(candidate=(750, 60))
    url = closed_endpoint if fault == "closed" else throttling_endpoint.url
    report = rig.run(cloudwatch=aws.client("cloudwatch", endpoint_url=url))
    assert report.judge.verdict is None and "judge unreadable" in report.judge.reason and "not a breach" in report.judge.reason, report.to_dict()
    assert report.rollback is None and rig.weights() == {"blue": 75, "green": 25}
    assert "judge unreadable" in report.summary("test")


class _Clock:
    """A virtual clock whose sleep advances it: the invocation's cadence without waiting (or load) for it."""

    def __init__(self):
        self.t = time.time()

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += max(0.0, s)


def test_the_judge_is_read_once_a_minute(aws):
    """130 s of checks every 5 s: 27 checks, and the judge read at 0, 60 and 120 s only."""
    rig = JudgeRig(aws)
    rig.minutes()
    calls = []
    cw = aws.client("cloudwatch")
    cw.meta.events.register("before-call.cloudwatch.GetMetricData", lambda **kw: calls.append(1))
    clock = _Clock()
    settings = ReflexSettings("test", rig.alb.load_balancer, rig.alb.production_listener, interval_s=5, budget_s=130)
    report = run(settings, elbv2=rig.elbv2, ec2=aws.client("ec2"), cloudwatch=cw, addresses=lambda: [], clock=clock, wall=clock,
                 sleep=clock.sleep)
    assert report.checks == 27 and len(calls) == 3, (report.checks, calls)


def test_judge_off_reads_no_cloudwatch(aws):
    rig = JudgeRig(aws)
    rig.minutes(candidate=(750, 60))
    report = rig.run(judge=False)
    assert report.judge is None and report.rollback is None


def _declared(prefixes):
    import json

    doc = json.loads(reflex_policy(LISTENER, "arn:aws:logs:us-east-1:123456789012:log-group:x"))
    acts = [a for st in doc["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])]
    return [a for a in acts if a.startswith(prefixes)]


def test_the_role_may_read_the_counts_and_nothing_more_of_cloudwatch():
    assert _declared(("cloudwatch:",)) == ["cloudwatch:GetMetricData"]


def _as_moto_names(actions):
    """moto's IAM names CloudWatch actions by the endpoint prefix (`monitoring:GetMetricData`, as its
    AccessDenied says); IAM itself and the role's policy say `cloudwatch:`."""
    return [a.replace("cloudwatch:", "monitoring:", 1) for a in actions]


def test_the_declared_actions_are_enough_for_a_judge_rollback(aws):
    """moto enforces IAM actions: the declared reads, GetMetricData, ModifyListener and AddTags roll back on `fail`."""
    rig = JudgeRig(aws)
    rig.minutes(candidate=(750, 35))
    key, secret = aws.iam_user("reflex", _as_moto_names(_declared(("elasticloadbalancing:", "ec2:", "cloudwatch:"))))
    creds = dict(aws_access_key_id=key, aws_secret_access_key=secret)
    with aws.enforce_iam():
        report = rig.run(cloudwatch=aws.client("cloudwatch", **creds), elbv2=aws.client("elbv2", **creds))
    assert report.breach and report.breach.code == "judge" and report.rollback.moved, report.to_dict()


def test_without_get_metric_data_the_judge_is_unreadable_not_a_rollback(aws):
    rig = JudgeRig(aws)
    rig.minutes(candidate=(750, 60))
    key, secret = aws.iam_user("no-cw", _declared(("elasticloadbalancing:", "ec2:")))
    creds = dict(aws_access_key_id=key, aws_secret_access_key=secret)
    with aws.enforce_iam():
        report = rig.run(cloudwatch=aws.client("cloudwatch", **creds), elbv2=aws.client("elbv2", **creds))
    assert report.judge.verdict is None and "unreadable" in report.judge.reason and report.rollback is None, report.to_dict()


def test_the_judge_marker_round_trips():
    value = abort_value(1_790_000_000, "judge", "green", 25, 41.234)
    assert value == "2026-09-21T14:13:20Z judge green=25 e=41.2"
    a = parse_abort(value)
    assert (a.code, a.colour, a.weight, a.e_value) == ("judge", "green", 25, 41.2)
    assert parse_abort(abort_value(1_790_000_000, "judge", "green", 25, 3.1e12)).e_value == 3.1e12
    assert parse_abort("2026-09-21T14:13:20Z probes-failed green=25").e_value is None


def test_the_watcher_commits_step_zero_naming_the_judge_and_its_e_value():
    from rollout.rules import RolloutConfig
    from rollout.watcher import Action, decide

    d = decide("production", RolloutConfig("blue", (10, 25, 50, 75, 100), 2), {"blue": 100, "green": 0}, None,
               aborted="2026-11-23T16:05:03Z judge green=25 e=41.2")
    assert d.action is Action.ROLLBACK and "(judge e-value 41.2 at 2026-11-23T16:05:03Z" in d.reason, d


def test_a_regression_after_a_long_healthy_bake_is_caught_from_its_own_start(aws):
    """Twenty healthy minutes hold the step's e-process down; the change window sees only the bad minutes."""
    from rollout.judge import JudgeConfig, judge
    from rollout.metrics import read_minutes

    rig = JudgeRig(aws, since_min=25)
    rig.minutes(candidate=(750, 7), ago=range(4, 24))  # healthy
    rig.minutes(candidate=(750, 35), ago=range(2, 4))  # then two minutes at 5x
    report = rig.run()
    assert report.judge.verdict == "fail" and "a change since" in report.judge.reason and report.rollback.moved, report.to_dict()
    assert parse_abort(rig.tags()[TAG_ABORTED]).e_value >= 1e4
    # the step's own verdict alone would still be waiting
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    series = read_minutes(aws.client("cloudwatch"), load_balancer_arn=rig.alb.load_balancer,
                          stable_target_group_arn=rig.alb.target_groups["blue"], candidate_target_group_arn=rig.alb.target_groups["green"],
                          start=end - timedelta(minutes=24), end=end - timedelta(minutes=1))
    assert judge(series.minutes, JudgeConfig()).verdict != "fail"


# --------------------------------------------------------------------------- judge_step, pure

from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from rollout.judge import Minute, judge  # noqa: E402
from rollout.reflex import judge_step  # noqa: E402

_minute = st.builds(
    lambda ns, nc, bs, bc: Minute(ns, nc, {"errors": min(bs, ns)}, {"errors": min(bc, nc)}),
    st.integers(0, 5000), st.integers(0, 2000), st.integers(0, 200), st.integers(0, 200),
)
_S = ReflexSettings("p", "lb", "l")


@hsettings(max_examples=60, deadline=None)
@given(st.lists(_minute, max_size=20))
def test_the_step_verdict_stands_and_a_change_can_only_add_a_fail(minutes):
    verdict, e_value, reason = judge_step(_S, minutes, ("errors",))
    step = judge(minutes, _S.judge_config(), kinds=("errors",), from_step_start=True, early_look_ready=False)
    if step.verdict == "fail":
        assert verdict == "fail" and e_value == step.e_value
    elif verdict != "fail":
        assert verdict == step.verdict and "a change" not in reason
    else:  # a fail the step's verdict did not reach comes from a later window at the change alpha
        assert "a change" in reason and e_value >= 1 / _S.judge_change_alpha


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.builds(lambda ns, nc, bs: Minute(ns, nc, {"errors": min(bs, ns)}, {"errors": 0}),
                          st.integers(0, 5000), st.integers(0, 2000), st.integers(0, 200)), max_size=20))
def test_a_candidate_without_bad_events_is_never_failed(minutes):
    assert judge_step(_S, minutes, ("errors",))[0] != "fail"


# --------------------------------------------------------------------------- the gate's kinds: synthetic stratum, slow requests


def _put_synthetic(aws, rig, stack, *, stable, candidate, ago=range(2, 11)):
    """The probe function's synthetic load per colour, as it publishes it (rollout.synthetic_load)."""
    from rollout.synthetic_load import METRIC_SYNTHETIC_FAILED, METRIC_SYNTHETIC_SENT, NAMESPACE, synthetic_dimensions

    now = datetime.now(timezone.utc).replace(second=30, microsecond=0)
    data = []
    for colour, (sent, failed) in (("blue", stable), ("green", candidate)):
        dims = synthetic_dimensions(stack, rig.alb.target_groups[colour])
        for m in ago:
            at = now - timedelta(minutes=m)
            data += [{"MetricName": METRIC_SYNTHETIC_SENT, "Dimensions": dims, "Value": float(sent), "Unit": "Count", "Timestamp": at},
                     {"MetricName": METRIC_SYNTHETIC_FAILED, "Dimensions": dims, "Value": float(failed), "Unit": "Count", "Timestamp": at}]
    cw = aws.client("cloudwatch")
    for i in range(0, len(data), 20):
        cw.put_metric_data(Namespace=NAMESPACE, MetricData=data[i:i + 20])


def test_the_synthetic_stratum_the_gate_judges_is_judged_by_the_reflex_too(aws):
    """A thin service: too few user requests for any verdict, while the probe function's synthetic load
    shows the candidate failing. Configured with the probe stack (the gate's stratum), the reflex fails it
    and rolls back; without it (errors of user traffic only) it has no evidence."""
    rig = JudgeRig(aws)
    rig.minutes(stable=(60, 0), candidate=(20, 0))
    _put_synthetic(aws, rig, "test", stable=(60, 0), candidate=(60, 12))
    blind = rig.run()
    assert blind.judge.verdict == "insufficient" and blind.rollback is None, blind.to_dict()
    report = rig.run(judge_synthetic_stack="test")
    assert report.judge.verdict == "fail" and report.breach.code == "judge", report.to_dict()
    assert rig.weights() == {"blue": 100, "green": 0}


def test_slow_requests_count_when_the_gate_counts_them(aws):
    """moto has no trimmed count (TC) statistic, so CloudWatch is botocore's Stubber here (ELBv2 is moto):
    with the gate's slowRequestMs the reflex asks for TC(<threshold>:) of TargetResponseTime for both
    colours and a candidate 5x slower fails, where errors alone pass."""
    from botocore.stub import ANY, Stubber

    from rollout.reflex import look_at_judge, read_listener

    rig = JudgeRig(aws)
    cw = aws.client("cloudwatch")
    minutes = 9
    now = datetime.now(timezone.utc)
    times = [(now - timedelta(minutes=m)).replace(second=0, microsecond=0) for m in range(minutes + 2, 1, -1)]
    values = {"s_requests": 2250.0, "c_requests": 750.0, "s_5xx": 2.0, "c_5xx": 1.0, "s_connection": 0.0, "c_connection": 0.0, "elb5xx": 0.0}
    stub = Stubber(cw)
    stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": k, "Values": [v] * len(times), "Timestamps": times, "StatusCode": "Complete"} for k, v in values.items()]})
    slow_query = {"MetricDataQueries": [
        {"Id": f"{who}_slow", "ReturnData": True, "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime",
                                                                            "Dimensions": ANY}, "Period": 60, "Stat": "TC(0.8:)"}}
        for who in ("s", "c")], "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampAscending"}
    stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "s_slow", "Values": [22.0] * len(times), "Timestamps": times, "StatusCode": "Complete"},
        {"Id": "c_slow", "Values": [37.0] * len(times), "Timestamps": times, "StatusCode": "Complete"}]}, slow_query)
    settings = ReflexSettings("test", rig.alb.load_balancer, rig.alb.production_listener, judge_slow_request_ms=800)
    listener = read_listener(rig.elbv2, rig.alb.production_listener)
    with stub:
        look = look_at_judge(settings, elbv2=rig.elbv2, cloudwatch=cw, listener=listener,
                             stable_tg=rig.alb.target_groups["blue"], candidate_tg=rig.alb.target_groups["green"])
    stub.assert_no_pending_responses()
    assert look.verdict == "fail", look


def test_the_gate_s_kinds_reach_the_function_through_its_environment():
    s = ReflexSettings("st", "lb", "l", judge_slow_request_ms=750, judge_synthetic_stack="prod-probe")
    env = s.to_env()
    back = ReflexSettings.from_env(env)
    assert (back.judge_slow_request_ms, back.judge_synthetic_stack) == (750, "prod-probe")
    from rollout.reflex import ReflexSetupError

    with pytest.raises(ReflexSetupError, match="BLUEGREEN_REFLEX_JUDGE_SLOW_REQUEST_MS must be between"):
        ReflexSettings.from_env({**env, "BLUEGREEN_REFLEX_JUDGE_SLOW_REQUEST_MS": "0"})
