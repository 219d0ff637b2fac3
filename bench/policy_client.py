"""Time raw Analyzer RPCs on the policy pack, started by the project's own client.

Used by bench/policy_latency.py and bench/scale.py. `rollout.analyzer.PolicyPackClient` starts
`python policy` as the engine does; here requests are built once, up front, so a timing covers the
RPC alone. AWS is pointed at a refused loopback port with dummy credentials, so a stray live read can
only fail fast on 127.0.0.1, never leave the machine.
"""

from __future__ import annotations

import tempfile
import time

from pulumi.runtime.proto import analyzer_pb2

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import process_cpu
from rollout.analyzer import PolicyPackClient, policy_pack_env, to_struct


# Resources whose analysis runs the health gate: production-tagged listeners (policy/health.py:
# live reads + run_gate). Benchmarks exclude them. (Other forwarding listeners and rules still read
# live state once per Analyze: policy/routes.py, route_view.)
def triggers_io(r) -> bool:
    return r.type.endswith("listener:Listener") and (r.inputs.get("tags") or {}).get("bluegreen:listener") == "production"


class Pack:
    def __init__(self):
        scratch = tempfile.mkdtemp(prefix="bluegreen-bench-pack-")
        # No AWS_MAX_ATTEMPTS here: rollout.live's client Config sets retries itself, which overrides it.
        env = policy_pack_env("http://127.0.0.1:9", scratch)
        self.client = PolicyPackClient(env=env, rpc_timeout=120).start()

    def close(self):
        self.client.stop()

    def cpu(self) -> float:
        """CPU seconds used so far by the pack process and by this one (the gRPC client): a stack's
        calls are synchronous, one at a time, so on an idle machine their wall time is this CPU plus
        loopback latency, while on a busy one only the wall time stretches."""
        return process_cpu(self.client._proc.pid) + time.process_time()

    def requests(self, resources):
        """(AnalyzeRequests, AnalyzeStackRequest) for Registered-like resources."""
        per = [analyzer_pb2.AnalyzeRequest(type=r.type, properties=to_struct(dict(r.inputs)), urn=r.urn, name=r.name)
               for r in resources]
        stack = analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(type=r.type, properties=to_struct(dict(r.outputs or r.inputs)), urn=r.urn,
                                          name=r.name, parent=r.parent or "") for r in resources])
        return per, stack

    def analyze(self, req):
        t0 = time.perf_counter()
        resp = self.client.call("Analyze", req)
        return time.perf_counter() - t0, resp

    def analyze_stack(self, req):
        t0 = time.perf_counter()
        resp = self.client.call("AnalyzeStack", req)
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
