"""The watcher's decision table: (declared step, live weights, gate result) -> none / rollback / alert. Pure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.rules import RolloutConfig
from rollout.watcher import Action, decide

STEPS = (10, 25, 50, 75, 100)


def cfg(step: int, stable: str = "blue") -> RolloutConfig:
    return RolloutConfig(stable, STEPS, step)


def w(blue: int, green: int) -> dict[str, int]:
    return {"blue": blue, "green": green}


@pytest.mark.parametrize(
    "step, live, gate, action, text",
    [
        # no rollout in flight
        (0, w(100, 0), None, Action.NONE, "no rollout in flight"),
        (0, w(100, 0), False, Action.NONE, "no rollout in flight"),  # the gate does not matter at step 0
        (0, w(90, 10), None, Action.ALERT, "green still receives 10%"),
        (0, None, None, Action.ALERT, "could not be read, so drift cannot be ruled out"),
        # in flight, as declared
        (2, w(75, 25), True, Action.NONE, "green healthy at step 2 of 5 (blue 75% · green 25%)"),
        (2, w(75, 25), False, Action.ROLLBACK, "green failed its health gate while carrying 25% of traffic at step 2"),
        (5, w(0, 100), False, Action.ROLLBACK, "carrying 100% of traffic at step 5"),
        (2, w(75, 25), None, Action.ALERT, "reached no verdict"),
        # in flight, drifted
        (2, w(90, 10), False, Action.ROLLBACK, "carrying 10% of traffic at step 2"),  # failing with traffic: step 0 is safe
        (2, w(90, 10), True, Action.ALERT, "less traffic than declared (10% < 25%)"),
        (2, w(50, 50), True, Action.ALERT, "more traffic than declared (50% > 25%)"),
        (2, w(100, 0), False, Action.ALERT, "the ALB sends it no traffic"),
        (2, w(100, 0), True, Action.ALERT, "less traffic than declared (0% < 25%)"),
        # unreadable load balancer
        (3, None, None, Action.ALERT, "could not be read; nothing changed"),
        (3, None, False, Action.ALERT, "could not be read; nothing changed"),
    ],
)
def test_decision_table(step, live, gate, action, text):
    d = decide("production", cfg(step), live, gate)
    assert d.action is action, d
    assert text in d.reason, d.reason
    assert (d.to_step == 0) == (action is Action.ROLLBACK)


def test_relative_alb_weights_are_percentages():
    assert decide("p", cfg(1), {"blue": 9, "green": 1}, True).action is Action.NONE


def test_gate_message_is_carried_into_the_reason():
    d = decide("production", cfg(1), w(90, 10), False, gate_message="10/10 probes of /healthz: HTTP 503")
    assert d.reason.endswith("(10/10 probes of /healthz: HTTP 503); rolling back to step 0 (blue 100%)")
    assert d.to_dict() == {"action": "rollback", "reason": d.reason, "toStep": 0}


def test_green_stable_release_rolls_back_to_green():
    d = decide("production", cfg(1, stable="green"), w(10, 90), False)
    assert d.action is Action.ROLLBACK and "blue failed" in d.reason and "(green 100%)" in d.reason


def test_finish_not_deployed_is_an_alert_not_a_rollback():
    d = decide("production", cfg(0, stable="green"), w(25, 75), None, live_stable="blue")
    assert d.action is Action.ALERT
    assert "the rollout finished (green stable) while the ALB still sends traffic to the old version" in d.reason


@given(
    step=st.integers(0, len(STEPS)),
    stable=st.sampled_from(["blue", "green"]),
    cand=st.integers(0, 100),
    gate=st.sampled_from([True, False, None]),
    readable=st.booleans(),
)
def test_only_a_failing_candidate_with_traffic_is_ever_rolled_back(step, stable, cand, gate, readable):
    c = cfg(step, stable)
    live = {c.candidate: cand, stable: 100 - cand} if readable else None
    d = decide("s", c, live, gate)
    rolled = d.action is Action.ROLLBACK
    assert rolled == (readable and step > 0 and gate is False and cand > 0), d
    if d.action is Action.NONE:
        assert readable and live == c.weights and (step == 0 or gate is True)


@pytest.mark.parametrize(
    "live, action, text",
    [
        (w(75, 25), Action.NONE, "is still earning its evidence (judge: insufficient"),
        (w(90, 10), Action.ALERT, "still earning its evidence, but"),
    ],
)
def test_insufficient_evidence_is_never_a_rollback(live, action, text):
    d = decide("production", cfg(2), live, False, gate_pending=True, gate_message="judge: insufficient: ~12 more min")
    assert d.action is action and text in d.reason, d


@given(
    step=st.integers(1, len(STEPS)),
    cand=st.integers(0, 100),
)
def test_pending_never_rolls_back_and_failure_always_does(step, cand):
    c = cfg(step)
    live = {c.candidate: cand, c.stable: 100 - cand}
    assert decide("s", c, live, False, gate_pending=True).action is not Action.ROLLBACK
    assert (decide("s", c, live, False).action is Action.ROLLBACK) == (cand > 0)


# --------------------------------------------------------------------------- the watcher workflow (.github/workflows/watch.yml)

import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402

from tests.test_workflows import load, steps  # noqa: E402


def _gh_if(expr: str, ctx: dict[str, str]) -> bool:
    """A GitHub `if:` of `==` comparisons joined by `&&` / `||` (same precedence as Python's and / or),
    evaluated with `ctx` for `steps.*` / `needs.*` values (absent = '', as GitHub has it)."""
    py = re.sub(r"\b(?:steps|needs)\.[\w.-]+", lambda m: repr(ctx.get(m.group(0), "")), expr)
    py = py.replace("&&", " and ").replace("||", " or ")
    assert re.fullmatch(r"(?:\s|'[^']*'|==|\band\b|\bor\b|[()])*", py), f"not a plain comparison: {py}"
    return bool(eval(py, {"__builtins__": {}}))  # noqa: S307 - only quoted strings, ==, and, or


def _fail_step():
    return next(s for s in steps(load("watch.yml")["jobs"]["watch"]) if s.get("name", "").startswith("fail the run"))


@pytest.mark.parametrize("ctx, fails", [
    ({"steps.watch.outputs.action": "none", "steps.watch.outcome": "success", "steps.autopilot.outcome": "failure"}, True),  # crashed
    ({"steps.watch.outputs.action": "none", "steps.autopilot.outputs.action": "stop", "steps.autopilot.outcome": "failure"}, True),
    ({"steps.watch.outputs.action": "none", "steps.autopilot.outputs.action": "wait", "steps.autopilot.outcome": "success"}, False),
    ({"steps.watch.outputs.action": "none", "steps.autopilot.outputs.action": "advance", "steps.autopilot.outcome": "success"}, False),
    ({"steps.watch.outputs.action": "rollback", "steps.watch.outcome": "failure", "steps.autopilot.outcome": "skipped"}, False),
    ({"steps.watch.outcome": "failure", "steps.autopilot.outcome": "skipped"}, True),  # the watcher crashed
])
def test_the_run_fails_when_the_autopilot_or_the_watcher_crashes(ctx, fails):
    step = _fail_step()
    assert _gh_if(step["if"], ctx) is fails
    if fails:
        env = {k: ctx.get(re.sub(r"^\$\{\{\s*|\s*\}\}$", "", v), "") for k, v in step["env"].items()}
        res = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True)
        assert res.returncode == 1 and "::error" in res.stdout, (res.stdout, res.stderr)


def test_an_advance_is_never_queued_while_a_rollback_is_pending():
    """GitHub cancels a pending job when another joins its concurrency group (one running, one pending,
    cancel-in-progress or not), so an advance must never be queued in the lane while a rollback waits
    there: a whole watcher run holds its own group (the next run starts after this one ended), and within
    a run the two jobs exclude each other."""
    wf = load("watch.yml")
    rollback, advance = wf["jobs"]["rollback"], wf["jobs"]["advance"]
    assert wf["concurrency"]["cancel-in-progress"] is False
    assert wf["concurrency"]["group"] != rollback["concurrency"]["group"] == advance["concurrency"]["group"]
    for action in ("none", "rollback", "alert", ""):
        for autopilot in ("advance", "wait", ""):
            ctx = {"needs.watch.outputs.action": action, "needs.watch.outputs.autopilot": autopilot}
            assert not (_gh_if(rollback["if"], ctx) and _gh_if(advance["if"], ctx)), ctx


def test_the_rollback_commits_the_reflex_marker_with_step_zero():
    wf = load("watch.yml")
    watch, rollback = wf["jobs"]["watch"], wf["jobs"]["rollback"]
    assert watch["outputs"]["aborted"] == "${{ steps.watch.outputs.aborted }}"
    assert wf["jobs"]["rollback-commit"]["env"]["ABORTED"] == "${{ needs.watch.outputs.aborted }}"
    commit = next(s for s in steps(wf["jobs"]["rollback-commit"]) if "git push" in s.get("run", ""))
    assert '--to-step 0 --config-only --yes --aborted "$ABORTED"' in commit["run"]


ROOT = Path(__file__).resolve().parent.parent


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _job_step(workflow: str, job: str, text: str) -> dict:
    return next(s for s in steps(load(workflow)["jobs"][job]) if text in s.get("run", ""))


def _project_with_origin(tmp_path, monkeypatch, step: int) -> tuple[Path, Path]:
    """(origin, clone): a bare 'origin' holding one commit of a project at `step`, and a clone of it
    whose `.venv/bin/python` is this test's interpreter (as the workflow's `.venv` would be)."""
    from tests.test_cli import make_project

    for k, v in {"GIT_AUTHOR_NAME": "w", "GIT_AUTHOR_EMAIL": "w@example.invalid", "GIT_COMMITTER_NAME": "w",
                 "GIT_COMMITTER_EMAIL": "w@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}.items():
        monkeypatch.setenv(k, v)
    origin = tmp_path / "origin.git"
    _git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(origin))
    proj = make_project(tmp_path, step=step)
    (proj / ".gitignore").write_text(".venv\n")
    _git(proj, "init", "--quiet", "-b", "main")
    _git(proj, "add", "-A")
    _git(proj, "commit", "--quiet", "-m", f"step {step}")
    _git(proj, "remote", "add", "origin", str(origin))
    _git(proj, "push", "--quiet", "origin", "main")
    _venv_shim(proj)
    return origin, proj


def _venv_shim(proj: Path) -> None:
    (proj / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    shim = proj / ".venv" / "bin" / "python"  # this test's interpreter, with its site-packages
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)


def _run_step(step: dict, cwd: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "STACK": "production", "REASON": "green failed its gate", "ABORTED": "",
            "GITHUB_SERVER_URL": "https://github.invalid", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "1",
            "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, env=full, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("step, aborted, commits", [
    (2, "", True),  # the normal case: step 0 committed and pushed
    (0, "", False),  # main reached step 0 meanwhile: nothing to commit, and the job goes on
    (0, "2026-11-23T10:00:00Z target-health green=25", True),  # step 0 by hand: the hold alone is committed
])
def test_the_rollback_commit_step_in_a_real_clone(tmp_path, monkeypatch, step, aborted, commits):
    """The rollback-commit job's script, run by bash -e as GitHub runs it, against a bare 'origin'."""
    origin, proj = _project_with_origin(tmp_path, monkeypatch, step)
    before = _git(origin, "rev-parse", "main")
    res = _run_step(_job_step("watch.yml", "rollback-commit", "git push"), proj, ABORTED=aborted)
    assert res.returncode == 0, (res.stdout, res.stderr)
    after = _git(origin, "rev-parse", "main")
    assert (after != before) is commits, res.stdout
    if commits:
        assert "green failed its gate" in _git(origin, "log", "-1", "--format=%B", "main")
        assert "step: 0" in _git(origin, "show", "main:Pulumi.production.yaml")
    else:
        assert "main already declares step 0" in res.stdout


