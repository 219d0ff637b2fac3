"""The health gate's settings table: each threshold's camelCase config key, type and range, and the one check of a
value against it. `rollout.gate.GateThresholds` is built from this table, and so is the pack's config schema; the
program reads the reflex's copy of `slowRequestMs` through it (`rollout.pack_settings`) without importing the gate's
HTTP and AWS code.

Pure, standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rollout.errors import ConfigError

__all__ = ["FIELD_BY_KEY", "SPECS", "Spec", "check_value"]


@dataclass(frozen=True)
class Spec:
    key: str  # camelCase config key
    kind: type  # int | float | str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo is exclusive
    nullable: bool = False
    choices: tuple[str, ...] = ()  # for strings: the allowed values (empty: any)


SPECS: dict[str, Spec] = {
    "probes": Spec("probes", int, 1, 100),
    "probe_timeout_s": Spec("probeTimeoutSeconds", float, 0, 300, lo_open=True),
    "deadline_s": Spec("deadlineSeconds", float, 0, 900, lo_open=True),
    "min_success_ratio": Spec("minSuccessRatio", float, 0, 1),
    "expected_status": Spec("expectedStatus", int, 100, 599),
    "expected_body": Spec("expectedBody", str, nullable=True),
    "max_body_bytes": Spec("maxBodyBytes", int, 1, 64 * 1024 * 1024),
    "max_p95_ms": Spec("maxP95Ms", float, 0, None, lo_open=True),
    "min_healthy_targets": Spec("minHealthyTargets", int, 0, None),
    "max_unhealthy_targets": Spec("maxUnhealthyTargets", int, 0, None),
    "max_5xx_ratio": Spec("max5xxRatio", float, 0, 1),
    "max_target_p95_ms": Spec("maxTargetP95Ms", float, 0, None, lo_open=True),
    "metrics_window_min": Spec("metricsWindowMinutes", int, 1, 1440),
    "min_requests": Spec("minRequests", int, 0, None),
    "probe_retries": Spec("probeRetries", int, 0, 5),
    "min_healthy_fraction": Spec("minHealthyFraction", float, 0, 1),
    "share_capacity_ratio": Spec("shareCapacityRatio", float, 0, 10),
    "judge": Spec("judge", str, choices=("required", "advisory", "off")),
    "judge_alpha": Spec("judgeAlpha", float, 0, 0.5, lo_open=True),
    "judge_tolerated_ratio": Spec("judgeToleratedRatio", float, 1, 100),
    "judge_pass_ratio": Spec("judgePassRatio", float, 1, 100, lo_open=True),
    "judge_min_minutes": Spec("judgeMinMinutes", int, 1, 1440),
    "judge_max_minutes": Spec("judgeMaxMinutes", int, 1, 1440),
    "judge_min_requests": Spec("judgeMinRequests", int, 0, None),
    "slow_request_ms": Spec("slowRequestMs", float, 0, 600000, lo_open=True, nullable=True),
}
FIELD_BY_KEY = {spec.key: name for name, spec in SPECS.items()}  # camelCase key -> GateThresholds field


def check_value(spec: Spec, value: Any, key: str) -> Any:
    """Return the value coerced to the spec's type, or raise ConfigError naming ``key``."""
    if value is None:
        if spec.nullable:
            return None
        raise ConfigError(key, "must be set (got null)")
    if spec.kind is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {type(value).__name__}")
        if value == "":
            raise ConfigError(key, "must not be empty (leave it unset to skip the body check)")
        if spec.choices and value not in spec.choices:
            raise ConfigError(key, f"must be {' | '.join(spec.choices)}; got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number, got {type(value).__name__}")
    if spec.kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(key, f"must be a whole number, got {value!r}")
            value = int(value)
    else:
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(key, "is too large") from None
        if not math.isfinite(value):
            raise ConfigError(key, f"must be a finite number, got {value!r}")
    if spec.lo is not None and (value <= spec.lo if spec.lo_open else value < spec.lo):
        bound = "greater than" if spec.lo_open else "at least"
        raise ConfigError(key, f"must be {bound} {spec.lo:g}, got {value!r}")
    if spec.hi is not None and value > spec.hi:
        raise ConfigError(key, f"must be at most {spec.hi:g}, got {value!r}")
    return value
