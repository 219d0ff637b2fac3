"""The gate's HTTP evidence when probes run inside the VPC: the probe function's CloudWatch metrics.

The pack and the CLI run outside the VPC with AWS read credentials only. They cannot reach the test
listener (it admits the VPC and the probe function's security group) nor verify its certificate
against the ALB's DNS name. The probe function the program deploys in the VPC
(`components/probe.py`, `rollout/probe_runner.py`) probes the colour behind the test listener every
minute with TLS verified against `bluegreen:traffic.testHostname`, and publishes the counts. This
module reads them back with `cloudwatch:GetMetricData` only and turns them into the gate's
`http-probes` check.

Which source the gate uses is a fact read from AWS: the live test listener's `bluegreen:probe` tag
(`in-vpc`) and its `bluegreen:stack` tag name the stack whose metrics to read
(:func:`probe_stack_from_tags`). Both sources fail closed: no fresh rounds means no pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from rollout.gate import CheckResult, GateThresholds
from rollout.probe_runner import (
    METRIC_FAILED,
    METRIC_P95,
    METRIC_ROUND_ERRORS,
    METRIC_SENT,
    NAMESPACE,
    PROBE_IN_VPC,
    REASONS,
    TAG_PROBE,
    colour_dimensions,
    stack_dimensions,
    target_group_dimension,
)

__all__ = ["WINDOW_MINUTES", "MIN_ROUNDS", "probe_stack_from_tags", "in_vpc_probe_stack", "in_vpc_probe_check"]

WINDOW_MINUTES = 3  # rounds older than this are not evidence about the colour now
MIN_ROUNDS = 2  # rounds (minutes with probes) the window must hold: one round is one look
_STACK_TAG = "bluegreen:stack"
_REASON_TEXT = {
    "tls": "TLS verification failed",
    "connect": "connection failed",
    "timeout": "timed out",
    "status": "unexpected HTTP status",
    "protocol": "no valid HTTP response",
}


def probe_stack_from_tags(tags: Mapping[str, str] | None) -> str | None:
    """The stack whose in-VPC probe metrics judge the colour behind this (test) listener, else None.

    `tags` are the live test listener's tags: `bluegreen:probe=in-vpc` and `bluegreen:stack=<stack>`.
    """
    if not tags or tags.get(TAG_PROBE) != PROBE_IN_VPC:
        return None
    stack = tags.get(_STACK_TAG)
    return stack if stack else None


def in_vpc_probe_stack(live: Any) -> str | None:
    """:func:`probe_stack_from_tags` of a `rollout.live.LiveState`'s test listener (None without one)."""
    test = getattr(live, "test", None)
    return probe_stack_from_tags(test.tags if test is not None else None)


def _query(qid: str, metric: str, dims: list[dict[str, str]], stat: str) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dims}, "Period": 60, "Stat": stat},
        "ReturnData": True,
    }


def _series(cloudwatch, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
    pages = cloudwatch.get_paginator("get_metric_data").paginate(MetricDataQueries=queries, StartTime=start, EndTime=end)
    for page in pages:
        for r in page.get("MetricDataResults", []):
            values.setdefault(r["Id"], []).extend(float(v) for v in r.get("Values", []) if v is not None)
    return values


def in_vpc_probe_check(
    cloudwatch,
    *,
    stack: str,
    color: str,
    target_group_arn: str,
    thresholds: GateThresholds,
    now: datetime,
) -> CheckResult:
    """The `http-probes` check from the probe function's metrics of the last WINDOW_MINUTES.

    Passes when at least MIN_ROUNDS rounds probed this colour's target group, at least
    `minSuccessRatio` of their probes succeeded, and no round's p95 latency exceeded `maxP95Ms`.
    AWS faults propagate (the gate turns them into a failed check).
    """
    th = thresholds
    dims = colour_dimensions(stack, color, target_group_arn)
    end = now.astimezone(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    start = end - timedelta(minutes=WINDOW_MINUTES)
    queries = [
        _query("sent", METRIC_SENT, dims, "Sum"),
        _query("failed", METRIC_FAILED, dims, "Sum"),
        _query("p95", METRIC_P95, dims, "Maximum"),
        _query("errors", METRIC_ROUND_ERRORS, stack_dimensions(stack), "Sum"),
        *(_query(f"r_{r}", METRIC_FAILED, [*dims, {"Name": "Reason", "Value": r}], "Sum") for r in REASONS),
    ]
    v = _series(cloudwatch, queries, start, end)
    rounds = sum(1 for x in v["sent"] if x > 0)
    sent = sum(v["sent"])
    failed = min(sum(v["failed"]), sent)
    ok = sent - failed
    worst_p95 = max(v["p95"]) if v["p95"] else None
    reasons = {r: int(sum(v[f"r_{r}"])) for r in REASONS if sum(v[f"r_{r}"]) > 0}
    round_errors = int(sum(v["errors"]))
    tg = target_group_dimension(target_group_arn)
    span = f"in the last {WINDOW_MINUTES} min"
    data: dict[str, Any] = {
        "source": "in-vpc",
        "stack": stack,
        "target_group": tg,
        "window_min": WINDOW_MINUTES,
        "rounds": rounds,
        "probes": int(sent),
        "passed": int(ok),
        "failures": reasons,
        "round_errors": round_errors,
        "worst_round_p95_ms": worst_p95,
        "max_p95_ms": th.max_p95_ms,
    }
    if rounds < MIN_ROUNDS:
        text = (
            f"in-VPC probes: {rounds} round{'s' if rounds != 1 else ''} of results for {color} ({tg}) {span}, "
            f"{MIN_ROUNDS} required: is the stack's probe function running and is the test listener on {color}?"
        )
        if round_errors:
            text += f" (the probe function could not probe in {round_errors} round{'s' if round_errors != 1 else ''}: see its log)"
        return CheckResult("http-probes", False, text, data)
    needed = math.ceil(th.min_success_ratio * sent - 1e-9)
    problems: list[str] = []
    if ok < needed:
        why = ", ".join(f"{_REASON_TEXT.get(r, r)} {n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
        problems.append(f"{int(failed)}/{int(sent)} in-VPC probes of {color} failed {span}" + (f" ({why})" if why else "")
                        + (f"; {int(ok)} passed, {needed} required" if th.min_success_ratio < 1 else ""))
    if worst_p95 is not None and worst_p95 > th.max_p95_ms:
        problems.append(f"in-VPC probe p95 reached {worst_p95:g} ms {span} > {th.max_p95_ms:g} ms")
    if problems:
        return CheckResult("http-probes", False, "; ".join(problems), data)
    text = f"{int(ok)}/{int(sent)} in-VPC probes of {color} passed over {rounds} rounds {span}"
    if worst_p95 is not None:
        text += f", worst round p95 {worst_p95:.0f} ms"
    if failed:
        text += f" (tolerated: {int(failed)} failed)"
    return CheckResult("http-probes", True, text, data)
