"""The reflex's abort marker across one engine run: what stood when the run began, and whether the aborted colour got
a new release in it.

`abort-marker` judges the production listener first and its header route after it (the route is registered after
the listener, and after the colours' workloads: `TrafficLayer.add_header_route`), each in an Analyze call of its own.
Two facts about that order shape this module (the same ones `rollback_verdicts` relies on: the engine analyses a
resource just before its step, and the SDK registers a resource only once its dependencies' registrations finished):

* In `pulumi up`, the listener's step runs before the route is judged. With `--refresh` that step removes the live
  `bluegreen:aborted` tag (the program never declares it). Read afresh, the route would see no marker, and a config
  edit that drops the hold would put the header route on the aborted colour in one `up --skip-preview`. So the
  marker the listener saw is kept here for the rest of the run (`note_marker`, `marker`).
* A genuine release to the aborted colour runs in the same update: its ECS service gets a new task definition before
  the route is judged. So the listener's call also keeps what each colour's ECS services ran at the start
  (`note_marker`'s `workloads`), and the route's call compares that with what they run now (`released`): a service on
  the colour's target group whose task definition's containers differ from every one it ran at the start. A new
  revision of the same containers is no release. In a preview nothing has run yet; an ECS service whose proposed task
  definition is unknown there (a new revision, created by this update) is noted as a pending release
  (`note_pending`), and `up` checks the live fact.

The kept marker lives as long as the pack process, one engine run: it never expires, because an expiry would let
the route through (an `up` that waits for ECS to reach a steady state can take longer than any fixed bound). The next
run's listener call replaces or forgets it. A pending release expires after `TTL_SECONDS` (expiry only refuses), and
a listener's call clears them, so a preview's pending release never answers an `up` judged in the same process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["TTL_SECONDS", "forget", "marker", "note_marker", "note_pending", "pending", "started_with"]

TTL_SECONDS = 1800.0


@dataclass(frozen=True)
class _Start:
    raw: str  # the marker's tag value
    at: float
    workloads: Mapping[str, frozenset[str] | str] = field(default_factory=dict)  # target group ARN -> container keys (str: why unread)


_STARTS: dict[str, _Start] = {}
_PENDING: dict[str, float] = {}  # target group ARN -> when its service was seen with an unknown new task definition
_LOCK = threading.Lock()


def note_marker(listener_arn: str, raw: str, workloads: Mapping[str, frozenset[str] | str]) -> None:
    """The listener's call: the marker stands on `listener_arn`; `workloads` is what each colour's ECS services run."""
    with _LOCK:
        _STARTS[listener_arn] = _Start(raw, time.monotonic(), dict(workloads))
        _PENDING.clear()


def forget(listener_arn: str) -> None:
    """The listener's call found no marker: whatever an earlier run of this process kept no longer stands."""
    with _LOCK:
        _STARTS.pop(listener_arn, None)
        _PENDING.clear()


def marker(listener_arn: str) -> str | None:
    """The marker that stood on `listener_arn` when this run's listener was judged (None: none stood)."""
    start = started_with(listener_arn)
    return start.raw if start is not None else None


def started_with(listener_arn: str) -> _Start | None:
    """The marker and workloads this run's listener call kept for `listener_arn` (None: no marker stood then)."""
    with _LOCK:
        return _STARTS.get(listener_arn)


def note_pending(target_group_arns: Iterable[str]) -> None:
    """An ECS service's call in a preview: its proposed task definition is a new, unknown one."""
    now = time.monotonic()
    with _LOCK:
        for arn in target_group_arns:
            _PENDING[arn] = now


def pending(target_group_arn: str) -> bool:
    with _LOCK:
        at = _PENDING.get(target_group_arn)
    return at is not None and time.monotonic() - at <= TTL_SECONDS
