"""Traffic policies on listeners and rules: valid weights, the ladder and the bake clock (invariant 6),
stable changes only by a finish (invariant 2), the migration note, and the live-state note.

Each runs BEFORE the resource is updated and compares the proposed route with the same route live
(`routes.route_view`). A rollback -- traffic moving only toward the live-recorded stable target
group -- passes every one of them (invariant 5). See docs/safety-model.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from rollout.desired import TAG_STABLE_TG, TAG_STEPS, parse_steps_tag, steps_tag
from rollout.errors import ConfigError
from rollout.rules import COLORS, other, validate_steps

import pack_config
from props import (
    LISTENER_RULE_TYPES,
    LISTENER_TYPES,
    TAG_BREAKING,
    TAG_SINCE,
    as_weight,
    describe,
    format_since,
    forward_actions,
    is_seq,
    iso,
    minutes_text,
    parse_since,
    tags_of,
    weights_text,
)
from clients import now
from guard import resource_policy
from routes import RouteView, route_view

__all__ = ["valid_weights", "one_step_at_a_time", "bake_time", "migration_guard", "live_state_readable", "stable_by_finish"]

MAX_TARGET_GROUPS = 5
MAX_WEIGHT = 999


# --------------------------------------------------------------------------- valid-weights


def _check_weights(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in LISTENER_TYPES:
        actions = args.props.get("defaultActions")
    elif args.resource_type in LISTENER_RULE_TYPES:
        actions = args.props.get("actions")
    else:
        return
    tags = tags_of(args.props)
    production = args.resource_type in LISTENER_TYPES and (TAG_STABLE_TG in tags or tags.get("bluegreen:listener") == "production")
    forwards = forward_actions(actions)
    weighted: list = []  # the targetGroups list of each weighted forward action, in order
    for n, action in enumerate(forwards):
        fwd = action.get("forward")
        if fwd is None:
            weighted.append(None)
            continue  # a plain forward to one targetGroupArn has no weights
        groups = fwd.get("targetGroups") if isinstance(fwd, Mapping) else None
        if not is_seq(groups):
            what = f"targetGroups {describe(groups)}" if isinstance(fwd, Mapping) else f"forward {describe(fwd)}"
            report_violation(f"a weighted forward action must list its target groups: forward action #{n + 1} has {what}")
            weighted.append(None)
            continue
        weighted.append(groups)
        if len(groups) > MAX_TARGET_GROUPS:
            report_violation(
                f"a forward action lists at most {MAX_TARGET_GROUPS} target groups: forward action #{n + 1} lists {len(groups)}"
            )
        for i in range(len(groups)):
            g = groups[i]
            raw = g.get("weight") if isinstance(g, Mapping) else None
            w = as_weight(raw)
            if raw is None and isinstance(g, Mapping) and not production:
                continue  # AWS defaults an omitted weight; only the production listener must be explicit
            if w is None or not 0 <= w <= MAX_WEIGHT:
                shown = describe(raw) if w is None else w
                if not isinstance(g, Mapping):
                    shown = f"no weight (the entry is {describe(g)})"
                report_violation(
                    f"forward weights must be integers 0..{MAX_WEIGHT}: target group #{i + 1} of forward action #{n + 1} "
                    f"has weight {shown}"
                )
    if not production:
        return
    if not forwards or weighted[0] is None:
        if not forwards or forwards[0].get("forward") is None:
            report_violation(
                "the production listener must forward with weights to its two colours' target groups "
                "(defaultActions[0].forward.targetGroups); found no weighted forward action"
            )
        return
    groups = weighted[0]
    weights = [as_weight(g.get("weight")) if isinstance(g, Mapping) else None for g in groups]
    if len(groups) != len(COLORS):
        report_violation(
            f"the production listener must forward to exactly {len(COLORS)} target groups (blue and green): found {len(groups)}"
        )
        return
    if all(w is not None for w in weights) and sum(weights) != 100:  # type: ignore[arg-type]
        report_violation(
            "the production listener's two colours must have weights summing to 100: found "
            f"{' + '.join(str(w) for w in weights)} = {sum(weights)}"  # type: ignore[arg-type]
        )


def valid_weights() -> ResourceValidationPolicy:
    name = "valid-weights"
    return resource_policy(
        name,
        (
            "Checks whether forward weights are integers 0..999 with at most 5 target groups per forward, "
            "and whether the listener that records the stable target group forwards to two target groups summing to 100."
        ),
        _check_weights,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- the ladder (invariant 6)


def _ladder(tag: str | None, key: str) -> tuple[tuple[int, ...] | None, str | None]:
    steps = parse_steps_tag(tag)
    if steps is None:
        return None, f"{key} is {describe(tag)}, not a ladder like 10/25/50/75/100"
    try:
        return validate_steps(list(steps), key), None
    except ConfigError as e:
        return None, str(e)


def _candidate_percent(view: RouteView, shares) -> int:
    """The share of the recorded listener that is not on the stable target group, in %."""
    return round(sum(s for arn, s in shares.items() if arn != view.stable_tg) * 100)


def check_ladder(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The ladder in force is the live one and changes only while no candidate traffic is live; a
    promotion moves exactly one rung of it."""
    view = route_view(args)
    if view is None or view.kind != "listener" or view.passes_unconditionally():
        return
    cfg = pack_config.settings("one-step-at-a-time", args.get_config())
    allow_skip = bool(cfg.get("allowSkip", False))
    if view.problem is not None:
        if view.groups:
            report_violation(f"a promotion may move only one step at a time, and whether this change does cannot be told: {view.problem}")
        return
    proposed_tag = view.tags.get(TAG_STEPS)
    if view.first_deploy:
        steps, why = _ladder(proposed_tag, f"the {TAG_STEPS} tag")
        stable = view.tags.get(TAG_STABLE_TG)
        if steps is None or stable is None:
            return  # a listener that records no rollout (valid-weights / stable-by-finish speak to it)
        w = _candidate_percent_first(view, stable)
        if w not in (0, steps[0]) and not allow_skip:
            report_violation(
                f"a first deployment must start at step 0 or the first step ({steps[0]}%) of the ladder {steps_tag(steps)}: "
                f"found the candidate at {w}%"
            )
        return
    route = view.ladder_route
    if route is None:
        return  # other listeners and rules: healthy-promotion gates every gain on them
    rec = view.record
    assert rec is not None
    if view.color(rec.stable_tg) is None:  # damaged out of band: every share would count as the candidate's
        report_violation(
            f"a promotion must move along the live ladder, and where the candidate stands on it cannot be told: the live "
            f"{TAG_STABLE_TG} is {describe(rec.stable_tg)}, no target group with a live colour on this load balancer"
        )
        return
    live_candidate = _candidate_percent(view, route.shares)
    if rec.legacy and rec.steps is None:
        live_steps, why = _ladder(proposed_tag, f"the proposed {TAG_STEPS} tag")
    else:
        live_steps, why = _ladder(rec.steps, f"the live {TAG_STEPS} tag")
    if live_steps is None:
        report_violation(f"a promotion must move along the live ladder, and the ladder is unknown: {why}")
        return
    if proposed_tag != steps_tag(live_steps) and live_candidate > 0:
        report_violation(
            f"the ladder may change only while no candidate traffic is live: the live ladder is {steps_tag(live_steps)} "
            f"with the candidate at {live_candidate}%, and this update sets {TAG_STEPS} to {describe(proposed_tag)}. "
            "Roll back to step 0 first"
        )
        return
    steps = live_steps
    if live_candidate == 0:
        steps, why = _ladder(proposed_tag, f"the proposed {TAG_STEPS} tag")
        if steps is None:
            report_violation(f"a promotion must move along a valid ladder: {why}")
            return
    before, after = live_candidate, _candidate_percent(view, view.shares)
    if after <= before:
        return
    rungs = [0, *steps]
    ladder = steps_tag(steps)
    who = next((view.color(arn) for arn, _ in view.groups if arn != view.stable_tg and view.color(arn)), None) or "the candidate"
    if before in rungs and after in rungs:
        skipped = rungs.index(after) - rungs.index(before) - 1
        if skipped > 0 and not allow_skip:
            i = rungs.index(before)
            report_violation(
                f"a promotion may move only one step of the ladder {ladder} at a time: {who} {before}% -> {after}% "
                f"skips {skipped} step(s) ({', '.join(f'{s}%' for s in rungs[i + 1:i + 1 + skipped])}); the next step is {rungs[i + 1]}%"
            )
        return
    report_violation(f"a promotion must move to the next step of the ladder {ladder}: {who} {before}% -> {after}% is not a move along it")


