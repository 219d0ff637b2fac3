"""How long the live weights have held, and when the next promotion is allowed (the pack's bake-time).

Pure: the stamp comes from the live production listener (`bluegreen:weights-since`), the bake minutes
from the stack's pack config (`policy/<stack>.json`, `bake-time.minutes`; the pack's default is 10).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .desired import parse_since

__all__ = ["BakeStatus", "bake_status", "bake_minutes", "DEFAULT_BAKE_MINUTES"]

DEFAULT_BAKE_MINUTES = 10.0  # policy/pack_config.py: bake-time.minutes default


@dataclass(frozen=True)
class BakeStatus:
    """Where the bake clock stands."""

    since: float | None  # epoch seconds the current weights took effect; None = unknown
    held_seconds: float | None
    next_allowed_at: float | None  # epoch seconds; None = unknown (the pack would refuse until a stamp exists)
    wait_seconds: float | None  # 0 = a promotion is allowed now

    def text(self) -> str:
        if self.held_seconds is None:
            return "weights held: unknown (no valid bluegreen:weights-since on the listener); the next promotion waits for one"
        held = _duration(self.held_seconds)
        if not self.wait_seconds:
            return f"weights held {held}; next promotion allowed now"
        return f"weights held {held}; next promotion allowed in {_duration(self.wait_seconds)}"


def _duration(seconds: float) -> str:
    s = int(max(0, seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def bake_status(weights_since: Any, minutes: float, now: float, live_weights: Mapping[str, int] | None = None) -> BakeStatus:
    """The bake clock from the live stamp. A stamp whose weights differ from the live ones is not trusted."""
    parsed = parse_since(weights_since)
    if parsed is None:
        return BakeStatus(None, None, None, None)
    when, weights = parsed
    if live_weights is not None and any(int(live_weights.get(c, 0)) != w for c, w in weights.items()):
        return BakeStatus(None, None, None, None)
    allowed = when + minutes * 60
    return BakeStatus(when, now - when, allowed, max(0.0, allowed - now))


def bake_minutes(project_dir: Path, stack: str) -> float:
    """`bake-time.minutes` of policy/<stack>.json (0 when the policy is disabled; the default when unset)."""
    path = project_dir / "policy" / f"{stack}.json"
    try:
        cfg = json.loads(path.read_text()).get("bake-time", {})
    except (OSError, ValueError, AttributeError):
        return DEFAULT_BAKE_MINUTES
    if cfg == "disabled" or (isinstance(cfg, Mapping) and cfg.get("enforcementLevel") == "disabled"):
        return 0.0
    minutes = cfg.get("minutes", DEFAULT_BAKE_MINUTES) if isinstance(cfg, Mapping) else DEFAULT_BAKE_MINUTES
    return float(minutes) if isinstance(minutes, (int, float)) and not isinstance(minutes, bool) and minutes >= 0 else DEFAULT_BAKE_MINUTES
