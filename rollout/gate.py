"""The health gate: may this colour get more traffic?

One implementation, used by the policy pack and by ``python -m rollout gate``. Three checks:

* ``http-probes``   -- N concurrent HTTP GETs of the colour's health path through the TEST
  listener: status, body substring, body size, latency p95;
* ``target-health`` -- ``elbv2.describe_target_health`` of the colour's target group;
* ``metrics``       -- CloudWatch (AWS/ApplicationELB) over the last few minutes: 5xx ratio,
  TargetResponseTime p95, UnHealthyHostCount.

All I/O is passed in (a ``requests.Session``, boto3 clients) so tests aim it at loopback
servers. Every fault (refused, timed out, DNS, TLS, throttled, AccessDenied, no credentials,
...) is a failed check with a short reason -- never an exception out of :func:`run_gate` --
and the whole gate answers within ``deadline_s`` however many probes or AWS calls hang.
See docs/health-gate.md.
"""

from __future__ import annotations

import errno
import http.client
import math
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import urllib3.exceptions

from rollout.errors import ConfigError, GateError
from rollout.gate_settings import FIELD_BY_KEY as _FIELD_BY_KEY, SPECS as _SPECS, check_value as _check_value
from rollout.judge import FAIL, INSUFFICIENT, PASS, JudgeConfig, judge as judge_minutes, step_window
from rollout.live import aws_fault_reason, client_config, cloudwatch_client, elbv2_client

__all__ = [
    "CHECKS",
    "GateThresholds",
    "GateTarget",
    "CheckResult",
    "GateVerdict",
    "run_gate",
]

