"""The reflex: move production traffic back to the recorded stable target group when a live candidate breaks.

Runs inside AWS Lambda (``rollout.reflex_lambda.handler``, a one-minute EventBridge schedule) with the
standard library and boto3 only; every AWS client is passed in, so tests run it against ``moto_server``
and loopback servers. It is active only while a candidate carries production traffic; an invocation
keeps checking every ``interval_s`` (5 s) for ``budget_s`` (50 s) and returns at once when nothing is
under way.

One check reads the production listener (its forward weights and tags) and looks at two fast signals
of every non-stable target group with weight > 0 (the candidate):

* ``no-healthy-targets`` -- ALB target health (``describe_target_health``): no target ``healthy``;
* ``probes-failed`` -- one round of HTTP probes of the test listener from inside the VPC
  (``rollout.probe_runner.probe_round``, the probe function's code), counted only when the test
  listener forwards to the candidate's target group; a round fails when at least
  ``probe_failure_ratio`` of its probes fail;
* ``judge`` -- once a minute, the relative judge (``rollout.judge``) on the per-minute CloudWatch
  counts of both target groups (``rollout.metrics.read_minutes``) since the live weights began (the
  listener's ``bluegreen:weights-since``): ``fail`` is a breach at once (the e-process already is the
  accumulated evidence, with its false-alarm bound); ``pass`` and ``insufficient`` never are, and a
  CloudWatch fault is a note, never a rollback.

A breach is ``breach_checks`` (2) consecutive bad checks of one fast signal, or one ``fail`` of the judge;
a good check resets the count,
a check that could not look (an AWS fault, no network interfaces) neither counts nor resets it. On a
breach it makes ONE ``modify_listener`` call: the live forward action with the recorded stable target
group at weight 100 and every other at 0 (stickiness as live); then one ``modify_rule`` per rule of the
production listener that forwards to the candidate (the header route), so that it forwards to the
stable target group; then tags the listener
``bluegreen:aborted`` = ``<UTC time> <reason code> <colour>=<weight it had>[ e=<e-value>]`` and notifies.

What it never does: promote (it only ever writes "stable 100"), touch anything but the production
listener's default action, its rules' forwards to the candidate and its tags, or act on a label the program wrote for the update being
judged: the stable target group is the live record (``recorded_stable_target_group``). Faults open
for the rollback: the record and the listener's target groups are remembered from the last good read,
a failed write is retried at every later check, and a fault in one signal never hides the other.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from rollout.desired import TAG_SINCE, parse_since
from rollout.judge import FAIL, Minute, judge, step_window
from rollout.live import COLOR_TAG, STABLE_TAG, STABLE_TG_TAG, aws_fault_reason
from rollout.metrics import read_minutes
from rollout.probe_runner import probe_round
from rollout.reflex_settings import ReflexSettings, ReflexSetupError  # re-exported

__all__ = [
    "TAG_ABORTED",
    "TAG_STABLE_TG",
    "REASON_NO_HEALTHY_TARGETS",
    "REASON_PROBES_FAILED",
    "REASON_JUDGE",
    "JudgeLook",
    "look_at_judge",
    "judge_step",
    "ReflexSetupError",
    "ReflexSettings",
    "ListenerView",
    "Check",
    "Breach",
    "BreachCounter",
    "Rollback",
    "RunReport",
    "Abort",
    "recorded_stable_target_group",
    "stable_target_group_from",
    "read_listener",
    "healthy_targets",
    "observe",
    "roll_back",
    "move_rules_to_stable",
    "abort_value",
    "parse_abort",
    "run",
]

TAG_ABORTED = "bluegreen:aborted"  # on the production listener: "<UTC time> <reason code> [<colour>=<w>]"
TAG_STABLE_TG = STABLE_TG_TAG  # on the production listener: the stable target group's ARN (the record)
REASON_NO_HEALTHY_TARGETS = "no-healthy-targets"
REASON_PROBES_FAILED = "probes-failed"
REASON_JUDGE = "judge"
REASONS = (REASON_NO_HEALTHY_TARGETS, REASON_PROBES_FAILED)  # the fast signals, counted per check
_ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class ListenerView:
    """The production listener's default forward action and tags, as AWS has them now."""

    arn: str
    groups: tuple[tuple[str, int], ...]  # (target group ARN, weight), in the live order
    stickiness: Mapping[str, Any]
    tags: Mapping[str, str]


