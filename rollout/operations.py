"""What an operator command changes, and how live traffic compares with the stack file. Pure.

No Pulumi, no AWS, no subprocess: the CLI, the watcher and the workflows decide with these.

* An :class:`Operation` is one change of stack config (advance, rollback, finish, park, release):
  the `pulumi config set --path` settings it makes, in order, the values they replace, and the
  exact Pulumi CLI commands that apply it.
* :func:`compare_traffic` says whether the production listener sends what the stack declares,
  and if not, explains the drift in operator terms.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from . import rules
from .config import StackConfig
from .errors import TransitionError
from .rules import COLORS, ROLLOUT_KEY, RolloutConfig, describe_weights

__all__ = [
    "POLICY_PACK",
    "Setting",
    "Operation",
    "advance",
    "rollback",
    "finish",
    "park",
    "release",
    "config_set_argv",
    "up_argv",
    "stack_output_argv",
    "shell_line",
    "Drift",
    "percentages",
    "compare_traffic",
    "describe_weights",
]

POLICY_PACK = "policy"  # the policy pack directory, relative to the project


@dataclass(frozen=True)
class Setting:
    """One `pulumi config set --path KEY VALUE`, with the value it replaces (to restore it)."""

    path: str  # e.g. bluegreen:rollout.step
    value: Any
    previous: Any


@dataclass(frozen=True)
class Operation:
    """One operator command's change of stack config."""

    name: str  # advance | rollback | finish | park | release
    event: str | None  # notification event: promotion | rollback | None (no notification)
    before: RolloutConfig
    after: RolloutConfig
    settings: tuple[Setting, ...]
    summary: str  # one line: what moves where

    def commands(
        self, stack: str, *, policy_pack: str | None = POLICY_PACK, policy_pack_config: str | None = None, yes: bool = True
    ) -> list[list[str]]:
        """Every Pulumi CLI command, in order: the config sets, then the `up` with the policy pack."""
        return [*self.set_commands(stack), up_argv(stack, policy_pack=policy_pack, policy_pack_config=policy_pack_config, yes=yes)]

    def set_commands(self, stack: str) -> list[list[str]]:
        return [config_set_argv(stack, s.path, s.value) for s in self.settings]

    def restore_commands(self, stack: str) -> list[list[str]]:
        """The config sets that put the stack file back as it was (reverse order)."""
        return [config_set_argv(stack, s.path, s.previous) for s in reversed(self.settings)]


def _weights_text(cfg: RolloutConfig) -> str:
    return describe_weights(cfg.weights)


def _step_setting(before: RolloutConfig, step: int) -> Setting:
    return Setting(f"{ROLLOUT_KEY}.step", step, before.step)


def advance(cfg: StackConfig) -> Operation:
    """One step up the ladder. TransitionError at the last step (finish instead)."""
    before = cfg.rollout
    after = rules.advance(before)
    t = rules.classify(before, after)
    return Operation(
        "advance", "promotion", before, after, (_step_setting(before, after.step),),
        f"step {before.step} -> {after.step} of {before.last_step}: {t.describe()} ({_weights_text(after)})",
    )


def rollback(cfg: StackConfig, to_step: int = 0) -> Operation:
    """Back to an earlier step; 0 = all traffic on the stable colour."""
    before = cfg.rollout
    after = rules.rollback(before, to_step)
    t = rules.classify(before, after)
    return Operation(
        "rollback", "rollback", before, after, (_step_setting(before, after.step),),
        f"step {before.step} -> {after.step} of {before.last_step}: {t.describe()} ({_weights_text(after)})",
    )


def finish(cfg: StackConfig) -> Operation:
    """The candidate at 100 % becomes the stable colour at step 0. Traffic does not move."""
    before = cfg.rollout
    after = rules.finish(before)
    return Operation(
        "finish", "promotion", before, after,
        (Setting(f"{ROLLOUT_KEY}.stable", after.stable, before.stable), _step_setting(before, 0)),
        f"finish: {after.stable} becomes stable at step 0 ({_weights_text(after)}); {before.stable} is now the idle colour",
    )


def park(cfg: StackConfig) -> Operation:
    """Apply the idle policy to the colour without traffic (`bluegreen:idle.parked: true`)."""
    r = cfg.rollout
    if r.step != 0:
        raise TransitionError(
            f"park needs {ROLLOUT_KEY}.step 0: {r.candidate} carries {r.candidate_weight}% at step {r.step}; finish or roll back first"
        )
    if cfg.idle.parked:
        raise TransitionError(f"bluegreen:idle.parked is already true: {r.candidate} is parked ({cfg.idle.policy})")
    what = {"warm": "keeps its tasks (policy warm)", "scale": f"scales to {cfg.idle.replicas} (policy scale)", "zero": "scales to 0 (policy zero)"}
    return Operation(
        "park", None, r, r, (Setting("bluegreen:idle.parked", True, False),),
        f"park {r.candidate}: the idle colour {what[cfg.idle.policy]}; traffic does not move ({_weights_text(r)})",
    )


def park_delay_remaining(cfg: StackConfig, weights_since: str | None, now: float) -> float:
    """Seconds until the idle colour may be parked: `idle.delayMinutes` after it last carried traffic.

    `weights_since` is the live production listener's `bluegreen:weights-since` value (when the current
    weights took effect). Raises TransitionError when it cannot say the idle colour has been without
    traffic since a known time (then nobody knows how long the instant rollback has been available).
    """
    from .desired import parse_since

    idle = cfg.rollout.candidate
    delay = cfg.idle.delay_minutes * 60
    if delay == 0:
        return 0.0
    parsed = parse_since(weights_since)
    if parsed is None:
        raise TransitionError(
            f"park waits bluegreen:idle.delayMinutes ({cfg.idle.delay_minutes} min) after {idle} last carried traffic, but the live "
            f"listener's bluegreen:weights-since is {weights_since!r}: deploy once, or park with --ignore-delay"
        )
    when, weights = parsed
    if weights.get(idle, 0) != 0:
        raise TransitionError(f"{idle} still carries {weights[idle]}% live (bluegreen:weights-since {weights_since!r}): it cannot be parked")
    return max(0.0, when + delay - now)


