"""The never-raise guard (policy/guard.py) on its fault paths, through the real pack over gRPC.

A policy whose live read raises something no one planned for (not a botocore error: a value AWS
answers that the code cannot interpret) must never refuse a rollback (invariant 5), and must refuse
a promotion with one line that names the fault -- no traceback, no gRPC error (invariant 8).

Two real ways live AWS can answer what the code does not expect, neither needing a change to the
pack: a tag on the live listener that parses but is not a date (the reflex's abort marker, written by
another process), and a moto_server behind a loopback proxy that answers ECS with a malformed
service (`desiredCount` not a number).
"""

from __future__ import annotations

import http.client
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from rollout.reflex import TAG_ABORTED
from rollout.workload import TAG_WORKLOAD
from tests.fixtures.servers import serving
from tests.policy_harness import POLICY_DIR, AnalyzeResult, PolicyPackClient, policy_pack_env
from tests.test_policy_traffic import live_alb, proposed
from tests.test_policy_workload import NEW, LiveEcs, passes, service_props, workload_tag

LISTENER = "aws:lb/listener:Listener"
SERVICE = "aws:ecs/service:Service"
# Matches the marker's shape ("<UTC time> <code>") but is no date: parsing it raises ValueError.
NOT_A_DATE = "2026-13-45T25:61:61Z breach"


def one_line(result: AnalyzeResult) -> None:
    """Every reason is one line (the SDK puts the policy's description on the line before it), no traceback."""
    for v in result.violations:
        reason = v.message.split("\n", 1)[-1]
        assert "\n" not in reason and "Traceback" not in v.message, f"{v.policy}: {v.message!r}"


@pytest.fixture(scope="module")
def pack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory):
    env = policy_pack_env(moto_endpoint, tmp_path_factory.mktemp("pack-aws"))
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        client.configure_file(POLICY_DIR / "production.json", {"healthy-promotion": {"probeBaseUrl": "http://127.0.0.1:9", "probes": 1}})
        yield client


def listener(pack: PolicyPackClient, alb, step: int) -> AnalyzeResult:
    props, name, urn = proposed(alb, step=step)
    return pack.analyze(LISTENER, props, name=name, urn=urn)


# --------------------------------------------------------------------------- a live tag the code cannot interpret


def test_a_policy_that_raises_on_a_rollback_lets_it_through(aws, pack):
    alb = live_alb(aws, step=3, since_minutes=1, extra_tags={TAG_ABORTED: NOT_A_DATE})
    before = len(pack.stderr())
    result = listener(pack, alb, 0)  # back to stable: a rollback
    passes(result)
    one_line(result)
    said = pack.stderr()[before:]
    assert "abort-marker failed on a rollback, which passes anyway: ValueError" in said, said
    assert "Traceback" not in said, said


def test_a_policy_that_raises_on_a_promotion_refuses_it_naming_the_fault(aws, pack):
    alb = live_alb(aws, step=1, extra_tags={TAG_ABORTED: NOT_A_DATE})
    result = listener(pack, alb, 2)  # 10 % -> 25 %: a promotion
    found = result.find("abort-marker", "could not finish its check, so it fails closed: unexpected ValueError")
    assert found and found[0].level == "mandatory", result
    assert "reflex.py:" in found[0].message, found[0].message  # where it raised, not a traceback
    one_line(result)


# --------------------------------------------------------------------------- AWS answering garbage through a proxy


class _Garbling(BaseHTTPRequestHandler):
    """Forwards every AWS call to moto_server; ECS DescribeServices answers come back with a desiredCount
    that is not a number (botocore's JSON parser passes it through as it is)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if self.headers.get("X-Amz-Target", "").endswith(".DescribeServices") and resp.status == 200:
            doc = json.loads(data)
            for s in doc.get("services", []):
                s["desiredCount"] = "a great many"
            data = json.dumps(doc).encode()
            self.server.garbled += 1
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


@pytest.fixture(scope="module")
def garbling(moto_endpoint: str):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbling)
    server.upstream, server.garbled = moto_endpoint, 0
    with serving(server):
        yield server


@pytest.fixture(scope="module")
def garbled_pack(garbling, tmp_path_factory: pytest.TempPathFactory):
    env = policy_pack_env(f"http://127.0.0.1:{garbling.server_address[1]}", tmp_path_factory.mktemp("pack-garbled"))
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        client.configure_file(POLICY_DIR / "production.json")
        yield client


def test_an_unchanged_service_passes_a_rollback_when_ecs_answers_garbage(aws, garbled_pack, garbling):
    """A rollback updates the listener; the ECS services it leaves alone are judged too, and the guard
    cannot see the listener from a service: the service's own check must treat garbage as unreadable."""
    alb = live_alb(aws, step=3, since_minutes=1, extra_tags={TAG_WORKLOAD: workload_tag()})
    live = LiveEcs(aws, alb)
    before = garbling.garbled
    for color in ("blue", "green"):
        props, name, urn = service_props(live, color, **{"bluegreen:rollout.step": 0})
        result = garbled_pack.analyze(SERVICE, props, name=name, urn=urn)
        passes(result)
        one_line(result)
    assert garbling.garbled > before, "the pack never read the ECS service through the proxy"


def test_a_changed_live_service_is_refused_naming_the_garbage(aws, garbled_pack):
    alb = live_alb(aws, step=1, extra_tags={TAG_WORKLOAD: workload_tag()})
    live = LiveEcs(aws, alb)
    new_td = live.register("blue", NEW)
    props, name, urn = service_props(live, "blue", task_definition=new_td, **{"bluegreen:colors.blue.image": NEW})
    result = garbled_pack.analyze(SERVICE, props, name=name, urn=urn)
    found = [v for v in result.mandatory if v.policy == "workload-frozen-while-live"]
    assert found, result
    reason = found[0].message
    assert "could not interpret the live ECS service" in reason and "'a great many'" in reason, reason
    assert "with 90% of live production traffic" in reason, reason
    one_line(result)