def _forward(actions: Sequence[Mapping[str, Any]]) -> tuple[tuple[tuple[str, int], ...], dict[str, Any]] | None:
    for action in sorted(actions or [], key=lambda a: a.get("Order", 0)):
        if action.get("Type") != "forward":
            continue
        cfg = action.get("ForwardConfig") or {}
        groups = cfg.get("TargetGroups") or []
        if groups:
            sole = len(groups) == 1
            return tuple((g["TargetGroupArn"], int(g.get("Weight", 100 if sole else 1))) for g in groups), dict(
                cfg.get("TargetGroupStickinessConfig") or {"Enabled": False}
            )
        if action.get("TargetGroupArn"):
            return ((action["TargetGroupArn"], 100),), {"Enabled": False}
    return None


def _tags(elbv2, arns: Sequence[str]) -> dict[str, dict[str, str]]:
    resp = elbv2.describe_tags(ResourceArns=list(arns))
    return {d["ResourceArn"]: {t["Key"]: t.get("Value", "") for t in d.get("Tags", [])} for d in resp.get("TagDescriptions", [])}


def read_listener(elbv2, listener_arn: str) -> ListenerView:
    """The production listener now. Raises on AWS faults and on a default action that is not a forward."""
    (raw,) = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    fwd = _forward(raw.get("DefaultActions") or [])
    if fwd is None:
        raise ValueError(f"the production listener {listener_arn} does not forward to target groups")
    groups, stickiness = fwd
    return ListenerView(listener_arn, groups, stickiness, _tags(elbv2, [listener_arn]).get(listener_arn, {}))


def recorded_stable_target_group(elbv2, listener: ListenerView) -> str | None:
    """The live record of the stable target group: the listener's `bluegreen:stable-tg` tag (an ARN),
    else its `bluegreen:stable` colour mapped through the forwarded target groups' `bluegreen:color`
    tags. None when neither is recorded. Raises on AWS faults (the colour fallback reads tags).

    One function on purpose: where the pack records stable is decided elsewhere, and this is the one
    place the reflex reads it (`stable_target_group_from` is the same rule on data already read).
    """
    recorded = stable_target_group_from(listener.tags, {})
    if recorded is not None or not (listener.tags.get(STABLE_TAG) or "").strip():
        return recorded
    arns = [a for a, _ in listener.groups]
    colours = {tags[COLOR_TAG]: a for a, tags in _tags(elbv2, arns).items() if COLOR_TAG in tags}
    return stable_target_group_from(listener.tags, colours)


def stable_target_group_from(tags: Mapping[str, str], target_groups: Mapping[str, str]) -> str | None:
    """The recorded stable target group from a production listener's tags and its colour -> target group
    ARN map (as `rollout.live` reads them): `bluegreen:stable-tg`, else the `bluegreen:stable` colour's."""
    arn = (tags.get(TAG_STABLE_TG) or "").strip()
    if arn.startswith("arn:") and ":targetgroup/" in arn:
        return arn
    colour = (tags.get(STABLE_TAG) or "").strip()
    return target_groups.get(colour) if colour else None


def healthy_targets(elbv2, target_group_arn: str) -> tuple[int, int]:
    """(healthy, registered) targets of a target group, from ALB target health. Raises on AWS faults."""
    descs = elbv2.describe_target_health(TargetGroupArn=target_group_arn).get("TargetHealthDescriptions", [])
    states = [(d.get("TargetHealth") or {}).get("State") for d in descs]
    return sum(1 for s in states if s == "healthy"), len(states)