CHECKS = ("http-probes", "target-health", "metrics", "judge")
MAX_REDIRECTS = 5  # a probe follows at most this many redirects
_CHUNK = 16384
_NAMESPACE = "AWS/ApplicationELB"
_USER_AGENT = "bluegreen-health-gate/1"


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class GateThresholds:
    """What the gate requires. Every field is a config key (camelCase) with this default."""

    probes: int = 10  # probes: HTTP probes sent concurrently
    probe_timeout_s: float = 2.0  # probeTimeoutSeconds: per probe, connect + headers + body
    deadline_s: float = 15.0  # deadlineSeconds: the whole gate answers within this
    min_success_ratio: float = 0.9  # minSuccessRatio: share of probe attempts (retries included) that must succeed
    expected_status: int = 200  # expectedStatus
    expected_body: str | None = None  # expectedBody: substring the body must contain, if set
    max_body_bytes: int = 65536  # maxBodyBytes: a longer body fails the probe
    max_p95_ms: float = 2000.0  # maxP95Ms: p95 probe latency (a fail-fast guard; slow regressions are the judge's)
    min_healthy_targets: int = 1  # minHealthyTargets: ALB target health
    max_unhealthy_targets: int = 0  # maxUnhealthyTargets: target health and UnHealthyHostCount
    max_5xx_ratio: float = 0.1  # max5xxRatio: hard ceiling on (target 5xx + connection errors + ELB 5xx) / requests
    max_target_p95_ms: float = 500.0  # maxTargetP95Ms: CloudWatch TargetResponseTime p95
    metrics_window_min: int = 5  # metricsWindowMinutes
    min_requests: int = 50  # minRequests: below this the hard 5xx ceiling is not judged
    probe_retries: int = 1  # probeRetries: a failed probe is retried this often; every attempt counts in the ratio
    min_healthy_fraction: float = 0.8  # minHealthyFraction: healthy / registered targets (draining ones aside)
    share_capacity_ratio: float = 1.0  # shareCapacityRatio: healthy targets >= share x stable's healthy x this
    judge: str = "required"  # judge: required (promotion needs pass) | advisory (reported only) | off
    judge_alpha: float = 0.05  # judgeAlpha: false-alarm bound of the relative judge per step
    judge_tolerated_ratio: float = 1.0  # judgeToleratedRatio: fail on evidence the candidate is worse than this x stable
    judge_pass_ratio: float = 2.0  # judgePassRatio: pass on evidence the candidate is better than this x stable
    judge_min_minutes: int = 5  # judgeMinMinutes: a pass needs at least this many minutes of data
    judge_max_minutes: int = 60  # judgeMaxMinutes: the longest a step waits for a verdict (the judge reads the whole step)
    judge_min_requests: int = 300  # judgeMinRequests: candidate requests before a kind nobody showed counts as quiet
    slow_request_ms: float | None = None  # slowRequestMs: count requests slower than this as bad events (unset: off)

    def __post_init__(self) -> None:
        for name, spec in _SPECS.items():
            _check_value(spec, getattr(self, name), spec.key)
        self.judge_config()  # cross-field rules (pass ratio above tolerated, max >= min minutes)

    def judge_config(self) -> JudgeConfig:
        """The relative judge's settings."""
        return JudgeConfig(
            alpha=self.judge_alpha,
            tolerated_ratio=self.judge_tolerated_ratio,
            pass_ratio=self.judge_pass_ratio,
            min_minutes=self.judge_min_minutes,
            max_minutes=self.judge_max_minutes,
            min_candidate_requests=self.judge_min_requests,
        )

    @classmethod
    def json_schema(cls) -> dict[str, dict[str, Any]]:
        """JSON-schema properties of every threshold, keyed by its camelCase config key, with defaults.

        The policy pack's config schema is built from this, so keys, ranges and defaults cannot drift
        from what `from_mapping` accepts.
        """
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        props: dict[str, dict[str, Any]] = {}
        for name, spec in _SPECS.items():
            kind = {int: "integer", float: "number", str: "string"}.get(spec.kind, "string")
            entry: dict[str, Any] = {"type": [kind, "null"] if spec.nullable else kind}
            if spec.choices:
                entry["enum"] = list(spec.choices)
            if spec.lo is not None:
                entry["exclusiveMinimum" if spec.lo_open else "minimum"] = spec.lo
            if spec.hi is not None:
                entry["maximum"] = spec.hi
            if defaults.get(name) is not None:
                entry["default"] = defaults[name]
            entry["description"] = f"health gate: {name.replace('_', ' ')} (rollout.gate.GateThresholds.{name})"
            props[spec.key] = entry
        return props

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, prefix: str = "") -> GateThresholds:
        """Build from camelCase config keys; missing keys keep their default.

        Unknown keys and wrong types or ranges raise ConfigError naming ``prefix + key``.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(prefix.rstrip(".") or "gate", f"must be a mapping, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for raw_key, value in data.items():
            key = raw_key if isinstance(raw_key, str) and raw_key.strip() else repr(raw_key)
            name = _FIELD_BY_KEY.get(key) if isinstance(raw_key, str) else None
            if name is None:
                known = ", ".join(sorted(_FIELD_BY_KEY))
                raise ConfigError(prefix + key, f"unknown gate setting (known: {known})")
            values[name] = _check_value(_SPECS[name], value, prefix + key)
        try:
            return cls(**values)
        except ConfigError as e:  # a cross-field rule: name the key with its prefix
            raise ConfigError(prefix + e.key, str(e).split(": ", 1)[-1]) from None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GateTarget:
    """The colour under test and where to find it."""

    color: str  # "blue" | "green"
    probe_url: str | None = None  # health URL through the TEST listener; None = skip probes
    target_group_arn: str | None = None  # None = skip target health and metrics
    load_balancer_arn: str | None = None  # needed for CloudWatch dimensions; None = skip metrics
    verify_tls: bool = True
    # Set: the http-probes evidence is this stack's in-VPC probe function's CloudWatch metrics for
    # target_group_arn (rollout.probe_evidence), not probes sent from here; probe_url is not used.
    probe_stack: str | None = None
    # The baseline and the traffic context. Left None, they are read from the production listener
    # (rollout.live) when the load balancer ARN is known.
    baseline_target_group_arn: str | None = None  # the other (stable) colour's target group
    baseline_problem: str | None = None  # set: there is no baseline to read, and why (the judge says so, failing closed)
    live_share: int | None = None  # % of production traffic the colour carries now
    share: int | None = None  # % of production traffic the colour will carry after the change
    since: datetime | None = None  # when the current weights began (the judge reads from here)
    # False at a finish: the colour already holds all production traffic and the old stable none, so
    # there is no baseline to compare with; the judge of the last step decided (docs/health-gate.md).
    relative: bool = True


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. ``data`` is JSON-serialisable; ``data["skipped"]`` marks a skip."""

    name: str
    ok: bool
    reason: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateVerdict:
    """All checks' outcomes; passed only if every check passed and at least one really ran."""

    color: str
    passed: bool
    checks: tuple[CheckResult, ...]
    elapsed_s: float

    @property
    def judge(self) -> Mapping[str, Any] | None:
        """The relative judge's judgement (verdict, eValue, minutesNeeded, ...) when it ran."""
        found = [c for c in self.checks if c.name == "judge" and c.data.get("verdict")]
        return found[0].data if found else None

    @property
    def pending(self) -> bool:
        """Not passed only because the judge has not seen enough evidence yet (nothing failed)."""
        failed = [c for c in self.checks if not c.ok]
        return bool(failed) and all(c.name == "judge" and c.data.get("verdict") == INSUFFICIENT for c in failed)

    def message(self) -> str:
        """Operator text: on failure only the failed checks' reasons, on pass a summary."""
        if self.passed:
            ran = [c.reason for c in self.checks if not c.data.get("skipped")]
            return f"{self.color} passed its health gate: " + "; ".join(ran)
        failed = [c.reason for c in self.checks if not c.ok] or [
            c.reason for c in self.checks
        ]
        return f"{self.color} must pass its health gate before it gets more traffic: " + "; ".join(failed)

    def to_dict(self) -> dict:
        return {
            "color": self.color,
            "passed": self.passed,
            "elapsed_s": round(self.elapsed_s, 3),
            "message": self.message(),
            "pending": self.pending,
            "judge": None if self.judge is None else dict(self.judge),
            "checks": [
                {"name": c.name, "ok": c.ok, "reason": c.reason, "data": dict(c.data)} for c in self.checks
            ],
        }


