"""Component overhead: the real production program (__main__.py: config validation + components)
vs bench/flat_program.py (same pulumi_aws resources, same inputs, flat), both under the same mock
runtime (rollout.simulate.run_program: set_mocks + runpy in a fresh contextvars.Context).

Each measurement is a fresh subprocess (so peak RSS is per program); subprocesses alternate
program/flat. Per subprocess: the SHARED imports first (pulumi, pulumi_aws and every pulumi_aws
service module both programs use, the mock harness), so that what is compared is each program's
own cost: its own modules and its runs. Then 1 cold run + WARM timed runs.
Time is CPU time of the process (time.process_time), not wall time: on shared cores a colleague's
job stretches wall time, not the CPU a run needs. Memory: peak RSS growth from after the shared
imports to after the runs, and tracemalloc's peak for one warm run.
Verdicts: the per-pair ratio program/flat, median of n pairs, decided on its 95 % confidence
interval (more pairs, up to --max-reps, while one is undecided).
Target: program/flat <= 1.2 (time and memory).
Run: .venv/bin/python bench/component_overhead.py [--reps N] [--max-reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
from _common import BENCH, ROOT, Verdicts, med, until_decided

WARM = 7
TARGET = 1.2
# pulumi_aws service modules both programs register resources from (bench/flat_program.py)
SHARED_AWS = ("cloudwatch", "ec2", "ecs", "iam", "lb")


def _flat_root() -> Path:
    d = Path(tempfile.mkdtemp(prefix="bluegreen-flat-"))
    (d / "__main__.py").symlink_to(BENCH / "flat_program.py")
    return d


def one(kind: str) -> dict:
    import resource
    import tracemalloc

    import importlib

    import pulumi  # noqa: F401
    import pulumi_aws  # noqa: F401

    from rollout import simulate

    for mod in SHARED_AWS:  # pulumi_aws loads a service module on its first attribute access
        hasattr(importlib.import_module(f"pulumi_aws.{mod}"), "bluegreen_load_it")

    root = ROOT if kind == "program" else _flat_root()
    cfg = simulate.load_stack_file("production")

    def run():
        return simulate.run_program("production", cfg, root=root)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.process_time()
    sim = run()
    cold = time.process_time() - t0
    warm = []
    for _ in range(WARM):
        t0 = time.process_time()
        run()
        warm.append(time.process_time() - t0)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()  # separate, untimed run: tracemalloc slows the interpreter
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"cold": cold, "warm": med(warm), "tm_peak": peak, "rss": rss1, "rss_delta": rss1 - rss0,
            "inputs": {r.name + "|" + r.type: r.inputs for r in sim.custom}}


ROWS = (("warm", "CPU time, warm run (s)", "{:.3f}", 1), ("cold", "CPU time, first run after shared imports (s)", "{:.3f}", 1),
        ("tm_peak", "tracemalloc peak, one warm run (MiB)", "{:.2f}", 1 / 2**20),
        ("rss_delta", "peak RSS growth after shared imports (MiB)", "{:.1f}", 1 / 1024), ("rss", "peak RSS of the process (MiB)", "{:.0f}", 1 / 1024))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", choices=("program", "flat"))
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--max-reps", type=int, default=12)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(a.one)))
        return 0
    res = {"program": [], "flat": []}

    def one_round() -> None:
        for kind in ("program", "flat"):
            out = subprocess.run([sys.executable, __file__, "--one", kind], capture_output=True, text=True,
                                 cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"})
            if out.returncode:
                raise SystemExit(f"{kind} run failed:\n{out.stderr[-3000:]}")
            res[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))

    def ratios(key):
        return [p[key] / f[key] if f[key] > 0 else float("inf") for p, f in zip(res["program"], res["flat"])]

    def undecided() -> bool:
        return any(_common.at_most(ratios(key), TARGET) == _common.UNDECIDED for key, *_ in ROWS[:4])

    n = until_decided(one_round, undecided, min_rounds=a.reps, max_rounds=a.max_reps)
    a_in, b_in = res["program"][0]["inputs"], res["flat"][0]["inputs"]
    same = sum(1 for k in a_in if k in b_in and json.dumps(a_in[k], sort_keys=True) == json.dumps(b_in[k], sort_keys=True))
    lines = [f"Production stack, {n} interleaved subprocess pairs, {WARM} warm runs each. "
             f"Flat program: {len(b_in)} resources; {same}/{len(a_in)} of the program's custom resources have identical inputs. "
             f"Shared imports before measuring: pulumi, pulumi_aws.{{{','.join(SHARED_AWS)}}}, rollout.simulate.", "",
             "| measure | program | flat | program/flat, median (95% CI) |", "|---|---|---|---|"]
    v = Verdicts()
    for key, label, fmt, scale in ROWS:
        pv = med([p[key] for p in res["program"]]) * scale
        fv = med([f[key] for f in res["flat"]]) * scale
        r = ratios(key)
        lines.append(f"| {label} | {fmt.format(pv)} | {fmt.format(fv)} | {_common.ci_text(r)} |")
        if key != "rss":  # whole-process RSS is context: both carry the same ~100 MiB of imports
            v.timing(f"{label}: program/flat", r, TARGET, f"<= {TARGET}")
    return v.finish("component overhead", lines)


if __name__ == "__main__":
    raise SystemExit(main())
