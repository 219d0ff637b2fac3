"""The probe function's settings: what the program puts in its environment and the handler reads back.

The program (`components/probe.py`, `__main__.py`) needs these names and ``ProbeSettings`` to declare the
function; the handler (`rollout/probe_runner.py`, which re-exports them) needs them to run. They live here,
apart from the handler, so that declaring the function does not import the handler's SDK (boto3/botocore).

Pure, standard library only (and `rollout.probe_path`, the synthetic path's rule); packaged with the
probe and reflex functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout.probe_path import synthetic_path_problem

__all__ = ["NAMESPACE", "TAG_PROBE", "PROBE_IN_VPC", "SYNTHETIC_MAX_PER_MINUTE", "ProbeSetupError", "ProbeSettings", "env_number"]

NAMESPACE = "bluegreen"  # the CloudWatch namespace of the probe function's metrics
TAG_PROBE = "bluegreen:probe"  # on the test listener: "in-vpc" when the probe function judges it
PROBE_IN_VPC = "in-vpc"
SYNTHETIC_MAX_PER_MINUTE = 1000  # synthetic requests to each colour per round (rollout.synthetic_load)


class ProbeSetupError(ValueError):
    """The probe function's settings (environment) are missing or invalid."""


@dataclass(frozen=True)
class ProbeSettings:
    """What one round probes and how. Built by the handler from its environment."""

    stack: str  # the Stack dimension of every metric
    load_balancer_arn: str
    hostname: str | None = None  # SNI, Host and the name TLS is verified against; None: the ALB's DNS name
    probes: int = 10  # per round, spread over the ALB's addresses
    timeout_s: float = 2.0  # per probe: connect, TLS, headers and body
    expected_status: int = 200
    synthetic_per_minute: int = 0  # synthetic requests to each colour per round (0: none)
    synthetic_path: str | None = None  # what they GET; None: the colour's health path
    # bluegreen:probe.syntheticRepresentative: publish, with each round's synthetic counts, that the operator declared
    # the path representative of user requests (the gate then lets a pass rest on those minutes' synthetic evidence)
    synthetic_representative: bool = False

    ENV = {
        "stack": "BLUEGREEN_STACK",
        "load_balancer_arn": "BLUEGREEN_LOAD_BALANCER_ARN",
        "hostname": "BLUEGREEN_TEST_HOSTNAME",
        "probes": "BLUEGREEN_PROBES",
        "timeout_s": "BLUEGREEN_PROBE_TIMEOUT_SECONDS",
        "expected_status": "BLUEGREEN_EXPECTED_STATUS",
        "synthetic_per_minute": "BLUEGREEN_SYNTHETIC_PER_MINUTE",
        "synthetic_path": "BLUEGREEN_SYNTHETIC_PATH",
        "synthetic_representative": "BLUEGREEN_SYNTHETIC_REPRESENTATIVE",
    }

    def to_env(self) -> dict[str, str]:
        """The environment the program gives the function (empty values left out)."""
        out = {}
        for attr, var in self.ENV.items():
            value = getattr(self, attr)
            if isinstance(value, bool):
                if value:
                    out[var] = "true"
            elif value not in (None, "") and not (attr == "synthetic_per_minute" and value == 0):
                out[var] = format(value, "g") if isinstance(value, float) else str(value)
        return out

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ProbeSettings:
        """Read the settings from `environ`; ProbeSetupError names the variable that is wrong."""

        def need(attr: str) -> str:
            value = (environ.get(cls.ENV[attr]) or "").strip()
            if not value:
                raise ProbeSetupError(f"{cls.ENV[attr]} is not set")
            return value

        def number(attr: str, kind: type, lo: float, hi: float, default: float) -> Any:
            value = env_number(environ, cls.ENV[attr], kind, lo, hi, ProbeSetupError)
            return default if value is None else value

        return cls(
            stack=need("stack"),
            load_balancer_arn=need("load_balancer_arn"),
            hostname=(environ.get(cls.ENV["hostname"]) or "").strip() or None,
            probes=number("probes", int, 1, 100, 10),
            timeout_s=number("timeout_s", float, 0.1, 10, 2.0),
            expected_status=number("expected_status", int, 100, 599, 200),
            synthetic_per_minute=number("synthetic_per_minute", int, 0, SYNTHETIC_MAX_PER_MINUTE, 0),
            synthetic_path=_path(environ.get(cls.ENV["synthetic_path"]), cls.ENV["synthetic_path"]),
            synthetic_representative=_flag(environ.get(cls.ENV["synthetic_representative"]), cls.ENV["synthetic_representative"]),
        )


def env_number(environ: Mapping[str, str], var: str, kind: type, lo: float, hi: float, error: type[ValueError]) -> Any:
    """The number in ``environ[var]`` (None when unset); `error` names the variable when it is not a number in [lo, hi]."""
    raw = (environ.get(var) or "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise error(f"{var} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise error(f"{var} must be between {lo:g} and {hi:g}, got {raw!r}")
    return value


def _flag(raw: str | None, var: str) -> bool:
    value = (raw or "").strip().lower()
    if value not in ("", "true", "false"):
        raise ProbeSetupError(f"{var} must be true or false, got {raw!r}")
    return value == "true"


def _path(raw: str | None, var: str) -> str | None:
    value = (raw or "").strip()
    if not value:
        return None
    problem = synthetic_path_problem(value)  # the validator's rule (bluegreen:probe.syntheticPath), one copy
    if problem:
        raise ProbeSetupError(f"{var} {problem}")
    return value
