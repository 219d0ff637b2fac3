"""`python -m rollout plan` starts the policy pack before it simulates the steps, and the pack judges
each step while the next one is simulated: the pack must never outlive the command, whichever way it
ends; its config is still validated (once) before any verdict; the verdicts are those of judging
the finished plan afterwards."""

from __future__ import annotations

import json

import pytest

from rollout.analyzer import PolicyPackClient
from rollout.simulate import load_stack_file
from tests.test_cli import expect, invoke, make_project


@pytest.fixture
def started_packs(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every pack process started, as the Popen it runs in."""
    procs: list = []
    real = PolicyPackClient.start

    def start(self):
        try:
            return real(self)
        finally:
            procs.append(self._proc)

    monkeypatch.setattr(PolicyPackClient, "start", start)
    return procs


def test_the_early_pack_is_stopped_after_a_plan(tmp_path, started_packs):
    proj = make_project(tmp_path, step=2)
    expect(invoke("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "3"), 0, "step 3")
    assert len(started_packs) == 1
    assert started_packs[0].poll() is not None, "the pack process outlived `plan`"


def test_the_early_pack_is_stopped_when_the_stack_config_is_invalid(tmp_path, started_packs):
    proj = make_project(tmp_path, step=7)
    expect(invoke("--project-dir", str(proj), "plan", "--stack", "production"), 2, "bluegreen:rollout.step", "got 7")
    assert started_packs == [], "the stack file is validated before the pack is started"


def test_the_early_pack_is_stopped_when_the_plan_fails_after_it_started(tmp_path, started_packs):
    proj = make_project(tmp_path, step=2)
    expect(invoke("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "9"), 2, "--to-step", "got 9")
    assert len(started_packs) == 1
    assert started_packs[0].poll() is not None, "the pack process outlived a `plan` that failed while building"


def test_an_invalid_pack_config_is_refused_before_any_verdict(tmp_path):
    proj = make_project(tmp_path, step=2)
    (proj / "policy" / "production.json").write_text(json.dumps({"bake-time": {"enforcementLevel": "mandatory", "minutes": "ten"}}))
    result = invoke("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "3")
    expect(result, 1, "policy pack configuration is invalid", "bake-time", "minutes")
    assert "Traceback" not in result.output


def test_no_policy_starts_no_pack(tmp_path, started_packs):
    proj = make_project(tmp_path, step=2)
    expect(invoke("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "3", "--no-policy"), 0, "step 3")
    assert started_packs == []


def test_rows_judged_while_the_plan_is_built_get_the_verdicts_of_a_judged_plan(tmp_path):
    from rollout.analyzer import POLICY_DIR
    from rollout.plan import build_plan, check_policy, start_offline_pack

    proj = make_project(tmp_path, step=1)
    cfg = load_stack_file("production", proj)
    config = POLICY_DIR / "production.json"
    after = check_policy(build_plan("production", config=cfg), pack_config=config)
    pack = start_offline_pack("production", pack_config=config)
    try:
        during = check_policy(build_plan("production", config=cfg, on_row=pack.submit), pack=pack)
    finally:
        pack.close()
    assert during.verdicts == after.verdicts
    assert len(during.verdicts) == len(during.rows) == 6
    assert any(during.verdicts.values()), "no row has a verdict to compare (not even a not-evaluated-offline note)"
