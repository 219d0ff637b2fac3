"""Reconciliation after the reflex acts, end to end: the real reflex rolls a failing candidate back on
moto_server; `status` then shows ABORTED with the reason and time; `watch` decides "commit step 0" with
the reason (the workflow commits it); the watcher's decision table covers the marker."""

from __future__ import annotations

import json

import pytest

from rollout.reflex import TAG_ABORTED, ReflexSettings, run
from rollout.rules import RolloutConfig
from rollout.watcher import Action, decide
from tests.fixtures.candidate import CandidateServer
from tests.test_cli import expect, invoke, make_project, no_pulumi  # noqa: F401 - fixture

MARKER = "2026-11-23T16:05:03Z probes-failed green=25"


def reflex_rolls_back(aws, alb=None, fault: str = "5xx"):
    """The candidate (default: green at 25 %, step 2) breaks; the real reflex rolls it back. Returns the ALB."""
    alb = alb or aws.build_alb(stable="blue", candidate_weight=25)
    server = CandidateServer()
    try:
        aws.client("elbv2").modify_listener(ListenerArn=alb.test_listener, Port=server.port)
        server.fail(fault)
        settings = ReflexSettings("production", alb.load_balancer, alb.production_listener, probes=3, timeout_s=0.5, interval_s=0.2)
        report = run(settings, elbv2=aws.client("elbv2"), ec2=aws.client("ec2"), addresses=lambda: ["127.0.0.1"], budget_s=3)  # room for two checks on a loaded machine
    finally:
        server.stop()
    assert report.rollback and report.rollback.moved and report.rollback.marked, report.to_dict()
    return alb


def test_status_shows_aborted_with_the_reason_and_time(aws, tmp_path, no_pulumi):
    alb = reflex_rolls_back(aws)
    proj = make_project(tmp_path, step=2)  # git still says step 2
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    expect(r, 1, "ABORTED", "the reflex moved all traffic to stable (probes-failed at 20", "green had 25%", "drift")
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--format", "json")
    data, _ = json.JSONDecoder().raw_decode(r.output)  # then the drift error line (exit 1)
    assert r.exit_code == 1 and data["aborted"]["reason"] == "probes-failed" and data["aborted"]["weight"] == 25 and data["live"]["weights"] == {"blue": 100, "green": 0}


