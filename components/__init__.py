"""Pulumi components of bluegreen. Thin: every decision is made in `rollout/` and handed in."""

from .color import ColorEnvironment, ColorEnvironmentArgs
from .network import Network, NetworkArgs
from .traffic import TrafficLayer, TrafficLayerArgs

__all__ = [
    "ColorEnvironment",
    "ColorEnvironmentArgs",
    "Network",
    "NetworkArgs",
    "TrafficLayer",
    "TrafficLayerArgs",
]
