"""Policy latency: a 200-resource stack analyzed by the real pack over Analyzer gRPC.

Resources: the production program's custom resources (run_program) minus the production listener,
cycled and renamed to 200. The production listener is the only resource whose analysis does live
I/O (elbv2 reads + the health gate), so leaving it out is what "health I/O excluded" means here.
Per stack = 200 Analyze calls (one per resource, as `pulumi up` does) + 1 AnalyzeStack call.
Target: <= 0.5 s per stack.
Run: .venv/bin/python bench/policy_latency.py [--reps N] [--n 200]
"""

from __future__ import annotations

import argparse

import _common  # noqa: F401
from _common import med, record, spread
from policy_client import Pack, replicate, triggers_io

from rollout.simulate import run_program


def main(reps: int = 5, n: int = 200) -> list[str]:
    sim = run_program("production")
    base = [r for r in sim.custom if not triggers_io(r)]
    res = replicate(base, n)
    pack = Pack()
    try:
        per, stack = pack.requests(res)
        pack.analyze(per[0]); pack.analyze_stack(stack)  # warm-up
        per_call, stack_call, per_stack, diags = [], [], [], 0
        for _ in range(reps):
            ts = []
            for req in per:
                t, resp = pack.analyze(req)
                ts.append(t)
                diags += len(resp.diagnostics)
            ts_stack, resp = pack.analyze_stack(stack)
            per_call.append(med(ts))
            stack_call.append(ts_stack)
            per_stack.append(sum(ts) + ts_stack)
    finally:
        pack.close()
    m = med(per_stack)
    return [f"{n} resources ({len(base)} distinct production resources cycled; production listener excluded = no live/health I/O), "
            f"{reps} reps, gRPC to `python policy` on 127.0.0.1. Diagnostics per rep: {diags // reps}.",
            "Target: per stack (200 x Analyze + 1 x AnalyzeStack) <= 0.5 s.", "",
            "| measure | median [min-max] |", "|---|---|",
            f"| Analyze, per call (ms) | {spread([x * 1000 for x in per_call])} |",
            f"| AnalyzeStack, per call, {n} resources (ms) | {spread([x * 1000 for x in stack_call])} |",
            f"| per stack (s) | {spread(per_stack)} |",
            f"| per stack / 0.5 s target | {m / 0.5:.2f} — {'met' if m <= 0.5 else 'MISSED'} |"]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    record("policy latency", main(a.reps, a.n))
