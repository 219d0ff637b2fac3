"""The GitHub Actions workflows: valid against GitHub's workflow schema (check-jsonschema ships it, so
this runs offline), and carrying the pieces the delivery loop relies on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt && .venv/bin/python -m pytest"


def _check_jsonschema() -> str:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return str(exe) if exe.exists() else "check-jsonschema"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").startswith(action + "@")]


def runs(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(job))


def test_there_are_the_three_workflows():
    assert [f.name for f in FILES] == ["deploy.yml", "pull-request.yml", "watch.yml"]


def test_workflows_validate_against_githubs_schema():
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    result = subprocess.run([_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "stepz" in result.stdout, result.stdout


def test_pull_request_runs_tests_then_plan_comment_then_previews():
    wf = load("pull-request.yml")
    assert "pull_request" in wf["on"]
    jobs = wf["jobs"]
    assert TEST_COMMAND in runs(jobs["test"])
    plan = jobs["plan"]
    assert plan["needs"] == "test" and plan["permissions"]["pull-requests"] == "write"
    assert "python -m rollout plan --stack production --format markdown" in runs(plan)
    (script,) = uses(plan, "actions/github-script")
    body = script["with"]["script"]
    assert "<!-- bluegreen-plan -->" in body and "updateComment" in body and "createComment" in body
    preview = jobs["preview"]
    assert set(preview["needs"]) == {"test", "cloud"} and "needs.cloud.outputs.available == 'true'" in preview["if"]
    assert preview["strategy"]["matrix"]["stack"] == ["staging", "production"]
    assert preview["permissions"]["id-token"] == "write"
    (pulumi,) = uses(preview, "pulumi/actions")
    assert pulumi["uses"] == "pulumi/actions@v6"
    w = pulumi["with"]
    assert (w["command"], w["comment-on-pr"], w["diff"], w["policyPacks"]) == ("preview", True, True, "policy")
    # Secrets decide whether the previews run (a fork PR has none): checked in a job, not in `if:`.
    assert "secrets.PULUMI_ACCESS_TOKEN" in str(jobs["cloud"]) and "secrets." not in str(preview.get("if", ""))


def test_push_to_main_deploys_staging_then_production_behind_approval():
    wf = load("deploy.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert {"Pulumi.production.yaml", "Pulumi.staging.yaml", "policy/**"} <= set(wf["on"]["push"]["paths"])
    assert wf["concurrency"]["cancel-in-progress"] is False
    jobs = wf["jobs"]
    assert TEST_COMMAND in runs(jobs["test"])
    assert jobs["staging"]["needs"] == "test"
    assert jobs["approve-production"]["needs"] == "staging" and jobs["approve-production"]["environment"] == "production"
    assert jobs["production"]["needs"] == "approve-production"
    for name in ("staging", "production"):
        job = jobs[name]
        assert f'python -m rollout deploy --stack "$STACK" --expect-commit "$GITHUB_SHA"' in runs(job)
        assert name in job["env"]["STACK"]
        assert "python -m rollout status --stack" in runs(job)  # the ALB must match git afterwards
        assert uses(job, "aws-actions/configure-aws-credentials"), "OIDC to AWS"
        assert "pip install -r requirements.txt" in runs(job)  # the repository's .venv: where PulumiPolicy.yaml runs the pack


def _mutating_jobs() -> list[tuple[str, str, dict]]:
    """(workflow, job, job) for every job that can change a stack: it runs `rollout deploy`, an `up`,
    or a config change that is deployed."""
    found = []
    for path in FILES:
        for name, job in load(path.name)["jobs"].items():
            text = runs(job)
            ups = [s for s in steps(job) if s.get("with", {}).get("command") in ("up", "destroy", "refresh")]
            if ups or "rollout deploy" in text or re.search(r"\bpulumi (up|destroy|refresh)\b", text):
                found.append((path.name, name, job))
    return found


def test_every_job_that_changes_a_stack_runs_in_that_stacks_one_lane():
    jobs = _mutating_jobs()
    assert {(w, j) for w, j, _ in jobs} == {("deploy.yml", "staging"), ("deploy.yml", "production"), ("watch.yml", "rollback"),
                                           ("watch.yml", "advance")}
    for workflow, name, job in jobs:
        stack = "staging" if "staging" in job["env"]["STACK"] else "production"
        lane = job.get("concurrency") or {}
        assert lane.get("group") == f"bluegreen-stack-{stack}", f"{workflow}:{name} is outside the {stack} lane: {lane}"
        assert lane.get("cancel-in-progress") is False, f"{workflow}:{name} would cancel an update mid-flight"
        env = job.get("environment")
        assert env != "production", f"{workflow}:{name} would hold the lane while waiting for an approval"


def test_no_job_updates_without_a_preview_or_a_stale_commit_check():
    """pulumi/actions' `up` is the Automation API's `up --skip-preview`; every update goes through `rollout deploy`."""
    for workflow, name, job in _mutating_jobs():
        assert not [s for s in steps(job) if s.get("with", {}).get("command") == "up"], f"{workflow}:{name} uses pulumi/actions up"
        assert "--skip-preview" not in runs(job)
        assert re.search(r"rollout deploy --stack \"\$STACK\" --expect-commit ", runs(job)), f"{workflow}:{name} skips the head check"


def test_watcher_decides_without_the_lane_and_commits_before_it_deploys():
    wf = load("watch.yml")
    assert wf["on"]["schedule"] == [{"cron": "*/5 * * * *"}]
    watch, rollback = wf["jobs"]["watch"], wf["jobs"]["rollback"]
    assert "concurrency" not in watch and watch["permissions"]["contents"] == "read"
    step = next(s for s in steps(watch) if s.get("id") == "watch")
    assert "python -m rollout watch --stack" in step["run"] and step["continue-on-error"] is True
    committer = wf["jobs"]["rollback-commit"]  # git first, outside the lane (tests/test_watcher.py: a replaced lane job)
    assert committer["needs"] == "watch" and committer["if"] == rollback["if"] == "needs.watch.outputs.action == 'rollback'"
    assert rollback["needs"] == ["watch", "rollback-commit"], "the deploy runs after the commit"
    assert committer["permissions"]["contents"] == "write"
    assert "production" not in (rollback["environment"], committer["environment"]), "an automatic rollback must not wait for the production approval"
    commit = next(s for s in steps(committer) if "git push" in s.get("run", ""))
    assert 'rollback --stack "$STACK" --to-step 0 --config-only' in commit["run"]
    # A moved main: start from its newest head each attempt, push only a fast-forward, retry.
    assert "git reset --quiet --hard origin/main" in commit["run"] and "for attempt in" in commit["run"]
    assert "--force" not in commit["run"]
    deploy = next(s for s in steps(rollback) if "rollout deploy" in s.get("run", ""))
    assert "git push" not in runs(rollback) and "--follow-rollback" in deploy["run"]
    report = next(s for s in steps(rollback) if "--event rollback" in s.get("run", ""))
    assert "$REASON" in report["run"], "the notice carries its cause"
    # Untrusted text (the reason) reaches shell only through env, never through ${{ }} in `run`.
    for job in (watch, committer, rollback):
        for s in steps(job):
            assert not re.search(r"\$\{\{\s*(steps\.watch|needs\.watch)\.outputs\.reason", s.get("run", "")), s


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_untrusted_expression_is_interpolated_into_a_script(path):
    text = path.read_text()
    for expr in ("github.event.pull_request.title", "github.event.pull_request.body", "github.head_ref", "github.event.comment.body"):
        assert expr not in text, f"{path.name} interpolates {expr}"


def test_the_autopilot_advances_in_the_lane_only_when_the_watcher_has_nothing_to_do():
    wf = load("watch.yml")
    watch, advance, approval = wf["jobs"]["watch"], wf["jobs"]["advance"], wf["jobs"]["approval"]
    decide = next(s for s in steps(watch) if s.get("id") == "autopilot")
    assert decide["if"] == "steps.watch.outputs.action == 'none'" and 'rollout autopilot --stack "$STACK"' in decide["run"]
    assert "--push" not in decide["run"], "deciding reads only; the commit happens in the lane"
    assert advance["if"] == "needs.watch.outputs.action == 'none' && needs.watch.outputs.autopilot == 'advance'"
    assert advance["concurrency"] == {"group": "bluegreen-stack-production", "cancel-in-progress": False}
    commit = next(s for s in steps(advance) if s.get("id") == "commit")
    assert "git reset --quiet --hard origin/main" in commit["run"] and "--push origin" in commit["run"] and "--force" not in commit["run"]
    names = [s.get("name", s.get("uses", "")) for s in steps(advance)]
    deploy = next(s for s in steps(advance) if "rollout deploy" in s.get("run", ""))
    assert names.index(commit["name"]) < names.index(deploy["name"]), "git first, then the deploy of that commit"
    assert "concurrency" not in approval and "aws-actions/configure-aws-credentials" not in str(approval), "a PR needs no lane and no AWS"
    assert "gh pr create" in runs(approval) and "$REASON" in runs(approval)
    for job in (watch, advance, approval):
        for s in steps(job):
            assert not re.search(r"\$\{\{\s*(steps\.autopilot|needs\.watch)\.outputs\.(autopilot_)?reason", s.get("run", "")), s
