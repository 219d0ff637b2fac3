"""Gate latency: 20 probes, 0/1/5/20 of them hung, per-probe timeout T.

rollout.gate.run_gate probes ONE URL (GateTarget.probe_url) 20 times concurrently, so "h hung
endpoints" is modelled as one loopback server that leaves the first h of the 20 requests of a run
unanswered (accepts, reads, never answers) and answers the rest 200. Sequential baseline: a plain
loop of requests.get(url, timeout=T). Reports wall/T, median [min-max] over interleaved reps.
Target: concurrent gate <= 1.2 x T whatever hangs.
Run: .venv/bin/python bench/gate_latency.py [--reps N] [--timeout T]
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401
from _common import med, record, spread

import requests

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


def seq_once(srv: HangingServer, hang: int, T: float) -> float:
    srv.arm(hang)
    t0 = time.perf_counter()
    for _ in range(PROBES):
        try:
            requests.get(srv.url, timeout=T).close()
        except requests.RequestException:
            pass
    wall = time.perf_counter() - t0
    srv.release()
    return wall


def main(reps: int = 5, T: float = 0.5) -> list[str]:
    srv = HangingServer()
    try:
        gate_once(srv, 0, T)  # warm-up (imports, thread pool, first connect)
        g = {h: [] for h in HANGS}
        s = {h: [] for h in HANGS}
        verdicts = {h: set() for h in HANGS}
        for _ in range(reps):  # interleaved: every kind once per rep
            for h in HANGS:
                w, ok = gate_once(srv, h, T)
                g[h].append(w / T)
                verdicts[h].add(ok)
                s[h].append(seq_once(srv, h, T) / T)
    finally:
        srv.stop()
    lines = [f"{PROBES} probes, per-probe timeout T = {T} s, {reps} interleaved reps; wall time / T, median [min-max]. "
             "One loopback URL; the first h requests of each run hang (run_gate probes a single URL).",
             "Target: gate <= 1.2 (whatever hangs).", "",
             "| hung | gate (run_gate) | sequential loop | gate verdict | target |", "|---|---|---|---|---|"]
    for h in HANGS:
        m = med(g[h])
        lines.append(f"| {h}/{PROBES} | {spread(g[h])} | {spread(s[h])} | {'pass' if verdicts[h] == {True} else 'fail' if verdicts[h] == {False} else 'mixed'} | "
                     f"{'met' if m <= 1.2 else 'MISSED'} |")
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=0.5)
    a = ap.parse_args()
    record("gate latency", main(a.reps, a.timeout))
