"""CI deploys: only main's head, preview with the pack before `up`, retries only on a held stack lock,
and a no-changes check after. Git is real (a bare origin and clones on disk); the Pulumi CLI is a
small recording script on PATH (the real CLI needs a backend), which prints the real lock-conflict
text the Automation API matches."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollout.cli import cli
from rollout.deploy import LOCK_CONFLICT_TEXTS, StaleCommitError, check_commit_is_head, deploy_plan, deploy_stack, is_lock_conflict
from rollout.errors import RolloutError

ROOT = Path(__file__).resolve().parent.parent


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture()
def repos(tmp_path):
    """origin (bare), `dev` (pushes), `ci` (the runner's checkout of the first commit)."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    git(dev, "checkout", "-q", "-b", "main")
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        (dev / name).write_text((ROOT / name).read_text())
    git(dev, "add", ".")
    git(dev, "commit", "-q", "-m", "first")
    git(dev, "push", "-q", "origin", "main")
    ci = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(origin), str(ci))
    return origin, dev, ci


def _advance(dev: Path) -> str:
    (dev / "Pulumi.staging.yaml").write_text((dev / "Pulumi.staging.yaml").read_text().replace("step: 0", "step: 1"))
    git(dev, "commit", "-q", "-am", "step 1")
    git(dev, "push", "-q", "origin", "main")
    return git(dev, "rev-parse", "HEAD")


def test_a_commit_that_main_moved_past_is_refused(repos):
    _, dev, ci = repos
    mine = git(ci, "rev-parse", "HEAD")
    assert check_commit_is_head(ci, mine) == mine
    newer = _advance(dev)
    with pytest.raises(StaleCommitError, match=f"no longer main's head \\({newer[:12]}\\)"):
        check_commit_is_head(ci, mine)


def _fake_pulumi(tmp_path: Path, monkeypatch, conflicts: int) -> Path:
    """A `pulumi` first on PATH that logs its argv (returns the log) and answers the first `conflicts`
    updates with the lock conflict."""
    bindir, log = tmp_path / "bin", tmp_path / "pulumi.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    bindir.mkdir()
    script = bindir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        f'n=$(grep -c "^up " "{log}")\n'
        f'if [ "$1" = up ] && [ "$n" -le {conflicts} ]; then echo "error: {LOCK_CONFLICT_TEXTS[0]}"; exit 255; fi\n'
        "exit 0\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


def test_deploy_previews_with_the_pack_retries_a_held_lock_and_verifies(repos, tmp_path, monkeypatch):
    _, _, ci = repos
    log = _fake_pulumi(tmp_path, monkeypatch, conflicts=1)
    head = git(ci, "rev-parse", "HEAD")
    # An organization-qualified stack (what the workflows pass when PULUMI_ORG is set) reads Pulumi.staging.yaml.
    res = CliRunner().invoke(cli, ["--project-dir", str(ci), "deploy", "--stack", "acme/staging", "--expect-commit", head, "--lock-wait", "0"])
    assert res.exit_code == 0, res.output
    calls = log.read_text().splitlines()
    assert all("--stack acme/staging" in c for c in calls), calls
    assert [c.split()[0] for c in calls] == ["preview", "up", "up", "preview"], calls
    assert "--policy-pack policy" in calls[0] and "--skip-preview" not in " ".join(calls)
    assert calls[1].startswith("up --refresh --yes") and "--expect-no-changes" in calls[3]
    assert all("--refresh" in c for c in calls), "every command reads AWS first (the reflex may have moved traffic)"


def test_deploy_of_a_stale_commit_runs_no_pulumi_command(repos, tmp_path, monkeypatch):
    _, dev, ci = repos
    log = _fake_pulumi(tmp_path, monkeypatch, conflicts=0)
    old = git(ci, "rev-parse", "HEAD")
    _advance(dev)
    res = CliRunner().invoke(cli, ["--project-dir", str(ci), "deploy", "--stack", "staging", "--expect-commit", old])
    assert res.exit_code == 1 and "no longer main's head" in res.output and "Traceback" not in res.output, res.output
    assert not log.exists()


def test_main_moving_while_waiting_for_the_lock_stops_the_deploy():
    plan = deploy_plan("production", "policy", "policy/production.json")
    calls, checks = [], []

    def run(argv):
        calls.append(argv[1])
        conflict = argv[1] == "up"
        return subprocess.CompletedProcess(argv, 255 if conflict else 0, f"error: {LOCK_CONFLICT_TEXTS[1]} 1 lock(s)" if conflict else "", "")

    def before_each():
        checks.append(1)
        if len(checks) > 2:
            raise StaleCommitError("moved")

    with pytest.raises(StaleCommitError):
        deploy_stack(run, plan, wait_seconds=0, sleep=lambda s: None, before_each=before_each, echo=lambda m: None)
    assert calls == ["preview", "up"]


def test_only_a_held_lock_is_retried():
    plan = deploy_plan("production", "policy", None)
    calls = []

    def run(argv):
        calls.append(argv[1])
        return subprocess.CompletedProcess(argv, 255 if argv[1] == "up" else 0, "error: mandatory policy violation", "")

    with pytest.raises(RolloutError, match="the update failed"):
        deploy_stack(run, plan, wait_seconds=0, sleep=lambda s: None, echo=lambda m: None)
    assert calls == ["preview", "up"]
    assert is_lock_conflict("error: [409] Conflict: Another update is currently in progress.")
    assert not is_lock_conflict("error: 409 Conflict on a target group")
