"""Synthetic load for thin services, sent from inside the VPC by the probe function, counted apart.

While the production listener splits traffic between both colours, :func:`synthetic_round` sends the
same number of GETs to each colour's healthy targets -- straight to their addresses
(``elasticloadbalancing:DescribeTargetHealth``), never through the load balancer, so the ALB's
per-target-group counts, which the judge reads as user traffic, never include them (those metrics
have no listener dimension: load through the test listener or a header route would be inside them).
:func:`publish_synthetic` puts their counts per colour into the probe namespace under their own
metric names (``SyntheticRequests``, ``SyntheticFailed``; dimensions Stack and TargetGroup), and the
judge weighs them as a separate stratum (``rollout.judge``, read by ``rollout.metrics``). The
requests go in pairs, one per colour, so a round cut short by its budget still sent both colours the
same number.

Runs inside AWS Lambda next to ``rollout.probe_runner``: standard library and boto3 only.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from rollout.live import read_live_state
from rollout.probe_runner import NAMESPACE, ProbeSettings, probe_once, round_problem, target_group_dimension

__all__ = [
    "METRIC_SYNTHETIC_SENT",
    "METRIC_SYNTHETIC_FAILED",
    "METRIC_SYNTHETIC_REPRESENTATIVE",
    "SyntheticColour",
    "SyntheticRound",
    "synthetic_dimensions",
    "healthy_targets",
    "synthetic_round",
    "publish_synthetic",
]

METRIC_SYNTHETIC_SENT = "SyntheticRequests"  # Count, per target group: synthetic requests sent straight to its targets
METRIC_SYNTHETIC_FAILED = "SyntheticFailed"  # Count, per target group: those answered 5xx or not at all
# Count (1 a round), per target group, only with bluegreen:probe.syntheticRepresentative: the operator declared the
# synthetic path representative of user requests while this round ran (the gate reads it with the counts).
METRIC_SYNTHETIC_REPRESENTATIVE = "SyntheticRepresentative"
_SYNTHETIC_BUDGET_S = 20.0  # a synthetic round stops starting pairs after this (the function's timeout is 30 s)
_SYNTHETIC_WORKERS = 32


@dataclass(frozen=True)
class SyntheticColour:
    """The synthetic requests one colour's targets got in one round."""

    color: str
    target_group_arn: str
    sent: int
    failed: int  # answered 5xx, or not at all (connect, timeout, protocol)
    failures: Mapping[str, int] = field(default_factory=dict)  # reason -> count (REASONS)


@dataclass(frozen=True)
class SyntheticRound:
    """One round of synthetic load: per colour, or why none was sent."""

    stack: str
    at: datetime
    colours: tuple[SyntheticColour, ...] = ()
    skipped: str | None = None  # why nothing was sent (not an error: e.g. no traffic split)
    representative: bool = False  # sent under the operator's declaration that the path is representative

    def summary(self) -> str:
        if self.skipped:
            return f"bluegreen synthetic load ({self.stack}): none: {self.skipped}"
        return f"bluegreen synthetic load ({self.stack}): " + "; ".join(
            f"{c.color} {c.failed}/{c.sent} failed" for c in self.colours)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "at": self.at.isoformat(), "skipped": self.skipped,
            "colours": [{"color": c.color, "target_group_arn": c.target_group_arn, "sent": c.sent, "failed": c.failed,
                         "failures": dict(c.failures)} for c in self.colours],
        }


def synthetic_dimensions(stack: str, target_group_arn: str) -> list[dict[str, str]]:
    """The dimensions of the synthetic metrics (the judge's read, rollout.metrics, queries exactly these)."""
    return [{"Name": "Stack", "Value": stack}, {"Name": "TargetGroup", "Value": target_group_dimension(target_group_arn)}]


def healthy_targets(elbv2, target_group_arn: str) -> list[tuple[str, int]]:
    """(address, port) of the target group's healthy targets: where the load balancer would send requests."""
    out = []
    for d in elbv2.describe_target_health(TargetGroupArn=target_group_arn).get("TargetHealthDescriptions", []):
        target = d.get("Target") or {}
        if (d.get("TargetHealth") or {}).get("State") == "healthy" and target.get("Id") and target.get("Port"):
            out.append((str(target["Id"]), int(target["Port"])))
    return out


