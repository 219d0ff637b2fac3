"""Run every benchmark once, in order, appending to bench/RESULTS.md.
Run: .venv/bin/python bench/run_all.py"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ORDER = ("step_footprint", "gate_latency", "component_overhead", "policy_latency", "scale")

if __name__ == "__main__":
    failed = []
    for name in ORDER:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(BENCH / f"{name}.py")], cwd=BENCH.parent).returncode:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
