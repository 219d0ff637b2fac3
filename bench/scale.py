"""Scale: how plan and policy cost grow with the number of rollout steps (1, 10, 50).

Ladders end at 100: [100], [10..100 by 10], [2..100 by 2]. Only one service per stack is supported
(bluegreen:service is a single mapping), so steps are the only axis.
* plan: rollout.plan.build_plan on production (runs the program for step 0, every step, finish);
  per step = plan time / program runs.
* policy: every step's resources (production listener INCLUDED) analyzed over gRPC by the pack,
  one Analyze per resource. AWS points at a refused loopback port with 1 attempt, so the live read
  fails in well under a ms (no health gate runs: the fault path is taken); this measures the pack's
  own cost as steps grow, not AWS latency.
Linear = per-step cost flat (ratio ~1.0 between ladders). Interleaved reps, median [min-max].
Run: .venv/bin/python bench/scale.py [--reps N] [--policy-reps N]
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401
from _common import med, record, spread
from policy_client import Pack

from rollout.plan import build_plan
from rollout.simulate import load_stack_file, set_path

LADDERS = {1: [100], 10: list(range(10, 101, 10)), 50: list(range(2, 101, 2))}


def main(reps: int = 3, policy_reps: int = 2) -> list[str]:
    base = load_stack_file("production")
    cfgs = {n: set_path(set_path(base, "bluegreen:rollout.steps", s), "bluegreen:rollout.step", 0) for n, s in LADDERS.items()}
    plan_t = {n: [] for n in LADDERS}
    runs = {}
    pol_t = {n: [] for n in LADDERS}
    sims = {}
    for _ in range(reps):
        for n, cfg in cfgs.items():
            t0 = time.perf_counter()
            plan = build_plan("production", config=cfg)
            plan_t[n].append(time.perf_counter() - t0)
            runs[n] = len(plan.rows)
            sims[n] = [r.simulation for r in plan.rows]
    pack = Pack()
    try:
        warm = pack.requests(sims[1][0].custom)[0]
        for req in warm:
            pack.analyze(req)
        reqs = {n: [pack.requests(s.custom)[0] for s in sims[n]] for n in LADDERS}
        for _ in range(policy_reps):
            for n in LADDERS:
                t = 0.0
                for step_reqs in reqs[n]:
                    for req in step_reqs:
                        t += pack.analyze(req)[0]
                pol_t[n].append(t)
    finally:
        pack.close()
    lines = [f"Production stack, {reps} interleaved plan reps, {policy_reps} policy reps. Program runs per plan = steps + 2 (current, steps, finish). "
             "Only one service per stack is supported.", "",
             "| steps | plan total (s) | plan per run (ms) | policy total, all steps (s) | policy per step (ms) |", "|---|---|---|---|---|"]
    per_plan = {n: [t / runs[n] for t in plan_t[n]] for n in LADDERS}
    per_pol = {n: [t / runs[n] for t in pol_t[n]] for n in LADDERS}
    for n in LADDERS:
        lines.append(f"| {n} | {spread(plan_t[n])} | {spread([x * 1000 for x in per_plan[n]])} | {spread(pol_t[n])} | "
                     f"{spread([x * 1000 for x in per_pol[n]])} |")
    ns = list(LADDERS)
    lines += ["", "Per-step cost ratios (1.0 = linear total cost):"]
    for a, b in zip(ns, ns[1:]):
        rp = [x / y for x, y in zip(per_plan[b], per_plan[a])]
        rq = [x / y for x, y in zip(per_pol[b], per_pol[a])]
        lines.append(f"- {b} vs {a} steps: plan {spread(rp)}, policy {spread(rq)}")
    # least-squares slope/intercept of total plan time vs runs
    xs = [runs[n] for n in ns]
    ys = [med(plan_t[n]) for n in ns]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    icpt = my - slope * mx
    resid = max(abs(y - (icpt + slope * x)) / y for x, y in zip(xs, ys))
    lines.append(f"- plan total ~ {icpt:.3f} s + {slope * 1000:.1f} ms x runs (max relative residual {resid:.1%})")
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--policy-reps", type=int, default=2)
    a = ap.parse_args()
    record("scale", main(a.reps, a.policy_reps))
