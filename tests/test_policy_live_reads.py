"""The pack reads live state once per Analyze call (not once per policy, not a time memo), and answers
within its bound when AWS hangs. AWS is moto_server behind a loopback proxy that counts the calls (and
can hang them)."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.policy_harness import POLICY_DIR, PolicyPackClient, policy_pack_env
from tests.test_policy_traffic import LISTENER, live_alb, proposed


class _Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [self.headers.get("X-Amz-Target", "?")])[0]
        self.server.calls[action] += 1  # type: ignore[attr-defined]
        if self.server.hang.is_set():  # type: ignore[attr-defined]
            self.server.release.wait(30)  # type: ignore[attr-defined]
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        resp = requests.post(self.server.upstream + self.path, data=body, headers=headers, timeout=30)  # type: ignore[attr-defined]
        self.send_response(resp.status_code)
        for k, v in resp.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)


@pytest.fixture(scope="module")
def proxy(moto_endpoint: str):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    server.daemon_threads = True
    server.upstream = moto_endpoint  # type: ignore[attr-defined]
    server.calls = Counter()  # type: ignore[attr-defined]
    server.hang, server.release = threading.Event(), threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def counted_pack(proxy, tmp_path_factory):
    env = policy_pack_env(f"http://127.0.0.1:{proxy.server_address[1]}", tmp_path_factory.mktemp("pack-proxy"))
    with PolicyPackClient(POLICY_DIR, env=env, rpc_timeout=15) as client:
        yield client


def test_one_read_of_the_load_balancer_per_analyze_call(aws, counted_pack, proxy, http_server):
    base = http_server("slow", delay_ms=2500).rsplit("/healthz", 1)[0]  # the gate outlasts any time memo
    counted_pack.configure_file(
        POLICY_DIR / "production.json",
        {"healthy-promotion": {"probeBaseUrl": base, "probes": 2, "deadlineSeconds": 6, "probeTimeoutSeconds": 4, "maxP95Ms": 5000}},
    )
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=2)
    for _ in range(2):  # and a second call reads again: nothing is reused across calls
        proxy.calls.clear()
        counted_pack.analyze(LISTENER, props, name=name, urn=urn)
        assert proxy.calls["DescribeLoadBalancers"] == 1, dict(proxy.calls)
        assert proxy.calls["DescribeRules"] >= 1, dict(proxy.calls)


def test_a_rollback_is_answered_within_the_bound_when_aws_hangs(aws, counted_pack, proxy, http_server):
    """AWS hangs: the one bounded read gives up (5 s) and the full rollback passes; the client's gRPC
    deadline (15 s) is the bound, so a late answer would fail the call."""
    counted_pack.configure_file(POLICY_DIR / "production.json", {"healthy-promotion": {"probeBaseUrl": "http://127.0.0.1:9"}})
    alb = live_alb(aws, step=3)
    props, name, urn = proposed(alb, step=0)
    proxy.release.clear()
    proxy.hang.set()
    try:
        result = counted_pack.analyze(LISTENER, props, name=name, urn=urn)
    finally:
        proxy.hang.clear()
        proxy.release.set()
    assert result.mandatory == [], result
    assert any("no answer from AWS within 5 s" in v.message for v in result.advisory), result