# --------------------------------------------------------------------------- one check


@dataclass(frozen=True)
class Check:
    """What one check saw. A signal is True (bad), False (good) or None (could not look)."""

    at: float  # wall clock, epoch seconds
    listener: ListenerView | None
    stable_tg: str | None
    candidates: Mapping[str, int]  # non-stable target group ARN -> live weight > 0
    no_healthy_targets: bool | None = None
    probes_failed: bool | None = None
    notes: tuple[str, ...] = ()  # what could not be read, and what was seen

    @property
    def active(self) -> bool:
        """A candidate carries production traffic."""
        return bool(self.candidates)


def _short(exc: BaseException) -> str:
    try:
        return aws_fault_reason(exc)
    except Exception:  # noqa: BLE001 - a reason is only ever text
        return f"{type(exc).__name__}: {exc}"


def observe(
    settings: ReflexSettings,
    *,
    elbv2,
    ec2,
    previous: Check | None = None,
    context: ssl.SSLContext | None = None,
    addresses: Callable[[], Sequence[str]] | None = None,
    wall: Callable[[], float] = time.time,
) -> Check:
    """One check. Never raises: what could not be read is a note, and the last good listener and
    record (from `previous`) stand in for them, so a fault never hides a breach."""
    notes: list[str] = []
    listener = previous.listener if previous else None
    stable = previous.stable_tg if previous else None
    try:
        listener = read_listener(elbv2, settings.listener_arn)
    except Exception as exc:  # noqa: BLE001 - the last good view stands in
        notes.append(f"listener unreadable ({_short(exc)})" + ("; using the last good read" if listener else ""))
    if listener is not None:
        try:
            stable = recorded_stable_target_group(elbv2, listener) or stable
        except Exception as exc:  # noqa: BLE001
            notes.append(f"stable record unreadable ({_short(exc)})" + ("; using the last good read" if stable else ""))
    if listener is None or stable is None:
        if listener is not None:
            notes.append(f"no stable target group recorded on {settings.listener_arn} ({TAG_STABLE_TG} or {STABLE_TAG})")
        return Check(wall(), listener, stable, {}, notes=tuple(notes))
    candidates = {arn: w for arn, w in listener.groups if arn != stable and w > 0}
    if not candidates:
        return Check(wall(), listener, stable, {}, notes=tuple(notes))

    no_healthy: bool | None = None
    seen: list[bool] = []
    for arn in candidates:
        try:
            healthy, registered = healthy_targets(elbv2, arn)
        except Exception as exc:  # noqa: BLE001
            notes.append(f"target health of {arn} unreadable ({_short(exc)})")
            continue
        seen.append(healthy == 0)
        notes.append(f"{healthy}/{registered} targets healthy in {arn.rsplit(':', 1)[-1]}")
    if seen:
        no_healthy = any(seen)

    probes_failed: bool | None = None
    rnd = probe_round(settings.probe_settings(), elbv2=elbv2, ec2=ec2, context=context, addresses=addresses)
    if rnd.problem is not None:
        notes.append(f"no probe round: {rnd.problem}")
    else:
        for colour in rnd.colours:
            if colour.target_group_arn not in candidates:
                notes.append(f"probes skipped: the test listener forwards to {colour.color}, not to the candidate")
                continue
            ratio = colour.failed / colour.sent if colour.sent else 0.0
            probes_failed = ratio >= settings.probe_failure_ratio
            reasons = ", ".join(f"{k} {n}" for k, n in sorted(colour.failures.items()))
            notes.append(f"probes {colour.sent - colour.failed}/{colour.sent} ok" + (f" ({reasons})" if reasons else ""))
    return Check(wall(), listener, stable, candidates, no_healthy, probes_failed, tuple(notes))


# --------------------------------------------------------------------------- the judge, once a minute


