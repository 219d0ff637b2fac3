"""Issue 6's end-to-end fault catalogue: health and AWS faults through the policy pack, and secrets.

The pack is started as the engine starts it (tests.policy_harness: a subprocess driven over the
Analyzer gRPC service) and fed the REAL program's production listener (rollout.simulate) against a
live moto ALB. For every fault:

  (a) a promotion (step k -> k+1) gets a mandatory ``healthy-promotion`` violation naming the reason;
  (b) a full rollback (step k -> 0) gets no mandatory violation;
  (c) the Analyze call answers within the gate deadline (``deadlineSeconds``) plus a small margin;
  (d) no gRPC error (the pack never raises: PolicyPackError would fail the test).

Health faults share one module-scoped pack (``probeBaseUrl`` points at a faulty loopback server per
test). AWS faults need a pack whose boto3 environment is faulty, so each starts its own pack.

Every pack process gets a ``sitecustomize`` that refuses non-loopback name lookups and connections
(the conftest guard covers only the test process): the DNS-failure fault's ``.invalid`` host is
answered NXDOMAIN locally, and nothing leaves the machine.

Bad configs are catalogued in tests/test_config_errors.py and tests/test_kubernetes.py; the gate's
own faults in tests/test_gate.py. docs/hardening.md is generated from all of these by
scripts/hardening_doc.py; ``test_hardening_doc_is_up_to_date`` keeps it honest.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rollout.live import LIVE_READ_SECONDS
from rollout.simulate import ROOT
from tests.fixtures.aws import AwsEnv
from tests.fixtures.servers import closed_port
from tests.policy_harness import POLICY_DIR, AnalyzeResult, PolicyPackClient, policy_pack_env
from tests.test_policy_traffic import LISTENER, live_alb, proposed

REPO = Path(__file__).resolve().parent.parent
DEADLINE_S = 3.0  # deadlineSeconds given to the pack's health gate
MARGIN_S = 2.0  # gRPC + live-state reads + policy overhead on top of the gate deadline (quiet machine)
# Scheduling slack for a loaded CI machine (2 cores, xdist): the bounds below still tell a cut verdict
# from an uncut one, which takes ~30 s (botocore's timeouts x retries) or never ends (a hung probe).
SLACK_S = 6.0
HEALTH_BOUND_S = DEADLINE_S + MARGIN_S + SLACK_S
SECRET = "bluegreen-hardening-SECRET-4f1c9e"  # AWS_SECRET_ACCESS_KEY of every pack and CLI run here

# The gate's thresholds for these tests: short, so the whole module stays well under 90 s.
GATE = {"probes": 3, "probeTimeoutSeconds": 1, "deadlineSeconds": DEADLINE_S, "maxBodyBytes": 65536}

_GUARD = f'''
"""Test-only: this pack process may look up and connect to loopback only (tests/test_hardening.py)."""
import sys
sys.path.insert(0, {str(ROOT)!r})
from rollout import netguard
netguard.install("test pack")
'''


def pack_env(aws_endpoint: str, scratch: Path, **extra: str) -> dict[str, str]:
    """policy_pack_env plus the loopback guard and the marker secret."""
    guard = scratch / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(_GUARD)
    env = policy_pack_env(aws_endpoint, scratch, AWS_SECRET_ACCESS_KEY=SECRET)
    env["PYTHONPATH"] = str(guard) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def configure(pack: PolicyPackClient, probe_base: str, **gate: Any) -> None:
    pack.configure_file(
        POLICY_DIR / "production.json",
        {"healthy-promotion": {"probeBaseUrl": probe_base, **GATE, **gate}, "bake-time": {"minutes": 1}},
    )


def timed_analyze(pack: PolicyPackClient, props: dict, name: str, urn: str) -> tuple[AnalyzeResult, float]:
    t0 = time.monotonic()
    result = pack.analyze(LISTENER, props, name=name, urn=urn)  # PolicyPackError (gRPC error) fails the test
    return result, time.monotonic() - t0


def all_text(result: AnalyzeResult) -> str:
    return "\n".join(str(v) for v in result.violations)


# --------------------------------------------------------------------------- fault servers


class _TlsHandshakeFailHandler(BaseHTTPRequestHandler):
    """Not a fault server in tests.fixtures.servers: answers a TLS ClientHello with a TLS alert."""

    def handle(self) -> None:  # pragma: no cover - exercised through the pack
        try:
            self.request.recv(4096)
            self.request.sendall(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]))  # fatal handshake_failure
        except OSError:
            pass


class _AwsErrorHandler(BaseHTTPRequestHandler):
    """A loopback 'AWS' answering every call with one error (query-protocol XML; elbv2 speaks it)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        code, message, status = self.server.error  # type: ignore[attr-defined]
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>0</RequestId></ErrorResponse>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST


@contextlib.contextmanager
def serve(handler: type[BaseHTTPRequestHandler], **attrs: Any) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    for k, v in attrs.items():
        setattr(server, k, v)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- health faults


@dataclass(frozen=True)
class HealthFault:
    id: str
    fault: str  # what the candidate's health endpoint does
    behaviour: str | None  # tests.fixtures.servers behaviour; None = special (see probe_base)
    reason: str  # fragment of the reason the gate reports, checked in the promotion's violation
    options: tuple[tuple[str, Any], ...] = ()
    gate: tuple[tuple[str, Any], ...] = ()
    path: str = "/healthz"


HEALTH_FAULTS = [
    HealthFault("refused", "connection refused (nothing listens on the port)", None, "refused"),
    HealthFault("timeout", "accepts the connection, never answers", "hung", "timed out"),
    HealthFault("slow", "answers 200 after 400 ms; maxP95Ms is 100", "slow", "p95", (("delay_ms", 400),), (("maxP95Ms", 100),)),
    HealthFault("slow-body", "sends headers, then drips the body one byte per 100 ms", "drip", "timed out", (("drip_ms", 100),)),
    HealthFault("5xx", "answers 503", "unhealthy", "HTTP 503"),
    HealthFault("wrong-body", "answers 200 with binary junk; expectedBody is \"ok\"", "garbage", "body", gate=(("expectedBody", "ok"),)),
    HealthFault("not-http", "answers with junk instead of an HTTP status line", "not_http", "probes"),
    HealthFault("dns-failure", "the probe host (*.invalid) does not resolve", None, "DNS lookup failed"),
    HealthFault("flapping", "alternates 200 / 503", "flapping", "HTTP 503"),
    HealthFault("tls-error", "an HTTPS probe gets a TLS handshake_failure alert", None, "TLS"),
    HealthFault("tls-plain-http", "an HTTPS probe reaches a plain-HTTP server", "healthy", "TLS"),
    HealthFault("redirect-loop", "/healthz -> /loop-a -> /loop-b -> /loop-a ...", "redirect_loop", "redirect"),
    HealthFault("redirect-chain", "/r/N -> /r/N+1 forever", "redirect_chain", "redirect", path="/r/0"),
    HealthFault("huge-body", "streams an 8 MiB body with no Content-Length; maxBodyBytes 64 KiB", "huge", "bytes"),
]


@pytest.fixture(scope="module")
def health_pack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyPackClient]:
    """One pack for every health fault, its boto3 aimed at the session's moto_server."""
    env = pack_env(moto_endpoint, tmp_path_factory.mktemp("hardening-pack"))
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        yield client
    assert SECRET not in client.stderr()


@contextlib.contextmanager
def probe_base(fault: HealthFault, http_server: Callable[..., str]) -> Iterator[tuple[str, str]]:
    """(probeBaseUrl, health path to give the candidate target group)."""
    if fault.id == "refused":
        with closed_port() as port:
            yield f"http://127.0.0.1:{port}", fault.path
    elif fault.id == "dns-failure":
        yield "http://bluegreen-candidate.invalid", fault.path
    elif fault.id == "tls-error":
        with serve(_TlsHandshakeFailHandler) as hostport:
            yield f"https://{hostport}", fault.path
    else:
        url = http_server(fault.behaviour, path=fault.path, **dict(fault.options))
        base = url.rsplit(fault.path, 1)[0]
        if fault.id == "tls-plain-http":
            base = base.replace("http://", "https://", 1)
        yield base, fault.path


def _set_health_path(aws: AwsEnv, alb, path: str) -> None:
    if path != "/healthz":
        for arn in alb.target_groups.values():
            aws.client("elbv2").modify_target_group(TargetGroupArn=arn, HealthCheckPath=path)


@pytest.mark.parametrize("fault", HEALTH_FAULTS, ids=[f.id for f in HEALTH_FAULTS])
def test_health_fault_blocks_promotion_and_lets_rollback_through(fault: HealthFault, aws: AwsEnv, health_pack, http_server):
    with probe_base(fault, http_server) as (base, path):
        configure(health_pack, base, **dict(fault.gate))
        alb = live_alb(aws, step=2)
        _set_health_path(aws, alb, path)
        promote, name, urn = proposed(alb, step=3)
        rollback, _, _ = proposed(alb, step=0)

        blocked, t_promote = timed_analyze(health_pack, promote, name, urn)
        allowed, t_rollback = timed_analyze(health_pack, rollback, name, urn)

    hp = [v for v in blocked.of("healthy-promotion") if v.level == "mandatory"]
    assert hp, f"{fault.id}: the promotion was NOT blocked; got {blocked}"
    assert any("green must pass its health gate" in v.message for v in hp), blocked
    assert any(fault.reason.lower() in v.message.lower() for v in hp), (
        f"{fault.id}: the healthy-promotion violation does not give the reason {fault.reason!r}: {blocked}"
    )
    assert not allowed.mandatory, f"{fault.id}: the full rollback WAS blocked; got {allowed}"
    assert t_promote <= HEALTH_BOUND_S, f"{fault.id}: promotion verdict took {t_promote:.1f} s"
    assert t_rollback <= HEALTH_BOUND_S, f"{fault.id}: rollback verdict took {t_rollback:.1f} s"
    assert SECRET not in all_text(blocked) + all_text(allowed)


