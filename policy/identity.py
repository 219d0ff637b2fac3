"""colour-identity (invariant 3): a target group's colour never changes once it is attached to the
load balancer, and the live record is changed only by the listener's own checked update.

Target groups are found by name (their identity in a region, set by the provider's autonaming before
the pack sees the inputs); separate `aws:lb/tag:Tag` resources by the ARN they tag.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from rollout.desired import TAG_COLOR, TAG_SINCE, TAG_STABLE, TAG_STABLE_TG, TAG_STEPS
from rollout.live import aws_fault_reason, bounded_read, fault_is_environmental
from rollout.workload import TAG_WORKLOAD

from clients import aws_client, region_of
from guard import resource_policy
from offline import offline_section
from props import tags_of

__all__ = ["colour_identity", "check_colour_identity_is_immutable"]

NAME = "colour-identity"
TARGET_GROUP_TYPES = frozenset({"aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"})
TAG_TYPES = frozenset({"aws:lb/tag:Tag", "aws:alb/tag:Tag"})
RECORD_TAGS = (TAG_STABLE_TG, TAG_STEPS, TAG_SINCE, TAG_STABLE, TAG_WORKLOAD)  # TAG_WORKLOAD: what each colour may run


def _live_target_group(elbv2, *, name: str | None = None, arn: str | None = None) -> tuple[str, str | None, bool] | None:
    """(ARN, live colour, attached to a load balancer) of a target group, or None if it does not exist."""
    try:
        found = elbv2.describe_target_groups(**({"Names": [name]} if name else {"TargetGroupArns": [arn]}))["TargetGroups"]
    except Exception as e:  # noqa: BLE001
        code = getattr(e, "response", {}).get("Error", {}).get("Code") if hasattr(e, "response") else None
        if code in ("TargetGroupNotFound", "ValidationError"):
            return None
        raise
    if not found:
        return None
    tg = found[0]
    tags = elbv2.describe_tags(ResourceArns=[tg["TargetGroupArn"]])["TagDescriptions"]
    color = next((t["Value"] for d in tags for t in d.get("Tags", []) if t["Key"] == TAG_COLOR), None)
    return tg["TargetGroupArn"], color, bool(tg.get("LoadBalancerArns"))


def _client_for(args: ResourceValidationArgs, arn: str | None):
    return aws_client("elbv2", region_of(arn) if arn else None)


def check_colour_identity_is_immutable(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Colour identity is immutable once a target group carries traffic; swapping or re-tagging is refused."""
    offline, problem = offline_section(args)
    if offline is not None or problem is not None:
        return  # offline: nothing live to compare with (the plan's target groups keep their colours)
    props = args.props
    if args.resource_type in TARGET_GROUP_TYPES:
        name = props.get("name")
        if not isinstance(name, str) or not name:
            return  # a target group not created yet has no identity to keep
        proposed: Any = tags_of(props).get(TAG_COLOR)
        subject = f"target group {name}"

        def read():
            return _live_target_group(_client_for(args, None), name=name)
    elif args.resource_type in TAG_TYPES:
        arn, key, value = props.get("resourceArn"), props.get("key"), props.get("value")
        if not isinstance(arn, str) or not isinstance(key, str):
            return
        if key in RECORD_TAGS and ":listener/" in arn:
            report_violation(
                f"the rollout record ({key}) on a listener changes only through that listener's own update, where the pack "
                f"checks the transition; a separate tag resource may not set it: {args.name} sets {key}={value!r} on {arn}"
            )
            return
        if key != TAG_COLOR:
            return
        proposed, subject = value, f"target group {arn}"

        def read():
            return _live_target_group(_client_for(args, arn), arn=arn)
    else:
        return
    try:
        live = bounded_read(read, f"the live tags of {subject}")
    except Exception as e:  # noqa: BLE001
        if fault_is_environmental(e):
            return  # AWS unreadable for a reason no input causes: this check cannot refuse a rollback's update
        report_violation(f"a target group's colour may not change once it carries traffic, and {subject} cannot be read: {aws_fault_reason(e)}")
        return
    if live is None:
        return
    live_arn, live_color, attached = live
    if attached and live_color is not None and proposed != live_color:
        report_violation(
            f"a target group's colour may not change once it is attached to the load balancer: {subject} ({live_arn}) is "
            f"{live_color} live and this update makes it {proposed!r}"
        )


def colour_identity() -> ResourceValidationPolicy:
    return resource_policy(
        NAME,
        (
            "Checks whether a target group attached to the load balancer keeps its live bluegreen:color (on the target group "
            "or through an aws:lb/tag:Tag), and whether a separate tag resource tries to set the rollout record on a listener."
        ),
        check_colour_identity_is_immutable,
        Severity.CRITICAL,
    )