def _synthetic_request(address: str, port: int, path: str, host: str, timeout_s: float) -> str:
    """One synthetic GET straight to a target (plain HTTP, as the load balancer speaks to it): "" when it
    was answered below 500, else the reason kind. Never raises."""
    outcome = probe_once(address, port, path, host=host, tls=False, timeout_s=timeout_s, expected_status=0)
    if outcome.reason in ("status", "protocol") and outcome.status is not None:  # answered: only a 5xx is a failure
        return "status" if outcome.status >= 500 else ""
    return outcome.reason or "protocol"


def synthetic_round(
    settings: ProbeSettings,
    *,
    elbv2,
    clock: Callable[[], datetime] | None = None,
    budget_s: float = _SYNTHETIC_BUDGET_S,
) -> SyntheticRound:
    """Send ``settings.synthetic_per_minute`` requests to each colour's healthy targets. Never raises.

    Only while the live production listener sends traffic to both colours (the judge compares them
    only then) and both have healthy targets. The requests go in pairs (one per colour, the order
    alternating) through one pool; after ``budget_s`` no new pair starts, so both colours are always
    sent the same number.
    """
    at = (clock or (lambda: datetime.now(timezone.utc)))()
    m = settings.synthetic_per_minute
    if m <= 0:
        return SyntheticRound(settings.stack, at, skipped="synthetic load is off")
    try:
        live = read_live_state(elbv2, settings.load_balancer_arn)
        prod = live.production
        if prod is None or len(prod.target_groups) != 2 or any(prod.weights.get(c, 0) <= 0 for c in prod.target_groups):
            return SyntheticRound(settings.stack, at, skipped="the production listener does not split traffic between both colours")
        colours = sorted(prod.target_groups)
        targets = {c: healthy_targets(elbv2, prod.target_groups[c]) for c in colours}
    except Exception as exc:  # AWS faults: nothing sent, the log says why
        return SyntheticRound(settings.stack, at, skipped=round_problem(exc))
    empty = [c for c in colours if not targets[c]]
    if empty:
        return SyntheticRound(settings.stack, at, skipped=f"no healthy targets in {', '.join(empty)}")
    host = settings.hostname or live.dns_name
    deadline = time.monotonic() + budget_s

    def pair(i: int) -> dict[str, str] | None:
        if time.monotonic() >= deadline:
            return None
        out = {}
        for c in (colours if i % 2 == 0 else colours[::-1]):
            address, port = targets[c][i % len(targets[c])]
            path = settings.synthetic_path or live.health_paths.get(c) or "/"
            out[c] = _synthetic_request(address, port, path, host, settings.timeout_s)
        return out

    with ThreadPoolExecutor(max_workers=min(m, _SYNTHETIC_WORKERS), thread_name_prefix="bluegreen-synthetic") as pool:
        pairs = [p for p in pool.map(pair, range(m)) if p is not None]
    result = []
    for c in colours:
        failures = Counter(p[c] for p in pairs if p[c])
        result.append(SyntheticColour(c, prod.target_groups[c], len(pairs), sum(failures.values()), dict(failures)))
    return SyntheticRound(settings.stack, at, tuple(result), representative=settings.synthetic_representative)


def publish_synthetic(cloudwatch, round_: SyntheticRound) -> int:
    """Put the round's synthetic counts into CloudWatch (namespace ``bluegreen``); returns the datum count.
    A skipped round puts nothing: a minute without datapoints is zero synthetic requests to the judge."""
    data: list[dict[str, Any]] = []
    for c in round_.colours:
        dims = synthetic_dimensions(round_.stack, c.target_group_arn)
        data.append({"MetricName": METRIC_SYNTHETIC_SENT, "Dimensions": dims, "Value": float(c.sent), "Unit": "Count", "Timestamp": round_.at})
        data.append({"MetricName": METRIC_SYNTHETIC_FAILED, "Dimensions": dims, "Value": float(c.failed), "Unit": "Count", "Timestamp": round_.at})
        if round_.representative:
            data.append({"MetricName": METRIC_SYNTHETIC_REPRESENTATIVE, "Dimensions": dims, "Value": 1.0, "Unit": "Count",
                         "Timestamp": round_.at})
    if data:
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
    return len(data)
