"""The benchmarks' own machinery (bench/): how verdicts are decided, which modules run_all runs, and
the AWS proxy that counts calls. Nothing here times anything."""

from __future__ import annotations

import math
import sys
from datetime import datetime, timedelta, timezone

import botocore.config
import botocore.exceptions
import pytest

from rollout.simulate import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402
import run_all  # noqa: E402
from servers import AwsProxy  # noqa: E402


def _coverage(n: int, k: int) -> float:
    """P(x_(k) <= median <= x_(n+1-k)) for a continuous distribution: 1 - 2 P(Binomial(n, 1/2) <= k-1)."""
    return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n


@pytest.mark.parametrize("n", range(6, 40))
def test_median_ci_is_the_tightest_order_statistic_interval_with_95_percent(n):
    lo, hi = _common.median_ci(list(range(n)))  # values = ranks
    k = lo + 1
    assert hi == n - k, (lo, hi)
    assert _coverage(n, k) >= 0.95, (n, k)
    assert k + 1 > n // 2 or _coverage(n, k + 1) < 0.95, f"n={n}: k={k + 1} would still cover 95 %"


def test_a_verdict_is_decided_only_when_the_whole_interval_is_on_one_side():
    below, above, straddling = [0.8, 0.9, 0.95, 1.0, 1.05, 1.1], [1.3, 1.35, 1.4, 1.5, 1.6, 1.7], [1.0, 1.1, 1.15, 1.25, 1.3, 1.35]
    assert _common.at_most(below, 1.2) == _common.MET
    assert _common.at_most(above, 1.2) == _common.MISSED
    assert _common.at_most(straddling, 1.2) == _common.UNDECIDED
    v = _common.Verdicts()
    v.timing("straddling", straddling, 1.2, "<= 1.2")
    assert not v.ok, "an undecided verdict must count as missed"


def test_run_all_runs_every_module_with_an_int_main_and_no_helper():
    found = run_all.benchmarks()
    for name in ("verdict_latency", "plan_speed", "step_footprint", "scale", "component_overhead", "gate_latency", "policy_latency"):
        assert name in found, found
    for helper in ("_common", "servers", "policy_client", "flat_program", "gen_flat_program", "run_all"):
        assert helper not in found, found


def test_the_aws_proxy_counts_calls_by_operation_in_every_protocol_and_can_hang(aws):
    alb = aws.build_alb()
    proxy = AwsProxy(aws.endpoint, delay_s=0)
    try:
        quick = botocore.config.Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})
        elbv2 = aws.client("elbv2", endpoint_url=proxy.url, config=quick)
        cloudwatch = aws.client("cloudwatch", endpoint_url=proxy.url, config=quick)
        assert elbv2.describe_load_balancers(LoadBalancerArns=[alb.load_balancer])["LoadBalancers"][0]["DNSName"] == alb.dns_name
        elbv2.describe_tags(ResourceArns=[alb.production_listener])
        now = datetime.now(timezone.utc)
        cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "r", "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount"},
                                                           "Period": 60, "Stat": "Sum"}}],
            StartTime=now - timedelta(minutes=5), EndTime=now,
        )
        assert proxy.take() == {"DescribeLoadBalancers": 1, "DescribeTags": 1, "GetMetricData": 1}
        proxy.hang()
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            elbv2.describe_listeners(LoadBalancerArn=alb.load_balancer)
        assert proxy.take() == {"DescribeListeners": 1}
    finally:
        proxy.stop()
