"""Offline verdicts (`python -m rollout plan`): the previous simulated step stands in for live AWS."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from rollout.analyzer import NOT_EVALUATED_OFFLINE, OFFLINE_KEY, OFFLINE_TOKEN_ENV
from rollout.desired import TAG_SINCE, TAG_STABLE_TG, TAG_STEPS
from rollout.live import LiveListener, LiveRoute, LiveState, Record, condition_key

from props import as_weight

__all__ = ["offline_section", "offline_live_state", "NOT_EVALUATED_OFFLINE"]

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


