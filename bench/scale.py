"""Scale: how plan and policy cost grow with the number of rollout steps (1, 10, 50).

Ladders end at 100: [100], [10..100 by 10], [2..100 by 2]. Only one service per stack is supported
(bluegreen:service is a single mapping), so steps are the only axis.
* plan: rollout.plan.build_plan on production (runs the program for step 0, every step, finish);
  CPU time of this process (time.process_time) of each row, taken as build_plan hands it over
  (`on_row`). Per-run cost of a plan = the lower quartile of its rows' CPU times: contention only
  ever adds CPU time to a row (cold caches, switches), so the quartile is a row with little
  interference, where a plan's total moved with the load (the total / runs and the median row
  are printed too). A cost that grew with the ladder (work per row proportional to the steps, a
  heap that slows later rows) raises every row, the quartile with them.
* policy: every step's resources analyzed over gRPC by the pack, one Analyze per resource, wall
  time of the RPCs, the two ladders' steps ALTERNATED (10-step ladder's step i mod 12, then the
  50-step ladder's step i, ...) so that a busy moment hits both sides. The production listener is
  left out (as in policy_latency): its cost is AWS and the gate, measured by verdict_latency; with
  AWS at a refused port its retries would add botocore's random back-off to every step and
  measure that instead of the pack.
Linear = per-step cost flat. Verdict: per-step cost of the 50-step ladder / the 10-step ladder
<= 1.25 (the 1-step ladder is all fixed cost and is shown only), per interleaved round, median of n
rounds decided on its 95 % confidence interval. Whole ladders timed one after the other spread
0.69-1.53 on a loaded day: a load change between the two decided it.
Run: .venv/bin/python bench/scale.py [--reps N] [--max-reps N]
"""

from __future__ import annotations

import argparse
import statistics
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
    ap.add_argument("--max-reps", type=int, default=12)
    a = ap.parse_args(argv)
    base = load_stack_file("production")
    cfgs = {n: set_path(set_path(base, "bluegreen:rollout.steps", s), "bluegreen:rollout.step", 0) for n, s in LADDERS.items()}
    plan_t = {n: [] for n in LADDERS}  # total CPU of each plan
    row_t = {n: [] for n in LADDERS}  # median row CPU of each plan
    row_q = {n: [] for n in LADDERS}  # lower-quartile row CPU of each plan
    pol_t = {n: [] for n in LADDERS}
    plans = {n: build_plan("production", config=cfg) for n, cfg in cfgs.items()}  # also warms imports
    runs = {n: len(p.rows) for n, p in plans.items()}
    sims = {n: [r.simulation for r in p.rows] for n, p in plans.items()}
    pack = Pack()
    try:
        reqs = {n: [pack.requests([r for r in s.custom if not triggers_io(r)])[0] for s in sims[n]] for n in LADDERS}
        for req in reqs[1][0]:  # warm-up
            pack.analyze(req)

        def one_plan(n: int) -> None:
            stamps = [time.process_time()]
            build_plan("production", config=cfgs[n], on_row=lambda i, row: stamps.append(time.process_time()))
            # row 0 also parses and validates the config: its own cost, not a step's
            rows = [b - a for a, b in zip(stamps[1:], stamps[2:])] or [stamps[1] - stamps[0]]
            plan_t[n].append(time.process_time() - stamps[0])
            row_t[n].append(med(rows))
            row_q[n].append(statistics.quantiles(rows, n=4)[0] if len(rows) > 1 else rows[0])

        def one_round() -> None:
            for n in LADDERS:
                one_plan(n)
            pol_t[1].append(sum(pack.analyze(req)[0] for step_reqs in reqs[1] for req in step_reqs))
            walls = {10: 0.0, 50: 0.0}
            for i, big in enumerate(reqs[50]):  # alternated: 10-step ladder's step i mod 12, 50-step ladder's step i
                walls[10] += sum(pack.analyze(req)[0] for req in reqs[10][i % len(reqs[10])])
                walls[50] += sum(pack.analyze(req)[0] for req in big)
            # the 10-step ladder's steps were analyzed len(reqs[50]) times: scale back to one pass of its runs
            pol_t[10].append(walls[10] * runs[10] / len(reqs[50]))
            pol_t[50].append(walls[50])

        def ratio(t):
            return [(b / runs[50]) / (x / runs[10]) for x, b in zip(t[10], t[50])]

        def row_ratio():
            return [b / x for x, b in zip(row_q[10], row_q[50])]

        n = until_decided(one_round, lambda: any(_common.at_most(r, TARGET) == _common.UNDECIDED for r in (row_ratio(), ratio(pol_t))),
                          min_rounds=a.reps, max_rounds=a.max_reps)
    finally:
        pack.close()
    lines = [f"Production stack, {n} interleaved rounds (every ladder once per round). Program runs per plan = steps + 2 "
             "(current, steps, finish). Only one service per stack is supported.", "",
             "| steps | plan CPU total (s) | plan CPU total / runs (ms) | plan CPU, median row (ms) | plan CPU, lower-quartile row (ms) | policy wall, all steps (s) | policy per step (ms) |",
             "|---|---|---|---|---|---|---|"]
    for k in LADDERS:
        lines.append(f"| {k} | {ci_text(plan_t[k])} | {ci_text([x * 1000 / runs[k] for x in plan_t[k]])} | {ci_text([x * 1000 for x in row_t[k]])} | "
                     f"{ci_text([x * 1000 for x in row_q[k]])} | "
                     f"{ci_text(pol_t[k])} | {ci_text([x * 1000 / runs[k] for x in pol_t[k]])} |")
    xs = [runs[k] for k in LADDERS]
    ys = [med(plan_t[k]) for k in LADDERS]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    lines += ["", f"Plan CPU ~ {my - slope * mx:.3f} s + {slope * 1000:.1f} ms x program runs (least squares over the three ladders)."]
    v = Verdicts()
    lines.append(f"Plan CPU total / runs, 50-step / 10-step ladder (shown only): {ci_text(ratio(plan_t))}.")
    v.timing("plan: per-run cost (lower-quartile row CPU), 50-step / 10-step ladder", row_ratio(), TARGET, f"<= {TARGET}")
    v.timing("policy: per-step cost, 50-step / 10-step ladder", ratio(pol_t), TARGET, f"<= {TARGET}")
    return v.finish("scale", lines)


if __name__ == "__main__":
    raise SystemExit(main())
