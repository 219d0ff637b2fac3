"""The one error hierarchy of bluegreen. Every error the tool raises on purpose is a RolloutError."""

from __future__ import annotations

__all__ = [
    "RolloutError",
    "ConfigError",
    "TransitionError",
    "GateError",
    "LiveStateError",
    "PulumiCliError",
]


class RolloutError(Exception):
    """Something bluegreen refuses to do, with a message meant for the operator."""


class ConfigError(RolloutError):
    """A stack config value is missing, has the wrong type, or is outside what is allowed."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


class TransitionError(RolloutError):
    """A move from one rollout config to the next is not one bluegreen allows."""


class GateError(RolloutError):
    """The health gate could not reach a verdict (as opposed to reaching 'fail')."""


class LiveStateError(RolloutError):
    """The live state of the load balancer could not be read from AWS."""


class PulumiCliError(RolloutError):
    """The Pulumi CLI is missing or a pulumi command failed."""
