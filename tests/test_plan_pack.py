"""`python -m rollout plan` starts the policy pack before it simulates the steps: the pack must never
outlive the command, whichever way it ends, and its config is still validated (once) before use."""

from __future__ import annotations

import json

import pytest

from rollout import plan as plan_module
from tests.test_cli import expect, invoke, make_project


@pytest.fixture
def started_packs(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every pack process `plan` starts early, as the Popen it runs in."""
    procs: list = []
    real = plan_module.start_offline_pack

    def start(stack, **kwargs):
        pack = real(stack, **kwargs)
        procs.append(pack.client()._proc)
        return pack

    monkeypatch.setattr(plan_module, "start_offline_pack", start)
    return procs


def test_the_early_pack_is_stopped_after_a_plan(tmp_path, started_packs):
    proj = make_project(tmp_path, step=2)
    expect(invoke("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "3"), 0, "step 3")
    assert len(started_packs) == 1
    assert started_packs[0].poll() is not None, "the pack process outlived `plan`"


def test_the_early_pack_is_stopped_when_the_stack_config_is_invalid(tmp_path, started_packs):
    proj = make_project(tmp_path, step=7)
    expect(invoke("--project-dir", str(proj), "plan", "--stack", "production"), 2, "bluegreen:rollout.step", "got 7")
    assert len(started_packs) == 1
    assert started_packs[0].poll() is not None, "the pack process outlived a `plan` that failed on its stack config"


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
