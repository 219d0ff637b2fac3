"""Shared helpers for the hand-run benchmarks: repo on sys.path, stats, machine info, RESULTS.md."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
from importlib import metadata
from pathlib import Path

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
