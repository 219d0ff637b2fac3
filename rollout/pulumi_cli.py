"""The Pulumi CLI as a subprocess: found on PATH, run in the project directory, output streamed.

The commands themselves are built by `rollout.operations` (pure); this module only runs them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import PulumiCliError
from .operations import shell_line, stack_output_argv

__all__ = ["PulumiCli", "find_pulumi"]


def find_pulumi() -> str | None:
    """The `pulumi` executable on PATH, or None."""
    return shutil.which("pulumi")


@dataclass
class PulumiCli:
    """Runs `pulumi ...` argv lists (whose first item is "pulumi") in `cwd`."""

    executable: str
    cwd: Path
    echo: Callable[[str], None] = print

    def run(self, argv: Sequence[str], *, capture: bool = False) -> subprocess.CompletedProcess:
        """Run one command. Streams its output line by line through `echo` unless `capture`.

        Raises PulumiCliError when it cannot start; returns the result (check returncode) otherwise.
        """
        if not argv or argv[0] != "pulumi":
            raise ValueError(f"not a pulumi command: {argv!r}")
        real = [self.executable, *argv[1:]]
        try:
            if capture:
                return subprocess.run(real, cwd=self.cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            proc = subprocess.Popen(
                real, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, bufsize=1
            )
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                self.echo(line.rstrip("\n"))
            proc.wait()
            return subprocess.CompletedProcess(real, proc.returncode, "".join(lines), "")
        except OSError as exc:
            raise PulumiCliError(f"could not run {shell_line(argv)}: {exc}") from exc

    def stack_output(self, stack: str, name: str) -> str:
        """`pulumi stack output NAME --stack S`; PulumiCliError if it fails or is empty."""
        argv = stack_output_argv(stack, name)
        res = self.run(argv, capture=True)
        value = (res.stdout or "").strip()
        if res.returncode != 0 or not value:
            detail = " ".join((res.stderr or res.stdout or "").split())[:300]
            raise PulumiCliError(f"{shell_line(argv)} failed (exit {res.returncode}){': ' + detail if detail else ''}")
        return value
