"""The rollout rules: the `bluegreen:rollout` contract, weights per step, and what a change means.

Pure functions over plain data. No Pulumi, no AWS, no clock: the program, the policy pack and the
operator CLI all decide with these, so they cannot disagree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from .errors import ConfigError, TransitionError

__all__ = [
    "COLORS",
    "ROLLOUT_KEY",
    "RolloutConfig",
    "TrafficState",
    "ChangeKind",
    "Transition",
    "other",
    "describe_value",
    "describe_weights",
    "parse_rollout",
    "validate_steps",
    "weights_for",
    "classify",
    "classify_traffic",
    "advance",
    "rollback",
    "finish",
]

COLORS: tuple[str, ...] = ("blue", "green")
ROLLOUT_KEY = "bluegreen:rollout"
_ROLLOUT_FIELDS = ("stable", "steps", "step")


def other(color: str) -> str:
    """The colour that is not `color`."""
    if color not in COLORS:
        raise ValueError(f"unknown colour {color!r}; allowed: blue | green")
    return COLORS[1] if color == COLORS[0] else COLORS[0]


def _is_int(value: Any) -> bool:
    # bool is an int subclass in Python; True is not a step.
    return isinstance(value, int) and not isinstance(value, bool)


def describe_value(value: Any) -> str:
    """A found value as an error message shows it, with its type when the type is the problem."""
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, bool):
        return f"{value} (a boolean)"
    if isinstance(value, float):
        return f"{value} (a float)"
    if isinstance(value, (list, tuple)):
        return f"{list(value)!r} (a list)"
    if isinstance(value, Mapping):
        return "an object"
    return repr(value)


def validate_steps(steps: Any, key: str = f"{ROLLOUT_KEY}.steps") -> tuple[int, ...]:
    """Check a steps ladder: a non-empty list of integers 1..100, strictly increasing, ending at 100."""
    allowed = "a list of integer percentages 1..100, strictly increasing, the last one 100 (e.g. [10, 25, 50, 75, 100])"
    if not isinstance(steps, (list, tuple)) or not steps:
        raise ConfigError(key, f"must be {allowed}; got {describe_value(steps)}")
    for i, s in enumerate(steps):
        if not _is_int(s):
            raise ConfigError(key, f"item {i} must be an integer percentage 1..100; got {describe_value(s)} in {list(steps)}")
        if not 1 <= s <= 100:
            raise ConfigError(key, f"item {i} must be between 1 and 100; got {s} in {list(steps)}")
    for a, b in zip(steps, steps[1:]):
        if b <= a:
            raise ConfigError(key, f"must be strictly increasing; got {list(steps)} ({b} follows {a})")
    if steps[-1] != 100:
        raise ConfigError(key, f"must end at 100 so the candidate can take all traffic; got {list(steps)}")
    return tuple(steps)


def describe_weights(weights: Mapping[str, int], sep: str = " · ") -> str:
    """'blue 75% · green 25%': weights in the fixed colour order."""
    return sep.join(f"{c} {int(weights.get(c, 0))}%" for c in COLORS)


@dataclass(frozen=True)
class RolloutConfig:
    """A valid `bluegreen:rollout` value."""

    stable: str
    steps: tuple[int, ...]
    step: int

    @property
    def candidate(self) -> str:
        return other(self.stable)

    @property
    def candidate_weight(self) -> int:
        return 0 if self.step == 0 else self.steps[self.step - 1]

    @property
    def weights(self) -> dict[str, int]:
        return weights_for(self.stable, self.steps, self.step)

    @property
    def last_step(self) -> int:
        return len(self.steps)

    def traffic(self) -> "TrafficState":
        return TrafficState(weights=self.weights, stable=self.stable)

    def to_dict(self) -> dict[str, Any]:
        return {"stable": self.stable, "steps": list(self.steps), "step": self.step}


def parse_rollout(raw: Any, key: str = ROLLOUT_KEY) -> RolloutConfig:
    """Validate a raw `bluegreen:rollout` object (as decoded from the stack file)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(
            key, f"must be an object with stable, steps and step (e.g. {{stable: blue, steps: [10, 25, 50, 75, 100], step: 0}}); got {describe_value(raw)}"
        )
    unknown = sorted(set(raw) - set(_ROLLOUT_FIELDS))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"is not a rollout setting; allowed: {', '.join(_ROLLOUT_FIELDS)}")
    for field in _ROLLOUT_FIELDS:
        if field not in raw:
            raise ConfigError(f"{key}.{field}", "is required")
    stable = raw["stable"]
    if stable not in COLORS:
        raise ConfigError(f"{key}.stable", f"must be blue | green; got {describe_value(stable)}")
    steps = validate_steps(raw["steps"], f"{key}.steps")
    step = raw["step"]
    if not _is_int(step):
        raise ConfigError(f"{key}.step", f"must be an integer 0..{len(steps)}; got {describe_value(step)}")
    if not 0 <= step <= len(steps):
        raise ConfigError(
            f"{key}.step",
            f"must be between 0 (all traffic on {stable}) and {len(steps)} (the last of steps {list(steps)}); got {step}",
        )
    return RolloutConfig(stable=stable, steps=steps, step=step)


def weights_for(stable: str, steps: Sequence[int], step: int) -> dict[str, int]:
    """Listener weights per colour: `100 - w` to the stable colour, `w` to the candidate."""
    w = 0 if step == 0 else steps[step - 1]
    return {stable: 100 - w, other(stable): w}


