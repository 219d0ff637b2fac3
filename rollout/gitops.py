"""Git as the truth: commit a stack-file change and push it as a fast-forward (the autopilot's step).

A change to a stack that is not in git does not exist: the next deploy of main would undo it. So the
autopilot commits the next step to the stack file and pushes it; the normal deploy (`rollout deploy`,
or Pulumi Deployments' push-to-deploy) runs it with the policy pack. The push is a fast-forward only:
if the branch moved meanwhile, nothing is forced and the caller decides again from the new head.
Runs the `git` CLI in the project directory; no network beyond the configured remote.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import RolloutError

__all__ = ["GitError", "commit_paths", "push_fast_forward"]


class GitError(RolloutError):
    """A git command failed (not a repository, nothing to commit onto, a rejected push)."""


def _git(repo: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GitError(f"git {args[0]} could not run: {e}") from None
    if out.returncode != 0:
        why = " ".join((out.stderr or out.stdout).split())[-400:]
        raise GitError(f"git {args[0]} failed: {why}")
    return out.stdout.strip()


def last_change(repo: Path, path: Path) -> float | None:
    """When `path` last changed in the repository's history (committer time, seconds since the epoch), or
    None when that cannot be told (not a repository, never committed, git missing)."""
    try:
        out = _git(repo, "log", "-1", "--format=%ct", "--", str(path))
    except GitError:
        return None
    return float(out) if out.isdigit() else None


def commit_paths(repo: Path, paths: list[Path], subject: str, body: str = "") -> str | None:
    """Commit exactly `paths` with this message; the new commit's SHA, or None when they did not change."""
    top = Path(_git(repo, "rev-parse", "--show-toplevel")).resolve()
    rel = [str(p.resolve().relative_to(top)) for p in paths]
    if not _git(top, "status", "--porcelain", "--", *rel):
        return None
    args = ["commit", "--quiet", "-m", subject] + (["-m", body] if body else []) + ["--", *rel]
    _git(top, *args)
    return _git(top, "rev-parse", "HEAD")


def push_fast_forward(repo: Path, remote: str, branch: str) -> None:
    """Push HEAD to `remote`/`branch` as a fast-forward; GitError when the branch moved (never forced)."""
    _git(repo, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}")