# A `pulumi` on PATH that logs each command with the stack file's rollout as the command saw it.
_RECORDING_PULUMI = """#!{python}
import json, os, sys, yaml
cfg = yaml.safe_load(open("Pulumi.production.yaml"))["config"]
with open(os.environ["PULUMI_LOG"], "a") as fh:
    fh.write(json.dumps({{"cmd": sys.argv[1], "rollout": cfg["bluegreen:rollout"], "aborted": cfg.get("bluegreen:aborted")}}) + "\\n")
"""


def _recording_pulumi(tmp_path: Path) -> tuple[str, Path]:
    bindir, log = tmp_path / "bin", tmp_path / "pulumi.jsonl"
    bindir.mkdir()
    (bindir / "pulumi").write_text(_RECORDING_PULUMI.format(python=sys.executable))
    (bindir / "pulumi").chmod(0o755)
    return f"{bindir}{os.pathsep}{os.environ['PATH']}", log


def _push_change(origin: Path, tmp_path: Path, name: str, change) -> str:
    """Clone origin, apply `change(clone)`, commit and push; the new head."""
    clone = tmp_path / name
    _git(tmp_path, "clone", "--quiet", str(origin), str(clone))
    change(clone)
    _git(clone, "commit", "--quiet", "-am", name)
    _git(clone, "push", "--quiet", "origin", "main")
    return _git(clone, "rev-parse", "HEAD")


