"""What the policies share: the never-raise guard, reading listener inputs, and the traffic view.

The traffic view puts side by side what the update PROPOSES (the listener's inputs: forward target
groups with weights, tags) and what AWS has LIVE (read with boto3 through `rollout.live`), then
classifies the change with `rollout.rules.classify_traffic`. Colours of target groups always come
from AWS (`bluegreen:color` tags), never from the program.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity
from pulumi_policy.deserialize import serialize_properties
from pulumi_policy.proxy import UnknownValueError

import pack_config
from rollout.desired import TAG_BREAKING, TAG_LISTENER, TAG_SINCE, TAG_STABLE, TAG_STEPS, format_since, parse_since, parse_steps_tag
from rollout.errors import ConfigError, LiveStateError
from rollout.analyzer import NOT_EVALUATED_OFFLINE, OFFLINE_KEY, OFFLINE_TOKEN_ENV
from rollout.live import LiveListener, LiveState, aws_fault_reason, cloudwatch_client, elbv2_client, bounded_read, read_live_state, target_group_colors
from rollout.rules import COLORS, ChangeKind, TrafficState, Transition, classify_traffic, describe_weights, other, validate_steps

try:  # private in pulumi_policy; raised by args.not_applicable()
    from pulumi_policy.policy import _NotApplicableError
except Exception:  # pragma: no cover
    class _NotApplicableError(Exception):  # type: ignore[no-redef]
        pass

__all__ = [
    "LISTENER_TYPES",
    "LISTENER_RULE_TYPES",
    "LOAD_BALANCER_TYPES",
    "TAG_SINCE",
    "TAG_BREAKING",
    "guarded",
    "is_seq",
    "is_listener",
    "tags_of",
    "as_weight",
    "forward_actions",
    "TrafficView",
    "assess",
    "format_since",
    "parse_since",
    "weights_text",
]

LISTENER_TYPES = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
LISTENER_RULE_TYPES = frozenset({"aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule"})
LOAD_BALANCER_TYPES = frozenset({"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"})

# On the production listener: when the current weights took effect, and which weights those are,
# e.g. "2025-06-01T12:00:00Z blue=90 green=10" (only characters ELBv2 allows in tag values).

_PREVIEW_NOTE = (
    "skipped, not failed: this is a preview of a resource whose inputs are not known yet (a first "
    "deploy); there is no live traffic to protect, and the policy runs for real during `pulumi up`"
)


# --------------------------------------------------------------------------- never raise


def guarded(name: str, check: Callable[[ResourceValidationArgs, ReportViolation], None]):
    """Wrap a policy check so that it never raises.

    * An unknown value (preview of a first deploy) propagates as UnknownValueError, which the SDK
      reports at ADVISORY level: a clear skip, never a false block.
    * Any other exception becomes a violation that names it (fail closed, and visible).
    """

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        try:
            check(args, report_violation)
        except UnknownValueError as e:
            e.message = f"{e.message}; {name} {_PREVIEW_NOTE}"
            raise
        except _NotApplicableError:
            raise
        except Exception as e:  # noqa: BLE001 - the whole point: nothing escapes
            where = ""
            tb = traceback.extract_tb(e.__traceback__)
            if tb:
                last = tb[-1]
                where = f" at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
            report_violation(
                f"{name} could not finish its check, so it fails closed: unexpected "
                f"{type(e).__name__}: {_short(e)}{where}"
            )

    validate.__name__ = f"validate_{name.replace('-', '_')}"
    return validate


def resource_policy(
    name: str, description: str, check: Callable[[ResourceValidationArgs, ReportViolation], None], severity: Severity
) -> ResourceValidationPolicy:
    """A policy of this pack, wired the one way: its check `guarded` (it never raises), its
    enforcement level and config schema from `pack_config`, where they are set for every policy."""
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=guarded(name, check),
        enforcement_level=pack_config.level(name),
        config_schema=pack_config.schema(name),
        severity=severity,
    )


def _short(value: Any, limit: int = 300) -> str:
    s = " ".join(str(value).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# --------------------------------------------------------------------------- reading inputs


def is_seq(value: Any) -> bool:
    """A list-like value (the SDK's list proxy included), not a string."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def is_listener(args: ResourceValidationArgs) -> bool:
    return args.resource_type in LISTENER_TYPES


def tags_of(props: Mapping[str, Any]) -> dict[str, str]:
    """The resource's tags as str -> str; anything else (wrong type, unknown) is left out."""
    raw = props.get("tags") if isinstance(props, Mapping) else None
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, str] = {}
    for key in list(raw):
        try:
            value = raw[key]
        except UnknownValueError:
            continue  # an unknown tag value is simply not known yet
        if isinstance(key, str) and isinstance(value, str):
            out[key] = value
    return out


