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

__all__ = ["GitError", "commit_paths", "push_fast_forward", "rollback_only", "take_rollback"]


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


def _config_at(repo: Path, commit: str, rel: str) -> dict:
    import yaml

    try:
        doc = yaml.safe_load(_git(repo, "show", f"{commit}:{rel}")) or {}
    except yaml.YAMLError as e:
        raise GitError(f"{rel} at {commit[:12]} is not YAML: {' '.join(str(e).split())[:200]}") from None
    config = doc.get("config") if isinstance(doc, dict) else None
    return dict(config) if isinstance(config, dict) else {}


def rollback_only(repo: Path, base: str, head: str, stack_file: str) -> str | None:
    """None when `head` is `base` plus only a rollback of `stack_file` (a path relative to the repository's
    top): `base` is an ancestor of `head`, no other file differs, and the stack config differs only in
    `bluegreen:rollout.step` being 0 at `head` and `bluegreen:aborted` (the hold a rollback records).
    Otherwise the reason it is not. Read from git's objects, not from commit messages: a deploy approved
    for `base` may deploy such a `head` (all traffic on the same stable colour, which needs no approval),
    never anything else."""
    try:
        _git(repo, "merge-base", "--is-ancestor", base, head)
    except GitError:
        return f"{head[:12]} does not descend from {base[:12]}"
    changed = [p for p in _git(repo, "diff", "--name-only", base, head, "--").splitlines() if p]
    others = [p for p in changed if p != stack_file]
    if others:
        return f"files other than {stack_file} changed since {base[:12]}: {', '.join(others[:5])}"
    before, after = _config_at(repo, base, stack_file), _config_at(repo, head, stack_file)
    rollout_before, rollout_after = before.pop("bluegreen:rollout", None), after.pop("bluegreen:rollout", None)
    before.pop("bluegreen:aborted", None)
    after.pop("bluegreen:aborted", None)
    if before != after:
        keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        return f"{stack_file} changed more than the rollout step since {base[:12]}: {', '.join(keys[:5])}"
    if rollout_before == rollout_after:
        return None
    if not (isinstance(rollout_before, dict) and isinstance(rollout_after, dict)):
        return f"{stack_file}: bluegreen:rollout is not an object at both commits"
    if rollout_after.get("step") != 0 or {k: v for k, v in rollout_before.items() if k != "step"} != {
            k: v for k, v in rollout_after.items() if k != "step"}:
        return f"{stack_file}: bluegreen:rollout at {head[:12]} is not step 0 of the same rollout (stable, steps)"
    return None


def take_rollback(project_dir: Path, base: str, head: str, stack_file: Path) -> str | None:
    """Bring `head`'s stack file into a checkout of `base` when `head` is `base` plus only a rollback
    (`rollback_only`): the working tree is then exactly `head`'s. None when done, else why not (nothing changed)."""
    top = Path(_git(project_dir, "rev-parse", "--show-toplevel")).resolve()
    rel = stack_file.resolve().relative_to(top).as_posix()
    base, head = _git(top, "rev-parse", f"{base}^{{commit}}"), _git(top, "rev-parse", f"{head}^{{commit}}")
    why = rollback_only(top, base, head, rel)
    if why is None:
        _git(top, "checkout", head, "--", rel)
    return why
