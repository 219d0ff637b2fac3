"""The route view: what a listener or listener-rule update proposes, next to what AWS has live.

A route is a listener's default action or one listener rule; it is production traffic because it
forwards to target groups, never because of a tag. The live side is one read of the whole load
balancer (`rollout.live.read_live_state`): every route, the target groups' colours, and the record
(`bluegreen:stable-tg`, `bluegreen:steps`, `bluegreen:weights-since` on the recorded listener).
See docs/safety-model.md.

The policies of one `Analyze` call share one live read: `policy/__main__.py` wraps the SDK's Analyze
in `analyze_call()`, and `route_view` memoises per call and resource, never across calls.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import ResourceValidationArgs

from rollout.desired import TAG_STABLE_TG, TAG_STEPS
from rollout.errors import LiveStateError
from rollout.live import (
    LiveRoute,
    LiveState,
    Record,
    aws_fault_reason,
    bounded_read,
    condition_key,
    fault_is_environmental,
    read_live_state,
)
from rollout.rules import COLORS

from clients import aws_client, region_of
from offline import offline_live_state, offline_section
from props import LISTENER_RULE_TYPES, LISTENER_TYPES, as_weight, describe, forward_actions, is_seq, tags_of

__all__ = ["RouteView", "route_view", "analyze_call", "Gain"]

_EPS = 1e-9


@dataclass(frozen=True)
class Gain:
    """A target group whose share of one route goes up."""

    arn: str
    before: float  # 0..1
    after: float

    def text(self, color: str | None) -> str:
        who = f"{color} ({self.arn})" if color else self.arn
        return f"{who} {self.before * 100:g}% -> {self.after * 100:g}%"


@dataclass
class RouteView:
    """One listener or listener-rule update: proposed shares vs the same route live."""

    urn: str
    kind: str  # "listener" | "rule"
    load_balancer_arn: str = ""
    listener_arn: str | None = None  # rules: the listener they belong to
    port: int | None = None  # listeners
    priority: int | None = None  # rules
    conditions: str = ""  # rules: rollout.live.condition_key
    groups: list[tuple[str, int]] = field(default_factory=list)  # proposed (target group ARN, weight)
    tags: dict[str, str] = field(default_factory=dict)  # proposed tags
    live: LiveState | None = None
    live_route: LiveRoute | None = None
    problem: str | None = None  # why the change cannot be judged against live state
    environmental: bool = False  # the problem lies where the pack runs (no input could cause it)
    offline: bool = False

    # -- proposed
    @property
    def shares(self) -> dict[str, float]:
        total = sum(max(w, 0) for _, w in self.groups)
        out: dict[str, float] = {}
        for arn, w in self.groups:
            out[arn] = out.get(arn, 0.0) + (max(w, 0) / total if total > 0 else 0.0)
        return out

    # -- live
    @property
    def record(self) -> Record | None:
        return self.live.record if self.live is not None else None

    @property
    def stable_tg(self) -> str | None:
        return self.record.stable_tg if self.record is not None else None

    @property
    def first_deploy(self) -> bool:
        """A first deployment: nothing records a stable target group, no live route splits traffic
        between target groups, and this listener is new (only a test listener may exist yet, created
        first by the program). There is no production traffic to protect."""
        if self.live is None or self.record is not None or self.kind != "listener" or self.live_route is not None:
            return False
        return not any(len(r.shares) >= 2 for r in self.live.routes)

    @property
    def recorded(self) -> bool:
        """This is the listener that holds the live record."""
        return (
            self.kind == "listener"
            and self.record is not None
            and self.live_route is not None
            and self.live_route.listener_arn == self.record.listener_arn
        )

    @property
    def ladder_route(self) -> LiveRoute | None:
        """The live route whose ladder and bake clock this listener continues: its own if it holds the
        record, else the recorded listener's when this (new) listener carries the same record -- a
        replacement (say, a new port) cannot start the ladder over."""
        if self.recorded:
            return self.live_route
        rec = self.record
        if self.kind == "listener" and rec is not None and self.live is not None and self.tags.get(TAG_STABLE_TG) == rec.stable_tg:
            for r in self.live.routes:
                if r.rule_arn is None and r.listener_arn == rec.listener_arn:
                    return r
        return None

    def color(self, arn: str | None) -> str | None:
        if arn is None or self.live is None:
            return None
        c = self.live.colors.get(arn)
        return c if c in COLORS else None

    def arn_of(self, color: str) -> str | None:
        if self.live is None:
            return None
        for arn, c in self.live.colors.items():
            if c == color:
                return arn
        return None

    def gains(self) -> list[Gain]:
        """Target groups whose share of this route goes up (a new route starts from 0)."""
        before = self.live_route.shares if self.live_route is not None else {}
        return [Gain(arn, before.get(arn, 0.0), s) for arn, s in self.shares.items() if s > before.get(arn, 0.0) + _EPS]

    def ungated_gains(self) -> list[Gain]:
        """Gains that need the gate: every one except traffic returning to the recorded stable target group."""
        return [g for g in self.gains() if g.arn != self.stable_tg]

    def record_kept(self) -> bool:
        """The update leaves the record (stable target group, ladder) as it is live."""
        if not self.recorded:
            return True
        rec = self.record
        assert rec is not None
        return self.tags.get(TAG_STABLE_TG) == rec.stable_tg and (rec.legacy or self.tags.get(TAG_STEPS) == rec.steps)

    def is_rollback(self) -> bool:
        """Traffic only moves toward the live-recorded stable target group (invariant 5)."""
        if self.problem is not None or self.stable_tg is None:
            return False
        gains = self.gains()
        return bool(gains) and all(g.arn == self.stable_tg for g in gains) and self.record_kept()

    def narrow_shape(self) -> bool:
        """The one shape let through unverified: a listener forwarding 100% to one target group while
        live state is unreadable for a reason no input can cause.

        A missing record is NOT such a reason: an update can remove it (by replacing the recorded
        listener, whose deletion the pack never sees), so without a record every gain is gated."""
        unreadable = self.problem is not None and self.environmental
        if self.kind != "listener" or not unreadable or not self.groups:
            return False
        return sorted(self.shares.values())[-1] >= 1.0 - _EPS

    def passes_unconditionally(self) -> bool:
        """Rollbacks, and the narrow shape: no policy may refuse these."""
        return self.is_rollback() or self.narrow_shape()

    def weights_by_color(self) -> dict[str, int] | None:
        """Proposed integer weights per live colour (None if a target group has no live colour)."""
        out = {c: 0 for c in COLORS}
        for arn, w in self.groups:
            c = self.color(arn)
            if c is None:
                return None
            out[c] += w
        return out

    def live_weights_by_color(self) -> dict[str, int]:
        """Live integer weights per colour of the ladder route (the recorded listener)."""
        out = {c: 0 for c in COLORS}
        route = self.ladder_route
        if route is not None:
            for arn, s in route.shares.items():
                c = self.color(arn)
                if c is not None:
                    out[c] += round(s * 100)
        return out

    def not_evaluated_offline(self, policy: str, why: str) -> str:
        from rollout.analyzer import NOT_EVALUATED_OFFLINE

        return f"{NOT_EVALUATED_OFFLINE}: {policy} {why}; it runs against live AWS at `pulumi preview` / `pulumi up`"


# --------------------------------------------------------------------------- one read per Analyze

_CALL = threading.local()


@contextlib.contextmanager
def analyze_call() -> Iterator[None]:
    """Scope of one Analyze call: route views (and their one live read) are shared inside it only."""
    _CALL.memo = {}
    try:
        yield
    finally:
        _CALL.memo = None


def route_view(args: ResourceValidationArgs) -> RouteView | None:
    """The route view of a listener or listener-rule update, or None for any other resource."""
    if args.resource_type not in LISTENER_TYPES and args.resource_type not in LISTENER_RULE_TYPES:
        return None
    memo = getattr(_CALL, "memo", None)
    if memo is not None and args.urn in memo:
        return memo[args.urn]
    view = _build(args)
    if memo is not None:
        memo[args.urn] = view
    return view


def _groups(actions: Any) -> tuple[list[tuple[str, int]], list[str]]:
    """(target group ARN, weight) of the first forward action, and what could not be read."""
    fwd = forward_actions(actions)
    if not fwd:
        return [], []
    action = fwd[0]
    inner = action.get("forward")
    bad: list[str] = []
    out: list[tuple[str, int]] = []
    if isinstance(inner, Mapping) and is_seq(inner.get("targetGroups")):
        raw = list(inner["targetGroups"])
        for i, g in enumerate(raw):
            arn = g.get("arn") if isinstance(g, Mapping) else None  # UnknownValueError in preview
            w_raw = g.get("weight") if isinstance(g, Mapping) else None
            w = as_weight(w_raw) if w_raw is not None else (100 if len(raw) == 1 else 1)
            if not isinstance(arn, str) or not arn:
                bad.append(f"target group #{i + 1} has no ARN")
            elif w is None or not 0 <= w <= 999:
                bad.append(f"target group #{i + 1} has weight {describe(w_raw)}")
            else:
                out.append((arn, w))
        return out, bad
    arn = action.get("targetGroupArn")
    if isinstance(arn, str) and arn:
        return [(arn, 100)], []
    return [], ["a forward action names no target group"]


def _build(args: ResourceValidationArgs) -> RouteView:
    props = args.props
    is_rule = args.resource_type in LISTENER_RULE_TYPES
    view = RouteView(urn=args.urn, kind="rule" if is_rule else "listener", tags=tags_of(props))
    view.groups, bad = _groups(props.get("actions" if is_rule else "defaultActions"))
    if is_rule:
        listener = props.get("listenerArn")
        view.listener_arn = listener if isinstance(listener, str) else None
        prio = as_weight(props.get("priority"))
        view.priority = prio
        view.conditions = condition_key(props.get("conditions"))
    else:
        lb = props.get("loadBalancerArn")
        view.load_balancer_arn = lb if isinstance(lb, str) else ""
        port = as_weight(props.get("port"))
        view.port = port
    if bad:
        view.problem = "the proposed forward action cannot be read: " + "; ".join(bad)
        return view
    if not view.groups:
        return view  # forwards nowhere: gives no target group traffic
    if is_rule and not view.listener_arn:
        view.problem = "the listener rule has no listenerArn"
        return view
    if not is_rule and not view.load_balancer_arn:
        view.problem = "the listener has no loadBalancerArn"
        return view

    offline, offline_problem = offline_section(args)
    if offline_problem is not None:
        view.problem = offline_problem
        return view
    if offline is not None:
        view.offline = True
        view.live = offline_live_state(offline, view.load_balancer_arn)
        if is_rule:
            view.load_balancer_arn = view.live.load_balancer_arn
    else:
        arn_for_region = view.listener_arn if is_rule else view.load_balancer_arn
        region = region_of(arn_for_region or "")
        if region is None or not (arn_for_region or "").startswith("arn:aws") or ":elasticloadbalancing:" not in (arn_for_region or ""):
            view.problem = f"{arn_for_region!r} is not an Elastic Load Balancing ARN"
            return view
        try:
            elbv2 = aws_client("elbv2", region)
        except Exception as e:  # noqa: BLE001
            view.problem, view.environmental = f"could not create an AWS client: {aws_fault_reason(e)}", True
            return view

        def read() -> LiveState:
            lb = view.load_balancer_arn
            if is_rule:
                found = elbv2.describe_listeners(ListenerArns=[view.listener_arn])["Listeners"]
                lb = found[0]["LoadBalancerArn"]
            return read_live_state(elbv2, lb, strict=False)

        try:
            view.live = bounded_read(read, "the live load balancer")
        except Exception as e:  # noqa: BLE001 - every fault lands in `problem`
            view.problem = str(e) if isinstance(e, LiveStateError) else f"could not read the live load balancer state: {aws_fault_reason(e)}"
            view.environmental = fault_is_environmental(e)
            return view
        view.load_balancer_arn = view.live.load_balancer_arn
    live = view.live
    if is_rule:
        view.live_route = live.rule_route(view.listener_arn or "", view.priority, view.conditions)
        for r in live.routes:
            if r.rule_arn is None and r.listener_arn == view.listener_arn:
                view.port = r.port
    elif view.port is not None:
        view.live_route = live.listener_route(view.port)
    return view

