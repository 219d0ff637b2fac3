"""One round of HTTP probes from inside the VPC, published as CloudWatch metrics.

This module runs inside AWS Lambda (``rollout.probe_lambda.handler``): it uses the standard library
and boto3 only (boto3 is in the Lambda runtime, ``requests`` is not), and from ``rollout`` only
``live`` (the one reading of the listeners) and ``errors``. All AWS clients are passed in, so tests call it against ``moto_server`` and loopback
HTTPS servers.

A round, every minute:

1. reads the live TEST listener of the load balancer (tag ``bluegreen:listener=test``): its port,
   protocol and the target group it forwards to, whose colour is that target group's
   ``bluegreen:color`` tag -- facts read from AWS, never from the function's own configuration;
2. finds the load balancer's private addresses (its network interfaces, described
   ``ELB app/<name>/<id>``), so the probes stay inside the VPC and their source address is the
   function's own, which the ALB's security group admits by security-group reference;
3. sends ``probes`` GETs of the target group's health path, spread over those addresses, with
   SNI and ``Host`` set to ``hostname`` and TLS verified against ``hostname`` (a name the listener's
   certificate covers), whatever address the connection goes to;
4. :func:`publish_round` puts the per-colour counts into CloudWatch namespace ``bluegreen``
   (dimensions Stack, Colour, TargetGroup), which the gate reads with ``cloudwatch:GetMetricData``
   from anywhere (``rollout.probe_evidence``).

:func:`probe_round` does no publishing and never raises: a round that cannot probe says why in
``ProbeRound.problem``. That keeps it reusable by a caller that judges rounds itself.

With ``synthetic_per_minute`` set, the handler also runs a round of synthetic load
(``rollout.synthetic_load``), whose settings live here with the probes'.
"""

from __future__ import annotations

import http.client
import math
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from rollout.errors import RolloutError
from rollout.live import read_live_state
from rollout.probe_settings import NAMESPACE, PROBE_IN_VPC, TAG_PROBE, ProbeSettings, ProbeSetupError  # re-exported

__all__ = [
    "NAMESPACE",
    "TAG_PROBE",
    "PROBE_IN_VPC",
    "METRIC_SENT",
    "METRIC_FAILED",
    "METRIC_P95",
    "METRIC_ROUND_ERRORS",
    "REASONS",
    "ProbeSetupError",
    "ProbeSettings",
    "ProbeOutcome",
    "ColourRound",
    "ProbeRound",
    "ProbeRoute",
    "target_group_dimension",
    "colour_dimensions",
    "stack_dimensions",
    "read_test_route",
    "alb_addresses",
    "probe_once",
    "round_problem",
    "probe_round",
    "publish_round",
]

METRIC_SENT = "ProbesSent"  # Count, per colour
METRIC_FAILED = "ProbesFailed"  # Count, per colour; with a Reason dimension too, per reason
METRIC_P95 = "ProbeLatencyP95"  # Milliseconds: the round's p95 latency, per colour
METRIC_ROUND_ERRORS = "ProbeRoundErrors"  # Count, per stack: rounds that could not probe at all
# Why a probe failed: a small fixed set, so the metrics (each one billed) stay few.
REASONS = ("tls", "connect", "timeout", "status", "protocol")
_USER_AGENT = "bluegreen-probe/1"
_MAX_BODY = 65536


@dataclass(frozen=True)
class ProbeOutcome:
    """One probe: ok, or the reason kind (one of REASONS) with a short detail."""

    ok: bool
    reason: str  # "" when ok, else one of REASONS
    detail: str
    latency_ms: float
    address: str
    status: int | None = None


@dataclass(frozen=True)
class ColourRound:
    """The probes of one colour's target group in one round."""

    color: str
    target_group_arn: str
    where: str  # what was probed, e.g. "https://canary.example.com:8443/healthz"
    outcomes: tuple[ProbeOutcome, ...]

    @property
    def sent(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok)

    @property
    def failures(self) -> Counter:
        return Counter(o.reason for o in self.outcomes if not o.ok)

    @property
    def p95_ms(self) -> float:
        """Nearest-rank 95th percentile of the probes' latencies (0 with no probes)."""
        ordered = sorted(o.latency_ms for o in self.outcomes)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0


@dataclass(frozen=True)
class ProbeRound:
    """One round: what was probed per colour, or why nothing could be."""

    stack: str
    at: datetime
    colours: tuple[ColourRound, ...] = ()
    problem: str | None = None  # set when the round could not probe at all

    def summary(self) -> str:
        """One log line."""
        if self.problem:
            return f"bluegreen probe round ({self.stack}): no probes: {self.problem}"
        parts = []
        for c in self.colours:
            why = ", ".join(f"{k} {n}" for k, n in sorted(c.failures.items()))
            first = next((o.detail for o in c.outcomes if not o.ok), "")
            parts.append(
                f"{c.color} {c.sent - c.failed}/{c.sent} ok, p95 {c.p95_ms:.0f} ms"
                + (f" (failed: {why}; e.g. {first})" if why else "")
            )
        if not parts:
            return f"bluegreen probe round ({self.stack}): nothing probed"
        return f"bluegreen probe round ({self.stack}): " + "; ".join(parts) + f" [{self.colours[0].where}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "at": self.at.isoformat(),
            "problem": self.problem,
            "colours": [
                {
                    "color": c.color,
                    "target_group_arn": c.target_group_arn,
                    "where": c.where,
                    "sent": c.sent,
                    "failed": c.failed,
                    "failures": dict(c.failures),
                    "p95_ms": round(c.p95_ms, 1),
                }
                for c in self.colours
            ],
        }


