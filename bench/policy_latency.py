"""Policy latency: a 200-resource stack analyzed by the real pack over Analyzer gRPC.

Resources: the production program's custom resources (run_program) minus the production listener,
cycled and renamed to 200. The production listener is the only resource whose analysis runs the
health gate, so leaving it out is what "health I/O excluded" means here. It is not the only one that
reads live state: every listener and listener rule that forwards (here the test listener and the
header route, 12 of the 200) makes one elbv2 read per Analyze (policy/routes.py, `route_view`), and
other policies read too (policy/workload.py: the ECS services; security.py, identity.py); with AWS at
a refused loopback port each such read fails after botocore's one retry (a 0-50 ms backoff).
Per stack = 200 Analyze calls (one per resource, as `pulumi up` does) + 1 AnalyzeStack call.
The production listener's own verdict (live reads, the gate) is bench/verdict_latency.py.
Target: <= 0.5 s per stack, median of n reps decided on its 95 % confidence interval. Each rep
is the least of BEST_OF stacks run back to back (the cost of a stack with the least interference:
a neighbour's job on the shared cores only ever adds to it, as `timeit` reasons), so that the
verdict is on the pack and not on the machine's load (a plain median of single stacks spread
0.39-0.52 s on one loaded day). Wall time is the verdict; CPU time of the pack process + this client
(/proc, time.process_time) is printed beside it.
Run: .venv/bin/python bench/policy_latency.py [--reps N] [--max-reps N] [--n 200]
"""

from __future__ import annotations

import argparse

import _common
from _common import Verdicts, ci_text, med, until_decided
from policy_client import Pack, replicate, triggers_io

from rollout.simulate import run_program


TARGET = 0.5
BEST_OF = 3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--max-reps", type=int, default=20)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args(argv)
    sim = run_program("production")
    base = [r for r in sim.custom if not triggers_io(r)]
    res = replicate(base, a.n)
    pack = Pack()
    per_call, stack_call, per_stack, cpu_stack, diags = [], [], [], [], []
    try:
        per, stack = pack.requests(res)
        pack.analyze(per[0]); pack.analyze_stack(stack)  # warm-up

        def one_stack() -> tuple[float, float, float, float, int]:
            ts = []
            found = 0
            cpu0 = pack.cpu()
            for req in per:
                t, resp = pack.analyze(req)
                ts.append(t)
                found += len(resp.diagnostics)
            ts_stack, resp = pack.analyze_stack(stack)
            return sum(ts) + ts_stack, pack.cpu() - cpu0, med(ts), ts_stack, found + len(resp.diagnostics)

        def one_round() -> None:
            best = min((one_stack() for _ in range(BEST_OF)), key=lambda x: x[0])
            per_stack.append(best[0])
            cpu_stack.append(best[1])
            per_call.append(best[2])
            stack_call.append(best[3])
            diags.append(best[4])

        n = until_decided(one_round, lambda: _common.at_most(per_stack, TARGET) == _common.UNDECIDED, min_rounds=a.reps, max_rounds=a.max_reps)
    finally:
        pack.close()
    lines = [f"{a.n} resources ({len(base)} distinct production resources cycled; production listener excluded = no health gate; live reads of the other resources refused at once), "
             f"{n} reps, each the least of {BEST_OF} stacks back to back (figures below are of that stack), gRPC to `python policy` on 127.0.0.1. Diagnostics per rep: {med(diags):g}.", "",
             "| measure | median (95% CI) |", "|---|---|",
             f"| Analyze, per call (ms) | {ci_text([x * 1000 for x in per_call])} |",
             f"| AnalyzeStack, per call, {a.n} resources (ms) | {ci_text([x * 1000 for x in stack_call])} |",
             f"| per stack, wall (s) | {ci_text(per_stack)} |",
             f"| per stack, CPU of pack + client (s) | {ci_text(cpu_stack)} |"]
    v = Verdicts()
    v.timing(f"per stack ({a.n} x Analyze + 1 x AnalyzeStack), least of {BEST_OF}", per_stack, TARGET, f"<= {TARGET} s", " s")
    return v.finish("policy latency", lines)


if __name__ == "__main__":
    raise SystemExit(main())
