"""What the traffic layer should look like for a config: ports, protocols, tags, stickiness.

Pure decisions the components call (and the policy pack reads the same tag names from here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .config import StackConfig
from .rules import COLORS

__all__ = [
    "TAG_COLOR",
    "TAG_LISTENER",
    "TAG_STABLE",
    "TAG_STEPS",
    "TAG_BREAKING",
    "TAG_STACK",
    "ListenerPlan",
    "listener_plan",
    "parse_steps_tag",
    "steps_tag",
]

TAG_COLOR = "bluegreen:color"  # on each target group: blue | green
TAG_LISTENER = "bluegreen:listener"  # on each listener: production | test | redirect
TAG_STABLE = "bluegreen:stable"  # on the production listener: the declared stable colour
TAG_STEPS = "bluegreen:steps"  # on the production listener: the steps ladder, "10/25/50/75/100"
# ELBv2 tag values allow letters, digits, spaces and _.:/=+-@ only (no commas): the ladder is "/"-separated.
STEPS_SEPARATOR = "/"
TAG_BREAKING = "bluegreen:breaking-migration"  # on the production listener: colour whose release carries a breaking schema change
TAG_STACK = "bluegreen:stack"


@dataclass(frozen=True)
class ListenerPlan:
    """The listeners for one config."""

    protocol: str  # HTTPS with a certificate, else HTTP
    port: int  # production port: 443 or 80
    redirect_http: bool  # an HTTP :80 listener redirecting to HTTPS
    test_port: int
    weights: Mapping[str, int]  # colour -> weight, in COLORS order
    stickiness_enabled: bool
    stickiness_seconds: int
    production_tags: Mapping[str, str]
    header_route: tuple[str, str] | None


def listener_plan(cfg: StackConfig, stack: str) -> ListenerPlan:
    """Decide the listeners. Target groups are always listed blue then green, so that a finish
    (stable flips, weights stay) leaves the forward action untouched."""
    r = cfg.rollout
    weights = {c: r.weights[c] for c in COLORS}
    shifting = 0 < r.candidate_weight < 100
    tags = {
        TAG_LISTENER: "production",
        TAG_STABLE: r.stable,
        TAG_STEPS: steps_tag(r.steps),
        TAG_STACK: stack,
    }
    breaking = [c for c in COLORS if cfg.colors[c].breaking_migration and c == r.candidate]
    if breaking:
        tags[TAG_BREAKING] = breaking[0]
    t = cfg.traffic
    return ListenerPlan(
        protocol="HTTPS" if t.https else "HTTP",
        port=443 if t.https else 80,
        redirect_http=t.https,
        test_port=t.test_port,
        weights=weights,
        stickiness_enabled=t.stickiness_seconds > 0 and shifting,
        stickiness_seconds=max(t.stickiness_seconds, 1),
        production_tags=tags,
        header_route=(t.header_route_name, t.header_route_value) if t.header_route_name else None,
    )


def steps_tag(steps) -> str:
    """The steps ladder as a tag value: "10/25/50/75/100"."""
    return STEPS_SEPARATOR.join(str(s) for s in steps)


def parse_steps_tag(value: str | None) -> tuple[int, ...] | None:
    """The steps ladder from the production listener's tag, or None if absent or malformed."""
    if not value:
        return None
    try:
        steps = tuple(int(x) for x in value.split(STEPS_SEPARATOR))
    except ValueError:
        return None
    return steps or None
