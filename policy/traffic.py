"""Traffic policies on the production listener: valid weights, one step at a time, bake time,
the migration guard, and an advisory note when live state cannot be read.

Each runs BEFORE the listener is updated and compares the proposed forward action with what AWS
has live. "Is this a rollback?" is `rollout.rules.classify_traffic`: traffic moving to the proposed
stable colour while the LIVE stable tag says the same colour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from rollout.desired import steps_tag
from rollout.rules import COLORS, ChangeKind, other

import pack_config
from common import (
    LISTENER_RULE_TYPES,
    LISTENER_TYPES,
    TAG_BREAKING,
    TAG_SINCE,
    as_weight,
    assess,
    describe,
    format_since,
    forward_actions,
    is_seq,
    iso,
    minutes_text,
    now,
    parse_since,
    resource_policy,
    tags_of,
    weights_text,
)

__all__ = ["valid_weights", "one_step_at_a_time", "bake_time", "migration_guard", "live_state_readable"]

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
    production = args.resource_type in LISTENER_TYPES and tags_of(args.props).get("bluegreen:listener") == "production"
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
            "and whether the production listener's two colours sum to 100."
        ),
        _check_weights,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- one-step-at-a-time


def _check_one_step(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    view = assess(args)
    if view is None:
        return
    cfg = pack_config.settings("one-step-at-a-time", args.get_config())
    if view.problem is not None:
        if view.full_rollback_shape():
            return
        report_violation(f"a promotion may move only one step at a time, and whether this change does cannot be told: {view.problem}")
        return
    t = view.transition
    assert t is not None and view.proposed is not None
    if not (t.kind.is_promotion or t.kind is ChangeKind.INITIAL):
        return
    ladder = steps_tag(view.steps)
    if view.steps_problem:
        report_violation(f"a promotion may move only one step at a time, but the ladder is unknown: {view.steps_problem}")
        return
    allow_skip = bool(cfg.get("allowSkip", False))
    if t.kind is ChangeKind.INITIAL:
        stable = view.stable
        if stable is None:
            return  # valid-weights / healthy-promotion speak to a listener with no stable tag
        w = view.proposed.weights.get(other(stable), 0)
        if w not in (0, view.steps[0]) and not allow_skip:
            report_violation(
                f"a first deployment must start at step 0 or the first step ({view.steps[0]}%) of the ladder {ladder}: "
                f"found the candidate at {w}%"
            )
        return
    if t.kind is ChangeKind.SKIP_AHEAD:
        if allow_skip:
            return
        ladder_full = [0, *view.steps]
        i = ladder_full.index(t.from_weight)
        skipped = ladder_full[i + 1 : i + 1 + t.skipped]
        report_violation(
            f"a promotion may move only one step of the ladder {ladder} at a time: {t.gaining} {t.from_weight}% -> "
            f"{t.to_weight}% skips {t.skipped} step(s) ({', '.join(f'{s}%' for s in skipped)}); the next step is {ladder_full[i + 1]}%"
        )
    elif t.kind is ChangeKind.OFF_LADDER:
        report_violation(
            f"a promotion must move to the next step of the ladder {ladder}: {t.gaining} {t.from_weight}% -> "
            f"{t.to_weight}% is not a move along it"
        )


def one_step_at_a_time() -> ResourceValidationPolicy:
    name = "one-step-at-a-time"
    return resource_policy(
        name,
        (
            "Checks whether a promotion moves the gaining colour exactly one step along the listener's "
            "bluegreen:steps ladder (allowSkip: false)."
        ),
        _check_one_step,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- bake-time


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def _check_bake(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    view = assess(args)
    if view is None:
        return
    cfg = pack_config.settings("bake-time", args.get_config())
    minutes = _number(cfg.get("minutes"), 10.0)
    tolerance_s = _number(cfg.get("stampToleranceMinutes"), 5.0) * 60
    if view.problem is not None:
        if view.full_rollback_shape():
            return
        report_violation(
            f"the current weights must hold for {minutes:g} min before the next promotion, and how long they have "
            f"held cannot be told: {view.problem}"
        )
        return
    t = view.transition
    assert t is not None and view.proposed is not None
    if t.kind.is_rollback or t.kind is ChangeKind.INITIAL:
        return  # rollbacks are never held back; a first deployment has nothing to bake
    clock = now()
    proposed_w = dict(view.proposed.weights)
    stamp_raw = view.tags.get(TAG_SINCE)
    live_stamp_raw = view.live_tags.get(TAG_SINCE)

    # 1. The stamp this update writes must be trustworthy: fresh, and naming the new weights.
    if t.kind.is_promotion or (stamp_raw is not None and stamp_raw != live_stamp_raw):
        example = format_since(clock, proposed_w)
        stamp = parse_since(stamp_raw)
        if stamp is None:
            report_violation(
                f"an update that moves traffic must stamp the listener tag {TAG_SINCE} with the current UTC time and "
                f"the new weights (e.g. {example!r}) so the next step's bake time can be checked: found {describe(stamp_raw)}"
            )
        else:
            when, stamped = stamp
            if abs(clock - when) > tolerance_s and not view.offline:  # offline: a simulation's clock
                report_violation(
                    f"the {TAG_SINCE} stamp of an update must be within {tolerance_s / 60:g} min of now ({iso(clock)}): "
                    f"found {stamp_raw!r}"
                )
            elif stamped != proposed_w:
                report_violation(
                    f"the {TAG_SINCE} stamp must name the weights this update sets ({weights_text(proposed_w)}): found {stamp_raw!r}"
                )
    if not t.kind.is_promotion:
        return

    # 2. The current (live) weights must have held long enough.
    if t.from_weight == 0:
        return  # the gaining colour carried no traffic: there is nothing to bake yet
    if view.offline:  # how long the weights have held is a fact of the live listener and clock
        held = weights_text(dict(view.live.weights) if view.live else {})
        report_violation(view.not_evaluated_offline("bake-time", f"(whether {held} has held {minutes:g} min)"))
        return
    live_w = dict(view.live.weights) if view.live else {}
    current = weights_text(live_w)
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
            "Checks whether the live weights have held for the bake time (minutes, default 10) before a promotion, "
            "using the live listener's bluegreen:weights-since stamp; rollbacks are never held back."
        ),
        _check_bake,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- migration-guard


def _check_migration(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    view = assess(args)
    if view is None:
        return
    marked = view.tags.get(TAG_BREAKING)
    if marked not in COLORS:
        return
    if view.problem is not None or view.live is None or view.proposed is None:
        return  # never refuse on a fault; without live traffic there is nothing to roll back past
    before = view.live.weights.get(marked, 0)
    after = view.proposed.weights.get(marked, 0)
    if after >= before:
        return
    back_to = other(marked)
    report_violation(
        f"{marked}'s release carries a non-backward-compatible schema migration (listener tag {TAG_BREAKING}={marked}), "
        f"so traffic may not move back off it: {marked} {before}% -> {after}% would send requests to {back_to} running "
        f"against the migrated schema. Roll forward with a fix instead; to override, remove the marker "
        f"(set bluegreen:colors.{marked}.breakingMigration to false) and run the rollback again."
    )


def migration_guard() -> ResourceValidationPolicy:
    name = "migration-guard"
    return resource_policy(
        name,
        (
            "Checks whether an update moves traffic off a colour whose release is marked as carrying a "
            "non-backward-compatible schema migration (bluegreen:breaking-migration); such a rollback is refused."
        ),
        _check_migration,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- live-state-readable


def _check_live(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    view = assess(args)
    if view is None or view.problem is None or not view.live_fault:
        return
    verdict = (
        "this change has the shape of a full rollback, so it is let through without live verification"
        if view.full_rollback_shape()
        else "promotions are blocked until it can be read"
    )
    report_violation(f"the live state of the production listener must be readable from AWS (and make sense): {view.problem}; {verdict}")


def live_state_readable() -> ResourceValidationPolicy:
    name = "live-state-readable"
    return resource_policy(
        name,
        (
            "Checks whether the production listener's live state (weights, colours, tags) can be read from AWS; "
            "advisory, it explains why a promotion failed closed or a rollback went through unverified."
        ),
        _check_live,
        Severity.MEDIUM,
    )