@dataclass(frozen=True)
class JudgeLook:
    """The relative judge's verdict on the live candidate. ``verdict`` None: it could not look (a
    CloudWatch fault, no valid bake clock) -- never a reason to roll back."""

    verdict: str | None
    e_value: float | None
    reason: str
    at: float  # wall clock, epoch seconds


def look_at_judge(
    settings: ReflexSettings,
    *,
    elbv2,
    cloudwatch,
    listener: ListenerView,
    stable_tg: str,
    candidate_tg: str,
    wall: Callable[[], float] = time.time,
) -> JudgeLook:
    """The judge on the whole minutes since the live weights began (the listener's `bluegreen:weights-since`,
    trusted only when its weights are the live ones), for as long as the step lasts, ending one minute
    before the current one (the ALB publishes a minute's counts about a minute late): the window of
    `rollout.judge.step_window`, the gate's. Never raises.

    Two verdicts, either `fail` is a breach:

    * the step's verdict: the judge on the whole step at `judge_alpha` with the gate's early look (once
      the step's second minute has settled) -- the gate's verdict when the gate counts failed requests
      only and has no synthetic stratum (the reflex reads neither slow requests nor synthetic load);
    * a change within the step: the judge on the window from each of the last `judge_max_minutes`
      minutes on, at `judge_change_alpha`. The step's e-process is a product from the step's start, so healthy minutes
      before a regression hold it down for minutes after it begins; the latest start sees only the
      regression. Taking the largest over starts is a CUSUM of e-processes: a false alarm needs some
      window's e-value to reach 1/judge_change_alpha, and the mean time to one on a healthy candidate
      is at least that many minutes (Lorden; Shin, Ramdas & Rinaldo, "E-detectors", 2022).
    """
    at = wall()
    try:
        stamp = parse_since(listener.tags.get(TAG_SINCE))
        colours = {arn: tags.get(COLOR_TAG) for arn, tags in _tags(elbv2, [a for a, _ in listener.groups]).items()}
        live = {colours.get(arn): w for arn, w in listener.groups}
        if stamp is None or any(live.get(c, 0) != w for c, w in stamp[1].items()):
            return JudgeLook(None, None, f"no {TAG_SINCE} stamp for the live weights ({listener.tags.get(TAG_SINCE)!r}): "
                                         "the judge waits for the bake clock", at)
        win = step_window(datetime.fromtimestamp(stamp[0], timezone.utc), datetime.fromtimestamp(at, timezone.utc))
        if win.start is None:
            return JudgeLook(None, None, f"the judge cannot look: {win.problem}; not a breach", at)
        minutes, kinds, starts = (), ("errors",) + (("slow",) if settings.judge_slow_request_ms is not None else ()), ()
        if win.start < win.end:
            series = read_minutes(cloudwatch, load_balancer_arn=settings.load_balancer_arn, stable_target_group_arn=stable_tg,
                                  candidate_target_group_arn=candidate_tg, start=win.start, end=win.end,
                                  slow_threshold_ms=settings.judge_slow_request_ms, synthetic_stack=settings.judge_synthetic_stack)
            minutes, kinds, starts = series.minutes, series.kinds, series.starts
        verdict, e_value, reason = judge_step(settings, minutes, kinds, starts, early_look_ready=win.early_look_ready)
    except Exception as exc:  # noqa: BLE001 - a judge that cannot look never rolls back
        return JudgeLook(None, None, f"judge unreadable ({_short(exc)}); not a breach", at)
    return JudgeLook(verdict, e_value, reason, at)


