"""Gate latency: 20 probes, 0/1/5/20 of them hung, per-probe timeout T.

rollout.gate.run_gate probes ONE URL (GateTarget.probe_url) 20 times concurrently, so "h hung
endpoints" is modelled as one loopback server that leaves the first h of the 20 requests of a run
unanswered (accepts, reads, never answers) and answers the rest 200. The reference is the
per-probe timeout T itself: a hung probe cannot be told from a slow one before T, so T is the floor
of any gate that waits for its probes, and the gate should cost little beyond it.
Reports wall/T, median (95% CI) over interleaved rounds (more rounds, up to --max-reps, while a
verdict is undecided).
Target: gate <= 1.2 x T whatever hangs.
Run: .venv/bin/python bench/gate_latency.py [--reps N] [--max-reps N] [--timeout T]
"""

from __future__ import annotations

import argparse
import time

import _common
from _common import Verdicts, ci_text, until_decided

from rollout.gate import GateTarget, GateThresholds, run_gate
from servers import HangingServer

PROBES = 20
HANGS = (0, 1, 5, 20)


def gate_once(srv: HangingServer, hang: int, T: float) -> tuple[float, bool]:
    srv.arm(hang)
    th = GateThresholds(probes=PROBES, probe_timeout_s=T, deadline_s=30.0, max_p95_ms=60_000.0)
    t0 = time.perf_counter()
    v = run_gate(GateTarget("green", probe_url=srv.url), th, checks=("http-probes",))
    wall = time.perf_counter() - t0
    srv.release()
    return wall, v.passed


TARGET = 1.2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--max-reps", type=int, default=15)
    ap.add_argument("--timeout", type=float, default=0.5)
    a = ap.parse_args(argv)
    T = a.timeout
    srv = HangingServer()
    g = {h: [] for h in HANGS}
    verdicts = {h: set() for h in HANGS}
    try:
        gate_once(srv, 0, T)  # warm-up (imports, thread pool, first connect)

        def one_round() -> None:  # interleaved: every kind once per round
            for h in HANGS:
                w, ok = gate_once(srv, h, T)
                g[h].append(w / T)
                verdicts[h].add(ok)

        n = until_decided(one_round, lambda: any(_common.at_most(g[h], TARGET) == _common.UNDECIDED for h in HANGS),
                          min_rounds=a.reps, max_rounds=a.max_reps)
    finally:
        srv.stop()
    lines = [f"{PROBES} probes, per-probe timeout T = {T} s, {n} interleaved rounds; gate wall time / T, median (95% CI). "
             "One loopback URL; the first h requests of each run hang (run_gate probes a single URL).", "",
             "| hung | gate wall / T | gate verdict |", "|---|---|---|"]
    v = Verdicts()
    for h in HANGS:
        outcome = "pass" if verdicts[h] == {True} else "fail" if verdicts[h] == {False} else "mixed"
        lines.append(f"| {h}/{PROBES} | {ci_text(g[h])} | {outcome} |")
        v.timing(f"{h}/{PROBES} probes hung: gate wall / T", g[h], TARGET, f"<= {TARGET}")
    return v.finish("gate latency", lines)


if __name__ == "__main__":
    raise SystemExit(main())
