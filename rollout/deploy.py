"""One deploy of a stack from CI: only the commit `main` points at, preview with the pack before the
update, retries while another update holds the stack's lock, and a check that nothing drifts after.

    python -m rollout deploy --stack production --expect-commit "$GITHUB_SHA"

Why each step:

* **Stale commit**: a production job approved late (or a deploy queued behind the watcher's rollback)
  would deploy its own older commit over what `main` says now. The deploy fetches `main` and refuses
  (exit 1) unless its commit is still `main`'s head.
* **Preview first**: `pulumi/actions`' `up` goes through the Automation API, which always runs
  `pulumi up --yes --skip-preview` (pulumi/pulumi `sdk/nodejs/automation/stack.ts`), so the policy pack
  would only run mid-update. Here `pulumi preview --policy-pack` runs (and must pass) first, then
  `pulumi up --yes` (which previews again and applies that plan).
* **Lock held**: Pulumi Cloud refuses a second update of a stack ("[409] Conflict: Another update is
  currently in progress."), a DIY backend says "the stack is currently locked by"; both are what
  the Automation API recognises as a conflict (`sdk/python/lib/pulumi/automation/errors.py`). The
  deploy waits and retries those, and only those.
* **After**: `pulumi preview --expect-no-changes` proves the stack is what the program declares.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import RolloutError

__all__ = ["StaleCommitError", "LOCK_CONFLICT_TEXTS", "is_lock_conflict", "main_head", "check_commit_is_head", "DeployPlan", "deploy_stack"]

# The texts pulumi's Automation API uses to recognise a concurrent update (ConcurrentUpdateError).
LOCK_CONFLICT_TEXTS = ("[409] Conflict: Another update is currently in progress.", "the stack is currently locked by")


class StaleCommitError(RolloutError):
    """The commit to deploy is no longer what the branch points at."""


def is_lock_conflict(output: str) -> bool:
    """Whether a failed pulumi command failed only because another update holds the stack."""
    return any(t in (output or "") for t in LOCK_CONFLICT_TEXTS)


def _git(repo: Path, *args: str) -> str:
    res = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RolloutError(f"git {' '.join(args)} failed: {' '.join((res.stderr or res.stdout).split())[:300]}")
    return res.stdout.strip()


def main_head(repo: Path, branch: str = "main", remote: str = "origin") -> str:
    """The commit `remote/branch` points at now (fetched, not the checkout's possibly old copy)."""
    _git(repo, "fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    return _git(repo, "rev-parse", f"refs/remotes/{remote}/{branch}")


def check_commit_is_head(repo: Path, commit: str, branch: str = "main", remote: str = "origin") -> str:
    """Raise StaleCommitError unless `commit` is `branch`'s head; return the head."""
    mine = _git(repo, "rev-parse", f"{commit}^{{commit}}")
    head = main_head(repo, branch, remote)
    if mine != head:
        raise StaleCommitError(
            f"commit {mine[:12]} is no longer {branch}'s head ({head[:12]}): not deploying an older commit over "
            f"what {branch} says now; the run for {head[:12]} deploys it"
        )
    return head


@dataclass(frozen=True)
class DeployPlan:
    """The pulumi commands of one deploy, in order."""

    preview: list[str]
    up: list[str]
    verify: list[str]


def deploy_plan(stack: str, policy_pack: str | None, policy_pack_config: str | None) -> DeployPlan:
    pack = (["--policy-pack", policy_pack] if policy_pack else []) + (["--policy-pack-config", policy_pack_config] if policy_pack and policy_pack_config else [])
    return DeployPlan(
        # --refresh: read what AWS has before diffing, so an out-of-band change (the reflex's rollback and
        # its bluegreen:aborted marker) shows in the preview and the converging update clears it.
        preview=["pulumi", "preview", "--refresh", "--stack", stack, "--diff", *pack],
        up=["pulumi", "up", "--refresh", "--yes", "--stack", stack, "--diff", *pack],  # never --skip-preview
        verify=["pulumi", "preview", "--refresh", "--stack", stack, "--expect-no-changes", *pack],
    )


def deploy_stack(
    run: Callable[[Sequence[str]], subprocess.CompletedProcess],
    plan: DeployPlan,
    *,
    attempts: int = 6,
    wait_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    before_each: Callable[[], None] = lambda: None,
    echo: Callable[[str], None] = print,
) -> None:
    """Run preview, up, verify; retry a command that failed on a held lock. Raises RolloutError on failure.

    `before_each` runs before every attempt of the update (the stale-commit check: while we waited for
    the lock, `main` may have moved on).
    """
    for label, argv in (("preview", plan.preview), ("up", plan.up), ("verify", plan.verify)):
        for attempt in range(1, attempts + 1):
            if label != "verify":
                before_each()
            res = run(argv)
            if res.returncode == 0:
                break
            output = f"{res.stdout or ''}\n{res.stderr or ''}"
            if is_lock_conflict(output) and attempt < attempts:
                echo(f"{label}: another update holds the stack's lock; retrying in {wait_seconds:g} s ({attempt}/{attempts})")
                sleep(wait_seconds)
                continue
            what = {"preview": "the preview (with the policy pack) failed", "up": "the update failed",
                    "verify": "the stack differs from the program after the update (preview --expect-no-changes)"}[label]
            held = " (the stack's lock was still held)" if is_lock_conflict(output) else ""
            raise RolloutError(f"{what}{held}: `{' '.join(argv)}` exited {res.returncode}")