def release(cfg: StackConfig, image: str) -> Operation:
    """Start a release: the new image goes to the idle colour (unparked), still at step 0."""
    r = cfg.rollout
    if r.step != 0:
        raise TransitionError(
            f"a new release starts at {ROLLOUT_KEY}.step 0; the current rollout is at step {r.step} "
            f"({r.candidate} {r.candidate_weight}%): finish or roll back first"
        )
    if not isinstance(image, str) or not image.strip() or any(ch.isspace() for ch in image):
        raise TransitionError(f"--image must be a container image reference with no spaces; got {image!r}")
    current = cfg.colors[r.candidate].image
    if image == current and not cfg.idle.parked:
        raise TransitionError(f"{r.candidate} already runs {image}: nothing to release")
    settings = [Setting(f"bluegreen:colors.{r.candidate}.image", image, current)]
    if cfg.idle.parked:
        settings.append(Setting("bluegreen:idle.parked", False, True))
    return Operation(
        "release", None, r, r, tuple(settings),
        f"release {image} on {r.candidate} (was {current}); {r.stable} keeps all traffic until you advance",
    )


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_set_argv(stack: str, path: str, value: Any) -> list[str]:
    """`pulumi config set --path KEY VALUE --stack S`."""
    return ["pulumi", "config", "set", "--path", path, _value_text(value), "--stack", stack]


def up_argv(stack: str, *, policy_pack: str | None = POLICY_PACK, policy_pack_config: str | None = None, yes: bool = True) -> list[str]:
    """`pulumi up --stack S --policy-pack policy [--policy-pack-config policy/S.json] --yes`."""
    argv = ["pulumi", "up", "--refresh", "--stack", stack]  # --refresh: see (and clear) out-of-band changes such as the reflex's abort marker
    if policy_pack:
        argv += ["--policy-pack", policy_pack]
        if policy_pack_config:
            argv += ["--policy-pack-config", policy_pack_config]
    if yes:
        argv.append("--yes")
    return argv


def stack_output_argv(stack: str, name: str) -> list[str]:
    """`pulumi stack output NAME --stack S`."""
    return ["pulumi", "stack", "output", name, "--stack", stack]


def shell_line(argv: Sequence[str]) -> str:
    """A command as one pasteable shell line (quoted only where needed)."""
    return shlex.join(argv)


# --------------------------------------------------------------------------- drift


def percentages(weights: Mapping[str, int]) -> dict[str, int]:
    """Listener weights as percentages per colour (ALB weights are relative; ours sum to 100)."""
    w = {c: max(0, int(weights.get(c, 0))) for c in COLORS}
    total = sum(w.values())
    if total in (0, 100):
        return w
    first = round(w[COLORS[0]] * 100 / total)
    return {COLORS[0]: first, COLORS[1]: 100 - first}


@dataclass(frozen=True)
class Drift:
    """The production listener does not do what the stack file declares."""

    declared: Mapping[str, int]
    live: Mapping[str, int]
    kind: str  # weights | stable-tag
    explanation: str


def compare_traffic(
    stack: str,
    declared: RolloutConfig,
    live_weights: Mapping[str, int],
    live_stable: str | None = None,
) -> Drift | None:
    """None when the listener sends the declared weights (and carries the declared stable tag).

    Otherwise a Drift whose explanation names what the file says, what the ALB does, the likely
    cause and the command that fixes it.
    """
    want = declared.weights
    have = percentages(live_weights)
    fix = (
        f"`pulumi up --stack {stack} --policy-pack {POLICY_PACK}` applies the declared weights "
        f"(or `pulumi refresh --stack {stack}` shows a hand edit)"
    )
    where = (
        f"Pulumi.{stack}.yaml declares step {declared.step} of {declared.last_step} "
        f"with {declared.stable} stable ({describe_weights(want)})"
    )
    if have != dict(want):
        stable, candidate = declared.stable, declared.candidate
        if declared.step == 0 and have[candidate] > 0:
            cause = f"{candidate} still receives {have[candidate]}% although all traffic should be on {stable}"
            if live_stable == candidate:
                cause += f": the rollout finished ({stable} stable) while the ALB still sends traffic to the old version"
            else:
                cause += ": a rollback to step 0 (or a finish) has not been deployed, or the listener was edited by hand"
        elif have[candidate] > want[candidate]:
            cause = (
                f"{candidate} gets more traffic than declared ({have[candidate]}% > {want[candidate]}%): "
                "a promotion was applied that git does not have, or the listener was edited by hand"
            )
        else:
            cause = (
                f"{candidate} gets less traffic than declared ({have[candidate]}% < {want[candidate]}%): the declared step "
                "has not been deployed yet (pulumi up pending or failed), or traffic was moved back by hand"
            )
        return Drift(dict(want), have, "weights", f"{where}, but the production listener sends {describe_weights(have)}. {cause}. {fix}.")
    if live_stable is not None and live_stable in COLORS and live_stable != declared.stable:
        return Drift(
            dict(want), have, "stable-tag",
            f"{where}, but the production listener is tagged bluegreen:stable={live_stable}: the finish that made "
            f"{declared.stable} stable has not been deployed (weights agree, {describe_weights(have)}). {fix}.",
        )
    return None
