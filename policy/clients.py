"""AWS clients of the pack process, the region of an ARN, and the pack's clock."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from rollout.analyzer import OFFLINE_TOKEN_ENV

from rollout.live import client_config, cloudwatch_client, elbv2_client

__all__ = ["aws_client", "region_of", "now"]

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
            if service == "elbv2":
                _CLIENTS[key] = elbv2_client(region)
            elif service == "cloudwatch":
                _CLIENTS[key] = cloudwatch_client(region)
            else:  # e.g. ecs for the workload policies: the same bounded retries and timeouts
                import boto3  # not at import: an offline pack never makes a client

                _CLIENTS[key] = boto3.session.Session().client(service, region_name=region, config=client_config())
        return _CLIENTS[key]


def region_of(arn: Any) -> str | None:
    """The region in an ARN, or None (then boto3's configured region applies)."""
    return _region(arn)


def _region(arn: Any) -> str | None:
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None


def now() -> float:
    """The pack's clock (UTC epoch seconds)."""
    return time.time()