def judge_step(settings: ReflexSettings, minutes: Sequence[Minute], kinds: Sequence[str],
               starts: Sequence[datetime] = (), *, early_look_ready: bool = False) -> tuple[str, float, str]:
    """(verdict, e-value, reason) of the step's minutes (oldest first, from the step's first whole minute):
    the step's verdict at `judge_alpha` (the gate's judge, early look included once `early_look_ready`),
    else `fail` when the window from one of the last `judge_max_minutes` starts reaches
    1/`judge_change_alpha` (a subset of the CUSUM's starts keeps its bound). Pure."""
    cfg = settings.judge_config()
    j = judge(minutes, cfg, kinds=kinds, from_step_start=True, early_look_ready=early_look_ready)
    if j.verdict != FAIL:
        change = replace(cfg, alpha=settings.judge_change_alpha)
        for i in range(max(1, len(minutes) - cfg.max_minutes), len(minutes)):
            later = judge(minutes[i:], change, kinds=kinds)
            if later.verdict == FAIL:
                since = f" since {starts[i]:%H:%M}Z" if i < len(starts) else ""
                return FAIL, later.e_value, (f"judge fail (a change{since}, alpha {settings.judge_change_alpha:g}): {later.reason}")
    return j.verdict, j.e_value, f"judge {j.verdict}: {j.reason}"


# --------------------------------------------------------------------------- breach


@dataclass(frozen=True)
class Breach:
    """Why the reflex rolls back: a reason code and what it saw."""

    code: str  # one of REASONS
    detail: str


@dataclass
class BreachCounter:
    """Consecutive bad checks per signal; a good check resets, a blind one (None) leaves it as is."""

    needed: int = 2
    counts: dict[str, int] = field(default_factory=lambda: {code: 0 for code in REASONS})

    def add(self, check: Check) -> Breach | None:
        if not check.active:
            self.counts = {code: 0 for code in REASONS}
            return None
        for code, bad in ((REASON_NO_HEALTHY_TARGETS, check.no_healthy_targets), (REASON_PROBES_FAILED, check.probes_failed)):
            if bad is True:
                self.counts[code] += 1
            elif bad is False:
                self.counts[code] = 0
        for code in REASONS:
            if self.counts[code] >= self.needed:
                return Breach(code, f"{self.counts[code]} consecutive checks: " + "; ".join(check.notes))
        return None


# --------------------------------------------------------------------------- the rollback


def abort_value(when: float, code: str, colour: str | None = None, weight: int | None = None, e_value: float | None = None) -> str:
    """The `bluegreen:aborted` value: '<UTC time> <reason code>[ <colour>=<weight>][ e=<e-value>]'
    (ELBv2-legal characters; the e-value is the judge's, for a `judge` rollback)."""
    out = f"{datetime.fromtimestamp(int(when), timezone.utc).strftime(_ISO)} {code}"
    if colour and weight is not None:
        out += f" {colour}={int(weight)}"
    return out + (f" e={e_value:.3g}" if e_value is not None and e_value == e_value else "")


_ABORT_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z) ([a-z][a-z0-9-]*)(?: ([a-z]+)=(\d{1,3}))?(?: e=(\d[\d.e+-]*|inf))?$"
)


@dataclass(frozen=True)
class Abort:
    """A parsed abort marker."""

    at: float
    code: str
    colour: str | None
    weight: int | None
    raw: str
    e_value: float | None = None  # the judge's e-value, for a `judge` rollback

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(int(self.at), timezone.utc).strftime(_ISO)


def parse_abort(value: Any) -> Abort | None:
    """The abort marker from a tag value, or None when absent. A malformed but present marker is kept
    (code 'unknown'): a marker is a stop sign, and a stop sign that cannot be read still stops."""
    if not isinstance(value, str) or not value.strip():
        return None
    m = _ABORT_RE.match(value.strip())
    if not m:
        return Abort(0.0, "unknown", None, None, value.strip())
    at = datetime.strptime(m.group(1), _ISO).replace(tzinfo=timezone.utc).timestamp()
    try:
        e_value = float(m.group(5)) if m.group(5) else None
    except ValueError:
        e_value = None
    return Abort(at, m.group(2), m.group(3), int(m.group(4)) if m.group(4) else None, value.strip(), e_value)