def _edit_stack(clone: Path, **rollout) -> None:
    import yaml as _yaml

    f = clone / "Pulumi.production.yaml"
    doc = _yaml.safe_load(f.read_text())
    doc["config"]["bluegreen:rollout"].update(rollout)
    f.write_text(_yaml.safe_dump(doc, sort_keys=False))


def test_a_rollback_replaced_in_the_lane_is_deployed_by_the_job_that_replaced_it(tmp_path, monkeypatch):
    """The attack: the watcher commits step 0 (outside the lane) while a push's production deploy is
    approved; GitHub replaces the watcher's pending lane job with that deploy (one pending job per
    group). The deploy's commit is older than the rollback, so `--expect-commit` alone would refuse it
    and step 0 would never be deployed. Run as GitHub runs them: the rollback-commit script, then the
    production job's deploy script in a checkout of the older commit, against a bare origin."""
    origin, proj = _project_with_origin(tmp_path, monkeypatch, 2)
    pushed = _push_change(origin, tmp_path, "push", lambda c: (c / "Pulumi.yaml").write_text((c / "Pulumi.yaml").read_text() + "# a change\n"))
    _git(proj, "pull", "--quiet", "origin", "main")
    assert _run_step(_job_step("watch.yml", "rollback-commit", "git push"), proj, ABORTED="2026-11-23T10:00:00Z judge green=25").returncode == 0
    rollback = _git(origin, "rev-parse", "main")
    assert rollback != pushed
    runner = tmp_path / "runner"  # the production job's checkout as actions/checkout makes it: GITHUB_SHA alone, depth 1
    _git(tmp_path, "init", "--quiet", str(runner))
    _git(runner, "remote", "add", "origin", f"file://{origin}")
    _git(runner, "fetch", "--quiet", "--depth", "1", "origin", pushed)
    _git(runner, "checkout", "--quiet", pushed)
    assert _git(runner, "rev-parse", "--is-shallow-repository") == "true"
    _venv_shim(runner)
    path, log = _recording_pulumi(tmp_path)
    deploy = _job_step("deploy.yml", "production", "rollout deploy")
    res = _run_step(deploy, runner, GITHUB_SHA=pushed, PATH=path, PULUMI_LOG=str(log))
    assert res.returncode == 0, (res.stdout, res.stderr)
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["cmd"] for c in seen] == ["preview", "up", "preview"]
    assert all(c["rollout"]["step"] == 0 and c["aborted"] == "2026-11-23T10:00:00Z judge green=25" for c in seen), seen
    assert "by a rollback only" in res.stdout


