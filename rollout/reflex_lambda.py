"""The reflex function's Lambda entry point: thin on purpose.

`handler(event, context)` reads its settings from the environment, builds boto3 clients and calls
`rollout.reflex.run` (which takes them as arguments). An EventBridge schedule invokes it every minute;
one invocation checks every 5 s for ~50 s (bounded by the time Lambda has left). Standard library and
boto3 only: the Lambda runtime has boto3.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import botocore.config

from rollout.reflex import ReflexSettings, run

__all__ = ["handler", "sns_notifier"]

# AWS calls are bounded so a check never eats the invocation; standard mode retries throttling.
_AWS_CONFIG = botocore.config.Config(connect_timeout=2, read_timeout=4, retries={"max_attempts": 3, "mode": "standard"})
_MARGIN_S = 8.0  # the last check (probes, AWS calls, a rollback) ends inside the function's timeout


def sns_notifier(sns, topic_arn: str | None):
    """notify(text) -> "" when published, else why not. Never raises."""

    def notify(text: str) -> str:
        if not topic_arn:
            return "off"
        try:
            sns.publish(TopicArn=topic_arn, Subject="bluegreen reflex", Message=text[:4000])
            return ""
        except Exception as exc:  # noqa: BLE001 - a notification never stops a rollback
            return f"SNS publish failed: {type(exc).__name__}: {exc}"

    return notify


def handler(event: Any, context: Any) -> dict[str, Any]:
    """One invocation of the reflex. Returns what it did as JSON-ready data (also logged)."""
    settings = ReflexSettings.from_env(os.environ)
    session = boto3.session.Session()
    elbv2 = session.client("elbv2", config=_AWS_CONFIG)
    ec2 = session.client("ec2", config=_AWS_CONFIG)
    sns = session.client("sns", config=_AWS_CONFIG) if settings.topic_arn else None
    cloudwatch = session.client("cloudwatch", config=_AWS_CONFIG) if settings.judge else None
    budget = settings.budget_s
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        budget = max(0.0, min(budget, remaining() / 1000.0 - _MARGIN_S))
    report = run(settings, elbv2=elbv2, ec2=ec2, cloudwatch=cloudwatch, notify=sns_notifier(sns, settings.topic_arn), budget_s=budget)
    print(report.summary(settings.stack))  # the function's log line per invocation
    return report.to_dict()