def test_healthy_candidate_is_promoted_by_the_same_pack(aws: AwsEnv, health_pack, http_server):
    """The control: with the same pack and thresholds a healthy candidate is promoted."""
    base = http_server("healthy").rsplit("/healthz", 1)[0]
    configure(health_pack, base)
    alb = live_alb(aws, step=2)
    promote, name, urn = proposed(alb, step=3)
    result, took = timed_analyze(health_pack, promote, name, urn)
    assert not result.mandatory, f"a healthy candidate must be promoted; got {result}"
    assert took <= HEALTH_BOUND_S


# --------------------------------------------------------------------------- AWS faults


@dataclass(frozen=True)
class AwsFault:
    id: str
    fault: str
    reason: str  # fragment of the violation message
    where: str  # which read fails: "live state" (before the gate) or "gate" (CloudWatch inside it)


AWS_FAULTS = [
    AwsFault("throttling", "every AWS call answers HTTP 400 Throttling (Rate exceeded)", "Throttling", "live state"),
    AwsFault("access-denied", "the pack's IAM user may not call elasticloadbalancing:Describe*", "AccessDenied", "live state"),
    AwsFault("access-denied-cloudwatch", "the pack may read the ALB but not CloudWatch", "cloudwatch", "gate"),
    AwsFault("missing-credentials", "no AWS credentials anywhere", "credentials", "live state"),
    AwsFault("invalid-credentials", "an access key AWS does not know (InvalidClientTokenId)", "credentials", "live state"),
    AwsFault("expired-credentials", "every call answers ExpiredToken", "ExpiredToken", "live state"),
    AwsFault("endpoint-down", "the AWS endpoint refuses connections", "could not read the live load balancer state", "live state"),
    AwsFault("endpoint-hung", "the AWS endpoint accepts connections and never answers", "no answer from AWS within", "live state"),
]
# The live-state read happens before the gate, under its own bound (rollout.live.LIVE_READ_SECONDS):
# a hung AWS endpoint costs at most that, never botocore's timeouts x retries (~30 s before the fix).
AWS_BOUND_S = max(DEADLINE_S, LIVE_READ_SECONDS) + MARGIN_S + SLACK_S


