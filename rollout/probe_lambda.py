"""The in-VPC probe function's Lambda entry point: thin on purpose.

`handler(event, context)` reads its settings from the environment, builds boto3 clients and calls
`rollout.probe_runner` (which takes them as arguments), as aws-lambda-powertools' examples do. It
runs every minute from an EventBridge schedule; what it publishes is read by the health gate from
anywhere (`rollout.probe_evidence`). Standard library and boto3 only: the Lambda runtime has boto3.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import botocore.config

from rollout.probe_runner import ProbeSettings, probe_round, publish_round
from rollout.synthetic_load import publish_synthetic, synthetic_round

__all__ = ["handler", "synthetic_budget"]

# AWS calls are bounded so that a round always ends well inside the function's timeout.
_AWS_CONFIG = botocore.config.Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})


def synthetic_budget(context: Any, timeout_s: float, cap_s: float = 20.0) -> float:
    """Seconds during which the synthetic round may start pairs: a started pair takes up to two request
    timeouts more, and publishing needs a few seconds, all before the function's own timeout."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return cap_s
    return max(0.0, min(cap_s, remaining_ms() / 1000 - 4.0 - 2 * timeout_s))


def handler(event: Any, context: Any) -> dict[str, Any]:
    """One probe round (and, when configured, one round of synthetic load), published. Returns the
    round as JSON-ready data (also logged)."""
    settings = ProbeSettings.from_env(os.environ)
    session = boto3.session.Session()
    elbv2 = session.client("elbv2", config=_AWS_CONFIG)
    ec2 = session.client("ec2", config=_AWS_CONFIG)
    cloudwatch = session.client("cloudwatch", config=_AWS_CONFIG)
    result = probe_round(settings, elbv2=elbv2, ec2=ec2)
    print(result.summary())  # the function's log line per round
    publish_round(cloudwatch, result)
    out = result.to_dict()
    if settings.synthetic_per_minute:
        synthetic = synthetic_round(settings, elbv2=elbv2, budget_s=synthetic_budget(context, settings.timeout_s))
        print(synthetic.summary())
        publish_synthetic(cloudwatch, synthetic)
        out["synthetic"] = synthetic.to_dict()
    return out