# --------------------------------------------------------------------------- live reads


@dataclass(frozen=True)
class ProbeRoute:
    """The live test listener: where to send probes and which colour they reach."""

    port: int
    protocol: str  # HTTP | HTTPS
    color: str
    target_group_arn: str
    health_path: str
    dns_name: str


def target_group_dimension(arn: str) -> str:
    """CloudWatch-style TargetGroup value, 'targetgroup/<name>/<id>', from the ARN."""
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    if not (resource.startswith("targetgroup/") and resource.count("/") == 2):
        raise ValueError(f"not a target group ARN: {arn!r}")
    return resource


def _load_balancer_id(arn: str) -> str:
    """'app/<name>/<id>' from a load balancer ARN."""
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    if not (resource.startswith("loadbalancer/app/") and resource.count("/") == 3):
        raise ValueError(f"not an application load balancer ARN: {arn!r}")
    return resource[len("loadbalancer/"):]


def colour_dimensions(stack: str, color: str, target_group_arn: str) -> list[dict[str, str]]:
    """The dimensions of every per-colour probe metric (the gate queries exactly these)."""
    return [
        {"Name": "Stack", "Value": stack},
        {"Name": "Colour", "Value": color},
        {"Name": "TargetGroup", "Value": target_group_dimension(target_group_arn)},
    ]


def stack_dimensions(stack: str) -> list[dict[str, str]]:
    return [{"Name": "Stack", "Value": stack}]


def read_test_route(elbv2, load_balancer_arn: str) -> ProbeRoute:
    """The live test listener and the one colour it forwards to (`rollout.live`'s reading of it).

    LiveStateError on AWS faults or a state bluegreen cannot read; ValueError when there is no test
    listener or it does not forward to exactly one colour.
    """
    live = read_live_state(elbv2, load_balancer_arn)
    test = live.test
    if test is None:
        raise ValueError(f"no listener tagged bluegreen:listener=test on {load_balancer_arn}")
    if len(test.target_groups) != 1:
        raise ValueError(f"the test listener {test.arn} must forward to exactly one colour, found {sorted(test.target_groups) or 'none'}")
    ((color, tg_arn),) = test.target_groups.items()
    return ProbeRoute(
        port=test.port,
        protocol=test.protocol.upper(),
        color=color,
        target_group_arn=tg_arn,
        health_path=live.health_paths.get(color) or "/",
        dns_name=live.dns_name,
    )


def alb_addresses(ec2, load_balancer_arn: str) -> list[str]:
    """The load balancer's private IPv4 addresses: its network interfaces, described 'ELB app/<name>/<id>'.

    An internet-facing ALB's DNS name resolves to public addresses, reached from the VPC through NAT
    with the NAT's address as the source; its private addresses are reached inside the VPC, from the
    function's own address, which the security group admits by reference. They change as the ALB
    scales, so they are read every round.
    """
    description = f"ELB {_load_balancer_id(load_balancer_arn)}"
    found: list[str] = []
    paginator = ec2.get_paginator("describe_network_interfaces")
    for page in paginator.paginate(Filters=[{"Name": "description", "Values": [description]}]):
        for eni in page.get("NetworkInterfaces", []):
            if eni.get("Status", "in-use") != "in-use":
                continue
            for addr in eni.get("PrivateIpAddresses") or [{"PrivateIpAddress": eni.get("PrivateIpAddress")}]:
                ip = addr.get("PrivateIpAddress")
                if ip and ip not in found:
                    found.append(ip)
    return found


# --------------------------------------------------------------------------- one probe


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address, with SNI and certificate verification for another name."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(address, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)


def _kind(exc: BaseException) -> str:
    if isinstance(exc, (ssl.SSLCertVerificationError, ssl.CertificateError, ssl.SSLError)):
        return "tls"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, http.client.HTTPException):
        return "protocol"
    return "connect"


