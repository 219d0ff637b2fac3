"""CloudWatch reads for the judge: per-minute, per-colour counts over the same minutes.

For each colour's target group (dimensions ``TargetGroup`` + ``LoadBalancer``), Period 60, Sum:
``RequestCount``, ``HTTPCode_Target_5XX_Count``, ``TargetConnectionErrorCount``; and for the load
balancer alone (dimension ``LoadBalancer``; the ALB publishes no target-group dimension for it)
``HTTPCode_ELB_5XX_Count``. Slow requests, when a threshold is set, come from a second
GetMetricData call on ``TargetResponseTime`` with the trimmed-count statistic ``TC(x:)`` (the
number of requests whose response time is above x seconds) -- a count, not a per-minute percentile.
The judge's ``errors`` kind is target 5xx + target connection errors (both are requests that failed).

With ``synthetic_stack`` set, the same call also reads the probe function's synthetic load per colour
(namespace ``bluegreen``, ``SyntheticRequests`` and ``SyntheticFailed`` Sum, dimensions Stack and
TargetGroup; ``rollout.synthetic_load``): requests sent straight to the targets, so never part of the
ALB counts above; they become the judge's separate synthetic stratum (kind ``errors``). And
``SyntheticRepresentative``: the minutes whose load was sent under the operator's declaration that the
synthetic path is representative of user requests (``MinuteSeries.synthetic_representative``).

A minute with no datapoint is zero (the ALB publishes nothing when nothing happened), never unknown.
The client is passed in; every AWS fault propagates to the caller (the gate turns it into a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from .judge import Minute
from .probe_runner import NAMESPACE as SYNTHETIC_NAMESPACE
from .synthetic_load import METRIC_SYNTHETIC_FAILED, METRIC_SYNTHETIC_REPRESENTATIVE, METRIC_SYNTHETIC_SENT

__all__ = ["NAMESPACE", "MinuteSeries", "dimension_value", "read_minutes", "read_traffic_summary", "slow_stat"]

NAMESPACE = "AWS/ApplicationELB"
_SYNTHETIC = (("synthetic", METRIC_SYNTHETIC_SENT), ("synthetic_failed", METRIC_SYNTHETIC_FAILED),
              ("synthetic_representative", METRIC_SYNTHETIC_REPRESENTATIVE))
_COUNTS = (("requests", "RequestCount"), ("5xx", "HTTPCode_Target_5XX_Count"), ("connection", "TargetConnectionErrorCount"))


def dimension_value(arn: str, kind: str) -> str:
    """CloudWatch dimension value from an ARN: 'targetgroup/n/id' or 'app/n/id'. ValueError otherwise."""
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    if kind == "TargetGroup" and resource.startswith("targetgroup/") and resource.count("/") == 2:
        return resource
    if kind == "LoadBalancer" and resource.startswith("loadbalancer/app/") and resource.count("/") == 3:
        return resource[len("loadbalancer/"):]
    raise ValueError(f"cannot derive the CloudWatch {kind} dimension from {arn!r} (an ALB is required)")


def slow_stat(threshold_ms: float) -> str:
    """The trimmed-count statistic counting requests slower than ``threshold_ms``: 'TC(0.5:)' for 500 ms."""
    return f"TC({threshold_ms / 1000:g}:)"


@dataclass(frozen=True)
class MinuteSeries:
    """Both colours over the same whole minutes, oldest first, plus the load balancer's own 5xx."""

    starts: tuple[datetime, ...]
    minutes: tuple[Minute, ...]
    elb_5xx: tuple[float, ...]
    kinds: tuple[str, ...]  # the bad-event kinds that were counted
    # per minute: the probe function published, for both colours, that its synthetic path was declared representative
    declared: tuple[bool, ...] = ()

    @property
    def synthetic_representative(self) -> bool:
        """Every minute with synthetic load in it was sent under the declaration (bluegreen:probe.syntheticRepresentative),
        and there is at least one: a declaration made mid-step, by the update being judged or later, covers no minute
        before it, so it cannot vouch for load sent without it."""
        loaded = [i for i, m in enumerate(self.minutes) if m.stable_synthetic or m.candidate_synthetic]
        return bool(loaded) and all(i < len(self.declared) and self.declared[i] for i in loaded)

    def totals(self) -> dict[str, float]:
        out = {"stable_requests": 0.0, "candidate_requests": 0.0, "elb_5xx": sum(self.elb_5xx)}
        for m in self.minutes:
            out["stable_requests"] += m.stable_requests
            out["candidate_requests"] += m.candidate_requests
            if m.stable_synthetic or m.candidate_synthetic:
                out["stable_synthetic"] = out.get("stable_synthetic", 0.0) + m.stable_synthetic
                out["candidate_synthetic"] = out.get("candidate_synthetic", 0.0) + m.candidate_synthetic
            for k in self.kinds:
                out[f"stable_{k}"] = out.get(f"stable_{k}", 0.0) + m.stable_bad.get(k, 0.0)
                out[f"candidate_{k}"] = out.get(f"candidate_{k}", 0.0) + m.candidate_bad.get(k, 0.0)
        return out


def _floor_minute(t: datetime) -> datetime:
    return t.astimezone(timezone.utc).replace(second=0, microsecond=0)


def _query(qid: str, metric: str, dims: list[dict[str, str]], stat: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims}, "Period": 60, "Stat": stat},
        "ReturnData": True,
    }


