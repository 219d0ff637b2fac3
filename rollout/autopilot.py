"""The autopilot's decision: given the declared step, the live listener and the candidate's gate, advance
one step, wait, ask for an approval, or stop? Pure (no AWS, no Pulumi, no git).

Opt-in per stack (`bluegreen:autopilot.enabled`). It only ever proposes the NEXT step (k -> k+1); the
commit it leads to is deployed by the normal deploy, with the policy pack, which judges that step again
(the gate, one step at a time, the bake time). It never rolls back: a `fail` is the watcher's and the
reflex's to act on; the autopilot stops and says so.

| situation                                                   | action   |
|-------------------------------------------------------------|----------|
| autopilot off                                               | none     |
| the reflex's abort marker stands                            | stop     |
| step 0 (no rollout in flight) or the last step (finish is a human's call) | none |
| the live weights are unreadable, or not the declared step's | wait (a deploy is pending) |
| no bake clock for the live weights                          | wait     |
| judge `fail`, or another gate check failed                  | stop     |
| baked less than the minimum bake                            | wait     |
| judge `insufficient`, baked < `maxBakeMinutes`              | wait     |
| judge `insufficient`, baked >= `maxBakeMinutes`             | stop     |
| judge `pass`, next weight > `approveAbove`                  | approval |
| judge `pass`, next weight <= `approveAbove`                 | advance  |
| no judge verdict (judge off, or it could not run)           | stop     |
"""

from __future__ import annotations

import enum
from typing import Mapping

from .config import AutopilotConfig
from .operations import percentages
from .rules import RolloutConfig
from .watcher import Decision  # the same shape: action, reason, the step it commits

__all__ = ["Action", "AutopilotConfig", "DEPLOY_CAP_MINUTES", "Decision", "decide"]

# A committed step is live once its deploy ran: the advance job deploys it in the same run (timeout 60 min).
# A step still not live after this long was refused by the pack or its deploy failed: a human looks.
DEPLOY_CAP_MINUTES = 60


class Action(str, enum.Enum):
    """What the autopilot does this round."""

    NONE = "none"  # nothing to do (off, no rollout, last step)
    WAIT = "wait"  # keep baking; ask again next round
    ADVANCE = "advance"  # commit step k+1
    APPROVAL = "approval"  # the next step needs a human: open the approval path, commit nothing
    STOP = "stop"  # the autopilot gives up on this rollout and notifies


def decide(
    stack: str,
    declared: RolloutConfig,
    config: AutopilotConfig,
    *,
    live_weights: Mapping[str, int] | None,
    baked_minutes: float | None,
    min_bake_minutes: float,
    verdict: str | None,
    gate_passed: bool | None,
    gate_message: str = "",
    aborted: bool = False,
    declared_minutes: float | None = None,
) -> Decision:
    """Decide from plain data. `live_weights` None: unreadable; `baked_minutes` None: no bake clock for
    the live weights; `verdict` is the judge's (pass / fail / insufficient, None when it gave none);
    `gate_passed` is the whole gate's (every check), None when it did not run; `declared_minutes` is how long
    ago the stack file last changed in git (None: unknown), which caps the wait for a committed step's deploy."""
    k, last = declared.step, declared.last_step
    detail = f" ({gate_message})" if gate_message else ""
    if not config.enabled:
        return Decision(Action.NONE, f"{stack}: autopilot is off (bluegreen:autopilot.enabled)")
    if aborted:
        return Decision(Action.STOP, f"{stack}: the reflex rolled production back; autopilot stops (the watcher commits step 0)")
    if k == 0:
        return Decision(Action.NONE, f"{stack}: no rollout in flight (step 0); a release starts one")
    if k >= last:
        return Decision(Action.NONE, f"{stack}: at the last step ({declared.candidate} 100%); finishing is an operator's call (`rollout finish`)")
    if live_weights is None:
        return Decision(Action.WAIT, f"{stack}: the live load balancer could not be read; nothing committed{detail}")
    if percentages(live_weights) != dict(declared.weights):
        if declared_minutes is not None and declared_minutes >= DEPLOY_CAP_MINUTES:
            return Decision(Action.STOP, f"{stack}: step {k} was committed {declared_minutes:.0f} min ago and is still not live (the ALB has "
                                         f"{dict(percentages(live_weights))}): its deploy failed or the policy pack refused it; autopilot "
                                         "stops: a human looks (`rollout status`, the deploy's log)")
        return Decision(Action.WAIT, f"{stack}: step {k} is declared but not live yet (the ALB has {dict(percentages(live_weights))}); "
                                     "waiting for its deploy")
    if baked_minutes is None:
        return Decision(Action.WAIT, f"{stack}: no bake clock (bluegreen:weights-since) for the live weights yet; waiting")
    if verdict == "fail" or (gate_passed is False and verdict != "insufficient"):
        return Decision(Action.STOP, f"{stack}: {declared.candidate} fails its health gate at step {k}{detail}; autopilot stops "
                                     "(the watcher and the reflex roll back)")
    if baked_minutes < min_bake_minutes:
        return Decision(Action.WAIT, f"{stack}: step {k} has baked {baked_minutes:.0f} of {min_bake_minutes:g} min")
    if verdict == "insufficient":
        if baked_minutes >= config.max_bake_minutes:
            return Decision(Action.STOP, f"{stack}: the judge still lacks evidence after {baked_minutes:.0f} min at step {k} "
                                         f"(autopilot.maxBakeMinutes {config.max_bake_minutes}){detail}; autopilot stops: "
                                         "a human decides (more traffic, synthetic load, or `rollout advance`)")
        return Decision(Action.WAIT, f"{stack}: the judge needs more evidence at step {k} ({baked_minutes:.0f} of at most "
                                     f"{config.max_bake_minutes} min){detail}")
    if verdict != "pass" or gate_passed is not True:
        return Decision(Action.STOP, f"{stack}: no judge verdict at step {k}{detail}; the autopilot advances only on the judge's pass")
    weight = declared.steps[k]  # the weight step k+1 gives the candidate
    if weight > config.approve_above:
        return Decision(Action.APPROVAL, f"{stack}: {declared.candidate} passes at step {k}; step {k + 1} ({weight}%) is above "
                                         f"autopilot.approveAbove ({config.approve_above}%): a human approves it", to_step=k + 1)
    return Decision(Action.ADVANCE, f"{stack}: {declared.candidate} passes at step {k} after {baked_minutes:.0f} min{detail}; "
                                    f"advancing to step {k + 1} ({weight}%)", to_step=k + 1)