# --------------------------------------------------------------------------- formatting


def _dur(seconds: float) -> str:
    """0.0123 -> '12 ms', 1.84 -> '1.8 s'."""
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def _ms(ms: float) -> str:
    return f"{ms:g} ms"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.2f}".rstrip("0").rstrip(".") + " %"


def _p95(values: Sequence[float]) -> float | None:
    """Nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _short(text: Any, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# --------------------------------------------------------------------------- HTTP probes


@dataclass(frozen=True)
class _Probe:
    ok: bool
    reason: str  # "" when ok
    elapsed_s: float
    status: int | None = None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (cause, context, urllib3 .reason, args)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 32:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if isinstance(x, BaseException))
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    return seen


def _http_fault(exc: BaseException, url: str, timeout_reason: str) -> str:
    chain = _causes(exc)

    def has(*types: type) -> bool:
        return any(isinstance(e, types) for e in chain)

    host = urlsplit(url).hostname or url
    if has(requests.exceptions.SSLError, ssl.SSLError, urllib3.exceptions.SSLError):
        detail = next((e for e in chain if isinstance(e, ssl.SSLError)), exc)
        return f"TLS error: {_short(getattr(detail, 'reason', None) or detail, 100)}"
    if has(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return f"DNS lookup failed for {host}"
    if has(ConnectionRefusedError) or any(getattr(e, "errno", None) == errno.ECONNREFUSED for e in chain):
        return "connection refused"
    if has(requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout):
        return timeout_reason
    if has(requests.exceptions.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if has(ConnectionResetError):
        return "connection reset by the server"
    if has(http.client.RemoteDisconnected, http.client.BadStatusLine, urllib3.exceptions.ProtocolError):
        return "no valid HTTP response (connection closed or garbage)"
    if has(requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
        return f"invalid probe URL {url!r}"
    if has(requests.exceptions.ConnectionError, OSError):
        return f"connection failed: {_short(exc, 100)}"
    return f"unexpected {type(exc).__name__}: {_short(exc, 100)}"


def _set_read_timeout(resp: requests.Response, seconds: float) -> None:
    """Shrink the socket timeout of a streaming response (best effort) so that a slow-drip
    body cannot hold a probe past its own time budget."""
    try:
        sock = resp.raw.connection.sock  # urllib3 2.x
        if sock is not None:
            sock.settimeout(max(0.01, seconds))
    except Exception:
        pass


def _read_body(resp: requests.Response, limit: int, budget_end: float, timeout_reason: str) -> tuple[bytes | None, str]:
    """Read at most limit+1 bytes before budget_end. Returns (body, fault reason or '')."""
    declared = resp.headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > limit:
        return None, f"body larger than {limit} bytes ({int(declared)} declared)"
    buf = bytearray()
    raw = resp.raw
    read = getattr(raw, "read1", None)
    while True:
        remaining = budget_end - time.monotonic()
        if remaining <= 0:
            return None, f"{timeout_reason} (body incomplete after {len(buf)} bytes)"
        _set_read_timeout(resp, remaining)
        chunk = read(_CHUNK, decode_content=True) if read is not None else raw.read(1024, decode_content=True)
        if not chunk:
            return bytes(buf), ""
        buf += chunk
        if len(buf) > limit:
            return None, f"body larger than {limit} bytes"


def _probe(session: requests.Session, url: str, th: GateThresholds, verify_tls: bool, gate_end: float) -> _Probe:
    t0 = time.monotonic()
    budget_end = min(t0 + th.probe_timeout_s, gate_end)
    cut_by_gate = gate_end < t0 + th.probe_timeout_s
    timeout_reason = (
        f"no answer within the {th.deadline_s:g} s gate deadline" if cut_by_gate
        else f"timed out after {th.probe_timeout_s:g} s"
    )

    def done(ok: bool, reason: str = "", status: int | None = None) -> _Probe:
        return _Probe(ok, reason, time.monotonic() - t0, status)

    visited = [url]
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            remaining = budget_end - time.monotonic()
            if remaining <= 0:
                return done(False, timeout_reason)
            resp = session.get(
                current,
                timeout=(remaining, remaining),
                stream=True,
                allow_redirects=False,
                verify=None if verify_tls else False,
                headers={"User-Agent": _USER_AGENT, "Accept": "*/*"},
            )
            try:
                if resp.is_redirect:
                    nxt = urljoin(current, resp.headers.get("Location", ""))
                    if nxt in visited:
                        loop = " -> ".join(urlsplit(u).path or "/" for u in [*visited[visited.index(nxt):], nxt])
                        return done(False, f"redirect loop ({loop})", resp.status_code)
                    visited.append(nxt)
                    current = nxt
                    continue
                status = resp.status_code
                body, fault = _read_body(resp, th.max_body_bytes, budget_end, timeout_reason)
                if fault:
                    return done(False, fault, status)
                if status != th.expected_status:
                    return done(False, f"HTTP {status} (expected {th.expected_status})", status)
                if th.expected_body is not None and th.expected_body.encode() not in (body or b""):
                    return done(False, f"body does not contain {th.expected_body!r}", status)
                return done(True, "", status)
            finally:
                resp.close()
        return done(False, f"more than {MAX_REDIRECTS} redirects")
    except Exception as exc:  # every probe fault is a reason, never an exception
        return done(False, _http_fault(exc, current, timeout_reason))


def _probe_slot(session: requests.Session, url: str, th: GateThresholds, verify_tls: bool, gate_end: float) -> list[_Probe]:
    """One probe and up to ``probe_retries`` retries of it while it fails: every attempt is returned
    and counts in the success ratio, so retries add evidence and cannot hide a dead colour."""
    attempts = [_probe(session, url, th, verify_tls, gate_end)]
    while not attempts[-1].ok and len(attempts) <= th.probe_retries and time.monotonic() < gate_end:
        attempts.append(_probe(session, url, th, verify_tls, gate_end))
    return attempts


def _probe_check(url: str, th: GateThresholds, probes: list[_Probe]) -> CheckResult:
    n = len(probes)
    ok = sum(1 for p in probes if p.ok)
    failures = Counter(p.reason for p in probes if not p.ok)
    latencies = [p.elapsed_s for p in probes]
    p95 = _p95(latencies) or 0.0
    where = urlsplit(url).path or "/"
    if urlsplit(url).query:
        where += "?" + urlsplit(url).query
    needed = math.ceil(th.min_success_ratio * n - 1e-9)
    ratio_ok = ok >= needed
    p95_ok = p95 * 1000 <= th.max_p95_ms
    parts: list[str] = []
    for i, (reason, count) in enumerate(failures.most_common()):
        parts.append(f"{count}/{n} probes of {where}: {reason}" if i == 0 else f"{count}/{n}: {reason}")
    if ratio_ok and p95_ok:
        text = f"{ok}/{n} probes of {where} passed, p95 {_dur(p95)}"
        if parts:
            text += f" (tolerated: {'; '.join(parts)})"
    else:
        pieces = list(parts) if not ratio_ok else []
        if not ratio_ok and th.min_success_ratio < 1 and ok > 0:
            pieces.append(f"{ok}/{n} passed, {needed} required")
        if not p95_ok:
            pieces.append(f"p95 {_dur(p95)} > {_ms(th.max_p95_ms)}" + ("" if pieces else f" over {n} probes of {where}"))
        text = "; ".join(pieces)
    data = {
        "url": url,
        "probes": n,
        "retries": max(0, n - th.probes),
        "passed": ok,
        "required": needed,
        "failures": dict(failures),
        "statuses": dict(Counter(str(p.status) for p in probes if p.status is not None)),
        "p95_ms": round(p95 * 1000, 1),
        "max_p95_ms": th.max_p95_ms,
    }
    return CheckResult("http-probes", ratio_ok and p95_ok, text, data)


def _default_session(pool: int) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=max(pool, 10), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --------------------------------------------------------------------------- AWS checks


def _aws_config(th: GateThresholds):
    connect = max(1.0, min(5.0, th.deadline_s / 3))
    read = max(1.0, min(10.0, th.deadline_s / 2))
    return client_config(connect_timeout=connect, read_timeout=read, max_attempts=2)


def _tg_name(arn: str) -> str:
    parts = arn.split(":")[-1].split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "targetgroup" else arn


_UNHEALTHY_STATES = frozenset({"unhealthy", "unhealthy.draining"})


def _healthy_count(elbv2, arn: str) -> int:
    descs = elbv2.describe_target_health(TargetGroupArn=arn).get("TargetHealthDescriptions", [])
    return sum(1 for d in descs if d.get("TargetHealth", {}).get("State") == "healthy")


def _target_health(elbv2, arn: str, th: GateThresholds, *, share: int | None = None, baseline_healthy: int | None = None) -> CheckResult:
    resp = elbv2.describe_target_health(TargetGroupArn=arn)
    descs = resp.get("TargetHealthDescriptions", [])
    states = Counter(d.get("TargetHealth", {}).get("State", "unknown") for d in descs)
    healthy = states.get("healthy", 0)
    unhealthy = sum(c for s, c in states.items() if s in _UNHEALTHY_STATES)
    why = Counter(
        d["TargetHealth"].get("Reason", "?")
        for d in descs
        if d.get("TargetHealth", {}).get("State") in _UNHEALTHY_STATES
    )
    name = _tg_name(arn)
    summary = [f"{healthy} healthy"]
    if unhealthy:
        summary.append(f"{unhealthy} unhealthy ({', '.join(sorted(why))})")
    summary.extend(f"{c} {s}" for s, c in sorted(states.items()) if s != "healthy" and s not in _UNHEALTHY_STATES)
    total = len(descs)
    problems = []
    if healthy < th.min_healthy_targets:
        problems.append(f"{healthy} healthy < {th.min_healthy_targets} required")
    serving = total - states.get("draining", 0)  # draining targets are leaving on purpose
    if serving > 0 and healthy < th.min_healthy_fraction * serving - 1e-9:
        problems.append(f"{healthy} healthy of {serving} is below {_pct(th.min_healthy_fraction)}")
    floor = None
    if share is not None and baseline_healthy is not None and share > 0:
        floor = math.ceil(share / 100 * baseline_healthy * th.share_capacity_ratio - 1e-9)
        if healthy < floor:
            problems.append(
                f"{healthy} healthy < {floor} needed to carry {share}% of the traffic "
                f"that {baseline_healthy} healthy stable target{'s' if baseline_healthy != 1 else ''} carry"
            )
    if unhealthy > th.max_unhealthy_targets:
        problems.append(f"{unhealthy} unhealthy > {th.max_unhealthy_targets} allowed")
    if total == 0:
        text = f"target group {name}: no targets registered"
        if problems:
            text += f" ({th.min_healthy_targets} healthy required)"
    else:
        text = f"target group {name}: {', '.join(summary)} of {total} target{'s' if total != 1 else ''}"
        if problems:
            text += f" ({'; '.join(problems)})"
    data = {"target_group_arn": arn, "states": dict(states), "healthy": healthy, "unhealthy": unhealthy, "total": total,
            "share": share, "baseline_healthy": baseline_healthy, "floor": floor}
    return CheckResult("target-health", not problems, text, data)


class _BadInput(ValueError):
    """An input the gate cannot use (reported as the check's reason as is)."""


def _dimension(arn: str, kind: str) -> str:
    """CloudWatch dimension value: 'targetgroup/n/id' or 'app/n/id' from the ARN."""
    from rollout.metrics import dimension_value

    try:
        return dimension_value(arn, kind)
    except ValueError as exc:
        raise _BadInput(str(exc)) from None


def _metrics(cloudwatch, tg_arn: str, lb_arn: str, th: GateThresholds, now: datetime, *, attribute_elb: bool = True) -> CheckResult:
    dims = [
        {"Name": "TargetGroup", "Value": _dimension(tg_arn, "TargetGroup")},
        {"Name": "LoadBalancer", "Value": _dimension(lb_arn, "LoadBalancer")},
    ]
    window = th.metrics_window_min
    end = now.astimezone(timezone.utc).replace(microsecond=0)
    start = end - timedelta(minutes=window)
    period = window * 60

    def query(qid: str, metric: str, stat: str, dimensions: list | None = None) -> dict:
        return {
            "Id": qid,
            "MetricStat": {
                "Metric": {"Namespace": _NAMESPACE, "MetricName": metric, "Dimensions": dimensions or dims},
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    queries = [
        query("requests", "RequestCount", "Sum"),
        query("target5xx", "HTTPCode_Target_5XX_Count", "Sum"),
        query("unhealthy", "UnHealthyHostCount", "Maximum"),
        query("rtmax", "TargetResponseTime", "Maximum"),
        query("tconn", "TargetConnectionErrorCount", "Sum"),
        query("elb5xx", "HTTPCode_ELB_5XX_Count", "Sum", [dims[1]]),
    ]
    values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
    kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
    while True:
        resp = cloudwatch.get_metric_data(**kwargs)
        for r in resp.get("MetricDataResults", []):
            values.setdefault(r["Id"], []).extend(float(v) for v in r.get("Values", []) if v is not None)
        token = resp.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    # Percentiles through GetMetricStatistics/ExtendedStatistics: real CloudWatch answers them;
    # moto ignores ExtendedStatistics (and fails GetMetricData with a percentile stat), so when
    # no percentile comes back the Maximum above stands in as an upper bound of the p95.
    stats = cloudwatch.get_metric_statistics(
        Namespace=_NAMESPACE,
        MetricName="TargetResponseTime",
        Dimensions=dims,
        StartTime=start,
        EndTime=end,
        Period=period,
        ExtendedStatistics=["p95"],
    )
    p95s = [
        float(dp["ExtendedStatistics"]["p95"])
        for dp in stats.get("Datapoints", [])
        if isinstance(dp.get("ExtendedStatistics"), Mapping) and "p95" in dp["ExtendedStatistics"]
    ]

    requests_n = sum(values["requests"])
    target_5xx = sum(values["target5xx"])
    conn_n = sum(values["tconn"])
    elb_n = sum(values["elb5xx"]) if attribute_elb else 0.0
    errors_n = target_5xx + conn_n + elb_n
    judged_n = requests_n + elb_n
    unhealthy_max = max(values["unhealthy"]) if values["unhealthy"] else None
    rt_max = max(values["rtmax"]) if values["rtmax"] else None
    problems: list[str] = []
    notes: list[str] = []
    ratio: float | None = None
    span = f"in the last {window} min"

    parts = [f"{target_5xx:g} target 5xx"]
    if conn_n:
        parts.append(f"{conn_n:g} connection errors")
    if elb_n:
        parts.append(f"{elb_n:g} ELB 5xx counted against this colour (the ALB does not say which target group caused them)")
    if judged_n <= 0:
        notes.append(f"no requests {span}; 5xx ratio not judged")
    elif judged_n < th.min_requests:
        notes.append(f"only {judged_n:g} requests {span} (< {th.min_requests}); 5xx ceiling not judged")
    else:
        ratio = errors_n / judged_n
        detail = f"; {', '.join(parts)}" if len(parts) > 1 else ""
        text = f"5xx ratio {_pct(ratio)} ({errors_n:g}/{judged_n:g} requests {span}{detail})"
        if ratio > th.max_5xx_ratio:
            problems.append(f"{text} > {_pct(th.max_5xx_ratio)}")
        else:
            notes.append(text)

    p95_source = None
    p95: float | None = None
    if p95s:
        p95, p95_source = max(p95s), "p95"
        label = f"target p95 {_dur(p95)}"
    elif rt_max is not None:
        p95, p95_source = rt_max, "maximum"
        label = f"target p95 unavailable, max {_dur(rt_max)} used as upper bound"
    if p95 is None:
        notes.append(f"no TargetResponseTime datapoints {span}")
    elif p95 * 1000 > th.max_target_p95_ms:
        problems.append(f"{label} > {_ms(th.max_target_p95_ms)}")
    else:
        notes.append(label)

    if unhealthy_max is not None and unhealthy_max > th.max_unhealthy_targets:
        problems.append(f"UnHealthyHostCount reached {unhealthy_max:g} {span} (> {th.max_unhealthy_targets})")

    name = _tg_name(tg_arn)
    text = f"{name} metrics: " + "; ".join(problems or notes)
    data = {
        "window_min": window,
        "requests": requests_n,
        "target_5xx": target_5xx,
        "connection_errors": conn_n,
        "elb_5xx_attributed": elb_n,
        "ratio_5xx": ratio,
        "target_p95_ms": None if p95 is None else round(p95 * 1000, 1),
        "target_p95_source": p95_source,
        "unhealthy_host_max": unhealthy_max,
        "notes": notes,
    }
    return CheckResult("metrics", not problems, text, data)


def _in_vpc_probes(target: GateTarget, th: GateThresholds, cloudwatch, now: datetime) -> CheckResult:
    from rollout.probe_evidence import in_vpc_probe_check

    client = cloudwatch or cloudwatch_client(config=_aws_config(th))
    return in_vpc_probe_check(
        client, stack=target.probe_stack, color=target.color, target_group_arn=target.target_group_arn, thresholds=th, now=now
    )
@dataclass(frozen=True)
class _Context:
    """What the judge and the capacity floor need beyond the colour itself."""

    baseline_arn: str | None = None
    live_share: int | None = None
    since: datetime | None = None
    problem: str = ""  # why the context is unknown, when it is


def _context(target: GateTarget, elbv2_factory: Callable[[], Any]) -> _Context:
    """The baseline target group, the live share and the weights' start: from the target, else read
    from the production listener (its forward action and its bluegreen:weights-since tag)."""
    if target.baseline_problem:
        return _Context(None, target.live_share, target.since, target.baseline_problem)
    if target.baseline_target_group_arn is not None or not target.load_balancer_arn:
        return _Context(target.baseline_target_group_arn, target.live_share, target.since,
                        "" if target.baseline_target_group_arn else "no load balancer ARN to find the stable colour")
    from rollout.desired import TAG_SINCE, parse_since
    from rollout.live import read_live_state

    try:
        client = elbv2_factory()
        live = read_live_state(client, target.load_balancer_arn)
        prod = live.production
        others = []
        if prod is None:
            listeners = client.describe_listeners(LoadBalancerArn=target.load_balancer_arn).get("Listeners", [])
            others = [ls for ls in listeners if live.test is None or ls.get("ListenerArn") != live.test.arn]
    except Exception as exc:
        return _Context(None, target.live_share, target.since, f"the production listener could not be read: {exc}")
    if prod is None:
        if others:  # fail closed: a listener serves traffic, but which one is production is unknown
            return _Context(None, target.live_share, target.since,
                            f"no listener is tagged bluegreen:listener=production, yet the load balancer has "
                            f"{len(others)} other listener(s); which one serves production cannot be told")
        # nothing but the test listener (a first deployment): no colour carries production traffic yet
        share = 0 if target.live_share is None else target.live_share
        return _Context(None, share, target.since, "no production listener yet")
    other = "green" if target.color == "blue" else "blue"
    total = sum(prod.weights.values())
    share = target.live_share
    if share is None:
        share = round(100 * prod.weights.get(target.color, 0) / total) if total else 0
    since = target.since
    if since is None:
        parsed = parse_since(prod.tags.get(TAG_SINCE))
        if parsed is not None:
            since = datetime.fromtimestamp(parsed[0], timezone.utc)
    baseline = prod.target_groups.get(other)
    return _Context(baseline, share, since, "" if baseline else f"the production listener forwards to no {other} target group")


def _judge_check(cloudwatch, target: GateTarget, ctx: _Context, th: GateThresholds, now: datetime) -> CheckResult:
    from rollout.metrics import read_minutes

    if not target.relative:
        return CheckResult("judge", True, f"judge: {target.color} already carries all production traffic and the other colour "
                                          "none, so there is nothing to compare it with; the last step's judge decided",
                           {"skipped": True, "verdict": None})
    if ctx.live_share == 0:
        return CheckResult("judge", True, f"judge: {target.color} carries no production traffic yet, so there is nothing to "
                                          "compare; this step rests on probes and target health", {"skipped": True, "verdict": None})
    if not ctx.baseline_arn or not target.target_group_arn or not target.load_balancer_arn:
        why = ctx.problem or "no target group or load balancer ARN"
        return CheckResult("judge", th.judge == "advisory", f"judge: no stable colour to compare {target.color} with: {why}",
                           {"verdict": None, "mode": th.judge})
    for arn, kind in ((target.load_balancer_arn, "LoadBalancer"), (target.target_group_arn, "TargetGroup"), (ctx.baseline_arn, "TargetGroup")):
        _dimension(arn, kind)
    cfg = th.judge_config()
    win = step_window(ctx.since, now)  # anchored at the step's start for as long as the step lasts
    kinds = ("errors",) + (("slow",) if th.slow_request_ms is not None else ())
    if win.start is None:
        empty = judge_minutes((), cfg, kinds=kinds).to_dict()  # every field a judgement has, with no minutes read
        data = {**empty, "reason": win.problem, "mode": th.judge, "from": None, "to": win.end.isoformat(),
                "kindsCounted": list(kinds), "earlyLook": False}
        advisory = " (advisory: not blocking)" if th.judge == "advisory" else ""
        return CheckResult("judge", th.judge == "advisory", f"judge: {INSUFFICIENT}: {win.problem}{advisory}", data)
    start, end = win.start, win.end
    if start >= end:
        minutes = ()
    else:
        series = read_minutes(
            cloudwatch, load_balancer_arn=target.load_balancer_arn, stable_target_group_arn=ctx.baseline_arn,
            candidate_target_group_arn=target.target_group_arn, start=start, end=end, slow_threshold_ms=th.slow_request_ms,
            synthetic_stack=target.probe_stack,  # the in-VPC probe function's synthetic load, when it sends any
        )
        minutes, kinds = series.minutes, series.kinds
    # A pass may rest on the synthetic load only when the probe function declared its path representative in every
    # minute it sent load (bluegreen:probe.syntheticRepresentative): published evidence, which no update can backdate.
    representative = bool(minutes) and series.synthetic_representative
    j = judge_minutes(minutes, cfg, kinds=kinds, from_step_start=win.from_step_start, early_look_ready=win.early_look_ready,
                      synthetic_representative=representative)
    ok = j.verdict == PASS or th.judge == "advisory"
    text = f"judge: {j.verdict}: {j.reason}"
    if th.judge == "advisory" and j.verdict != PASS:
        text += " (advisory: not blocking)"
    data = {**j.to_dict(), "mode": th.judge, "from": start.isoformat(), "to": end.isoformat(), "kindsCounted": list(kinds),
            "earlyLook": win.early_look_ready}
    return CheckResult("judge", ok, text, data)


def _guarded(name: str, subject: str | None, fn: Callable[[], CheckResult]) -> CheckResult:
    try:
        return fn()
    except _BadInput as exc:
        return CheckResult(name, False, f"{name}: {exc}", {"error": "bad input"})
    except Exception as exc:
        reason = aws_fault_reason(exc, subject)
        return CheckResult(name, False, f"{name}: {reason}", {"error": type(exc).__name__})


def _skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name, True, f"{name} skipped: {why}", {"skipped": True})


# --------------------------------------------------------------------------- run_gate


def run_gate(
    target: GateTarget,
    thresholds: GateThresholds = GateThresholds(),
    *,
    session: requests.Session | None = None,
    elbv2=None,
    cloudwatch=None,
    checks: Sequence[str] = CHECKS,
    now: Callable[[], datetime] | None = None,
) -> GateVerdict:
    """Run the requested checks concurrently and return the verdict within ``deadline_s``.

    Faults are failed checks, never exceptions; GateError only for an unknown check name.
    """
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise GateError(f"unknown gate check(s) {unknown}; known: {', '.join(CHECKS)}")
    th = thresholds
    t0 = time.monotonic()
    gate_end = t0 + th.deadline_s
    clock = now or (lambda: datetime.now(timezone.utc))
    results: dict[str, CheckResult] = {}
    probe_futures: list[Future] = []
    aws_futures: dict[str, Future] = {}

    want = [c for c in CHECKS if c in checks]
    if th.judge == "off" and "judge" in want:
        results["judge"] = _skipped("judge", "judge is off (bluegreen gate setting judge: off)")
        want_judge = False
    else:
        want_judge = "judge" in want
    pool = ThreadPoolExecutor(max_workers=th.probes + 5, thread_name_prefix=f"gate-{target.color}")
    made: dict[str, Any] = {}
    made_lock = threading.Lock()

    def elbv2_get():
        if elbv2 is not None:
            return elbv2
        with made_lock:  # one client per gate: building one costs ~0.5 s of CPU that the probes feel
            if "elbv2" not in made:
                made["elbv2"] = elbv2_client(config=_aws_config(th))
            return made["elbv2"]

    def cloudwatch_get():
        if cloudwatch is not None:
            return cloudwatch
        with made_lock:
            if "cloudwatch" not in made:
                made["cloudwatch"] = cloudwatch_client(config=_aws_config(th))
            return made["cloudwatch"]

    def context() -> _Context:
        if ctx_future is None:
            return _Context(target.baseline_target_group_arn, target.live_share, target.since, "not needed")
        try:
            return ctx_future.result(timeout=max(0.0, gate_end - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - the context is best effort; its users say what is missing
            return _Context(None, target.live_share, target.since, f"the production listener could not be read: {exc}")

    needs_context = target.target_group_arn and (want_judge or "metrics" in want or target.share is not None)
    ctx_future = pool.submit(_context, target, elbv2_get) if needs_context else None
    try:
        if "http-probes" in want:
            if target.probe_stack and target.target_group_arn:
                aws_futures["http-probes"] = pool.submit(
                    _guarded, "http-probes", target.target_group_arn, lambda: _in_vpc_probes(target, th, cloudwatch_get(), clock())
                )
            elif target.probe_url:
                sess = session or _default_session(th.probes)
                probe_futures = [
                    pool.submit(_probe_slot, sess, target.probe_url, th, target.verify_tls, gate_end)
                    for _ in range(th.probes)
                ]
            else:
                results["http-probes"] = _skipped("http-probes", "no probe URL (no test listener)")
        if "target-health" in want:
            if target.target_group_arn:
                arn = target.target_group_arn

                def health() -> CheckResult:
                    client = elbv2_get()
                    baseline_healthy = None
                    if target.share is not None:
                        base = context().baseline_arn
                        baseline_healthy = _healthy_count(client, base) if base else None
                    return _target_health(client, arn, th, share=target.share, baseline_healthy=baseline_healthy)

                aws_futures["target-health"] = pool.submit(_guarded, "target-health", arn, health)
            else:
                results["target-health"] = _skipped("target-health", "no target group ARN")
        if "metrics" in want:
            if target.target_group_arn and target.load_balancer_arn:
                tg, lb = target.target_group_arn, target.load_balancer_arn

                def metrics() -> CheckResult:
                    client = cloudwatch_get()
                    return _metrics(client, tg, lb, th, clock(), attribute_elb=context().live_share != 0)

                aws_futures["metrics"] = pool.submit(_guarded, "metrics", tg, metrics)
            else:
                results["metrics"] = _skipped("metrics", "needs both target group and load balancer ARNs")
        if want_judge:
            if target.target_group_arn and target.load_balancer_arn:
                tg = target.target_group_arn

                def judged() -> CheckResult:
                    client = cloudwatch_get()
                    return _judge_check(client, target, context(), th, clock())

                aws_futures["judge"] = pool.submit(_guarded, "judge", tg, judged)
            else:
                results["judge"] = _skipped("judge", "needs both target group and load balancer ARNs")

        pending = probe_futures + list(aws_futures.values())
        if pending:
            wait(pending, timeout=max(0.0, gate_end - time.monotonic()))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    if probe_futures:
        late = _Probe(False, f"no answer within the {th.deadline_s:g} s gate deadline", th.deadline_s)
        probes = [p for f in probe_futures for p in (f.result() if f.done() and not f.cancelled() else [late])]
        results["http-probes"] = _probe_check(target.probe_url or "", th, probes)
    for name, fut in aws_futures.items():
        if fut.done() and not fut.cancelled():
            results[name] = fut.result()  # _guarded never raises
        else:
            results[name] = CheckResult(
                name, False, f"{name}: no answer from AWS within the {th.deadline_s:g} s gate deadline", {"timeout": True}
            )

    ordered = tuple(results[c] for c in want if c in results)
    ran = [c for c in ordered if not c.data.get("skipped")]
    passed = bool(ran) and all(c.ok for c in ordered)
    if not ran:
        ordered = ordered + (
            CheckResult("gate", False, "nothing was checked: no probe URL and no target group", {}),
        )
    return GateVerdict(target.color, passed, ordered, time.monotonic() - t0)
