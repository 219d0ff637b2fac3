"""Synthetic load for thin services (issue 11): the probe runner sends the same number of requests to
each colour's targets straight (real loopback HTTP servers registered as the target groups' targets in
moto_server), publishes their counts per colour to moto's CloudWatch, the judge's read returns them as
a stratum of their own, and the gate's judge uses them.

The ALB's own per-target-group counts are user traffic only: the synthetic requests never pass
through the load balancer, so they are never in RequestCount and never counted twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from rollout.gate import GateTarget, GateThresholds, run_gate
from rollout.metrics import read_minutes
from rollout.probe_runner import NAMESPACE, ProbeSettings, ProbeSetupError
from rollout.synthetic_load import (
    METRIC_SYNTHETIC_FAILED,
    METRIC_SYNTHETIC_SENT,
    SyntheticColour,
    SyntheticRound,
    publish_synthetic,
    synthetic_round,
)

STACK = "production"


def _port(url: str) -> int:
    return urlsplit(url).port


def _alb(aws, http_server, *, blue: str = "healthy", green: str = "healthy", candidate_weight: int = 10, **options):
    """moto's ALB with each colour's one target at a loopback server of the given behaviour (blue stable)."""
    alb = aws.build_alb(candidate_weight=candidate_weight, targets_per_color=0)
    elbv2 = aws.client("elbv2")
    servers = {}
    for color, behaviour in (("blue", blue), ("green", green)):
        url = http_server(behaviour, **options)
        servers[color] = url
        elbv2.register_targets(TargetGroupArn=alb.target_groups[color], Targets=[{"Id": "127.0.0.1", "Port": _port(url)}])
    return alb, servers


def _settings(alb, per_minute: int, **kw) -> ProbeSettings:
    return ProbeSettings(stack=STACK, load_balancer_arn=alb.load_balancer, synthetic_per_minute=per_minute, **kw)


def test_each_colour_gets_the_same_number_and_only_the_failing_one_fails(aws, http_server):
    alb, _ = _alb(aws, http_server, green="unhealthy")
    r = synthetic_round(_settings(alb, 25), elbv2=aws.client("elbv2"))
    assert r.skipped is None, r.summary()
    by = {c.color: c for c in r.colours}
    assert (by["blue"].sent, by["green"].sent) == (25, 25)
    assert (by["blue"].failed, by["green"].failed) == (0, 25), r.to_dict()
    assert by["green"].failures == {"status": 25} and by["green"].target_group_arn == alb.target_groups["green"]
    assert "green 25/25 failed" in r.summary()


def test_an_answer_below_500_is_not_a_failure_and_no_answer_is(aws, http_server):
    """A 3xx (the redirect behaviour) is an answer like any user request's; a non-HTTP answer is a failure."""
    alb, _ = _alb(aws, http_server, blue="redirect_once", green="not_http")
    r = synthetic_round(_settings(alb, 6, synthetic_path="/old"), elbv2=aws.client("elbv2"))
    by = {c.color: c for c in r.colours}
    assert by["blue"].failed == 0 and by["green"].failed == 6, r.to_dict()


def test_a_hung_colour_cuts_the_round_short_for_both_colours_alike(aws, http_server):
    """The budget stops new pairs, never one colour's half: both colours are always sent the same number."""
    alb, _ = _alb(aws, http_server, green="hung")
    # a timeout a healthy loopback answer meets even on a loaded machine; the hung colour always reaches it
    r = synthetic_round(_settings(alb, 400, timeout_s=1.5), elbv2=aws.client("elbv2"), budget_s=2.0)
    by = {c.color: c for c in r.colours}
    assert 0 < by["blue"].sent == by["green"].sent < 400, r.to_dict()
    assert by["green"].failed == by["green"].sent and by["green"].failures == {"timeout": by["green"].sent}
    assert by["blue"].failed == 0


@pytest.mark.parametrize("weight", [0, 100])
def test_nothing_is_sent_unless_production_splits_traffic(aws, http_server, weight):
    alb, _ = _alb(aws, http_server, candidate_weight=weight)
    r = synthetic_round(_settings(alb, 10), elbv2=aws.client("elbv2"))
    assert r.colours == () and "does not split traffic" in r.skipped
    assert publish_synthetic(aws.client("cloudwatch"), r) == 0


def test_no_healthy_target_sends_nothing(aws, http_server):
    alb, _ = _alb(aws, http_server)
    elbv2 = aws.client("elbv2")
    for d in elbv2.describe_target_health(TargetGroupArn=alb.target_groups["green"])["TargetHealthDescriptions"]:
        elbv2.deregister_targets(TargetGroupArn=alb.target_groups["green"], Targets=[d["Target"]])
    r = synthetic_round(_settings(alb, 10), elbv2=elbv2)
    assert r.colours == () and r.skipped == "no healthy targets in green"