def _fetch(cloudwatch, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, dict[datetime, float]]:
    """Id -> {minute start: value}, following NextToken."""
    out: dict[str, dict[datetime, float]] = {q["Id"]: {} for q in queries}
    kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
    while True:
        resp = cloudwatch.get_metric_data(**kwargs)
        for r in resp.get("MetricDataResults", []):
            series = out.setdefault(r["Id"], {})
            for ts, v in zip(r.get("Timestamps", []), r.get("Values", [])):
                if v is None:
                    continue
                minute = _floor_minute(ts)
                series[minute] = series.get(minute, 0.0) + float(v)
        token = resp.get("NextToken")
        if not token:
            return out
        kwargs["NextToken"] = token


def read_minutes(
    cloudwatch,
    *,
    load_balancer_arn: str,
    stable_target_group_arn: str,
    candidate_target_group_arn: str,
    start: datetime,
    end: datetime,
    slow_threshold_ms: float | None = None,
    synthetic_stack: str | None = None,
) -> MinuteSeries:
    """Per-minute counts of both colours for the whole minutes in [start, end); with ``synthetic_stack``,
    that stack's synthetic load per colour too (a separate stratum, never added to the ALB counts)."""
    lb = dimension_value(load_balancer_arn, "LoadBalancer")
    tgs = {
        "s": dimension_value(stable_target_group_arn, "TargetGroup"),
        "c": dimension_value(candidate_target_group_arn, "TargetGroup"),
    }
    first, last = _floor_minute(start), _floor_minute(end)
    if last <= first:
        last = first + timedelta(minutes=1)
    starts = []
    t = first
    while t < last:
        starts.append(t)
        t += timedelta(minutes=1)
    queries = []
    for who, tg in tgs.items():
        dims = [{"Name": "TargetGroup", "Value": tg}, {"Name": "LoadBalancer", "Value": lb}]
        queries += [_query(f"{who}_{key}", metric, dims, "Sum") for key, metric in _COUNTS]
    queries.append(_query("elb5xx", "HTTPCode_ELB_5XX_Count", [{"Name": "LoadBalancer", "Value": lb}], "Sum"))
    if synthetic_stack:
        for who, tg in tgs.items():
            dims = [{"Name": "Stack", "Value": synthetic_stack}, {"Name": "TargetGroup", "Value": tg}]
            queries += [_query(f"{who}_{key}", metric, dims, "Sum", SYNTHETIC_NAMESPACE) for key, metric in _SYNTHETIC]
    data = _fetch(cloudwatch, queries, first, last)
    kinds = ["errors"]
    if slow_threshold_ms is not None:
        stat = slow_stat(slow_threshold_ms)
        slow_queries = []
        for who, tg in tgs.items():
            dims = [{"Name": "TargetGroup", "Value": tg}, {"Name": "LoadBalancer", "Value": lb}]
            slow_queries.append(_query(f"{who}_slow", "TargetResponseTime", dims, stat))
        data.update(_fetch(cloudwatch, slow_queries, first, last))
        kinds.append("slow")

    def at(qid: str, minute: datetime) -> float:
        return data.get(qid, {}).get(minute, 0.0)

    minutes = tuple(
        Minute(
            stable_requests=at("s_requests", m),
            candidate_requests=at("c_requests", m),
            stable_bad={k: _bad(at, "s", k, m) for k in kinds},
            candidate_bad={k: _bad(at, "c", k, m) for k in kinds},
            stable_synthetic=at("s_synthetic", m),
            candidate_synthetic=at("c_synthetic", m),
            stable_synthetic_bad={"errors": at("s_synthetic_failed", m)} if synthetic_stack else {},
            candidate_synthetic_bad={"errors": at("c_synthetic_failed", m)} if synthetic_stack else {},
        )
        for m in starts
    )
    declared = tuple(at("s_synthetic_representative", m) > 0 and at("c_synthetic_representative", m) > 0 for m in starts)
    return MinuteSeries(tuple(starts), minutes, tuple(at("elb5xx", m) for m in starts), tuple(kinds), declared)



def _bad(at, who: str, kind: str, minute: datetime) -> float:
    """A colour's bad events of one kind in one minute; ``errors`` = target 5xx + target connection errors."""
    if kind == "errors":
        return at(f"{who}_5xx", minute) + at(f"{who}_connection", minute)
    return at(f"{who}_{kind}", minute)


def read_traffic_summary(cloudwatch, *, load_balancer_arn: str, target_group_arns: list[str], start: datetime,
                         end: datetime) -> tuple[float, float]:
    """(requests per minute, target 5xx per request) of these target groups together over [start, end),
    from hourly sums: the traffic the bake planner assumes."""
    lb = dimension_value(load_balancer_arn, "LoadBalancer")
    queries = []
    for i, arn in enumerate(target_group_arns):
        dims = [{"Name": "TargetGroup", "Value": dimension_value(arn, "TargetGroup")}, {"Name": "LoadBalancer", "Value": lb}]
        for key, metric in _COUNTS[:2]:
            q = _query(f"t{i}_{key}", metric, dims, "Sum")
            q["MetricStat"]["Period"] = 3600
            queries.append(q)
    data = _fetch(cloudwatch, queries, start, end)
    requests_n = sum(sum(v.values()) for k, v in data.items() if k.endswith("_requests"))
    errors_n = sum(sum(v.values()) for k, v in data.items() if k.endswith("_5xx"))
    minutes = max(1.0, (end - start).total_seconds() / 60)
    return requests_n / minutes, (errors_n / requests_n if requests_n else 0.0)