def _candidate_percent_first(view: RouteView, stable_tg: str) -> int:
    return round(sum(s for arn, s in view.shares.items() if arn != stable_tg) * 100)


def one_step_at_a_time() -> ResourceValidationPolicy:
    name = "one-step-at-a-time"
    return resource_policy(
        name,
        (
            "Checks whether a promotion on the listener that records the rollout moves exactly one rung of the live "
            "bluegreen:steps ladder (allowSkip: false), and whether the ladder changes only while no candidate traffic is live."
        ),
        check_ladder,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- the bake clock (invariant 6)


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        return default
    return float(value)


def check_bake_clock(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every stamp a change writes is vetted against the pack's clock, rollbacks included; a promotion
    waits until the live weights have held `minutes` by the live stamp."""
    view = route_view(args)
    if view is None or view.kind != "listener":
        return
    cfg = pack_config.settings("bake-time", args.get_config())
    minutes = _number(cfg.get("minutes"), 10.0)
    tolerance_s = _number(cfg.get("stampToleranceMinutes"), 5.0) * 60
    rollback = view.passes_unconditionally()
    if view.problem is not None:
        if not rollback and view.groups:
            report_violation(
                f"the current weights must hold for {minutes:g} min before the next promotion, and how long they have "
                f"held cannot be told: {view.problem}"
            )
        return
    route = view.ladder_route
    if not (route is not None or view.first_deploy) or (view.first_deploy and TAG_STABLE_TG not in view.tags):
        return
    proposed_w = view.weights_by_color()
    if proposed_w is None:
        return  # healthy-promotion refuses a target group without a live colour
    clock = now()
    stamp_raw = view.tags.get(TAG_SINCE)
    live_stamp_raw = view.record.since if view.record is not None else None
    live_w = view.live_weights_by_color()
    moved = proposed_w != live_w
    before_shares = route.shares if route is not None else {}
    gaining = [
        (arn, before_shares.get(arn, 0.0)) for arn, share in view.shares.items()
        if arn != view.stable_tg and share > before_shares.get(arn, 0.0) + 1e-9
    ]

    # 1. Every stamp a change writes must be trustworthy: fresh, and naming the new weights.
    if stamp_raw is not None and stamp_raw != live_stamp_raw or (moved and not rollback):
        example = format_since(clock, proposed_w)
        stamp = parse_since(stamp_raw)
        if stamp is None:
            if not rollback:  # a rollback without a stamp leaves the age unknown: the next promotion fails closed
                report_violation(
                    f"an update that moves traffic must stamp the listener tag {TAG_SINCE} with the current UTC time and "
                    f"the new weights (e.g. {example!r}) so the next step's bake time can be checked: found {describe(stamp_raw)}"
                )
        else:
            when, stamped = stamp
            if stamped != proposed_w:
                if not rollback:  # naming other weights, the stamp fails closed at the next promotion
                    report_violation(
                        f"the {TAG_SINCE} stamp must name the weights this update sets ({weights_text(proposed_w)}): found {stamp_raw!r}"
                    )
            elif abs(clock - when) > tolerance_s and not view.offline:  # offline: a simulation's clock
                report_violation(
                    f"the {TAG_SINCE} stamp of an update must be within {tolerance_s / 60:g} min of now ({iso(clock)}): "
                    f"found {stamp_raw!r}" + (" -- a rollback writing a stamp off the clock is not only a rollback" if rollback else "")
                )
    if rollback or view.first_deploy or not gaining:
        return

    # 2. The live weights must have held long enough.
    before = max((b for _, b in gaining), default=0.0)
    if before <= 0:
        return  # the gaining target group carried no traffic here: there is nothing to bake yet
    current = weights_text(live_w)
    if view.offline:
        report_violation(view.not_evaluated_offline("bake-time", f"(whether {current} has held {minutes:g} min)"))
        return
    live_stamp = parse_since(live_stamp_raw)
    if live_stamp is None:
        report_violation(
            f"{current} must hold for {minutes:g} min before the next promotion, and how long it has held is unknown: "
            f"the live listener's {TAG_SINCE} tag is {describe(live_stamp_raw)}"
        )
        return
    when, stamped = live_stamp
    if stamped != live_w:
        report_violation(
            f"{current} must hold for {minutes:g} min before the next promotion, and how long it has held is unknown: "
            f"the live {TAG_SINCE} tag records {weights_text(stamped)} (since {iso(when)}), so the weights were changed "
            "outside a checked update"
        )
        return
    age = clock - when
    if age < minutes * 60:
        report_violation(
            f"{current} must hold for {minutes:g} min before the next promotion: it has held {minutes_text(max(age, 0))} "
            f"(since {iso(when)}); promote after {iso(when + minutes * 60)}"
        )


def bake_time() -> ResourceValidationPolicy:
    name = "bake-time"
    return resource_policy(
        name,
        (
            "Checks whether every bluegreen:weights-since stamp an update writes (rollbacks included) is within "
            "stampToleranceMinutes of the pack's clock and names the new weights, and whether the live weights have "
            "held for the bake time (minutes, default 10) by the live stamp before a promotion."
        ),
        check_bake_clock,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- stable-by-finish (invariant 2)


def check_stable_changes_only_by_finish(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Stable changes only by a legitimate finish: the target group that becomes stable must hold 100% of
    the recorded listener live, keep it, and pass its gate; the record is never removed.

    The gate half runs in healthy-promotion (it owns the gate's settings)."""
    view = route_view(args)
    if view is None or view.kind != "listener" or view.passes_unconditionally():
        return
    proposed = view.tags.get(TAG_STABLE_TG)
    if view.problem is not None:
        if proposed is not None:
            report_violation(f"the stable target group may change only by a finish, and whether this update changes it cannot be told: {view.problem}")
        return
    if view.first_deploy:
        return
    rec = view.record
    if rec is None:
        if proposed is not None:
            report_violation(
                f"the stable target group may be recorded only when it already holds 100% live, and no live listener records it "
                f"({view.live.record_problem if view.live else 'live state unknown'}): this update proposes {proposed}"
            )
        return
    if not view.recorded:
        if proposed is not None and proposed != rec.stable_tg:
            report_violation(
                f"only the listener that records the rollout ({rec.listener_arn}) may name the stable target group: "
                f"this listener proposes {TAG_STABLE_TG}={proposed}, the live record is {rec.stable_tg}"
            )
        return
    if proposed == rec.stable_tg:
        return
    if proposed is None:
        report_violation(f"the record of the stable target group ({TAG_STABLE_TG}={rec.stable_tg}) may not be removed")
        return
    live_share = view.live_route.shares.get(proposed, 0.0) if view.live_route else 0.0
    new_share = view.shares.get(proposed, 0.0)
    color = view.color(proposed) or proposed
    if live_share < 1.0 - 1e-9 or new_share < 1.0 - 1e-9:
        report_violation(
            f"stable may change only by a finish: {color} must already hold 100% of the production listener live and keep it, "
            f"but it holds {live_share * 100:g}% live and {new_share * 100:g}% after this update"
        )
        return


def stable_by_finish() -> ResourceValidationPolicy:
    name = "stable-by-finish"
    return resource_policy(
        name,
        (
            "Checks whether the live-recorded stable target group (bluegreen:stable-tg) changes only by a finish: the new "
            "stable must already hold 100% of the recorded listener live, keep it, and pass its health gate."
        ),
        check_stable_changes_only_by_finish,
        Severity.CRITICAL,
    )


# --------------------------------------------------------------------------- migration-guard


def _check_migration(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    view = route_view(args)
    if view is None or not view.recorded or view.problem is not None:
        return
    marked = view.tags.get(TAG_BREAKING)
    if marked not in COLORS:
        return
    before = view.live_weights_by_color().get(marked, 0)
    after = (view.weights_by_color() or {}).get(marked, before)
    if after >= before:
        return
    report_violation(
        f"{marked}'s release carries a non-backward-compatible schema migration (listener tag {TAG_BREAKING}={marked}), "
        f"and this update moves traffic back off it: {marked} {before}% -> {after}% sends requests to {other(marked)} running "
        "against the migrated schema. The rollback is not refused (rollbacks never are); roll forward with a fix if "
        f"{other(marked)} cannot serve the migrated schema."
    )


def migration_guard() -> ResourceValidationPolicy:
    name = "migration-guard"
    return resource_policy(
        name,
        (
            "Checks whether an update moves traffic off a colour whose release is marked as carrying a non-backward-compatible "
            "schema migration (bluegreen:breaking-migration); advisory: rollbacks are never refused."
        ),
        _check_migration,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- live-state-readable


def _check_live(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    view = route_view(args)
    if view is None or not view.groups:
        return
    why = view.problem or (view.live.record_problem if view.live is not None and view.record is None else None)
    if why is None:
        return
    verdict = (
        "this listener forwards 100% to one target group, so it is let through without live verification"
        if view.narrow_shape()
        else "promotions are blocked until it can be read"
    )
    report_violation(f"the live state of the load balancer must be readable from AWS (and record the stable target group): {why}; {verdict}")


def live_state_readable() -> ResourceValidationPolicy:
    name = "live-state-readable"
    return resource_policy(
        name,
        (
            "Checks whether the load balancer's live state (routes, colours, the record of the stable target group) can be "
            "read from AWS; advisory, it explains why a promotion failed closed or a change went through unverified."
        ),
        _check_live,
        Severity.MEDIUM,
    )
