"""The reflex function's settings: what the program puts in its environment and the handler reads back.

The program (`components/reflex.py`) needs ``ReflexSettings`` to declare the function; the handler
(`rollout/reflex.py`, which re-exports it) needs it to run. It lives here, apart from the handler, so that
declaring the function imports neither the handler nor its SDK (boto3/botocore).

Pure, standard library only (and the pure `rollout.probe_settings`; `rollout.judge` when the handler asks for
the judge's settings); packaged with the reflex function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollout.probe_settings import ProbeSettings, env_number

if TYPE_CHECKING:
    from rollout.judge import JudgeConfig

__all__ = ["ReflexSetupError", "ReflexSettings"]


class ReflexSetupError(ValueError):
    """The reflex function's settings (environment) are missing or invalid."""


@dataclass(frozen=True)
class ReflexSettings:
    """What the reflex watches and how often. Built by the handler from its environment."""

    stack: str
    load_balancer_arn: str
    listener_arn: str  # the production listener: the only resource the reflex may change
    hostname: str | None = None  # SNI/Host/TLS name of the probes (bluegreen:traffic.testHostname)
    probes: int = 5  # probes per check
    timeout_s: float = 2.0  # per probe
    expected_status: int = 200
    interval_s: float = 5.0  # one check every interval
    budget_s: float = 50.0  # how long one invocation keeps checking
    breach_checks: int = 2  # consecutive bad checks of one signal that make a breach
    probe_failure_ratio: float = 0.5  # a probe round fails when at least this share of its probes fail
    topic_arn: str | None = None  # SNS topic notified of a rollback (optional)
    judge: bool = True  # read the relative judge's verdict once a minute (CloudWatch GetMetricData)
    judge_alpha: float = 0.05  # the judge's false-alarm bound per step (as the gate's judgeAlpha)
    judge_tolerated_ratio: float = 1.0  # fail only on evidence the candidate is worse than this x stable
    judge_max_minutes: int = 60  # a change within the step: starts this many minutes back at most (the step's verdict reads it all)
    judge_change_alpha: float = 0.0001  # a change after the step began: the judge on every later start, at this alpha
    # The kinds the gate's judge counts, so the reflex judges what the gate judges: requests slower than
    # this count as bad (the gate's slowRequestMs; None: errors only) ...
    judge_slow_request_ms: float | None = None
    # ... and the probe function's synthetic load (its stack name) as the separate synthetic stratum.
    judge_synthetic_stack: str | None = None

    ENV = {
        "stack": "BLUEGREEN_STACK",
        "load_balancer_arn": "BLUEGREEN_LOAD_BALANCER_ARN",
        "listener_arn": "BLUEGREEN_LISTENER_ARN",
        "hostname": "BLUEGREEN_TEST_HOSTNAME",
        "probes": "BLUEGREEN_PROBES",
        "timeout_s": "BLUEGREEN_PROBE_TIMEOUT_SECONDS",
        "expected_status": "BLUEGREEN_EXPECTED_STATUS",
        "interval_s": "BLUEGREEN_REFLEX_INTERVAL_SECONDS",
        "budget_s": "BLUEGREEN_REFLEX_BUDGET_SECONDS",
        "breach_checks": "BLUEGREEN_REFLEX_BREACH_CHECKS",
        "probe_failure_ratio": "BLUEGREEN_REFLEX_PROBE_FAILURE_RATIO",
        "topic_arn": "BLUEGREEN_REFLEX_TOPIC_ARN",
        "judge": "BLUEGREEN_REFLEX_JUDGE",
        "judge_alpha": "BLUEGREEN_REFLEX_JUDGE_ALPHA",
        "judge_tolerated_ratio": "BLUEGREEN_REFLEX_JUDGE_TOLERATED_RATIO",
        "judge_max_minutes": "BLUEGREEN_REFLEX_JUDGE_MAX_MINUTES",
        "judge_change_alpha": "BLUEGREEN_REFLEX_JUDGE_CHANGE_ALPHA",
        "judge_slow_request_ms": "BLUEGREEN_REFLEX_JUDGE_SLOW_REQUEST_MS",
        "judge_synthetic_stack": "BLUEGREEN_REFLEX_JUDGE_SYNTHETIC_STACK",
    }
    _NUMBERS = {  # attr: (type, low, high)
        "probes": (int, 1, 50),
        "timeout_s": (float, 0.1, 10),
        "expected_status": (int, 100, 599),
        "interval_s": (float, 0.1, 60),
        "budget_s": (float, 0, 900),
        "breach_checks": (int, 1, 20),
        "probe_failure_ratio": (float, 0.01, 1),
        "judge_alpha": (float, 0.0001, 0.5),
        "judge_tolerated_ratio": (float, 1, 100),
        "judge_max_minutes": (int, 5, 1440),
        "judge_change_alpha": (float, 1e-9, 0.05),
        "judge_slow_request_ms": (float, 1e-9, 600000),  # the gate's slowRequestMs range: above 0, at most 600000
    }

    def to_env(self) -> dict[str, str]:
        """The environment the program gives the function: the probe settings' own variables, plus the reflex's."""
        own = {attr: getattr(self, attr) for attr in self.ENV if attr not in ProbeSettings.ENV}
        return {
            **self.probe_settings().to_env(),
            **{self.ENV[a]: _env_text(v) for a, v in own.items() if v not in (None, "")},
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ReflexSettings:
        """Read the settings from `environ`; ReflexSetupError names the variable that is wrong."""
        values: dict[str, Any] = {}
        for attr in ("stack", "load_balancer_arn", "listener_arn"):
            value = (environ.get(cls.ENV[attr]) or "").strip()
            if not value:
                raise ReflexSetupError(f"{cls.ENV[attr]} is not set")
            values[attr] = value
        for attr in ("hostname", "topic_arn", "judge_synthetic_stack"):
            values[attr] = (environ.get(cls.ENV[attr]) or "").strip() or None
        raw = (environ.get(cls.ENV["judge"]) or "").strip().lower()
        if raw not in ("", "true", "false"):
            raise ReflexSetupError(f"{cls.ENV['judge']} must be true or false, got {raw!r}")
        if raw:
            values["judge"] = raw == "true"
        for attr, (kind, lo, hi) in cls._NUMBERS.items():
            value = env_number(environ, cls.ENV[attr], kind, lo, hi, ReflexSetupError)
            if value is not None:
                values[attr] = value
        return cls(**values)

    def judge_config(self) -> JudgeConfig:
        """The judge's settings: the gate's defaults, with this alpha, tolerated ratio and window."""
        from rollout.judge import JudgeConfig  # the handler's: declaring the function does not load the judge

        base = JudgeConfig()
        return JudgeConfig(alpha=self.judge_alpha, tolerated_ratio=self.judge_tolerated_ratio,
                           pass_ratio=max(base.pass_ratio, self.judge_tolerated_ratio * 2),
                           max_minutes=self.judge_max_minutes)

    def probe_settings(self) -> ProbeSettings:
        return ProbeSettings(
            stack=self.stack, load_balancer_arn=self.load_balancer_arn, hostname=self.hostname,
            probes=self.probes, timeout_s=self.timeout_s, expected_status=self.expected_status,
        )


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return format(value, "g") if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- live reads
