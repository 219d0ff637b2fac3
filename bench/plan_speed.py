"""`python -m rollout plan` against its floor: one mock run of the program, imports included.

Both are fresh processes, alternated (floor, plan, floor, plan, ...), so a busy moment of the shared
machine hits both sides of a pair: the verdict is on the per-pair ratio plan/floor (wall time, what
the operator waits for), decided on its median's 95 % confidence interval.
* floor: `python -c "from rollout.simulate import run_program; run_program('production')"`
* plan:  `python -m rollout plan --stack production` (every remaining step and the finish, each judged
  by the real policy pack offline; the pack starts while the program runs)
Target: plan / floor <= 1.5.
Run: .venv/bin/python bench/plan_speed.py [--reps N] [--max-reps N]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import _common  # noqa: F401
from _common import ROOT, Verdicts, ci_text, until_decided

TARGET = 1.5
FLOOR = [sys.executable, "-c", "from rollout.simulate import run_program; run_program('production')"]
PLAN = [sys.executable, "-m", "rollout", "plan", "--stack", "production"]


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the process and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "160"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode not in (0, 1):  # plan exits 1 when the pack would refuse a step: still a full run
        raise SystemExit(f"{' '.join(cmd[1:])} failed ({out.returncode}):\n{out.stderr.decode()[-3000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--max-reps", type=int, default=12)
    a = ap.parse_args(argv)
    timed(FLOOR)  # warm the page cache for both
    timed(PLAN)
    t = {"floor": [], "plan": []}

    def one_round() -> None:
        for kind, cmd in (("floor", FLOOR), ("plan", PLAN)):
            t[kind].append(timed(cmd))

    def ratios(i: int) -> list[float]:
        return [p[i] / f[i] for p, f in zip(t["plan"], t["floor"])]

    n = until_decided(one_round, lambda: _common.at_most(ratios(0), TARGET) == _common.UNDECIDED, min_rounds=a.reps, max_rounds=a.max_reps)
    lines = [f"Production stack, {n} interleaved (floor, plan) pairs of fresh processes; median (95% CI).", "",
             "| measure | floor | plan | plan / floor |", "|---|---|---|---|",
             f"| wall (s) | {ci_text([x[0] for x in t['floor']])} | {ci_text([x[0] for x in t['plan']])} | {ci_text(ratios(0))} |",
             f"| CPU, process + children (s) | {ci_text([x[1] for x in t['floor']])} | {ci_text([x[1] for x in t['plan']])} | {ci_text(ratios(1))} |"]
    v = Verdicts()
    v.timing("plan / floor, wall", ratios(0), TARGET, f"<= {TARGET}")
    return v.finish("plan speed", lines)


if __name__ == "__main__":
    raise SystemExit(main())