def _detail(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def round_problem(exc: BaseException) -> str:
    """Why a round could not run, for its log line: our own errors as they are, others with their type."""
    return str(exc) if isinstance(exc, (ValueError, RolloutError)) else _detail(exc)


def probe_once(
    address: str,
    port: int,
    path: str,
    *,
    host: str,
    tls: bool,
    context: ssl.SSLContext | None = None,
    timeout_s: float = 2.0,
    expected_status: int = 200,
) -> ProbeOutcome:
    """GET `path` from address:port with Host (and, over TLS, SNI and verification) = `host`. Never raises."""
    t0 = time.monotonic()
    budget_end = t0 + timeout_s

    def done(ok: bool, reason: str, detail: str, status: int | None = None) -> ProbeOutcome:
        return ProbeOutcome(ok, reason, detail, (time.monotonic() - t0) * 1000, address, status)

    conn: http.client.HTTPConnection | None = None
    try:
        if tls:
            ctx = context or ssl.create_default_context()
            conn = _PinnedHTTPSConnection(address, port, host, ctx, timeout_s)
        else:
            conn = http.client.HTTPConnection(address, port, timeout=timeout_s)
        host_header = host if port == (443 if tls else 80) else f"{host}:{port}"
        conn.request("GET", path, headers={"Host": host_header, "User-Agent": _USER_AGENT, "Connection": "close"})
        resp = conn.getresponse()
        size = 0
        while True:
            remaining = budget_end - time.monotonic()
            if remaining <= 0:
                return done(False, "timeout", f"body not complete within {timeout_s:g} s", resp.status)
            if conn.sock is not None:
                conn.sock.settimeout(max(0.01, remaining))
            chunk = resp.read1(16384) if hasattr(resp, "read1") else resp.read(16384)
            if not chunk:
                break
            size += len(chunk)
            if size > _MAX_BODY:
                return done(False, "protocol", f"body larger than {_MAX_BODY} bytes", resp.status)
        if time.monotonic() > budget_end:
            return done(False, "timeout", f"no complete answer within {timeout_s:g} s", resp.status)
        if resp.status != expected_status:
            return done(False, "status", f"HTTP {resp.status} (expected {expected_status})", resp.status)
        return done(True, "", "", resp.status)
    except Exception as exc:  # every fault is an outcome
        return done(False, _kind(exc), _detail(exc))
    finally:
        if conn is not None:
            conn.close()


# --------------------------------------------------------------------------- a round


def probe_round(
    settings: ProbeSettings,
    *,
    elbv2,
    ec2,
    context: ssl.SSLContext | None = None,
    addresses: Callable[[], Sequence[str]] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> ProbeRound:
    """Probe the colour behind the live test listener `settings.probes` times. Never raises.

    `addresses` overrides where the ALB is reached (default: its network interfaces via `ec2`).
    """
    at = (clock or (lambda: datetime.now(timezone.utc)))()
    try:
        route = read_test_route(elbv2, settings.load_balancer_arn)
        ips = list(addresses() if addresses is not None else alb_addresses(ec2, settings.load_balancer_arn))
    except Exception as exc:  # AWS faults, missing listener: the round says why
        return ProbeRound(settings.stack, at, problem=round_problem(exc))
    if not ips:
        return ProbeRound(settings.stack, at, problem=f"no network interfaces found for {settings.load_balancer_arn}")
    tls = route.protocol == "HTTPS"
    host = settings.hostname or route.dns_name
    ctx = context or (ssl.create_default_context() if tls else None)
    targets = [ips[i % len(ips)] for i in range(settings.probes)]
    with ThreadPoolExecutor(max_workers=min(settings.probes, 16), thread_name_prefix="bluegreen-probe") as pool:
        outcomes = list(
            pool.map(
                lambda ip: probe_once(
                    ip, route.port, route.health_path, host=host, tls=tls, context=ctx,
                    timeout_s=settings.timeout_s, expected_status=settings.expected_status,
                ),
                targets,
            )
        )
    where = f"{'https' if tls else 'http'}://{host}:{route.port}{route.health_path}"
    return ProbeRound(settings.stack, at, (ColourRound(route.color, route.target_group_arn, where, tuple(outcomes)),))


def publish_round(cloudwatch, round_: ProbeRound) -> int:
    """Put the round's metrics into CloudWatch (namespace `bluegreen`); returns the datum count.

    Per colour: ProbesSent, ProbesFailed, ProbeLatencyP95, and ProbesFailed with a Reason dimension
    for each reason that occurred. A round that could not probe puts ProbeRoundErrors for the stack.
    """
    data: list[dict[str, Any]] = []
    if round_.problem is not None:
        data.append({"MetricName": METRIC_ROUND_ERRORS, "Dimensions": stack_dimensions(round_.stack), "Value": 1.0, "Unit": "Count", "Timestamp": round_.at})
    for c in round_.colours:
        dims = colour_dimensions(round_.stack, c.color, c.target_group_arn)
        data.append({"MetricName": METRIC_SENT, "Dimensions": dims, "Value": float(c.sent), "Unit": "Count", "Timestamp": round_.at})
        data.append({"MetricName": METRIC_FAILED, "Dimensions": dims, "Value": float(c.failed), "Unit": "Count", "Timestamp": round_.at})
        data.append({"MetricName": METRIC_P95, "Dimensions": dims, "Value": round(c.p95_ms, 3), "Unit": "Milliseconds", "Timestamp": round_.at})
        for reason, n in sorted(c.failures.items()):
            data.append({
                "MetricName": METRIC_FAILED, "Dimensions": [*dims, {"Name": "Reason", "Value": reason}],
                "Value": float(n), "Unit": "Count", "Timestamp": round_.at,
            })
    if data:
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
    return len(data)