def test_off_sends_nothing_and_an_aws_fault_is_a_reason(aws, http_server):
    alb, _ = _alb(aws, http_server)
    assert synthetic_round(_settings(alb, 0), elbv2=aws.client("elbv2")).skipped == "synthetic load is off"
    broken = ProbeSettings(stack=STACK, load_balancer_arn=alb.load_balancer.replace("/bg/", "/nope/"), synthetic_per_minute=5)
    r = synthetic_round(broken, elbv2=aws.client("elbv2"))
    assert r.colours == () and r.skipped


def test_published_counts_come_back_as_their_own_stratum_and_user_counts_stay_the_albs(aws, http_server):
    alb, _ = _alb(aws, http_server, green="unhealthy")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    at = now - timedelta(minutes=2, seconds=-10)
    r = synthetic_round(_settings(alb, 12), elbv2=aws.client("elbv2"), clock=lambda: at)
    cw = aws.client("cloudwatch")
    assert publish_synthetic(cw, r) == 4
    aws.put_metric(alb.target_groups["green"], alb.load_balancer, "RequestCount", value=30, at=at, unit="Count")
    aws.put_metric(alb.target_groups["blue"], alb.load_balancer, "RequestCount", value=270, at=at, unit="Count")
    series = read_minutes(cw, load_balancer_arn=alb.load_balancer, stable_target_group_arn=alb.target_groups["blue"],
                          candidate_target_group_arn=alb.target_groups["green"], start=now - timedelta(minutes=4), end=now,
                          synthetic_stack=STACK)
    m = series.minutes[series.starts.index(now - timedelta(minutes=2))]
    assert (m.stable_requests, m.candidate_requests) == (270, 30), "the ALB's counts: user traffic only"
    assert (m.stable_synthetic, m.candidate_synthetic) == (12, 12)
    assert m.stable_synthetic_bad == {"errors": 0} and m.candidate_synthetic_bad == {"errors": 12}
    other = read_minutes(cw, load_balancer_arn=alb.load_balancer, stable_target_group_arn=alb.target_groups["blue"],
                         candidate_target_group_arn=alb.target_groups["green"], start=now - timedelta(minutes=4), end=now,
                         synthetic_stack="another-stack")
    assert all(x.candidate_synthetic == 0 for x in other.minutes), "another stack's load is not this stack's evidence"
    names = {d["MetricName"] for d in cw.list_metrics(Namespace=NAMESPACE)["Metrics"]}
    assert names == {METRIC_SYNTHETIC_SENT, METRIC_SYNTHETIC_FAILED}


def _publish_minutes(aws, alb, minutes: range, *, per_minute: int, stable_failed: int, candidate_failed: int) -> None:
    now = datetime.now(timezone.utc).replace(second=30, microsecond=0)
    cw = aws.client("cloudwatch")
    for ago in minutes:
        publish_synthetic(cw, SyntheticRound(STACK, now - timedelta(minutes=ago), (
            SyntheticColour("blue", alb.target_groups["blue"], per_minute, stable_failed),
            SyntheticColour("green", alb.target_groups["green"], per_minute, candidate_failed),
        )))


def _user_minutes(aws, alb, minutes: range) -> None:
    """A thin service: 5 req/s, 10 % to the candidate, one stable error a minute."""
    aws.put_minutes(alb, stable=(270, 1), candidate=(30, 0), ago=minutes)


def _judge(aws, alb, probe_stack):
    """The gate's judge; the step began 12 minutes ago (the listener's bluegreen:weights-since stamp)."""
    from rollout.desired import TAG_SINCE, format_since

    since = format_since(datetime.now(timezone.utc).timestamp() - 12 * 60, {"blue": 90, "green": 10})
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": TAG_SINCE, "Value": since}])
    target = GateTarget("green", target_group_arn=alb.target_groups["green"], load_balancer_arn=alb.load_balancer, probe_stack=probe_stack)
    return run_gate(target, GateThresholds(), elbv2=aws.client("elbv2"), cloudwatch=aws.client("cloudwatch"), checks=("judge",))


def test_the_gate_does_not_pass_a_thin_service_on_synthetic_evidence_alone(aws):
    """Healthy synthetic load cannot vouch for the users' requests: while the user stratum shows errors and
    has not passed on its own, the judge stays insufficient however much healthy synthetic evidence there is."""
    alb = aws.build_alb()
    _user_minutes(aws, alb, range(2, 12))
    _publish_minutes(aws, alb, range(2, 12), per_minute=1000, stable_failed=5, candidate_failed=5)
    without = _judge(aws, alb, None)
    assert without.pending and without.judge["verdict"] == "insufficient", without.to_dict()
    v = _judge(aws, alb, STACK)
    assert v.pending and v.judge["verdict"] == "insufficient", v.to_dict()
    assert v.judge["candidateSyntheticRequests"] == 10000 and v.judge["candidateRequests"] == 300
    assert "errors: ratio not yet shown below 2x on user traffic" in v.message()


