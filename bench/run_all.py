"""Run every benchmark in bench/, each in its own process, and exit non-zero when one misses a target.

A benchmark is any module of bench/ (name not starting with `_`) with a top-level
`def main(...) -> int`; it is found by reading the source (nothing is imported here), so a new
benchmark is picked up by adding the file. Each is run as `main()` in a fresh interpreter; its
return value is its exit status (0: every target met, 1: a target missed or undecided).

Run: .venv/bin/python bench/run_all.py [NAME ...]     (default: all, in alphabetical order)
Exit: 0 all met, 1 a target missed, 2 a benchmark crashed or an unknown NAME was given.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def benchmarks() -> list[str]:
    """Names of the modules of bench/ that define a top-level `main(...) -> int`."""
    found = []
    for path in sorted(BENCH.glob("*.py")):
        if path.name.startswith("_") or path.stem == "run_all":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "main" and isinstance(node.returns, ast.Name) and node.returns.id == "int":
                found.append(path.stem)
                break
    return found


def run(name: str) -> int:
    code = f"import sys; sys.path[:0] = [{str(BENCH)!r}]; import {name}; sys.exit({name}.main())"
    return subprocess.run([sys.executable, "-c", code], cwd=BENCH.parent).returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    known = benchmarks()
    unknown = [n for n in argv if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    status: dict[str, int] = {}
    for name in argv or known:
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        status[name] = run(name)
        print(f"== {name}: exit {status[name]} in {time.monotonic() - t0:.0f} s", flush=True)
    print("\n".join(f"{n}: {'met' if rc == 0 else 'MISSED' if rc == 1 else f'ERROR (exit {rc})'}" for n, rc in status.items()))
    if any(rc not in (0, 1) for rc in status.values()):
        return 2
    return 1 if any(status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
