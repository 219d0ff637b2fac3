"""Component overhead: the real production program (__main__.py: config validation + components)
vs bench/flat_program.py (same pulumi_aws resources, same inputs, flat), both under the same mock
runtime (rollout.simulate.run_program: set_mocks + runpy in a fresh contextvars.Context).

Each measurement is a fresh subprocess (so peak RSS is per program); subprocesses alternate
program/flat. Per subprocess: imports warmed first, then 1 cold run + WARM timed runs.
Target: program/flat <= 1.2 (time and memory).
Run: .venv/bin/python bench/component_overhead.py [--reps N]
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

import _common  # noqa: F401
from _common import BENCH, ROOT, med, record, spread

WARM = 7


def _flat_root() -> Path:
    d = Path(tempfile.mkdtemp(prefix="bluegreen-flat-"))
    (d / "__main__.py").symlink_to(BENCH / "flat_program.py")
    return d


def one(kind: str) -> dict:
    import resource
    import tracemalloc

    import pulumi  # noqa: F401
    import pulumi_aws  # noqa: F401  (both programs need it; keep import cost out of the figure)

    from rollout import simulate

    root = ROOT if kind == "program" else _flat_root()
    cfg = simulate.load_stack_file("production")

    def run():
        return simulate.run_program("production", cfg, root=root)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    sim = run()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(WARM):
        t0 = time.perf_counter()
        run()
        warm.append(time.perf_counter() - t0)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()  # separate, untimed run: tracemalloc slows the interpreter
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"cold": cold, "warm": med(warm), "tm_peak": peak, "rss": rss1, "rss_delta": rss1 - rss0,
            "inputs": {r.name + "|" + r.type: r.inputs for r in sim.custom}}


def main(reps: int = 5) -> list[str]:
    res = {"program": [], "flat": []}
    for _ in range(reps):
        for kind in ("program", "flat"):
            out = subprocess.run([sys.executable, __file__, "--one", kind], capture_output=True, text=True,
                                 cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"})
            if out.returncode:
                raise SystemExit(f"{kind} run failed:\n{out.stderr[-3000:]}")
            res[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    a, b = res["program"][0]["inputs"], res["flat"][0]["inputs"]
    same = sum(1 for k in a if k in b and json.dumps(a[k], sort_keys=True) == json.dumps(b[k], sort_keys=True))

    def ratios(key):
        return [p[key] / f[key] for p, f in zip(res["program"], res["flat"])]

    lines = [f"Production stack, {reps} interleaved subprocess pairs, {WARM} warm runs each. "
             f"Flat program: {len(b)} resources; {same}/{len(a)} of the program's custom resources have identical inputs.",
             "Target: program/flat <= 1.2.", "",
             "| measure | program | flat | program/flat median [min-max] | target |", "|---|---|---|---|---|"]
    for key, label, fmt in (("warm", "run time, warm (s)", "{:.3f}"), ("cold", "run time, first in process (s)", "{:.3f}"),
                            ("tm_peak", "tracemalloc peak, one warm run (MiB)", "{:.1f}"),
                            ("rss", "peak RSS of the process (MiB)", "{:.0f}"), ("rss_delta", "peak RSS growth over imports (MiB)", "{:.1f}")):
        scale = 1 / 2**20 if key == "tm_peak" else (1 / 1024 if key.startswith("rss") else 1)
        pv = med([p[key] for p in res["program"]]) * scale
        fv = med([f[key] for f in res["flat"]]) * scale
        r = ratios(key) if med([f[key] for f in res["flat"]]) > 0 else [float("nan")]
        lines.append(f"| {label} | {fmt.format(pv)} | {fmt.format(fv)} | {spread(r)} | {'met' if med(r) <= 1.2 else 'MISSED'} |")
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", choices=("program", "flat"))
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one)))
    else:
        record("component overhead", main(a.reps))