class ChangeKind(str, enum.Enum):
    """What a change of traffic means for the rollout."""

    NONE = "no-traffic-change"
    INITIAL = "initial"
    PROMOTE = "promote"
    SKIP_AHEAD = "skip-ahead"
    OFF_LADDER = "off-ladder"
    PARTIAL_ROLLBACK = "partial-rollback"
    FULL_ROLLBACK = "full-rollback"
    FINISH = "finish"

    @property
    def is_rollback(self) -> bool:
        return self in (ChangeKind.PARTIAL_ROLLBACK, ChangeKind.FULL_ROLLBACK)

    @property
    def is_promotion(self) -> bool:
        return self in (ChangeKind.PROMOTE, ChangeKind.SKIP_AHEAD, ChangeKind.OFF_LADDER)


@dataclass(frozen=True)
class TrafficState:
    """Where traffic goes: weight per colour, and which colour is declared stable (None if unknown)."""

    weights: Mapping[str, int]
    stable: str | None = None


@dataclass(frozen=True)
class Transition:
    """The meaning of a change from one traffic state to the next."""

    kind: ChangeKind
    gaining: str | None  # the colour whose weight goes up, if any
    from_weight: int  # the gaining colour's weight before (or the candidate's, when nothing gains)
    to_weight: int
    skipped: int = 0  # steps of the ladder jumped over by a promotion

    def describe(self) -> str:
        k = self.kind
        if k is ChangeKind.NONE:
            return "no change in traffic"
        if k is ChangeKind.FINISH:
            return "finish: the candidate becomes stable; traffic does not move"
        if k is ChangeKind.INITIAL:
            return "first deployment"
        move = f"{self.gaining} {self.from_weight}% -> {self.to_weight}%"
        if k is ChangeKind.SKIP_AHEAD:
            return f"promotion skipping {self.skipped} step(s): {move}"
        if k is ChangeKind.OFF_LADDER:
            return f"promotion to weights not on the steps ladder: {move}"
        if k.is_rollback:
            return f"{k.value}: {move}"
        return f"promotion: {move}"


def classify_traffic(live: TrafficState | None, proposed: TrafficState, steps: Sequence[int]) -> Transition:
    """Classify a change of listener weights.

    A rollback is traffic moving to the proposed stable colour while the stable colour is the same as
    the live one, so "rollback" never rests on the proposed config alone. Anything else that gives a
    colour more traffic is a promotion of that colour, judged against the steps ladder.
    """
    colors = sorted(set(proposed.weights) | set(live.weights if live else {}))
    if live is None:
        gaining = max(colors, key=lambda c: proposed.weights.get(c, 0)) if colors else None
        return Transition(ChangeKind.INITIAL, gaining, 0, proposed.weights.get(gaining, 0) if gaining else 0)
    gainers = [c for c in colors if proposed.weights.get(c, 0) > live.weights.get(c, 0)]
    if not gainers:
        candidate = other(proposed.stable) if proposed.stable in COLORS else None
        fw = live.weights.get(candidate, 0) if candidate else 0
        tw = proposed.weights.get(candidate, 0) if candidate else 0
        kind = ChangeKind.FINISH if live.stable != proposed.stable and proposed.stable is not None else ChangeKind.NONE
        return Transition(kind, None, fw, tw)
    gaining = max(gainers, key=lambda c: proposed.weights.get(c, 0) - live.weights.get(c, 0))
    fw, tw = live.weights.get(gaining, 0), proposed.weights.get(gaining, 0)
    if proposed.stable is not None and gaining == proposed.stable and live.stable == proposed.stable:
        candidate_after = sum(w for c, w in proposed.weights.items() if c != gaining)
        kind = ChangeKind.FULL_ROLLBACK if candidate_after == 0 else ChangeKind.PARTIAL_ROLLBACK
        return Transition(kind, gaining, fw, tw)
    ladder = [0, *steps]
    if fw in ladder and tw in ladder:
        skipped = ladder.index(tw) - ladder.index(fw) - 1
        kind = ChangeKind.PROMOTE if skipped == 0 else ChangeKind.SKIP_AHEAD
        return Transition(kind, gaining, fw, tw, skipped)
    return Transition(ChangeKind.OFF_LADDER, gaining, fw, tw)


def classify(before: RolloutConfig | None, after: RolloutConfig) -> Transition:
    """Classify a change of `bluegreen:rollout` from one config to the next."""
    return classify_traffic(before.traffic() if before else None, after.traffic(), after.steps)


def advance(config: RolloutConfig) -> RolloutConfig:
    """The next step. At the last step there is nothing to advance to: finish instead."""
    if config.step >= config.last_step:
        raise TransitionError(
            f"{ROLLOUT_KEY}.step is already {config.step}, the last step ({config.candidate} at 100%); "
            f"run finish to make {config.candidate} the stable colour"
        )
    return replace(config, step=config.step + 1)


def rollback(config: RolloutConfig, to_step: int = 0) -> RolloutConfig:
    """Back to an earlier step (0 = all traffic on the stable colour)."""
    if config.step == 0:
        raise TransitionError(f"{ROLLOUT_KEY}.step is already 0: all traffic is on {config.stable}, nothing to roll back")
    if not _is_int(to_step) or not 0 <= to_step < config.step:
        raise TransitionError(f"a rollback goes to a step from 0 to {config.step - 1} (below the current {config.step}); got {to_step!r}")
    return replace(config, step=to_step)


def finish(config: RolloutConfig) -> RolloutConfig:
    """Make the candidate stable. Allowed only at the last step, so traffic does not move."""
    if config.step != config.last_step:
        raise TransitionError(
            f"finish needs the candidate at 100%: {ROLLOUT_KEY}.step is {config.step} of {config.last_step} "
            f"({config.candidate} at {config.candidate_weight}%); advance to step {config.last_step} first"
        )
    return RolloutConfig(stable=config.candidate, steps=config.steps, step=0)
