"""Reading resource inputs defensively: lists, tags, weights, forward actions, and how values are shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pulumi_policy import ResourceValidationArgs
from pulumi_policy.proxy import UnknownValueError

from rollout.desired import TAG_BREAKING, TAG_SINCE, format_since, parse_since
from rollout.rules import describe_weights

from guard import _short

__all__ = [
    "LISTENER_TYPES",
    "LISTENER_RULE_TYPES",
    "LOAD_BALANCER_TYPES",
    "TAG_SINCE",
    "TAG_BREAKING",
    "is_seq",
    "is_listener",
    "tags_of",
    "as_weight",
    "describe",
    "forward_actions",
    "format_since",
    "parse_since",
    "weights_text",
    "iso",
    "minutes_text",
]

LISTENER_TYPES = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
LISTENER_RULE_TYPES = frozenset({"aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule"})
LOAD_BALANCER_TYPES = frozenset({"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"})


# --------------------------------------------------------------------------- reading inputs


def is_seq(value: Any) -> bool:
    """A list-like value (the SDK's list proxy included), not a string."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def is_listener(args: ResourceValidationArgs) -> bool:
    return args.resource_type in LISTENER_TYPES


def tags_of(props: Mapping[str, Any]) -> dict[str, str]:
    """The resource's tags as str -> str; anything else (wrong type, unknown) is left out."""
    raw = props.get("tags") if isinstance(props, Mapping) else None
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, str] = {}
    for key in list(raw):
        try:
            value = raw[key]
        except UnknownValueError:
            continue  # an unknown tag value is simply not known yet
        if isinstance(key, str) and isinstance(value, str):
            out[key] = value
    return out


def as_weight(value: Any) -> int | None:
    """An integer weight, or None. The engine sends numbers as floats: 90.0 is 90, 10.5 is not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{value} (a boolean)"
    if isinstance(value, float):
        return f"{value:g} (not an integer)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if value is None:
        return "unset"
    return f"{_short(value, 60)} (a {type(value).__name__})"


def forward_actions(actions: Any) -> list[Mapping[str, Any]]:
    """The forward actions in a listener's defaultActions or a rule's actions."""
    if not is_seq(actions):
        return []
    return [a for a in actions if isinstance(a, Mapping) and a.get("type") == "forward"]


def _forward_groups(action: Mapping[str, Any]) -> list[Any]:
    fwd = action.get("forward")
    if isinstance(fwd, Mapping):
        groups = fwd.get("targetGroups")
        if is_seq(groups):
            return list(groups)
    return []


def weights_text(weights: Mapping[str, int]) -> str:
    """'blue 90% / green 10%' in colour order."""
    return describe_weights(weights, sep=" / ")


# --------------------------------------------------------------------------- the since stamp


# format_since / parse_since: one copy, in rollout.desired (the program writes what the pack reads).


def iso(when: float) -> str:
    return datetime.fromtimestamp(int(when), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def minutes_text(seconds: float) -> str:
    m = seconds / 60.0
    return f"{m:.1f} min" if m < 100 else f"{m:.0f} min"


