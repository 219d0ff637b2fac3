"""Operator experience: commands that work the first time, without tracebacks, from anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from rollout.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, input: str | None = None):
    r = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=True)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output, r.output
    return r


@pytest.fixture()
def project(tmp_path) -> Path:
    """A copy of the project's stack files (comments and all), with no Pulumi CLI anywhere on PATH."""
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "policy").mkdir()
    shutil.copy(ROOT / "policy" / "production.json", tmp_path / "policy" / "production.json")
    return tmp_path


def _set_step(project: Path, step: int) -> None:
    f = project / "Pulumi.production.yaml"
    f.write_text(f.read_text().replace("    step: 0", f"    step: {step}"))


def test_config_only_needs_no_pulumi_cli_and_keeps_the_files_comments(project, monkeypatch):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    _set_step(project, 2)
    before = (project / "Pulumi.production.yaml").read_text()
    r = run("--project-dir", str(project), "rollback", "--stack", "production", "--to-step", "0", "--config-only", "--yes")
    assert r.exit_code == 0, r.output
    after = (project / "Pulumi.production.yaml").read_text()
    assert yaml.safe_load(after)["config"]["bluegreen:rollout"]["step"] == 0
    assert [line for line in before.splitlines() if line.startswith("#")] == [line for line in after.splitlines() if line.startswith("#")]
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [("    step: 2", "    step: 0")], changed