@dataclass(frozen=True)
class Rollback:
    """The outcome of one rollback attempt."""

    moved: bool  # the listener's default action now sends 100 % to the stable target group
    marked: bool  # the abort marker was written
    marker: str
    error: str = ""
    rules_moved: int = 0  # rules of the production listener moved from the candidate to stable
    rules_pending: bool = False  # a rule forwarding to the candidate could not be read or moved: retried


def _rule_forward_to(actions: Sequence[Mapping[str, Any]], stable_tg: str, candidates: frozenset[str]) -> list[dict[str, Any]] | None:
    """The rule's actions with its forward sent to `stable_tg` alone, or None when the forward gives no
    candidate traffic (nothing to move; a rule to another service's target group is not ours). Every
    other action is kept as it is."""
    out, moves = [], False
    for action in actions or []:
        if action.get("Type") != "forward":
            out.append(dict(action))
            continue
        cfg = action.get("ForwardConfig") or {}
        groups = cfg.get("TargetGroups") or ([{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}] if action.get("TargetGroupArn") else [])
        sole = len(groups) == 1
        if not any(g["TargetGroupArn"] in candidates and int(g.get("Weight", 1 if sole else 0)) > 0 for g in groups):
            out.append(dict(action))
            continue
        moves = True
        forward: dict[str, Any] = {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": stable_tg, "Weight": 1}]}}
        if cfg.get("TargetGroupStickinessConfig"):
            forward["ForwardConfig"]["TargetGroupStickinessConfig"] = dict(cfg["TargetGroupStickinessConfig"])
        if "Order" in action:
            forward["Order"] = action["Order"]
        out.append(forward)
    return out if moves else None


def move_rules_to_stable(elbv2, listener: ListenerView, stable_tg: str) -> tuple[int, str]:
    """One `modify_rule` per rule of the production listener whose forward gives traffic to a candidate (a
    target group of the listener's default forward other than `stable_tg`; the header route): it forwards
    to `stable_tg` alone, with its conditions, priority and other actions as they are. Returns (rules
    moved, what failed). Never raises."""
    candidates = frozenset(arn for arn, _ in listener.groups if arn != stable_tg)
    listener_arn = listener.arn
    try:
        rules = [r for page in elbv2.get_paginator("describe_rules").paginate(ListenerArn=listener_arn) for r in page.get("Rules", [])]
    except Exception as exc:  # noqa: BLE001 - retried at the next check
        return 0, f"the production listener's rules could not be read: {_short(exc)}"
    moved, errors = 0, []
    for rule in rules:
        if rule.get("IsDefault"):
            continue
        actions = _rule_forward_to(rule.get("Actions") or [], stable_tg, candidates)
        if actions is None:
            continue
        try:
            elbv2.modify_rule(RuleArn=rule["RuleArn"], Actions=actions)
            moved += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(f"rule {rule.get('Priority')} still forwards to the candidate: {_short(exc)}")
    return moved, "; ".join(errors)


def roll_back(elbv2, listener: ListenerView, stable_tg: str, marker: str) -> Rollback:
    """ONE modify_listener call (stable 100, the rest 0, stickiness as live), then the rules that forward
    to the candidate (`move_rules_to_stable`), then the abort marker. Never raises."""
    groups = [arn for arn, _ in listener.groups]
    if stable_tg not in groups:
        # The record names a target group this listener does not forward to (a hand edit, a foreign
        # ARN): sending all production traffic there could be worse than the breach. Say so, loudly.
        return Rollback(False, False, marker, f"the recorded stable target group {stable_tg} is not one the production "
                                              "listener forwards to; not moving traffic to it (restore the record by hand)")
    action = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": 100 if arn == stable_tg else 0} for arn in groups],
            "TargetGroupStickinessConfig": dict(listener.stickiness) or {"Enabled": False},
        },
    }
    try:
        elbv2.modify_listener(ListenerArn=listener.arn, DefaultActions=[action])
    except Exception as exc:  # noqa: BLE001 - reported, retried at the next check
        return Rollback(False, False, marker, f"could not move traffic to stable: {_short(exc)}")
    rules_moved, rules_error = move_rules_to_stable(elbv2, listener, stable_tg)
    errors = [f"traffic is on stable, but {rules_error}"] if rules_error else []
    try:
        elbv2.add_tags(ResourceArns=[listener.arn], Tags=[{"Key": TAG_ABORTED, "Value": marker}])
        marked = True
    except Exception as exc:  # noqa: BLE001
        marked = False
        errors.append(f"traffic is on stable, but the abort marker could not be written: {_short(exc)}")
    return Rollback(True, marked, marker, "; ".join(errors), rules_moved, bool(rules_error))