def as_weight(value: Any) -> int | None:
    """An integer weight, or None. The engine sends numbers as floats: 90.0 is 90, 10.5 is not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{value} (a boolean)"
    if isinstance(value, float):
        return f"{value:g} (not an integer)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if value is None:
        return "unset"
    return f"{_short(value, 60)} (a {type(value).__name__})"


def forward_actions(actions: Any) -> list[Mapping[str, Any]]:
    """The forward actions in a listener's defaultActions or a rule's actions."""
    if not is_seq(actions):
        return []
    return [a for a in actions if isinstance(a, Mapping) and a.get("type") == "forward"]


def _forward_groups(action: Mapping[str, Any]) -> list[Any]:
    fwd = action.get("forward")
    if isinstance(fwd, Mapping):
        groups = fwd.get("targetGroups")
        if is_seq(groups):
            return list(groups)
    return []


def weights_text(weights: Mapping[str, int]) -> str:
    """'blue 90% / green 10%' in colour order."""
    return describe_weights(weights, sep=" / ")


# --------------------------------------------------------------------------- the since stamp


# format_since / parse_since: one copy, in rollout.desired (the program writes what the pack reads).


def iso(when: float) -> str:
    return datetime.fromtimestamp(int(when), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def minutes_text(seconds: float) -> str:
    m = seconds / 60.0
    return f"{m:.1f} min" if m < 100 else f"{m:.0f} min"


# --------------------------------------------------------------------------- the traffic view


@dataclass
class TrafficView:
    """A production-listener update: proposed vs live, and what the change means."""

    urn: str
    load_balancer_arn: str
    groups: list[tuple[str, int]]  # proposed (target group ARN, weight), valid integer weights
    tags: dict[str, str]  # proposed listener tags
    colors: dict[str, str] = field(default_factory=dict)  # ARN -> colour, read live
    proposed: TrafficState | None = None  # by colour (None if colours unknown)
    live_state: LiveState | None = None
    live: TrafficState | None = None  # live production listener (None: there is none yet)
    steps: tuple[int, ...] = ()
    steps_problem: str | None = None
    transition: Transition | None = None
    problem: str | None = None  # why the change cannot be classified (live unreadable, ...)
    live_fault: bool = False  # the problem lies in AWS (unreadable or uninterpretable), not in the inputs
    offline: bool = False  # judged by `python -m rollout plan`: "live" is the previous simulated step

    def not_evaluated_offline(self, policy: str, why: str) -> str:
        """The note of a policy that needs live AWS, in an offline view."""
        return f"{NOT_EVALUATED_OFFLINE}: {policy} {why}; it runs against live AWS at `pulumi preview` / `pulumi up`"

    @property
    def stable(self) -> str | None:
        s = self.tags.get(TAG_STABLE)
        return s if s in COLORS else None

    @property
    def live_tags(self) -> Mapping[str, str]:
        if self.live_state is not None and self.live_state.production is not None:
            return self.live_state.production.tags
        return {}

    def full_rollback_shape(self) -> bool:
        """Proposed: the declared stable colour at 100, everything else 0.

        Used only when live state cannot be read (faults fail open for rollbacks). When even the
        target groups' colours are unknown, one target group at 100 and the rest at 0 is the shape.
        """
        if self.stable is None or not self.groups:
            return False
        if self.proposed is not None:
            w = self.proposed.weights
            return w.get(self.stable, 0) == 100 and all(v == 0 for c, v in w.items() if c != self.stable)
        weights = sorted(w for _, w in self.groups)
        return weights[-1] == 100 and all(w == 0 for w in weights[:-1])

    def gaining_weights(self) -> tuple[int, int]:
        t = self.transition
        return (t.from_weight, t.to_weight) if t else (0, 0)

    def arn_of(self, color: str) -> str | None:
        for arn, c in self.colors.items():
            if c == color:
                return arn
        return None


_CLIENTS: dict[tuple[str, str | None], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def aws_client(service: str, region: str | None):
    """One boto3 client per (service, region) for the life of the pack process.

    Creating a client loads the service model (~100 ms); the engine starts the pack once per
    `pulumi up`, so caching for the process's life is short-lived and safe (clients are
    thread-safe and refresh temporary credentials themselves).
    """
    if os.environ.get(OFFLINE_TOKEN_ENV):
        raise RuntimeError(f"this pack process runs offline ({OFFLINE_TOKEN_ENV} is set) and makes no AWS calls")
    key = (service, region)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = elbv2_client(region) if service == "elbv2" else cloudwatch_client(region)
        return _CLIENTS[key]


def region_of(arn: str) -> str | None:
    """The region in an ARN, or None (then boto3's configured region applies)."""
    return _region(arn)


def _region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None


def _ladder(tag: str | None) -> tuple[tuple[int, ...], str | None]:
    steps = parse_steps_tag(tag)
    if steps is None:
        return (), f"the production listener has no valid {TAG_STEPS} tag (found {describe(tag)})"
    try:
        return validate_steps(list(steps), TAG_STEPS), None
    except ConfigError as e:
        return (), str(e)


def production_inputs(args: ResourceValidationArgs) -> tuple[str, list[Any], dict[str, str]] | None:
    """(loadBalancerArn, forward target groups, tags) of a production listener; None otherwise.

    Raises UnknownValueError if an ARN is not known yet (preview of a first deploy).
    """
    if not is_listener(args):
        return None
    props = args.props
    tags = tags_of(props)
    if tags.get(TAG_LISTENER) != "production":
        return None
    lb_arn = props.get("loadBalancerArn")
    fwd = forward_actions(props.get("defaultActions"))
    groups = _forward_groups(fwd[0]) if fwd else []
    return (lb_arn if isinstance(lb_arn, str) else ""), groups, tags


_MEMO_SECONDS = 2.0  # the policies of one Analyze call share one read of AWS
_MEMO: dict[str, tuple[float, TrafficView]] = {}
_MEMO_LOCK = threading.Lock()


def _memo_key(args: ResourceValidationArgs) -> str | None:
    try:
        plain = serialize_properties(args.props)
        cfg = args.get_config()
        offline = cfg.get(OFFLINE_KEY) if isinstance(cfg, Mapping) else None
        return f"{args.urn}\n{json.dumps(plain, sort_keys=True, default=repr)}\n{json.dumps(offline, sort_keys=True, default=repr)}"
    except Exception:  # noqa: BLE001 - no memo then
        return None


def assess(args: ResourceValidationArgs) -> TrafficView | None:
    """The traffic view of a production-listener update, or None for any other resource.

    Reads AWS (elbv2) for the target groups' colours and the live listener. AWS faults never
    raise: they land in `problem`, and each policy decides whether that blocks. The policies of
    one Analyze call run back to back on the same inputs, so a view is reused for a moment
    (`_MEMO_SECONDS`) instead of reading AWS once per policy.
    """
    if not is_listener(args):
        return None
    key = _memo_key(args)
    clock = time.monotonic()
    if key is not None:
        with _MEMO_LOCK:
            for k in [k for k, (exp, _) in _MEMO.items() if exp < clock]:
                del _MEMO[k]
            hit = _MEMO.get(key)
        if hit is not None:
            return hit[1]
    view = _assess(args)
    if key is not None and view is not None:
        with _MEMO_LOCK:
            _MEMO[key] = (time.monotonic() + _MEMO_SECONDS, view)
    return view


def _assess(args: ResourceValidationArgs) -> TrafficView | None:
    inputs = production_inputs(args)
    if inputs is None:
        return None
    lb_arn, raw_groups, tags = inputs
    groups: list[tuple[str, int]] = []
    bad: list[str] = []
    for i, g in enumerate(raw_groups):
        arn = g.get("arn") if isinstance(g, Mapping) else None  # UnknownValueError in preview
        weight = as_weight(g.get("weight")) if isinstance(g, Mapping) else None
        if not isinstance(arn, str) or not arn:
            bad.append(f"target group #{i + 1} has no ARN")
        elif weight is None:
            bad.append(f"target group #{i + 1} has weight {describe(g.get('weight'))}")
        else:
            groups.append((arn, weight))
    view = TrafficView(urn=args.urn, load_balancer_arn=lb_arn, groups=groups, tags=tags)
    if not raw_groups:
        view.problem = "the production listener's default action is not a weighted forward to target groups"
        return view
    if bad:
        view.problem = "the proposed forward action cannot be read: " + "; ".join(bad)
        return view
    if not lb_arn:
        view.problem = "the production listener has no loadBalancerArn"
        return view

    offline, offline_problem = offline_section(args)
    if offline_problem is not None:
        view.problem = offline_problem
        return view
    if offline is not None:
        view.offline = True
        read_colors = lambda arns: _offline_colors(offline)  # noqa: E731
        read_live = lambda: _offline_live_state(offline, lb_arn)  # noqa: E731
    else:
        try:
            elbv2 = aws_client("elbv2", _region(lb_arn))
        except Exception as e:  # noqa: BLE001 - e.g. an invalid region in the ARN: a fault like any other
            view.problem, view.live_fault = f"could not create an AWS client: {aws_fault_reason(e)}", True
            return view
        read_colors = lambda arns: target_group_colors(elbv2, arns)  # noqa: E731
        read_live = lambda: read_live_state(elbv2, lb_arn)  # noqa: E731
    try:
        colors = bounded_read(lambda: read_colors([arn for arn, _ in groups]), "the target groups' colours")
    except LiveStateError as e:
        view.problem, view.live_fault = str(e), True
        return view
    view.colors = dict(colors)
    missing = [arn for arn, _ in groups if arn not in colors]
    invalid = [f"{arn} ({colors[arn]!r})" for arn, _ in groups if arn in colors and colors[arn] not in COLORS]
    if missing or invalid:
        why = []
        if missing:
            why.append("no bluegreen:color tag on " + ", ".join(missing))
        if invalid:
            why.append("bluegreen:color is not blue | green on " + ", ".join(invalid))
        view.problem, view.live_fault = "the target groups' colours are unknown: " + "; ".join(why), True
        return view
    by_color: dict[str, int] = {}
    for arn, weight in groups:
        c = colors[arn]
        if c in by_color:
            view.problem = f"the production listener forwards to two {c} target groups"
            return view
        by_color[c] = weight
    view.proposed = TrafficState(weights={c: by_color.get(c, 0) for c in COLORS}, stable=view.stable)

    try:
        live_state = bounded_read(read_live, "the live load balancer")
    except LiveStateError as e:
        view.problem, view.live_fault = str(e), True
        return view
    view.live_state = live_state
    if live_state.production is not None:
        lw = live_state.production.weights
        view.live = TrafficState(
            weights={c: int(lw.get(c, 0)) for c in COLORS},
            stable=live_state.production.tags.get(TAG_STABLE),
        )

    # The ladder: the live one while a rollout is under way (so a program cannot shorten the
    # ladder mid-flight), else the proposed one.
    live_candidate = 0
    if view.live is not None and view.live.stable in COLORS:
        live_candidate = view.live.weights.get(other(view.live.stable), 0)
    if view.live is not None and 0 < live_candidate < 100:
        view.steps, view.steps_problem = _ladder(view.live_tags.get(TAG_STEPS))
    else:
        view.steps, view.steps_problem = _ladder(tags.get(TAG_STEPS))
    view.transition = classify_traffic(view.live, view.proposed, view.steps)
    return view


# --------------------------------------------------------------------------- offline (rollout plan)
#
# `python -m rollout plan` judges simulated steps with no AWS account. It starts this pack with
# OFFLINE_TOKEN_ENV set to a random token and sends, in each traffic policy's config, an `offline`
# section with the same token and the PREVIOUS simulated step as the "live" state:
#     {"token": "...", "colors": {"<tg arn>": "blue", ...}, "loadBalancerArn": "...", "dnsName": "...",
#      "production": {"arn", "port", "protocol", "weights": {colour: w}, "targetGroups": {colour: arn},
#                     "tags": {...}} | null, "test": {...} | null, "healthPaths": {colour: path}}
# Both halves are needed; one without the other is refused (the traffic policies fail closed with
# the reason) and never falls back to a laxer check. With the token set, `aws_client` refuses and
# `__main__` blocks every non-loopback connection: an offline pack makes no AWS call.


def offline_section(args: ResourceValidationArgs) -> tuple[Mapping[str, Any] | None, str | None]:
    """(the offline section, None) in offline mode; (None, None) live; (None, why) if half-configured."""
    token = os.environ.get(OFFLINE_TOKEN_ENV, "")
    cfg = args.get_config()
    section = cfg.get(OFFLINE_KEY) if isinstance(cfg, Mapping) else None
    if section is None and not token:
        return None, None  # the normal case: a real preview/up reads live AWS
    if not token:
        return None, (
            f"the policy config has an `{OFFLINE_KEY}` section, which only `python -m rollout plan` may send to a pack "
            f"it started itself; a real preview/up never judges traffic from it. Remove `{OFFLINE_KEY}` from the "
            "--policy-pack-config / policy group config"
        )
    if not isinstance(section, Mapping) or section.get("token") != token:
        return None, (
            f"this pack process runs offline ({OFFLINE_TOKEN_ENV} is set) but the policy config has no "
            f"`{OFFLINE_KEY}` section with its token, so there is no state to judge against and no AWS to read"
        )
    return section, None


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _offline_colors(section: Mapping[str, Any]) -> dict[str, str]:
    return _str_map(section.get("colors"))


def _offline_listener(raw: Any) -> LiveListener | None:
    if not isinstance(raw, Mapping):
        return None
    weights = raw.get("weights") if isinstance(raw.get("weights"), Mapping) else {}
    port = raw.get("port")
    return LiveListener(
        arn=str(raw.get("arn") or ""),
        port=int(port) if isinstance(port, (int, float)) and not isinstance(port, bool) else 0,
        protocol=str(raw.get("protocol") or "HTTP"),
        weights={str(c): int(w) for c, w in weights.items() if as_weight(w) is not None},
        target_groups=_str_map(raw.get("targetGroups")),
        tags=_str_map(raw.get("tags")),
    )


def _offline_live_state(section: Mapping[str, Any], lb_arn: str) -> LiveState:
    return LiveState(
        load_balancer_arn=str(section.get("loadBalancerArn") or lb_arn),
        dns_name=str(section.get("dnsName") or ""),
        production=_offline_listener(section.get("production")),
        test=_offline_listener(section.get("test")),
        health_paths=_str_map(section.get("healthPaths")),
    )


__all__ += ["offline_section", "NOT_EVALUATED_OFFLINE"]
__all__ += ["ChangeKind", "iso", "minutes_text", "describe", "production_inputs", "now", "aws_client", "region_of"]


def now() -> float:
    """The pack's clock (UTC epoch seconds)."""
    return time.time()
