"""The pack's configuration in ONE place: every policy's enforcement level and config schema.

The engine sends each policy its own section of `--policy-pack-config` (or of the organization's
policy group) with the schema defaults below filled in. `settings()` applies the same defaults
again, so a policy never depends on the engine (or an old CLI) having done it.

`staging.json` / `production.json` next to this file are ready-made `--policy-pack-config` files:
production keeps the ALB security baseline mandatory, staging turns it advisory.
"""

from __future__ import annotations

from typing import Any, Mapping

from pulumi_policy import EnforcementLevel, PolicyConfigSchema

__all__ = [
    "PACK_NAME",
    "ENFORCEMENT",
    "SCHEMAS",
    "TRAFFIC_POLICIES",
    "WORKLOAD_POLICIES",
    "SECURITY_POLICIES",
    "HEALTH_OWN_KEYS",
    "level",
    "schema",
    "settings",
]

PACK_NAME = "bluegreen"

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

# Enforcement levels: the default of each policy. Override per stack with --policy-pack-config.
ENFORCEMENT: dict[str, EnforcementLevel] = {
    # traffic (production listener)
    "healthy-promotion": MANDATORY,
    "one-step-at-a-time": MANDATORY,
    "bake-time": MANDATORY,
    "valid-weights": MANDATORY,
    "abort-marker": MANDATORY,  # the reflex rolled back: only step 0 until the config says so
    "stable-by-finish": MANDATORY,
    "colour-identity": MANDATORY,
    "migration-guard": ADVISORY,  # rollbacks are never refused (docs/safety-model.md, invariant 5)
    "live-state-readable": ADVISORY,  # notes only: the blocking happens in the policies above
    # workload (a colour carrying traffic keeps its workload; policy/workload.py)
    "workload-frozen-while-live": MANDATORY,
    "workload-steady-during-shift": MANDATORY,
    "workload-break-glass": ADVISORY,  # reports (and notifies) what break-glass let through
    "no-plain-secrets": MANDATORY,  # policy/plain_secrets.py
    # ALB security baseline (safe default: mandatory; staging.json makes them advisory)
    "alb-https-only": MANDATORY,
    "alb-tls-policy": MANDATORY,
    "alb-deletion-protection": MANDATORY,
    "alb-drop-invalid-header-fields": MANDATORY,
    "alb-access-logs": MANDATORY,
}

TRAFFIC_POLICIES = (
    "healthy-promotion",
    "one-step-at-a-time",
    "bake-time",
    "valid-weights",
    "stable-by-finish",
    "colour-identity",
    "migration-guard",
    "abort-marker",
    "live-state-readable",
)
WORKLOAD_POLICIES = ("workload-frozen-while-live", "workload-steady-during-shift", "workload-break-glass", "no-plain-secrets")
SECURITY_POLICIES = (
    "alb-https-only",
    "alb-tls-policy",
    "alb-deletion-protection",
    "alb-drop-invalid-header-fields",
    "alb-access-logs",
)


def _gate_properties() -> dict[str, dict[str, Any]]:
    """JSON schema of the health-gate thresholds, derived from rollout.gate so the keys and
    defaults cannot drift from what `GateThresholds.from_mapping` accepts."""
    from rollout.gate import GateThresholds

    return GateThresholds.json_schema()


# Keys of healthy-promotion that are the pack's own (everything else goes to the health gate).
HEALTH_OWN_KEYS = ("probeBaseUrl", "verifyTls", "probeSource")

SCHEMAS: dict[str, PolicyConfigSchema] = {
    "healthy-promotion": PolicyConfigSchema(
        properties={
            "probeBaseUrl": {
                "type": "string",
                "default": "",
                "description": "Probe the gaining colour's health path under this base URL instead of "
                "http(s)://<ALB DNS name>:<test listener port>. Empty = the live test listener decides: when it is "
                "tagged bluegreen:probe=in-vpc, the in-VPC probe function's CloudWatch metrics are the evidence; "
                "otherwise probes go through it from where the pack runs.",
            },
            "verifyTls": {
                "type": "boolean",
                "default": True,
                "description": "Verify the TLS certificate of HTTPS probes.",
            },
            "probeSource": {
                "type": "string",
                "enum": ["auto", "in-vpc", "direct"],
                "default": "auto",
                "description": "Where the probe evidence comes from. in-vpc: the in-VPC probe function's CloudWatch metrics "
                "for this stack (the stack named by the resource's URN); direct: probes sent from where the pack runs; "
                "auto: the live test listener's bluegreen:probe tag decides (a label the same update can write, so "
                "production sets in-vpc). probeBaseUrl, when set, always means direct.",
            },
            **_gate_properties(),
        },
    ),
    "one-step-at-a-time": PolicyConfigSchema(
        properties={
            "allowSkip": {
                "type": "boolean",
                "default": False,
                "description": "Allow a promotion to jump over steps of the ladder.",
            },
        },
    ),
    "bake-time": PolicyConfigSchema(
        properties={
            "minutes": {
                "type": "number",
                "minimum": 0,
                "default": 10,
                "description": "How long the current weights must have held before the next promotion.",
            },
            "stampToleranceMinutes": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 5,
                "description": "How far the bluegreen:weights-since stamp of a weight change may be from "
                "the pack's clock when the change is checked.",
            },
        },
    ),
    "workload-frozen-while-live": PolicyConfigSchema(
        properties={
            "minDesiredCount": {
                "type": "integer",
                "minimum": 1,
                "default": 2,
                "description": "While a colour carries traffic, its desired count may not be lowered below this.",
            },
        },
    ),
    "alb-tls-policy": PolicyConfigSchema(
        properties={
            "minTlsVersion": {
                "type": "string",
                "enum": ["1.2", "1.3"],
                "default": "1.2",
                "description": "Lowest TLS version the listener's security policy may accept.",
            },
        },
    ),
}


def level(name: str) -> EnforcementLevel:
    """The default enforcement level of a policy."""
    return ENFORCEMENT[name]


def schema(name: str) -> PolicyConfigSchema | None:
    """The config schema of a policy, if it has settings."""
    return SCHEMAS.get(name)


def settings(name: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The policy's config section with the schema defaults filled in for missing keys."""
    out: dict[str, Any] = {}
    sch = SCHEMAS.get(name)
    if sch is not None:
        for key, prop in (sch.properties or {}).items():
            if "default" in prop:
                out[key] = prop["default"]
    if isinstance(config, Mapping):
        for key, value in config.items():
            out[key] = value
    return out