# --------------------------------------------------------------------------- an invocation


@dataclass
class RunReport:
    """What one invocation did."""

    checks: int = 0
    active: bool = False
    breach: Breach | None = None
    rollback: Rollback | None = None
    breach_at: float | None = None  # wall clock of the check that found the breach
    moved_at: float | None = None  # wall clock when modify_listener first returned
    rollbacks: int = 0  # rollback attempts (modify_listener, or a retry of the rules that still forward to the candidate)
    last_notes: tuple[str, ...] = ()
    notified: str = ""
    judge: JudgeLook | None = None  # the judge's last verdict in this invocation (once a minute)

    def summary(self, stack: str) -> str:
        if self.rollback is not None:
            state = "rolled back" if self.rollback.moved else "ROLLBACK FAILED"
            extra = f" ({self.rollback.error})" if self.rollback.error else ""
            return f"bluegreen reflex ({stack}): {state}: {self.breach.code if self.breach else '?'} [{self.rollback.marker}]{extra}"
        if not self.active:
            return f"bluegreen reflex ({stack}): idle, no candidate carries traffic ({'; '.join(self.last_notes) or 'ok'})"
        judged = f"; {self.judge.reason}" if self.judge is not None else ""
        return f"bluegreen reflex ({stack}): {self.checks} checks, no breach ({'; '.join(self.last_notes)}{judged})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "rollbacks": self.rollbacks,
            "active": self.active,
            "breach": None if self.breach is None else {"code": self.breach.code, "detail": self.breach.detail},
            "rollback": None if self.rollback is None else {
                "moved": self.rollback.moved, "marked": self.rollback.marked, "marker": self.rollback.marker, "error": self.rollback.error,
            },
            "notes": list(self.last_notes),
            "notified": self.notified,
            "judge": None if self.judge is None else {"verdict": self.judge.verdict, "eValue": self.judge.e_value, "reason": self.judge.reason},
        }


def _colour_of(elbv2, arn: str) -> str | None:
    try:
        return _tags(elbv2, [arn]).get(arn, {}).get(COLOR_TAG)
    except Exception:  # noqa: BLE001 - the marker's colour is information only
        return None


