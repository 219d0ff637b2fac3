"""Start the policy pack (`python policy`) as a subprocess and talk Analyzer gRPC to it.

Used by bench/policy_latency.py and bench/scale.py. Speaks the raw protocol (tests/policy_harness.py
was not there yet when this was written; this client does not depend on it).
AWS is pointed at a refused loopback port with dummy credentials, so a stray live read can only
fail fast on 127.0.0.1, never leave the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

import _common  # noqa: F401
from _common import ROOT

# Resources whose analysis triggers live AWS / health-gate I/O: production-tagged listeners
# (policy/common.py production_inputs -> assess -> elbv2 reads + run_gate). Benchmarks exclude them.
def triggers_io(r) -> bool:
    return r.type.endswith("listener:Listener") and (r.inputs.get("tags") or {}).get("bluegreen:listener") == "production"


class Pack:
    def __init__(self):
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "*", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "policy")], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=ROOT, env=env)
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            err = self.proc.stderr.read().decode()[-2000:] if self.proc.poll() is not None else ""
            self.close()
            raise RuntimeError(f"policy pack did not print a port (got {line!r}) {err}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    def close(self):
        try:
            self.channel.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @staticmethod
    def _struct(d) -> struct_pb2.Struct:
        s = struct_pb2.Struct()
        json_format.ParseDict(d, s)
        return s

    def requests(self, resources):
        """(AnalyzeRequests, AnalyzeStackRequest) for Registered-like resources."""
        per = [analyzer_pb2.AnalyzeRequest(type=r.type, properties=self._struct(dict(r.inputs)), urn=r.urn, name=r.name)
               for r in resources]
        stack = analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(type=r.type, properties=self._struct(dict(r.outputs or r.inputs)), urn=r.urn,
                                          name=r.name, parent=r.parent or "") for r in resources])
        return per, stack

    def analyze(self, req):
        t0 = time.perf_counter()
        resp = self.stub.Analyze(req, timeout=60)
        return time.perf_counter() - t0, resp

    def analyze_stack(self, req):
        t0 = time.perf_counter()
        resp = self.stub.AnalyzeStack(req, timeout=120)
        return time.perf_counter() - t0, resp


def replicate(resources, n: int):
    """n resources cycling through `resources`, renamed (-0, -1, ...) so URNs are distinct."""
    from dataclasses import replace

    out = []
    i = 0
    while len(out) < n:
        for r in resources:
            if len(out) == n:
                break
            k = i // len(resources)
            out.append(replace(r, name=f"{r.name}-{k}", urn=f"{r.urn}-{k}"))
            i += 1
    return out
