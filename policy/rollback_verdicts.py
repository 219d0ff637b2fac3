"""Which recorded production listeners this pack process has judged, in the current engine run, to be rolled back.

A Kubernetes Deployment, Service or TargetGroupBinding is judged in an Analyze call of its own and cannot see the
listener of the same update. Two facts make the listener's verdict available to it:

* the engine sends every resource it registers to the analyzers before any step runs on it, unchanged ones
  included (pulumi/pulumi `pkg/resource/deploy/step_generator.go`, `generateSteps`: "Send the resource off to any
  Analyzers before being operated on");
* the program registers those objects only after the listeners (`depends_on`, components/kubernetes.py), and the
  SDK waits for a dependency's registration to finish before it registers a dependent.

So the listener's call comes first, in this process, in preview and in `up` alike. `note` keeps its verdict -- made
from live AWS and the proposed weights (`RouteView.is_rollback`: traffic only moves toward the live-recorded stable
target group), never from a label -- and `rolling_back` answers a later object's call, but only while the live
listener is still as the verdict saw it (preview, or `up` before the listener is applied) or as the update makes it
(`up` after), and for at most `TTL_SECONDS`. A later verdict on the same listener replaces an earlier one; a program
that registers its objects before the listener gets no verdict, and what needs one fails closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from rollout.workload import TAG_WORKLOAD

__all__ = ["note", "rolled_back_in_run", "rolling_back", "TTL_SECONDS"]

TTL_SECONDS = 1800.0  # one engine run: the objects follow their listener within it


@dataclass(frozen=True)
class _Verdict:
    rollback: bool
    at: float
    states: frozenset[tuple[str | None, tuple[tuple[str, float], ...]]]  # (workload tag, default-action shares)


_VERDICTS: dict[str, _Verdict] = {}
_LOCK = threading.Lock()


def _state(workload: str | None, shares: Mapping[str, float]) -> tuple[str | None, tuple[tuple[str, float], ...]]:
    return workload, tuple(sorted((arn, round(share, 6)) for arn, share in shares.items()))


def note(view) -> None:
    """Keep the verdict on an update of the listener that holds the live record (a `routes.RouteView`); anything
    else -- a rule, another listener, a replacement on a new port, a plan, a fault -- leaves nothing."""
    if view is None or view.kind != "listener" or view.offline or view.problem is not None or not view.recorded:
        return
    route = view.live_route
    live_tags = view.live.listener_tags.get(route.listener_arn, {})
    verdict = _Verdict(
        rollback=view.is_rollback(),
        at=time.monotonic(),
        states=frozenset({_state(live_tags.get(TAG_WORKLOAD), route.shares), _state(view.tags.get(TAG_WORKLOAD), view.shares)}),
    )
    with _LOCK:
        _VERDICTS[route.listener_arn] = verdict


def rolling_back(listener_arn: str, workload: str | None, shares: Mapping[str, float]) -> bool:
    """Whether this run's update of `listener_arn` was judged a rollback, the live listener now having the workload tag
    `workload` and default-action `shares` (target group ARN -> 0..1) that verdict saw or proposed."""
    with _LOCK:
        verdict = _VERDICTS.get(listener_arn)
    if verdict is None or not verdict.rollback or time.monotonic() - verdict.at > TTL_SECONDS:
        return False
    return _state(workload, shares) in verdict.states


def rolled_back_in_run() -> bool:
    """Whether the latest verdict on some recorded production listener in this run is a rollback, within
    `TTL_SECONDS`. For the guard alone: a Kubernetes object whose check raised cannot be tied to its listener (the
    fault may be in that very lookup), and a rollback is never refused for a fault (invariant 5). Anything that can
    read its listener uses `rolling_back`, which also checks the live state."""
    now = time.monotonic()
    with _LOCK:
        return any(v.rollback and now - v.at <= TTL_SECONDS for v in _VERDICTS.values())
