"""Policy latency: a 200-resource stack analyzed by the real pack over Analyzer gRPC.

Resources: the production program's custom resources (run_program) minus the production listener,
cycled and renamed to 200. The production listener is the only resource whose analysis does live
I/O (elbv2 reads + the health gate), so leaving it out is what "health I/O excluded" means here.
Per stack = 200 Analyze calls (one per resource, as `pulumi up` does) + 1 AnalyzeStack call.
The production listener's own verdict (live reads, the gate) is bench/verdict_latency.py.
Target: <= 0.5 s per stack, median of n reps decided on its 95 % confidence interval.
Run: .venv/bin/python bench/policy_latency.py [--reps N] [--max-reps N] [--n 200]
"""

from __future__ import annotations

import argparse

import _common
from _common import Verdicts, ci_text, med, until_decided
from policy_client import Pack, replicate, triggers_io

from rollout.simulate import run_program


TARGET = 0.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--max-reps", type=int, default=12)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args(argv)
    sim = run_program("production")
    base = [r for r in sim.custom if not triggers_io(r)]
    res = replicate(base, a.n)
    pack = Pack()
    per_call, stack_call, per_stack, diags = [], [], [], []
    try:
        per, stack = pack.requests(res)
        pack.analyze(per[0]); pack.analyze_stack(stack)  # warm-up

        def one_round() -> None:
            ts = []
            found = 0
            for req in per:
                t, resp = pack.analyze(req)
                ts.append(t)
                found += len(resp.diagnostics)
            ts_stack, resp = pack.analyze_stack(stack)
            per_call.append(med(ts))
            stack_call.append(ts_stack)
            per_stack.append(sum(ts) + ts_stack)
            diags.append(found + len(resp.diagnostics))

        n = until_decided(one_round, lambda: _common.at_most(per_stack, TARGET) == _common.UNDECIDED, min_rounds=a.reps, max_rounds=a.max_reps)
    finally:
        pack.close()
    lines = [f"{a.n} resources ({len(base)} distinct production resources cycled; production listener excluded = no live/health I/O), "
             f"{n} reps, gRPC to `python policy` on 127.0.0.1. Diagnostics per rep: {med(diags):g}.", "",
             "| measure | median (95% CI) |", "|---|---|",
             f"| Analyze, per call (ms) | {ci_text([x * 1000 for x in per_call])} |",
             f"| AnalyzeStack, per call, {a.n} resources (ms) | {ci_text([x * 1000 for x in stack_call])} |",
             f"| per stack (s) | {ci_text(per_stack)} |"]
    v = Verdicts()
    v.timing(f"per stack ({a.n} x Analyze + 1 x AnalyzeStack)", per_stack, TARGET, f"<= {TARGET} s", " s")
    return v.finish("policy latency", lines)


if __name__ == "__main__":
    raise SystemExit(main())