def test_status_without_a_marker_says_nothing_of_it(aws, tmp_path, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=25)
    r = invoke("--project-dir", str(make_project(tmp_path, step=2)), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    expect(r, 0, "in sync")
    assert "ABORTED" not in r.output


def test_watch_commits_step_zero_with_the_reason(aws, tmp_path, no_pulumi):
    alb = reflex_rolls_back(aws)
    proj = make_project(tmp_path, step=2)
    out = tmp_path / "gh-output"
    r = invoke("--project-dir", str(proj), "watch", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--github-output", str(out))
    expect(r, 1, "rollback: production: the reflex rolled production back to blue (probes-failed at")
    lines = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert lines["action"] == "rollback" and lines["to_step"] == "0" and "green had 25%" in lines["reason"], lines


@pytest.mark.parametrize(
    "step, live, action, text",
    [
        (2, {"blue": 100, "green": 0}, Action.ROLLBACK, "the reflex rolled production back to blue (probes-failed at 2026-11-23T16:05:03Z, green had 25%)"),
        (5, None, Action.ROLLBACK, "committing step 0"),  # even with the load balancer unreadable now
        (0, {"blue": 100, "green": 0}, Action.NONE, "`pulumi up --refresh` clears the marker"),
        (0, {"blue": 100, "green": 0}, Action.ROLLBACK, "not recorded as bluegreen:aborted; committing it"),  # step 0 by hand
    ],
)
def test_the_watcher_follows_the_marker(step, live, action, text):
    held = None if step else action is Action.NONE
    d = decide("production", RolloutConfig("blue", (10, 25, 50, 75, 100), step), live, None, aborted=MARKER, held=held)
    assert d.action is action and text in d.reason, d
    assert d.to_step == (0 if action is Action.ROLLBACK else None)


def test_the_reflex_marker_is_on_the_listener(aws):
    alb = reflex_rolls_back(aws)
    (d,) = aws.client("elbv2").describe_tags(ResourceArns=[alb.production_listener])["TagDescriptions"]
    assert any(t["Key"] == TAG_ABORTED and t["Value"].endswith("probes-failed green=25") for t in d["Tags"])


# --------------------------------------------------------------------------- the hold in the stack config

from rollout.config import parse_stack_config  # noqa: E402
from rollout.errors import ConfigError  # noqa: E402
from rollout.simulate import load_stack_file  # noqa: E402


def _raw(**over):
    raw = {k.split(":", 1)[1]: v for k, v in load_stack_file("production").items() if k.startswith("bluegreen:")}
    return {**raw, **over}


@pytest.mark.parametrize("value, step, needle", [
    ("2026-11-23T16:05:03Z probes-failed green=25", 2, "stays at bluegreen:rollout.step 0 until a new release"),
    ("marker; rm -rf /", 0, "must be the reflex's abort marker text"),
    (["not", "text"], 0, "must be the reflex's abort marker text"),
])
def test_a_bad_hold_is_one_line_naming_the_key(value, step, needle):
    with pytest.raises(ConfigError) as e:
        parse_stack_config(_raw(aborted=value, rollout={"stable": "blue", "steps": [10, 25, 50, 75, 100], "step": step}))
    assert e.value.key == "bluegreen:aborted" and needle in str(e.value) and "\n" not in str(e.value)


def test_the_hold_is_read_as_the_marker_and_empty_is_none():
    assert parse_stack_config(_raw(aborted=" " + MARKER + " ")).aborted == MARKER
    assert parse_stack_config(_raw(aborted="")).aborted is None and parse_stack_config(_raw()).aborted is None


def test_rollback_records_the_live_marker_and_release_clears_it(aws, tmp_path, no_pulumi):
    """`rollout rollback` (no --aborted) reads the live marker with DescribeTags and commits it with step 0;
    an unreadable load balancer is a warning, never a refused rollback."""
    import yaml

    alb = reflex_rolls_back(aws)
    proj = make_project(tmp_path, step=2)
    stack_file = proj / "Pulumi.production.yaml"
    r = invoke("--project-dir", str(proj), "rollback", "--stack", "production", "--config-only", "--yes", "--load-balancer-arn", alb.load_balancer)
    expect(r, 0, "the header route stays on blue (bluegreen:aborted: ")
    cfg = yaml.safe_load(stack_file.read_text())["config"]
    assert cfg["bluegreen:rollout"]["step"] == 0 and cfg["bluegreen:aborted"].split()[1:] == ["probes-failed", "green=25"], cfg

    other = make_project(tmp_path / "b", step=2)
    r = invoke("--project-dir", str(other), "rollback", "--stack", "production", "--config-only", "--yes",
               "--load-balancer-arn", alb.load_balancer.replace("/app/", "/app/gone-"))
    expect(r, 0, "warning: the live abort marker could not be read")
    assert "bluegreen:aborted" not in yaml.safe_load((other / "Pulumi.production.yaml").read_text())["config"]


def test_step_zero_by_hand_gets_the_hold_committed(aws, tmp_path, no_pulumi):
    """Step 0 committed without the marker while it stands: `watch` decides to record it, and the
    workflow's `rollback --to-step 0 --aborted` commits the hold alone (no TransitionError at step 0)."""
    import yaml

    alb = reflex_rolls_back(aws)
    proj = make_project(tmp_path, step=0)
    out = tmp_path / "gh-output"
    r = invoke("--project-dir", str(proj), "watch", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--github-output", str(out))
    expect(r, 1, "not recorded as bluegreen:aborted")
    decided = dict(line.split("=", 1) for line in out.read_text().splitlines())
    r = invoke("--project-dir", str(proj), "rollback", "--stack", "production", "--to-step", "0", "--config-only", "--yes",
               "--aborted", decided["aborted"])
    expect(r, 0, "hold the header route on blue")
    assert yaml.safe_load((proj / "Pulumi.production.yaml").read_text())["config"]["bluegreen:aborted"] == decided["aborted"]
    r = invoke("--project-dir", str(proj), "watch", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    expect(r, 0, "clears the marker")
