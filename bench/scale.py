"""Scale: how plan and policy cost grow with the number of rollout steps (1, 10, 50).

Ladders end at 100: [100], [10..100 by 10], [2..100 by 2]. Only one service per stack is supported
(bluegreen:service is a single mapping), so steps are the only axis.
* plan: rollout.plan.build_plan on production (runs the program for step 0, every step, finish);
  CPU time of this process (time.process_time), per program run = plan time / runs.
* policy: every step's resources analyzed over gRPC by the pack, one Analyze per resource, wall
  time of the RPCs. The production listener is left out (as in policy_latency): its cost is AWS
  and the gate, measured by verdict_latency; with AWS at a refused port its retries would add
  botocore's random back-off to every step and measure that instead of the pack.
Linear = per-step cost flat. Verdict: per-step cost of the 50-step ladder / the 10-step ladder
<= 1.25 (the 1-step ladder is all fixed cost and is shown only), per interleaved rep, median of n
reps decided on its 95 % confidence interval.
Run: .venv/bin/python bench/scale.py [--reps N] [--max-reps N]
"""

from __future__ import annotations

import argparse
import time

import _common
from _common import Verdicts, ci_text, med, until_decided
from policy_client import Pack, triggers_io

from rollout.plan import build_plan
from rollout.simulate import load_stack_file, set_path

LADDERS = {1: [100], 10: list(range(10, 101, 10)), 50: list(range(2, 101, 2))}
TARGET = 1.25


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--max-reps", type=int, default=8)
    a = ap.parse_args(argv)
    base = load_stack_file("production")
    cfgs = {n: set_path(set_path(base, "bluegreen:rollout.steps", s), "bluegreen:rollout.step", 0) for n, s in LADDERS.items()}
    plan_t = {n: [] for n in LADDERS}
    pol_t = {n: [] for n in LADDERS}
    plans = {n: build_plan("production", config=cfg) for n, cfg in cfgs.items()}  # also warms imports
    runs = {n: len(p.rows) for n, p in plans.items()}
    sims = {n: [r.simulation for r in p.rows] for n, p in plans.items()}
    pack = Pack()
    try:
        reqs = {n: [pack.requests([r for r in s.custom if not triggers_io(r)])[0] for s in sims[n]] for n in LADDERS}
        for req in reqs[1][0]:  # warm-up
            pack.analyze(req)

        def one_round() -> None:
            for n, cfg in cfgs.items():
                t0 = time.process_time()
                build_plan("production", config=cfg)
                plan_t[n].append(time.process_time() - t0)
                pol_t[n].append(sum(pack.analyze(req)[0] for step_reqs in reqs[n] for req in step_reqs))

        def ratio(t):
            return [(b / runs[50]) / (x / runs[10]) for x, b in zip(t[10], t[50])]

        n = until_decided(one_round, lambda: any(_common.at_most(ratio(t), TARGET) == _common.UNDECIDED for t in (plan_t, pol_t)),
                          min_rounds=a.reps, max_rounds=a.max_reps)
    finally:
        pack.close()
    lines = [f"Production stack, {n} interleaved rounds (every ladder once per round). Program runs per plan = steps + 2 "
             "(current, steps, finish). Only one service per stack is supported.", "",
             "| steps | plan CPU total (s) | plan CPU per run (ms) | policy wall, all steps (s) | policy per step (ms) |", "|---|---|---|---|---|"]
    for k in LADDERS:
        lines.append(f"| {k} | {ci_text(plan_t[k])} | {ci_text([x * 1000 / runs[k] for x in plan_t[k]])} | {ci_text(pol_t[k])} | "
                     f"{ci_text([x * 1000 / runs[k] for x in pol_t[k]])} |")
    xs = [runs[k] for k in LADDERS]
    ys = [med(plan_t[k]) for k in LADDERS]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    lines += ["", f"Plan CPU ~ {my - slope * mx:.3f} s + {slope * 1000:.1f} ms x program runs (least squares over the three ladders)."]
    v = Verdicts()
    v.timing("plan: per-run cost, 50-step / 10-step ladder", ratio(plan_t), TARGET, f"<= {TARGET}")
    v.timing("policy: per-step cost, 50-step / 10-step ladder", ratio(pol_t), TARGET, f"<= {TARGET}")
    return v.finish("scale", lines)


if __name__ == "__main__":
    raise SystemExit(main())
