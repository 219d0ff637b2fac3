"""What the traffic layer should look like for a config: ports, protocols, tags, stickiness.

Pure decisions the components call (and the policy pack reads the same tag names from here).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from .config import StackConfig
from .rules import COLORS

__all__ = [
    "TAG_COLOR",
    "TAG_LISTENER",
    "TAG_STABLE",
    "TAG_STEPS",
    "TAG_STABLE_TG",
    "TAG_BREAKING",
    "TAG_STACK",
    "ListenerPlan",
    "listener_plan",
    "parse_steps_tag",
    "steps_tag",
    "TAG_SINCE",
    "format_since",
    "parse_since",
    "since_stamp",
    "stamp_clock",
]

TAG_COLOR = "bluegreen:color"  # on each target group: blue | green
TAG_LISTENER = "bluegreen:listener"  # on each listener: production | test | redirect
TAG_STABLE = "bluegreen:stable"  # on the production listener: the declared stable colour (a label; the record is TAG_STABLE_TG)
TAG_STABLE_TG = "bluegreen:stable-tg"  # on the production listener: the stable target group's ARN (the pack's record)
TAG_STEPS = "bluegreen:steps"  # on the production listener: the steps ladder, "10/25/50/75/100"
# ELBv2 tag values allow letters, digits, spaces and _.:/=+-@ only (no commas): the ladder is "/"-separated.
STEPS_SEPARATOR = "/"
TAG_BREAKING = "bluegreen:breaking-migration"  # on the production listener: colour whose release carries a breaking schema change
TAG_STACK = "bluegreen:stack"
# On the production listener: when the current weights took effect, "<UTC ISO time> blue=<w> green=<w>".
# The program keeps it while the weights stay and restamps when they change; the pack's bake-time reads it.
TAG_SINCE = "bluegreen:weights-since"
# The simulation harness (rollout.simulate.run_program, in-process only) pins the program's clock here.
# Nothing else sets it: the engine runs the program in a fresh interpreter, where it is None, and no
# environment variable or config key reaches it (docs/safety-model.md, invariant 6).
SIMULATED_NOW: float | None = None


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
    if cfg.colors[r.candidate].breaking_migration:  # only the candidate's release can be rolled back past
        tags[TAG_BREAKING] = r.candidate
    tags.update(_workload_tags(cfg))
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


_ISO = "%Y-%m-%dT%H:%M:%SZ"
_SINCE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)((?:\s+[a-z]+=\d{1,3})+)$")


def format_since(when: float, weights: Mapping[str, int]) -> str:
    """The `bluegreen:weights-since` value: '<UTC ISO time> blue=<w> green=<w>'."""
    stamp = datetime.fromtimestamp(int(when), timezone.utc).strftime(_ISO)
    return " ".join([stamp, *(f"{c}={int(weights.get(c, 0))}" for c in COLORS)])


def parse_since(value: Any) -> tuple[float, dict[str, int]] | None:
    """(epoch seconds, weights) from a `bluegreen:weights-since` value, or None if malformed."""
    if not isinstance(value, str):
        return None
    m = _SINCE_RE.match(value.strip())
    if not m:
        return None
    try:
        when = datetime.strptime(m.group(1), _ISO).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
    weights: dict[str, int] = {}
    for pair in m.group(2).split():
        color, _, w = pair.partition("=")
        weights[color] = int(w)
    if set(weights) != set(COLORS):
        return None
    return when, weights


def since_stamp(weights: Mapping[str, int], previous: Any, now: float) -> str:
    """The stamp to deploy: the previous one while the weights are unchanged, else a new one at `now`.

    Keeping the stamp makes an update that moves no traffic (a finish, an image change) leave the
    bake clock alone, and keeps the program deterministic for a given previous deployment.
    """
    prev = parse_since(previous)
    if prev is not None and prev[1] == {c: int(weights.get(c, 0)) for c in COLORS}:
        return str(previous).strip()
    return format_since(now, weights)


def stamp_clock() -> float:
    """Now, in epoch seconds (the simulation harness's pinned clock inside `run_program`)."""
    return SIMULATED_NOW if SIMULATED_NOW is not None else time.time()


def _workload_tags(cfg: StackConfig) -> dict[str, str]:
    """What each colour runs (policy/workload.py compares it with the live listener) and a break-glass reason."""
    from .workload import TAG_BREAK_GLASS, TAG_WORKLOAD, stack_record

    tags = {TAG_WORKLOAD: stack_record(cfg)}
    if cfg.break_glass_reason:
        tags[TAG_BREAK_GLASS] = cfg.break_glass_reason
    return tags