def run(
    settings: ReflexSettings,
    *,
    elbv2,
    ec2,
    cloudwatch=None,
    notify: Callable[[str], str] | None = None,
    context: ssl.SSLContext | None = None,
    addresses: Callable[[], Sequence[str]] | None = None,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """One invocation: check every `interval_s` for `budget_s`; on a breach roll back, mark, notify.

    Returns at once when no candidate carries traffic. After a rollback it keeps watching until the
    budget ends and rolls back again if traffic goes back to the candidate (a racing `pulumi up`). A
    rollback that fails (throttled, denied) is retried at every later check of the invocation.
    With `cloudwatch` (and `settings.judge`), the judge is read at the first active check and then
    once a minute; its `fail` is a breach. `notify(text)` returns how it went ("" or a reason); it must
    never raise.
    """
    budget = settings.budget_s if budget_s is None else budget_s
    end = clock() + budget
    report = RunReport()
    counter = BreachCounter(settings.breach_checks)
    previous: Check | None = None
    judged_at: float | None = None
    while True:
        started = clock()
        check = observe(settings, elbv2=elbv2, ec2=ec2, previous=previous, context=context, addresses=addresses, wall=wall)
        report.checks += 1
        report.last_notes = check.notes
        previous = check
        if not check.active:
            if report.rollback is None:
                _rules_after_abort(report, check, elbv2)
                return report  # nothing under way: the cheap path, most minutes of the month
            if not report.rollback.moved and check.listener is not None:
                report.rollback = replace(report.rollback, moved=True, error="traffic is on stable (moved by someone else)",
                                          rules_pending=True)
            if report.rollback.rules_pending and check.stable_tg is not None and check.listener is not None:
                moved, error = move_rules_to_stable(elbv2, check.listener, check.stable_tg)
                report.rollbacks += 1
                report.rollback = replace(report.rollback, rules_moved=report.rollback.rules_moved + moved, rules_pending=bool(error),
                                          error=f"traffic is on stable, but {error}" if error else "")
            # rolled back: keep watching, a racing `pulumi up` may send traffic to the broken candidate again
        else:
            report.active = True
            if report.breach is None and settings.judge and cloudwatch is not None and (judged_at is None or clock() - judged_at >= 60):
                judged_at = clock()
                (cand, _), *_ = sorted(check.candidates.items(), key=lambda kv: -kv[1])
                report.judge = look_at_judge(settings, elbv2=elbv2, cloudwatch=cloudwatch, listener=check.listener,
                                             stable_tg=check.stable_tg, candidate_tg=cand, wall=wall)
                if report.judge.verdict == FAIL:
                    report.breach, report.breach_at = Breach(REASON_JUDGE, report.judge.reason), report.judge.at
            if report.breach is None:
                breach = counter.add(check)
                if breach is not None:
                    report.breach, report.breach_at = breach, check.at
            if report.breach is not None:
                _act(settings, report, check, elbv2=elbv2, notify=notify, wall=wall)
        if clock() + settings.interval_s > end:
            return report
        sleep(max(0.0, settings.interval_s - (clock() - started)))


def _rules_after_abort(report: RunReport, check: Check, elbv2) -> None:
    """While the abort marker stands and the default action is on stable, a rule still forwarding to
    another target group of the listener (a `ModifyRule` an earlier invocation could not make) is moved
    now: one `DescribeRules`, a `ModifyRule` only for what still forwards off stable. Never raises."""
    if check.listener is None or check.stable_tg is None or not (check.listener.tags.get(TAG_ABORTED) or "").strip():
        return
    moved, error = move_rules_to_stable(elbv2, check.listener, check.stable_tg)
    if moved or error:
        report.rollbacks += 1
    note = f"abort marker stands: {error}" if error else f"abort marker stands: {moved} rule(s) moved to stable" if moved else ""
    report.last_notes = report.last_notes + ((note,) if note else ())


def _act(settings: ReflexSettings, report: RunReport, check: Check, *, elbv2, notify, wall) -> None:
    """Roll back (again); notify on the first attempt and on every success."""
    assert report.breach is not None and check.listener is not None and check.stable_tg is not None
    (cand, weight), *_ = sorted(check.candidates.items(), key=lambda kv: -kv[1])
    e_value = report.judge.e_value if report.breach.code == REASON_JUDGE and report.judge is not None else None
    marker = abort_value(wall(), report.breach.code, _colour_of(elbv2, cand), weight, e_value)
    first = report.rollback is None
    report.rollback = roll_back(elbv2, check.listener, check.stable_tg, marker)
    report.rollbacks += 1
    if report.rollback.moved:
        report.moved_at = report.moved_at or wall()
    if notify is not None and (first or report.rollback.moved):
        report.notified = notify(report.summary(settings.stack) + f" -- {report.breach.detail}")
