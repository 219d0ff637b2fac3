"""The scheduled watcher's decision: given the declared step, the live weights and the gate, act how? Pure.

The watcher runs every few minutes. It rolls back only when the one thing it is for happens: the
candidate fails its health gate while it carries live traffic. "Pending" -- the gate failed only
because the relative judge has not seen enough evidence yet (`insufficient`) -- is never a reason
to roll back: the step keeps baking. Everything it does not understand
(drift, an unreadable load balancer, a gate that could not reach a verdict) is an alert for a human,
never an automatic change.

| declared step | live weights        | gate         | action   |
|---------------|---------------------|--------------|----------|
| 0             | as declared         | (not run)    | none     |
| 0             | candidate > 0       | (not run)    | alert    |
| > 0           | unreadable          | (not run)    | alert    |
| > 0           | candidate > 0       | fail         | rollback |
| > 0           | as declared         | pending      | none     |
| > 0           | not as declared     | pending      | alert    |
| > 0           | candidate = 0       | fail         | alert    |
| > 0           | as declared         | pass         | none     |
| > 0           | not as declared     | pass         | alert    |
| > 0           | any                 | no verdict   | alert    |
| > 0           | abort marker (reflex rolled back) | (not run) | rollback |
| 0, no hold    | abort marker        | (not run)    | rollback |

The last row: the reflex (`rollout/reflex.py`) already moved the traffic to stable and marked the
listener `bluegreen:aborted`; git must follow with step 0 and the reason, so the `pulumi up --refresh`
that follows converges and clears the marker. The commit also records the marker as
`bluegreen:aborted` (the hold: the header route stays on stable until the next release). When step 0 was
committed without it while the marker stands (by hand), the "rollback" records the hold alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

from .operations import compare_traffic, percentages
from .reflex import parse_abort
from .rules import RolloutConfig, describe_weights

__all__ = ["Action", "Decision", "decide"]


class Action(str, enum.Enum):
    """What the watcher does."""

    NONE = "none"
    ROLLBACK = "rollback"
    ALERT = "alert"


@dataclass(frozen=True)
class Decision:
    """A scheduled round's action (the watcher's, or the autopilot's own Action), the step it commits, and why."""

    action: enum.Enum  # watcher.Action, or rollout.autopilot.Action
    reason: str
    to_step: int | None = None

    def to_dict(self) -> dict:
        return {"action": self.action.value, "reason": self.reason, "toStep": self.to_step}


def decide(
    stack: str,
    declared: RolloutConfig,
    live_weights: Mapping[str, int] | None,
    gate_passed: bool | None,
    *,
    gate_message: str = "",
    live_stable: str | None = None,
    gate_pending: bool = False,
    aborted: str | None = None,
    held: bool | None = None,
) -> Decision:
    """Decide from plain data.

    `live_weights` None means the load balancer could not be read; `gate_passed` None means the
    gate was not run or reached no verdict. A rollback always goes to step 0: all traffic on the
    stable colour, the one state known to have been healthy. `held` says whether the stack config
    records the abort (`bluegreen:aborted`); None = not known (then step 0 with the marker is none).
    """
    candidate = declared.candidate
    marker = parse_abort(aborted)
    if marker is not None and declared.step > 0:
        return Decision(
            Action.ROLLBACK,
            f"{stack}: the reflex rolled production back to {declared.stable} ({marker.code}"
            f"{f' e-value {marker.e_value:g}' if marker.e_value is not None else ''} at {marker.when}"
            f"{f', {marker.colour} had {marker.weight}%' if marker.colour else ''}); committing step 0 so git and Pulumi follow",
            to_step=0,
        )
    if live_weights is None:
        if declared.step == 0:
            return Decision(Action.ALERT, f"{stack}: the live load balancer could not be read, so drift cannot be ruled out")
        return Decision(Action.ALERT, f"{stack}: rollout at step {declared.step} but the live load balancer could not be read; nothing changed")
    live = percentages(live_weights)
    drift = compare_traffic(stack, declared, live_weights, live_stable)
    if declared.step == 0:
        if drift is None and marker is not None and held is False:
            return Decision(Action.ROLLBACK, f"{stack}: step 0 is declared but the reflex's abort ({marker.code} at {marker.when}) "
                            "is not recorded as bluegreen:aborted; committing it, so the header route stays on "
                            f"{declared.stable} until the next release", to_step=0)
        if drift is None and marker is not None:
            return Decision(Action.NONE, f"{stack}: step 0 after the reflex's abort ({marker.code} at {marker.when}); "
                            "`pulumi up --refresh` clears the marker")
        if drift is None:
            return Decision(Action.NONE, f"{stack}: no rollout in flight; {declared.stable} stable with all traffic")
        return Decision(Action.ALERT, f"no rollout in flight, but {drift.explanation}")
    detail = f" ({gate_message})" if gate_message else ""
    if gate_passed is False and gate_pending:
        if drift is not None:
            return Decision(Action.ALERT, f"{candidate} is still earning its evidence, but {drift.explanation}")
        return Decision(
            Action.NONE,
            f"{stack}: {candidate} at step {declared.step} of {declared.last_step} ({describe_weights(live)}) is still "
            f"earning its evidence{detail}; keep baking",
        )
    if gate_passed is False:
        if live[candidate] > 0:
            return Decision(
                Action.ROLLBACK,
                f"{stack}: {candidate} failed its health gate while carrying {live[candidate]}% of traffic at step {declared.step}"
                f"{detail}; rolling back to step 0 ({declared.stable} 100%)",
                to_step=0,
            )
        return Decision(
            Action.ALERT,
            f"{stack}: {candidate} fails its health gate{detail}, but the ALB sends it no traffic ({describe_weights(live)}) "
            f"although step {declared.step} declares {declared.candidate_weight}%; nothing to roll back, the declared step must not be deployed",
        )
    if gate_passed is None:
        return Decision(Action.ALERT, f"{stack}: the health gate of {candidate} reached no verdict{detail}; nothing changed")
    if drift is not None:
        return Decision(Action.ALERT, f"{candidate} passes its health gate, but {drift.explanation}")
    return Decision(Action.NONE, f"{stack}: {candidate} healthy at step {declared.step} of {declared.last_step} ({describe_weights(live)})")