def test_the_gate_fails_a_candidate_the_synthetic_load_shows_broken(aws):
    alb = aws.build_alb()
    _user_minutes(aws, alb, range(2, 6))
    _publish_minutes(aws, alb, range(2, 6), per_minute=300, stable_failed=1, candidate_failed=40)
    v = _judge(aws, alb, STACK)
    assert not v.passed and not v.pending and v.judge["verdict"] == "fail", v.to_dict()


@pytest.mark.parametrize(
    "env, words",
    [
        ({"BLUEGREEN_SYNTHETIC_PER_MINUTE": "1001"}, "BLUEGREEN_SYNTHETIC_PER_MINUTE must be between 0 and 1000"),
        ({"BLUEGREEN_SYNTHETIC_PER_MINUTE": "lots"}, "BLUEGREEN_SYNTHETIC_PER_MINUTE must be a number"),
        ({"BLUEGREEN_SYNTHETIC_PATH": "api/items"}, "BLUEGREEN_SYNTHETIC_PATH must be an absolute URL path"),
        # the validator's rule (rollout.probe_path), not only "no whitespace": what cannot go in a request line as it is
        ({"BLUEGREEN_SYNTHETIC_PATH": "/caf\u00e9"}, "BLUEGREEN_SYNTHETIC_PATH must be an absolute URL path .* or non-ASCII"),
        ({"BLUEGREEN_SYNTHETIC_PATH": "/a%zz"}, "BLUEGREEN_SYNTHETIC_PATH must be an absolute URL path"),
        ({"BLUEGREEN_SYNTHETIC_PATH": "/a<b>"}, "BLUEGREEN_SYNTHETIC_PATH must be an absolute URL path"),
        ({"BLUEGREEN_SYNTHETIC_PATH": "/" + "a" * 2048}, "of at most 2048 characters"),
    ],
)
def test_the_function_names_the_synthetic_variable_it_cannot_use(env, words):
    with pytest.raises(ProbeSetupError, match=words):
        ProbeSettings.from_env({"BLUEGREEN_STACK": "p", "BLUEGREEN_LOAD_BALANCER_ARN": "arn:x", **env})


def test_synthetic_settings_round_trip_and_stay_out_of_the_environment_when_off():
    on = ProbeSettings(stack="p", load_balancer_arn="arn:x", synthetic_per_minute=300, synthetic_path="/api/ping")
    assert ProbeSettings.from_env(on.to_env()) == on
    off = ProbeSettings(stack="p", load_balancer_arn="arn:x").to_env()
    assert "BLUEGREEN_SYNTHETIC_PER_MINUTE" not in off and "BLUEGREEN_SYNTHETIC_PATH" not in off


def test_the_handler_sends_and_publishes_the_synthetic_load_from_its_environment(aws, http_server, monkeypatch):
    """The Lambda entry point end to end: the probe round (here without ALB interfaces: it says so) and then
    the synthetic round, both published; the settings come from the environment the program sets."""
    from rollout import probe_lambda

    alb, _ = _alb(aws, http_server, green="unhealthy")
    for k, v in _settings(alb, 8).to_env().items():
        monkeypatch.setenv(k, v)
    result = probe_lambda.handler({}, None)
    assert result["problem"] and "network interfaces" in result["problem"], result
    by = {c["color"]: c for c in result["synthetic"]["colours"]}
    assert (by["blue"]["sent"], by["blue"]["failed"], by["green"]["sent"], by["green"]["failed"]) == (8, 0, 8, 8), result
    cw = aws.client("cloudwatch")
    sent = cw.list_metrics(Namespace=NAMESPACE, MetricName=METRIC_SYNTHETIC_SENT)["Metrics"]
    assert sorted(d["Value"] for m in sent for d in m["Dimensions"] if d["Name"] == "TargetGroup") == sorted(
        t.split(":")[-1] for t in alb.target_groups.values())


def test_the_handler_sends_no_synthetic_load_when_it_is_off(aws, http_server, monkeypatch):
    from rollout import probe_lambda

    alb, _ = _alb(aws, http_server)
    for k, v in _settings(alb, 0).to_env().items():
        monkeypatch.setenv(k, v)
    assert "synthetic" not in probe_lambda.handler({}, None)
    assert aws.client("cloudwatch").list_metrics(Namespace=NAMESPACE, MetricName=METRIC_SYNTHETIC_SENT)["Metrics"] == []


def test_the_synthetic_round_ends_before_the_function_times_out():
    """Pairs start for at most 20 s, and never so late that two request timeouts and publishing overrun."""
    from rollout.probe_lambda import synthetic_budget

    class Context:
        def __init__(self, ms):
            self.ms = ms

        def get_remaining_time_in_millis(self):
            return self.ms

    assert synthetic_budget(Context(29_000), 2.0) == 20.0
    assert synthetic_budget(Context(20_000), 5.0) == pytest.approx(6.0)
    assert synthetic_budget(Context(9_000), 10.0) == 0.0
    assert synthetic_budget(None, 2.0) == 20.0
