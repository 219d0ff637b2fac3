"""abort-marker: while the reflex's abort marker stands on the live production listener, production traffic
stays on the stable target group.

The reflex (`rollout/reflex.py`) moves traffic back to stable by itself and tags the live listener
`bluegreen:aborted`; git and Pulumi state still say the old step. Until the stack config says step 0
again (the watcher or an operator commits it), an update from that config would send traffic back to
the candidate that just broke. This policy refuses any production-listener update that gives a target
group other than the live-recorded stable one traffic while the marker stands. The all-on-stable shape
(step 0) always passes, and that update is the one that clears the marker: the program never writes
`bluegreen:aborted`, so its proposed tags lack it, and AWS drops it when the update is applied with
`--refresh` (so state knows the tag is there to remove).

When live AWS cannot be read the marker cannot be seen; the traffic policies already fail closed for
promotions then, and a rollback is never refused.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from rollout.reflex import TAG_ABORTED, Abort, parse_abort

import abort_run
from ecs_behind import containers_behind
from guard import resource_policy
from routes import RouteView, route_view
from rollout.errors import LiveStateError
from workload import opt_in_route

__all__ = ["abort_marker"]

NAME = "abort-marker"


def _check(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """While the reflex's abort marker stands on the live-recorded listener, no route gives a target
    group other than the recorded stable one more traffic than it has live -- except the header route, once the
    aborted colour runs a new release (`abort_run`)."""
    view = route_view(args)
    if view is None or view.live is None:
        return
    live = view.live
    listener = view.record.listener_arn if view.record is not None else (live.production.arn if live.production else None)
    if not listener:
        return
    marker = _live_marker(live.listener_tags.get(listener, {}))
    if view.kind == "listener" and _is_that_listener(view, listener):  # a run begins with its listener
        if marker is not None:
            abort_run.note_marker(listener, marker.raw, _workloads(view))
        else:
            abort_run.forget(listener)
    if marker is None:
        kept = abort_run.marker(listener)  # this run's listener step removed it before this route was judged
        marker = _live_marker({TAG_ABORTED: kept}) if kept is not None else None
    if marker is None:
        return
    gaining = view.ungated_gains()  # every gain except traffic returning to the recorded stable target group
    if not gaining:
        return  # all on stable (step 0) or no change: the update that converges and clears the marker
    header_route = view.kind == "rule" and opt_in_route(view.conditions)
    unreleased = [why for why in (_unreleased(listener, g.arn) for g in gaining) if why] if header_route else []
    if header_route and not unreleased:
        return  # the header route follows a new release of the aborted colour
    why = f"{marker.code} at {marker.when}" if marker.code != "unknown" else f"marker {marker.raw!r}"
    names = ", ".join(f"{view.color(g.arn) or g.arn} {g.after * 100:g}% ({g.before * 100:g}% live)" for g in gaining)
    if view.stable_tg is None:
        report_violation(
            f"the reflex rolled production back ({why}) and no stable target group is recorded on the live listener; "
            f"no update may give traffic to any target group until a human restores the record, but this update gives traffic to {names}"
        )
        return
    release = (
        "; the header route may follow only a new release of that colour (its ECS services on other containers than "
        f"they ran when this update began), and {'; '.join(unreleased)}" if header_route else ""
    )
    report_violation(
        f"the reflex rolled production back to stable ({why}); while {TAG_ABORTED} stands, only the all-on-stable "
        f"shape (rollout.step 0) may be deployed, but this update gives traffic to {names}{release}. Commit step 0 "
        "(`python -m rollout rollback --to-step 0`) and `pulumi up --refresh`, which clears the marker"
    )


def _is_that_listener(view: RouteView, listener: str) -> bool:
    return view.live_route is not None and view.live_route.listener_arn == listener


def _workloads(view: RouteView) -> dict[str, frozenset[str] | str]:
    """What ECS runs behind each colour's target group other than the recorded stable one (a str: why it could not be read)."""
    out: dict[str, frozenset[str] | str] = {}
    for arn in sorted(view.live.colors if view.live is not None else {}):
        if arn == view.stable_tg:
            continue
        try:
            out[arn] = containers_behind(arn)
        except LiveStateError as e:
            out[arn] = str(e)
    return out


def _unreleased(listener: str, target_group_arn: str) -> str | None:
    """Why the colour behind `target_group_arn` did not get a new release in this run (None: it did). In `up`, ECS
    services on it must now run containers none of which it ran when the listener was judged; in a preview, its
    service's new task definition is still to be created (`up` judges the route again, against what ECS then runs)."""
    if abort_run.pending(target_group_arn):
        return None
    start = abort_run.started_with(listener)
    before = start.workloads.get(target_group_arn) if start is not None else None
    if before is None:
        return "what it ran when this update began is not known"
    if isinstance(before, str):
        return f"what it ran when this update began could not be read ({before})"
    try:
        now = containers_behind(target_group_arn)
    except LiveStateError as e:
        return f"what it runs now could not be read ({e})"
    if not now:
        return "no ECS service runs on its target group (a Kubernetes colour cannot be read by the pack)"
    if not now.isdisjoint(before):
        return "its ECS services still run containers it ran when this update began"
    return None


def _live_marker(tags) -> Abort | None:
    """The marker on the live listener; a tag that is there but blank is a marker too: only a listener without the
    tag has none. (A marker-shaped value naming no real time raises in `parse_abort`: the guard refuses a promotion
    naming the fault and lets a rollback through, tests/test_policy_guard.py.)"""
    if TAG_ABORTED not in tags:
        return None
    raw = tags[TAG_ABORTED]
    return parse_abort(raw) or Abort(0.0, "unknown", None, None, str(raw))


def abort_marker() -> ResourceValidationPolicy:
    return resource_policy(
        NAME,
        "Checks whether an update keeps production traffic on the recorded stable target group while the reflex's "
        "abort marker (bluegreen:aborted) stands on the live listener; step 0 always passes and clears it.",
        _check,
        Severity.CRITICAL,
    )
