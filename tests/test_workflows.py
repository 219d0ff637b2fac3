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


def test_push_to_main_ups_staging_then_production_behind_approval():
    wf = load("deploy.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert {"Pulumi.production.yaml", "Pulumi.staging.yaml", "policy/**"} <= set(wf["on"]["push"]["paths"])
    assert wf["concurrency"]["cancel-in-progress"] is False
    jobs = wf["jobs"]
    assert TEST_COMMAND in runs(jobs["test"])
    assert jobs["staging"]["needs"] == "test" and jobs["production"]["needs"] == "staging"
    assert jobs["production"]["environment"] == "production"
    for name in ("staging", "production"):
        (up,) = uses(jobs[name], "pulumi/actions")
        assert up["with"]["command"] == "up" and up["with"]["policyPacks"] == "policy", up
        assert f"policy/{name}.json" == up["with"]["policyPackConfigs"]
        assert name in up["with"]["stack-name"]
        assert "python -m rollout status --stack" in runs(jobs[name])  # the ALB must match git afterwards
        assert uses(jobs[name], "aws-actions/configure-aws-credentials"), "OIDC to AWS"


def test_watcher_runs_every_five_minutes_and_commits_before_it_deploys():
    wf = load("watch.yml")
    assert wf["on"]["schedule"] == [{"cron": "*/5 * * * *"}]
    job = wf["jobs"]["watch"]
    assert job["permissions"]["contents"] == "write"
    assert job["environment"] != "production", "an automatic rollback must not wait for the production approval"
    names = [s.get("name", s.get("uses", "")) for s in steps(job)]
    watch = next(s for s in steps(job) if s.get("id") == "watch")
    assert "python -m rollout watch --stack" in watch["run"] and watch["continue-on-error"] is True
    commit = next(s for s in steps(job) if "git push" in s.get("run", ""))
    assert "rollback --stack \"$STACK\" --to-step 0 --config-only" in commit["run"]
    deploy = next(s for s in steps(job) if s.get("with", {}).get("command") == "up")
    assert deploy["with"]["policyPacks"] == "policy"
    assert names.index(commit["name"]) < names.index(deploy["name"]), "git first, then the up of that commit"
    for s in (commit, deploy):
        assert s["if"] == "steps.watch.outputs.action == 'rollback'"
    # Untrusted text (the reason) reaches shell only through env, never through ${{ }} in `run`.
    for s in steps(job):
        assert not re.search(r"\$\{\{\s*steps\.watch\.outputs\.reason", s.get("run", "")), s


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_untrusted_expression_is_interpolated_into_a_script(path):
    text = path.read_text()
    for expr in ("github.event.pull_request.title", "github.event.pull_request.body", "github.head_ref", "github.event.comment.body"):
        assert expr not in text, f"{path.name} interpolates {expr}"
