"""CloudWatch per-minute reads for the judge (rollout.metrics): moto_server for the Sum counts,
botocore's Stubber for the trimmed-count statistic moto cannot compute (GetMetricData with
``TC(x:)`` answers HTTP 500 from moto; real CloudWatch answers it for TargetResponseTime)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.stub import ANY, Stubber

from rollout.metrics import dimension_value, read_minutes, slow_stat

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
TG_B = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/bg-blue/0123456789abcdef"
TG_G = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/bg-green/0123456789abcdef"
LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/bg/0123456789abcdef"


def test_minutes_without_data_are_zero_and_both_colours_share_the_minutes(aws):
    alb = aws.build_alb()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    at = now - timedelta(minutes=3, seconds=-20)
    aws.put_metric(alb.target_groups["green"], alb.load_balancer, "RequestCount", value=100, at=at, unit="Count")
    aws.put_metric(alb.target_groups["green"], alb.load_balancer, "HTTPCode_Target_5XX_Count", value=4, at=at, unit="Count")
    aws.put_metric(alb.target_groups["blue"], alb.load_balancer, "RequestCount", value=900, at=at, unit="Count")
    aws.put_metric(alb.target_groups["blue"], alb.load_balancer, "TargetConnectionErrorCount", value=2, at=at, unit="Count")
    series = read_minutes(aws.client("cloudwatch"), load_balancer_arn=alb.load_balancer,
                          stable_target_group_arn=alb.target_groups["blue"], candidate_target_group_arn=alb.target_groups["green"],
                          start=now - timedelta(minutes=6), end=now)
    assert len(series.minutes) == 6 and series.starts[0] == now - timedelta(minutes=6)
    assert series.kinds == ("errors",)
    busy = series.starts.index(now - timedelta(minutes=3))
    m = series.minutes[busy]
    assert (m.stable_requests, m.candidate_requests) == (900, 100)
    assert m.candidate_bad == {"errors": 4} and m.stable_bad == {"errors": 2}, "errors = target 5xx + connection errors"
    quiet = [x for i, x in enumerate(series.minutes) if i != busy]
    assert all(x.stable_requests == 0 and x.candidate_requests == 0 and not any(x.candidate_bad.values()) for x in quiet)
    assert series.totals()["candidate_errors"] == 4


def test_load_balancer_5xx_are_read_without_a_target_group_dimension(aws):
    alb = aws.build_alb()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    lb = alb.load_balancer.split(":")[-1].removeprefix("loadbalancer/")
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[{
        "MetricName": "HTTPCode_ELB_5XX_Count", "Dimensions": [{"Name": "LoadBalancer", "Value": lb}],
        "Value": 7, "Unit": "Count", "Timestamp": now - timedelta(minutes=2)}])
    series = read_minutes(aws.client("cloudwatch"), load_balancer_arn=alb.load_balancer,
                          stable_target_group_arn=alb.target_groups["blue"], candidate_target_group_arn=alb.target_groups["green"],
                          start=now - timedelta(minutes=4), end=now)
    assert sum(series.elb_5xx) == 7


def test_slow_requests_are_a_trimmed_count_of_target_response_time(aws):
    cw = aws.client("cloudwatch")
    stub = Stubber(cw)
    counts = {"Id": ANY, "Values": [], "Timestamps": [], "StatusCode": "Complete"}
    stub.add_response("get_metric_data", {"MetricDataResults": [dict(counts, Id=i) for i in (
        "s_requests", "s_5xx", "s_connection", "c_requests", "c_5xx", "c_connection", "elb5xx")]})
    expected = {
        "MetricDataQueries": [
            {"Id": f"{who}_slow", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime", "Dimensions": [
                    {"Name": "TargetGroup", "Value": dimension_value(tg, "TargetGroup")}, {"Name": "LoadBalancer", "Value": "app/bg/0123456789abcdef"}]},
                "Period": 60, "Stat": "TC(0.5:)"}}
            for who, tg in (("s", TG_B), ("c", TG_G))
        ],
        "StartTime": T0, "EndTime": T0 + timedelta(minutes=2), "ScanBy": "TimestampAscending",
    }
    stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "s_slow", "Values": [30.0, 12.0], "Timestamps": [T0, T0 + timedelta(minutes=1)], "StatusCode": "Complete"},
        {"Id": "c_slow", "Values": [9.0], "Timestamps": [T0 + timedelta(minutes=1)], "StatusCode": "Complete"},
    ]}, expected)
    with stub:
        series = read_minutes(cw, load_balancer_arn=LB, stable_target_group_arn=TG_B, candidate_target_group_arn=TG_G,
                              start=T0, end=T0 + timedelta(minutes=2), slow_threshold_ms=500)
    assert series.kinds == ("errors", "slow")
    assert [m.stable_bad["slow"] for m in series.minutes] == [30.0, 12.0]
    assert [m.candidate_bad["slow"] for m in series.minutes] == [0.0, 9.0]


def test_slow_stat_is_in_seconds():
    assert slow_stat(500) == "TC(0.5:)" and slow_stat(1500) == "TC(1.5:)"


def test_a_network_load_balancer_has_no_alb_dimension():
    with pytest.raises(ValueError, match="an ALB is required"):
        dimension_value(LB.replace("/app/", "/net/"), "LoadBalancer")