@contextlib.contextmanager
def aws_fault_env(fault: AwsFault, aws: AwsEnv, moto: str, scratch: Path, http_server) -> Iterator[dict[str, str]]:
    """The pack's environment for `fault`; IAM enforcement (moto) is on while the context is open."""
    if fault.id == "throttling":
        with serve(_AwsErrorHandler, error=("Throttling", "Rate exceeded", 400)) as hp:
            yield pack_env(f"http://{hp}", scratch)
    elif fault.id == "expired-credentials":
        with serve(_AwsErrorHandler, error=("ExpiredToken", "The security token included in the request is expired", 403)) as hp:
            yield pack_env(f"http://{hp}", scratch)
    elif fault.id == "endpoint-down":
        with closed_port() as port:
            yield pack_env(f"http://127.0.0.1:{port}", scratch)
    elif fault.id == "endpoint-hung":
        yield pack_env(http_server("hung", path=""), scratch)
    elif fault.id == "missing-credentials":
        yield pack_env(moto, scratch, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    elif fault.id == "invalid-credentials":
        with aws.enforce_iam():
            yield pack_env(moto, scratch, AWS_ACCESS_KEY_ID="AKIAHARDENINGUNKNOWN")
    elif fault.id in ("access-denied", "access-denied-cloudwatch"):
        allow = ["iam:GetUser"] if fault.id == "access-denied" else ["elasticloadbalancing:Describe*"]
        key, secret = aws.iam_user(f"pack-{fault.id}", allow)
        with aws.enforce_iam():
            env = pack_env(moto, scratch, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret)
            yield env
    else:  # pragma: no cover
        raise AssertionError(fault.id)


@pytest.mark.parametrize(
    "fault",
    AWS_FAULTS,
    ids=[f.id for f in AWS_FAULTS],
)
def test_aws_fault_blocks_promotion_and_lets_rollback_through(
    fault: AwsFault, aws: AwsEnv, moto_endpoint: str, tmp_path: Path, http_server
):
    base = http_server("healthy").rsplit("/healthz", 1)[0]  # the probes themselves would pass
    alb = live_alb(aws, step=2)
    promote, name, urn = proposed(alb, step=3)
    rollback, _, _ = proposed(alb, step=0)
    with aws_fault_env(fault, aws, moto_endpoint, tmp_path, http_server) as env:
        with PolicyPackClient(POLICY_DIR, env=env) as pack:
            configure(pack, base)
            with ThreadPoolExecutor(2) as pool:  # concurrently, as the engine may: halves a hung endpoint's cost
                promoting = pool.submit(timed_analyze, pack, promote, name, urn)
                rolling_back = pool.submit(timed_analyze, pack, rollback, name, urn)
                (blocked, t_promote), (allowed, t_rollback) = promoting.result(), rolling_back.result()
            stderr = pack.stderr()

    hp = [v for v in blocked.of("healthy-promotion") if v.level == "mandatory"]
    assert hp, f"{fault.id}: the promotion was NOT blocked; got {blocked}"
    assert any(fault.reason.lower() in v.message.lower() for v in hp), (
        f"{fault.id}: the healthy-promotion violation does not give the reason {fault.reason!r}: {blocked}"
    )
    assert not allowed.mandatory, f"{fault.id}: the full rollback WAS blocked; got {allowed}"
    assert t_promote <= AWS_BOUND_S, f"{fault.id}: promotion verdict took {t_promote:.1f} s"
    assert t_rollback <= AWS_BOUND_S, f"{fault.id}: rollback verdict took {t_rollback:.1f} s"
    for text in (all_text(blocked), all_text(allowed), stderr):
        assert SECRET not in text, f"{fault.id}: the pack printed the AWS secret key"


# --------------------------------------------------------------------------- secrets in CLI output


def _cli(*args: str):
    from click.testing import CliRunner

    from rollout.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def _cli_outputs(result) -> str:
    out = result.output
    try:
        out += result.stderr
    except (ValueError, AttributeError):
        pass
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        out += repr(result.exception)
    return out


def test_cli_never_prints_the_aws_secret_key(aws: AwsEnv, monkeypatch, http_server, tmp_path):
    """plan, status and gate, on success and on AWS error paths (AccessDenied, throttling, endpoint
    down): the secret key from the environment appears in no output.

    The stack-config side (a secret-like ``bluegreen:service.environment`` value is refused and not
    echoed) is tests/test_config_errors.py::test_bad_config_is_refused_before_any_resource (the
    DB_PASSWORD / AWS_KEY_ID cases) and its hypothesis test; not repeated here.
    """
    alb = live_alb(aws, step=1)
    base = http_server("healthy").rsplit("/healthz", 1)[0]
    key, secret = aws.iam_user("cli-denied", ["iam:GetUser"])
    runs: list[tuple[str, Any]] = []

    def run(label: str, *args: str) -> None:
        runs.append((label, _cli(*args)))

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    run("plan", "plan", "--stack", "production")
    run("plan json", "plan", "--stack", "production", "--format", "json")
    run("status", "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    run("gate", "gate", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--probe-base-url", base)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)  # wrong secret for a real key: signature mismatch
    with aws.enforce_iam():
        run("status, bad signature", "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        run("status, AccessDenied", "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
        run("gate, AccessDenied", "gate", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--probe-base-url", base)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)

    with serve(_AwsErrorHandler, error=("Throttling", "Rate exceeded", 400)) as hp:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{hp}")
        run("status, throttled", "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    with closed_port() as port:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        run("gate, endpoint down", "gate", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--probe-base-url", base)

    for label, result in runs:
        text = _cli_outputs(result)
        assert SECRET not in text, f"`{label}` printed the AWS secret key:\n{text}"
        assert secret not in text, f"`{label}` printed the IAM user's secret key:\n{text}"
    # the error paths were really taken
    codes = {label: r.exit_code for label, r in runs}
    runs_by = dict(runs)
    detail = {label: (r.exit_code, r.output[-300:]) for label, r in runs}
    assert codes["plan"] == 0 and codes["gate"] == 0 and codes["status"] in (0, 1), detail  # status: 1 = drift
    for label in ("status, bad signature", "status, AccessDenied", "status, throttled", "gate, AccessDenied", "gate, endpoint down"):
        assert codes[label] != 0 and "could not read the live load balancer state" in runs_by[label].output, (
            f"`{label}` should take its error path: {detail}"
        )


# --------------------------------------------------------------------------- the doc


def test_hardening_doc_is_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "hardening_doc.py"), "--check"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, (
        "docs/hardening.md is out of date: run `python scripts/hardening_doc.py` and commit the result\n"
        + proc.stdout + proc.stderr
    )