@pytest.mark.parametrize("later, why", [
    (lambda c: _edit_stack(c, step=3), "not step 0 of the same rollout"),  # a step forward after the rollback
    (lambda c: _edit_stack(c, step=0, stable="green"), "not step 0 of the same rollout"),  # a finish, not a rollback
    (lambda c: (c / "Pulumi.yaml").write_text((c / "Pulumi.yaml").read_text() + "# code\n"), "files other than"),
])
def test_a_deploy_never_follows_main_past_its_commit_unless_that_is_a_rollback_only(tmp_path, monkeypatch, later, why):
    """An approval is for its commit: what main gained since is deployed only when it is step 0 of the same
    rollout and nothing else (read from git's trees, not from commit messages)."""
    origin, proj = _project_with_origin(tmp_path, monkeypatch, 2)
    approved = _git(origin, "rev-parse", "main")
    _push_change(origin, tmp_path, "later", later)
    path, log = _recording_pulumi(tmp_path)
    res = _run_step(_job_step("deploy.yml", "production", "rollout deploy"), proj, GITHUB_SHA=approved, PATH=path, PULUMI_LOG=str(log))
    assert res.returncode == 1 and "no longer main's head" in res.stdout + res.stderr and why in res.stdout + res.stderr, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and not log.exists(), "nothing was deployed"
    assert "step: 2" in (proj / "Pulumi.production.yaml").read_text(), "the checkout is untouched"


def test_the_lane_jobs_that_can_replace_a_pending_rollback_follow_it():
    """Every job in the production lane deploys a main that moved past its commit by a rollback only."""
    for workflow, job in (("deploy.yml", "production"), ("watch.yml", "rollback"), ("watch.yml", "advance")):
        assert "--follow-rollback" in _job_step(workflow, job, "rollout deploy")["run"], (workflow, job)
    wf = load("watch.yml")
    assert "concurrency" not in wf["jobs"]["rollback-commit"], "the commit must not wait in (and be replaceable in) the lane"
    assert wf["jobs"]["rollback"]["needs"] == ["watch", "rollback-commit"]
