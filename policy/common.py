"""What the policies share: the never-raise guard, reading resource inputs, AWS clients, and the
offline (plan) stand-in for live state. The route view (proposed vs live) is `routes.py`."""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Callable

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity
from pulumi_policy.proxy import UnknownValueError

import pack_config
from rollout.desired import TAG_BREAKING, TAG_SINCE, TAG_STABLE_TG, TAG_STEPS, format_since, parse_since
from rollout.analyzer import NOT_EVALUATED_OFFLINE, OFFLINE_KEY, OFFLINE_TOKEN_ENV
from rollout.live import LiveListener, LiveRoute, LiveState, Record, cloudwatch_client, condition_key, elbv2_client
from rollout.rules import ChangeKind, describe_weights

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


def offline_live_state(section: Mapping[str, Any], lb_arn: str) -> LiveState:
    """The previous simulated step as `rollout.live.read_live_state` would read it from AWS."""
    production = _offline_listener(section.get("production"))
    test = _offline_listener(section.get("test"))
    routes: list[LiveRoute] = []
    for listener in (production, test):
        if listener is None:
            continue
        total = sum(listener.weights.values()) or 1
        shares = {listener.target_groups[c]: w / total for c, w in listener.weights.items() if c in listener.target_groups}
        routes.append(LiveRoute(listener.arn, listener.port, shares))
    ports = {r.listener_arn: r.port for r in routes}
    for raw in section.get("rules") or []:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("listenerArn"), str):
            continue
        shares = raw.get("shares") if isinstance(raw.get("shares"), Mapping) else {}
        prio = as_weight(raw.get("priority"))
        routes.append(
            LiveRoute(
                raw["listenerArn"], ports.get(raw["listenerArn"], 0),
                {str(k): float(v) for k, v in shares.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
                rule_arn=f"{raw['listenerArn']}/rule/{prio}", priority=prio, conditions=condition_key(raw.get("conditions")),
            )
        )
    record = None
    if production is not None:
        tg = production.tags.get(TAG_STABLE_TG)
        if tg:
            record = Record(production.arn, tg, production.tags.get(TAG_STEPS), production.tags.get(TAG_SINCE))
    return LiveState(
        load_balancer_arn=str(section.get("loadBalancerArn") or lb_arn),
        dns_name=str(section.get("dnsName") or ""),
        production=production,
        test=test,
        health_paths=_str_map(section.get("healthPaths")),
        routes=tuple(routes),
        colors=_offline_colors(section),
        record=record,
        record_problem=None if record is not None or not routes else "the previous step records no stable target group",
    )


__all__ += ["offline_section", "offline_live_state", "NOT_EVALUATED_OFFLINE"]
__all__ += ["ChangeKind", "iso", "minutes_text", "describe", "production_inputs", "now", "aws_client", "region_of"]


def now() -> float:
    """The pack's clock (UTC epoch seconds)."""
    return time.time()
