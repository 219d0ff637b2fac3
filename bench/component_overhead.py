"""Component overhead: the real production program (__main__.py: config validation + components)
vs bench/flat_program.py (same pulumi_aws resources, same inputs, flat), both under the same mock
runtime (rollout.simulate.run_program: set_mocks + runpy in a fresh contextvars.Context).

Each round is a fresh subprocess. It makes the SHARED imports first (pulumi, pulumi_aws and every
pulumi_aws service module both programs use, the mock harness), so that what is compared is each
program's own cost: its own modules and its runs. Then, all alternated (program, flat, flat,
program, ...), so that a busy moment of the shared cores hits both sides of a pair:
* FORKS pairs of forked children, each doing its kind's first run (CPU: the imports of its own
  modules + one run) and WARM more runs: peak RSS growth from the fork to the end of the runs
  (VmHWM - VmRSS at the fork). Forking from the one warmed-up parent gives both kinds the same
  starting state, which separate interpreters did not (first-run ratios spread 1.04-1.45 that way);
* WARM pairs of warm runs in the parent, then tracemalloc's peak for one warm run of each kind.
Each subprocess contributes one sample per measure: the median of its pairs' ratios program/flat.
Time is CPU time (time.process_time), not wall time: on shared cores a colleague's job stretches
wall time, not the CPU a run needs.
Verdicts: the ratio program/flat, median of n subprocesses, decided on its 95 % confidence
interval (more subprocesses, up to --max-reps, while one is undecided).
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
FORKS = 5
TARGET = 1.2
# pulumi_aws service modules both programs register resources from (bench/flat_program.py)
SHARED_AWS = ("cloudwatch", "ec2", "ecs", "iam", "lambda_", "lb")


def _flat_root() -> Path:
    d = Path(tempfile.mkdtemp(prefix="bluegreen-flat-"))
    (d / "__main__.py").symlink_to(BENCH / "flat_program.py")
    return d


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def one() -> dict:
    import importlib
    import tracemalloc

    import pulumi  # noqa: F401
    import pulumi_aws  # noqa: F401

    from rollout import simulate

    for mod in SHARED_AWS:  # pulumi_aws loads a service module on its first attribute access
        hasattr(importlib.import_module(f"pulumi_aws.{mod}"), "bluegreen_load_it")

    roots = {"program": ROOT, "flat": _flat_root()}
    cfg = simulate.load_stack_file("production")

    def run(k: str):
        return simulate.run_program("production", cfg, root=roots[k])

    def cpu(k: str) -> float:
        t0 = time.process_time()
        run(k)
        return time.process_time() - t0

    def forked_first_run(k: str) -> dict:
        """In a child forked from this (shared imports only) process: k's first run, then WARM more."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: measure, write one JSON line, leave without cleanup
            try:
                os.close(r)
                rss0 = _status_kib("VmRSS")
                t0 = time.process_time()
                sim = run(k)
                cold = time.process_time() - t0
                for _ in range(WARM):
                    run(k)
                out = {"cold": cold, "rss_delta": _status_kib("VmHWM") - rss0, "rss": _status_kib("VmHWM"),
                       "inputs": {x.name + "|" + x.type: x.inputs for x in sim.custom}}
                os.write(w, json.dumps(out).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        if not data:
            raise RuntimeError(f"the forked {k} run wrote nothing")
        return json.loads(data)

    order = [("program", "flat"), ("flat", "program")]
    first = {"program": [], "flat": []}
    for i in range(FORKS):  # before the parent runs any program: the children start from shared imports only
        for k in order[i % 2]:
            first[k].append(forked_first_run(k))
    run("program"), run("flat")  # the parent's own first runs, untimed
    pairs = []
    for i in range(WARM):
        t = {k: cpu(k) for k in order[i % 2]}
        pairs.append(t["program"] / t["flat"])
    peaks = {}
    for k in ("program", "flat"):
        tracemalloc.start()  # separate, untimed runs: tracemalloc slows the interpreter
        run(k)
        peaks[k] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    out: dict = {"warm_ratio": med(pairs), "tm_ratio": peaks["program"] / peaks["flat"],
                 "tm_peak": {k: peaks[k] for k in peaks}, "inputs": {k: first[k][0]["inputs"] for k in first}}
    for key in ("cold", "rss_delta", "rss"):
        out[key] = {k: med([x[key] for x in first[k]]) for k in first}
        out[key + "_ratio"] = med([p[key] / f[key] if f[key] > 0 else float("inf") for p, f in zip(first["program"], first["flat"])])
    return out


# (key, label, format, scale): every ratio is one sample per subprocess (the median of its pairs)
ROWS = (("warm", "CPU time, warm run (s/s, alternated in one process)", "", 1),
        ("cold", "CPU time, first run after shared imports (s)", "{:.3f}", 1),
        ("tm", "tracemalloc peak, one warm run (MiB)", "{:.2f}", 1 / 2**20),
        ("rss_delta", "peak RSS growth after shared imports (MiB)", "{:.1f}", 1 / 1024),
        ("rss", "peak RSS of the process (MiB)", "{:.0f}", 1 / 1024))
VALUES = {"tm": "tm_peak"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", action="store_true", help="one subprocess's measurements, as JSON")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--max-reps", type=int, default=12)
    ap.add_argument("--fresh-checkout", action="store_true",
                    help="compile the project's modules from source in every run (no cached bytecode), as a fresh clone does")
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one()))
        return 0
    res: list[dict] = []
    # As on a user's machine, modules load from cached bytecode: Python writes it on the first import unless told
    # not to (PYTHONDONTWRITEBYTECODE, set on this machine). Compiled once here, into a directory of its own.
    # --fresh-checkout: every run compiles them, as the first `pulumi up` of a fresh clone (Pulumi Deployments) does.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONHASHSEED="0", PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="bluegreen-pycache-"))
    if a.fresh_checkout:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX")
    else:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-x", r"/\.venv/", str(ROOT / "components"), str(ROOT / "rollout"),
                        str(BENCH)], cwd=ROOT, env=env, check=True)

    def one_round() -> None:
        out = subprocess.run([sys.executable, __file__, "--one"], capture_output=True, text=True, cwd=ROOT, env=env)
        if out.returncode:
            raise SystemExit(f"measurement failed:\n{out.stderr[-3000:]}")
        res.append(json.loads(out.stdout.strip().splitlines()[-1]))

    def ratios(key: str) -> list[float]:
        return [r[key + "_ratio"] for r in res]

    def undecided() -> bool:
        return any(_common.at_most(ratios(key), TARGET) == _common.UNDECIDED for key, *_ in ROWS[:4])

    n = until_decided(one_round, undecided, min_rounds=a.reps, max_rounds=a.max_reps)
    a_in, b_in = res[0]["inputs"]["program"], res[0]["inputs"]["flat"]
    same = sum(1 for k in a_in if k in b_in and json.dumps(a_in[k], sort_keys=True) == json.dumps(b_in[k], sort_keys=True))
    lines = [f"Production stack, {n} subprocesses; in each, {FORKS} alternated pairs of forked first runs (+{WARM} warm runs "
             f"each, for RSS) and {WARM} alternated pairs of warm runs; one sample per subprocess and measure (the median of "
             f"its pairs' ratios). Flat program: {len(b_in)} resources; {same}/{len(a_in)} of the program's custom resources "
             f"have identical inputs. Shared imports before measuring: pulumi, pulumi_aws.{{{','.join(SHARED_AWS)}}}, rollout.simulate. "
             + ("Every run compiles the project's modules from source (--fresh-checkout)." if a.fresh_checkout else
                "The project's modules load from cached bytecode, as on a machine that does not set PYTHONDONTWRITEBYTECODE."),
             "", "| measure | program | flat | program/flat, median (95% CI) |", "|---|---|---|---|"]
    v = Verdicts()
    # a stale flat program (the program grew since gen_flat_program.py ran) compares unlike with unlike
    v.add("flat program: the same custom resources, identical inputs (else re-run bench/gen_flat_program.py)",
          f"{same}/{len(a_in)} (flat has {len(b_in)})", "all", same == len(a_in) == len(b_in))
    for key, label, fmt, scale in ROWS:
        if fmt:
            vals = VALUES.get(key, key)
            pv = fmt.format(med([r[vals]["program"] for r in res]) * scale)
            fv = fmt.format(med([r[vals]["flat"] for r in res]) * scale)
        else:
            pv = fv = "(ratio per pair)"
        lines.append(f"| {label} | {pv} | {fv} | {_common.ci_text(ratios(key))} |")
        if key != "rss":  # whole-process RSS is context: both carry the same ~100 MiB of imports
            v.timing(f"{label}: program/flat", ratios(key), TARGET, f"<= {TARGET}")
    return v.finish("component overhead", lines)


if __name__ == "__main__":
    raise SystemExit(main())
