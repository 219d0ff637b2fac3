"""What every benchmark shares: repo on sys.path, machine info, RESULTS.md, and verdicts.

A benchmark is a module of bench/ with a top-level `def main(argv=None) -> int`: it measures, prints
its table and a verdict per target (`Verdicts`), appends both to RESULTS.md and returns 0 when every
target is met, 1 when one is missed or cannot be decided. `run_all.py` finds and runs them all.

Timing verdicts are decided on the median of n interleaved repetitions, with a distribution-free
confidence interval for the median (order statistics, binomial, >= 95 %): a target is met when the
whole interval is on the right side of it, missed when the whole interval is on the wrong side,
and "undecided" (counted as missed) when the target lies inside the interval, i.e. when the noise
measured in this very run is large enough to decide it. `until_decided` adds repetitions, up to a
cap, while any timing verdict is still undecided.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
import sys
from importlib import metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

RESULTS = BENCH / "RESULTS.md"
PACKAGES = ("pulumi", "pulumi_aws", "pulumi_policy", "grpcio", "protobuf", "requests", "boto3")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    vers = []
    for p in PACKAGES:
        try:
            vers.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            vers.append(f"{p} -")
    load = ""
    try:
        load = " load " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return (f"{cpu_model()}, {os.cpu_count()} cores{load}, Python {platform.python_version()}, "
            + ", ".join(vers))


def med(xs) -> float:
    return statistics.median(xs)


def spread(xs) -> str:
    """median [min-max] of a list of ratios/times."""
    return f"{med(xs):.3g} [{min(xs):.3g}-{max(xs):.3g}]"


def record(title: str, lines: list[str]) -> None:
    """Print the lines and append them, with date and machine, to bench/RESULTS.md."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    block = [f"### {title} — {now}", "", f"Machine: {machine()}", ""] + lines + [""]
    text = "\n".join(block)
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text("# bench results\n\nSee README.md for what each benchmark measures and its target.\n\n")
    with RESULTS.open("a") as f:
        f.write(text + "\n")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far, from /proc/<pid>/stat
    (clock ticks, 10 ms on Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- verdicts

MET, MISSED, UNDECIDED = "met", "MISSED", "UNDECIDED"
CONFIDENCE = 0.95


def median_ci(xs, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A distribution-free confidence interval for the median: (x_(k), x_(n+1-k)) of the sorted
    sample, with the largest k whose coverage 1 - 2 P(Binomial(n, 1/2) <= k-1) is >= confidence.
    Fewer than 6 samples cannot reach 95 %: the interval is then (min, max), and says so by
    being wide."""
    ys = sorted(xs)
    n = len(ys)
    k = 1
    while k + 1 <= n // 2:
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # P(B <= k)
        if 1 - 2 * tail < confidence:
            break
        k += 1
    return ys[k - 1], ys[n - k]


def at_most(xs, target: float) -> str:
    """met / MISSED / UNDECIDED for 'the median of xs is <= target', decided by median_ci."""
    lo, hi = median_ci(xs)
    if hi <= target:
        return MET
    if lo > target:
        return MISSED
    return UNDECIDED


def ci_text(xs) -> str:
    lo, hi = median_ci(xs)
    return f"{med(xs):.3g} (95% CI {lo:.3g}-{hi:.3g}, n={len(xs)})"


def until_decided(one_round: Callable[[], None], undecided: Callable[[], bool], *, min_rounds: int, max_rounds: int) -> int:
    """Run interleaved rounds: at least min_rounds, then more while `undecided()`, up to max_rounds.
    Returns the number of rounds run."""
    n = 0
    while n < min_rounds or (n < max_rounds and undecided()):
        one_round()
        n += 1
    return n


@dataclass
class Verdicts:
    """The verdict lines of one benchmark: one row per target."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # (what, measured, target, verdict)

    def add(self, what: str, measured: str, target: str, verdict: str | bool) -> str:
        if isinstance(verdict, bool):
            verdict = MET if verdict else MISSED
        self.rows.append((what, measured, target, verdict))
        return verdict

    def timing(self, what: str, xs, target: float, target_text: str, unit: str = "") -> str:
        """A timing/ratio target judged on the median's confidence interval."""
        lo, hi = median_ci(xs)
        measured = f"{med(xs):.3g}{unit} (95% CI {lo:.3g}-{hi:.3g}, n={len(xs)})"
        return self.add(what, measured, target_text, at_most(xs, target))

    @property
    def ok(self) -> bool:
        return all(v == MET for *_, v in self.rows)

    def lines(self) -> list[str]:
        out = ["", "| target | measured | required | verdict |", "|---|---|---|---|"]
        out += [f"| {w} | {m} | {t} | {v} |" for w, m, t, v in self.rows]
        missed = [w for w, *_, v in self.rows if v != MET]
        out += ["", f"Verdict: {'all targets met' if not missed else 'MISSED: ' + '; '.join(missed)}."]
        return out

    def finish(self, title: str, lines: list[str]) -> int:
        """Record the table and the verdicts; 0 when every target is met, else 1."""
        record(title, lines + self.lines())
        return 0 if self.ok else 1
