"""Operator experience: commands that work the first time, without tracebacks, from anywhere."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from rollout.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, input: str | None = None):
    r = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=True)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output, r.output
    return r


@pytest.fixture()
def project(tmp_path) -> Path:
    """A copy of the project's stack files (comments and all), with no Pulumi CLI anywhere on PATH."""
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "policy").mkdir()
    shutil.copy(ROOT / "policy" / "production.json", tmp_path / "policy" / "production.json")
    return tmp_path


def _set_step(project: Path, step: int) -> None:
    f = project / "Pulumi.production.yaml"
    f.write_text(f.read_text().replace("    step: 0", f"    step: {step}"))


def test_config_only_needs_no_pulumi_cli_and_keeps_the_files_comments(project, monkeypatch):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    _set_step(project, 2)
    before = (project / "Pulumi.production.yaml").read_text()
    r = run("--project-dir", str(project), "rollback", "--stack", "production", "--to-step", "0", "--config-only", "--yes")
    assert r.exit_code == 0, r.output
    after = (project / "Pulumi.production.yaml").read_text()
    assert yaml.safe_load(after)["config"]["bluegreen:rollout"]["step"] == 0
    assert [line for line in before.splitlines() if line.startswith("#")] == [line for line in after.splitlines() if line.startswith("#")]
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [("    step: 2", "    step: 0")], changed


COMMANDS = [
    ["plan", "--no-policy"],
    ["status", "--load-balancer-arn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/y"],
    ["gate", "--load-balancer-arn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/y"],
    ["advance", "--yes"],
    ["rollback", "--yes"],
    ["finish", "--yes"],
    ["park", "--yes"],
    ["release", "--image", "web:2", "--yes"],
    ["watch", "--load-balancer-arn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/y"],
    ["notify", "--event", "promotion"],
    ["deploy"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_yaml_syntax_error_is_one_line_and_exit_2_in_every_command(project, command, monkeypatch):
    monkeypatch.setenv("BLUEGREEN_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    (project / "Pulumi.production.yaml").write_text("config:\n  bluegreen:rollout: {stable: blue\n")
    r = run("--project-dir", str(project), command[0], "--stack", "production", *command[1:])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert errors == ["error: cannot read Pulumi.production.yaml: YAML syntax error at line 3, column 1: expected ',' or '}', but got '<stream end>'"], r.output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_mistyped_stack_gets_a_did_you_mean_in_every_command(project, command, monkeypatch):
    monkeypatch.setenv("BLUEGREEN_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    r = run("--project-dir", str(project), command[0], "--stack", "prodution", *command[1:])
    assert r.exit_code == 2 and "(did you mean 'production'?)" in r.output, r.output


def test_a_json_string_rollout_plans_like_an_object(project):
    """`pulumi config set bluegreen:rollout '{"stable": ...}'` stores a JSON string; the program decodes it."""
    f = project / "Pulumi.production.yaml"
    doc = yaml.safe_load(f.read_text())
    doc["config"]["bluegreen:rollout"] = '{"stable": "blue", "steps": [10, 25, 50, 75, 100], "step": 0}'
    f.write_text(yaml.safe_dump(doc))
    r = run("--project-dir", str(project), "plan", "--stack", "production", "--no-policy", "--to-step", "1")
    assert r.exit_code == 0, r.output
    assert "10%" in r.output or "10 %" in r.output, r.output


# --------------------------------------------------------------------------- park waits idle.delayMinutes (moto)


def _tag_since(aws, alb, minutes_ago: float) -> None:
    """Stamp the live production listener as the program does: blue took all traffic `minutes_ago`."""
    import time

    from rollout.desired import TAG_SINCE, format_since

    stamp = format_since(time.time() - minutes_ago * 60, {"blue": 100, "green": 0})
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": TAG_SINCE, "Value": stamp}])


@pytest.mark.parametrize("minutes_ago, code, text", [(10, 1, "5 min left"), (20, 0, "dry run")])
def test_park_waits_delay_minutes_after_the_idle_colour_last_carried_traffic(aws, project, monkeypatch, minutes_ago, code, text):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    alb = aws.build_alb(stable="blue", candidate_weight=0)
    _tag_since(aws, alb, minutes_ago)
    f = project / "Pulumi.production.yaml"
    f.write_text(f.read_text().replace("delayMinutes: 60", "delayMinutes: 15"))
    r = run("--project-dir", str(project), "park", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--dry-run")
    assert r.exit_code == code and text in r.output, r.output


def test_park_refuses_when_the_live_clock_is_unknown_unless_told(aws, project, monkeypatch):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    alb = aws.build_alb(stable="blue", candidate_weight=0)  # no bluegreen:weights-since tag
    args = ["--project-dir", str(project), "park", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--dry-run"]
    r = run(*args)
    assert r.exit_code == 1 and "bluegreen:weights-since is None" in r.output and "--ignore-delay" in r.output, r.output
    assert run(*args, "--ignore-delay").exit_code == 0


# --------------------------------------------------------------------------- status reads listener rules (moto)


def _rule(aws, alb, priority: int, conditions: list, color: str) -> None:
    aws.client("elbv2").create_rule(
        ListenerArn=alb.production_listener, Priority=priority, Conditions=conditions,
        Actions=[{"Type": "forward", "TargetGroupArn": alb.target_groups[color]}],
    )


def test_status_shows_listener_rules_and_fails_on_an_undeclared_one(aws, project, monkeypatch):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    alb = aws.build_alb(stable="blue", candidate_weight=0)
    # The declared header route (Pulumi.production.yaml: X-Canary: always) to the candidate is fine.
    _rule(aws, alb, 10, [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["always"]}}], "green")
    args = ["--project-dir", str(project), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer]
    r = run(*args)
    assert r.exit_code == 0 and "rule    10  http-header X-Canary=always → green 1" in r.output, r.output
    # A path rule nobody declared sends /beta/* to green at step 0.
    _rule(aws, alb, 20, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/beta/*"]}}], "green")
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert "error: drift: listener rule 20 (path-pattern /beta/*) forwards to green, which the stack file does not declare" in r.output


# --------------------------------------------------------------------------- the installed `bluegreen` command


def test_pyproject_installs_a_bluegreen_command_pointing_at_the_cli():
    import importlib
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    module, _, func = project["scripts"]["bluegreen"].partition(":")
    assert callable(getattr(importlib.import_module(module), func))
    req = (ROOT / "requirements.txt").read_text()
    for dep in project["dependencies"]:  # the same pins as requirements.txt
        assert dep in req or dep in (ROOT / "policy" / "requirements.txt").read_text(), dep


def test_the_installed_command_works_from_any_folder_of_a_project(tmp_path):
    """`bluegreen` as pip installs it (a launcher importing rollout.cli:main from site-packages), run from a
    subfolder of a fresh copy of the project: it finds Pulumi.yaml above and plans that project."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "rollout", site / "rollout", ignore=shutil.ignore_patterns("__pycache__"))
    launcher = tmp_path / "bin" / "bluegreen"
    launcher.parent.mkdir()
    launcher.write_text(f"#!{sys.executable}\nimport sys\nfrom rollout.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n")
    launcher.chmod(0o755)
    proj = tmp_path / "proj"
    shutil.copytree(ROOT, proj, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "tests", "bench", "rollout", ".hypothesis"))
    shutil.copytree(ROOT / "rollout", proj / "rollout", ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "Pulumi.staging.yaml").write_text((proj / "Pulumi.staging.yaml").read_text().replace("name: web", "name: shop"))
    env = {**os.environ, "PYTHONPATH": str(site), "PATH": f"{launcher.parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bluegreen", "plan", "--stack", "staging", "--no-policy", "--to-step", "1"], cwd=proj / "components",
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "shop-traffic-production" in r.stdout, r.stdout  # the project found by walking up, not the checkout
    r = subprocess.run(["bluegreen", "status", "--stack", "staging"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no Pulumi.yaml in" in r.stderr and "--project-dir" in r.stderr and "Traceback" not in r.stderr, r.stderr


# --------------------------------------------------------------------------- status --watch, advance --wait (moto)


def _stamp(aws, alb, seconds_ago: float, weights: dict) -> None:
    import time

    from rollout.desired import TAG_SINCE, format_since

    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": TAG_SINCE, "Value": format_since(time.time() - seconds_ago, weights)}])


def test_status_watch_shows_weights_health_how_long_they_held_and_the_next_promotion(aws, project, monkeypatch):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    _set_step(project, 1)
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    _stamp(aws, alb, 180, {"blue": 90, "green": 10})
    r = run("--project-dir", str(project), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--watch", "--count", "1")
    assert r.exit_code == 0, r.output
    assert "bake 10 min" in r.output and "blue 90%" in r.output and "green 10%" in r.output, r.output
    # Stamped 180 s back: the seconds that pass before the CLI reads the clock depend on the machine's load,
    # so assert the held time from the stamp on and that held + remaining is the 10-minute bake.
    m = re.search(r"weights held (\d+)m(\d\d)s; next promotion allowed in (\d+)m(\d\d)s", r.output)
    assert m, r.output
    held, left = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    assert 180 <= held < 240 and abs(held + left - 600) <= 1, r.output


def test_status_watch_does_not_trust_a_stamp_for_other_weights(aws, project, monkeypatch):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    _stamp(aws, alb, 3600, {"blue": 100, "green": 0})  # the stamp of step 0, left on the listener of step 1
    r = run("--project-dir", str(project), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--watch", "--count", "1")
    assert "weights held: unknown" in r.output and "differs from declared step 0" in r.output, r.output


@pytest.mark.parametrize("seconds_ago", [601, 588])  # 588: 12 s for a loaded machine between stamping and reading (the CLI then waits ~12 s)
def test_advance_wait_waits_out_the_bake_then_advances(aws, project, monkeypatch, seconds_ago):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    _set_step(project, 1)
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    _stamp(aws, alb, seconds_ago, {"blue": 90, "green": 10})
    r = run("--project-dir", str(project), "advance", "--stack", "production", "--wait", "--load-balancer-arn", alb.load_balancer, "--dry-run")
    assert r.exit_code == 0 and "bake done" in r.output and "bluegreen:rollout.step 2" in r.output, r.output
    assert ("waiting: weights held 9m4" in r.output or "waiting: weights held 9m5" in r.output) == (seconds_ago < 600), r.output


def test_advance_wait_refuses_an_unknown_bake_clock(aws, project, monkeypatch):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    _set_step(project, 1)
    alb = aws.build_alb(stable="blue", candidate_weight=10)  # no stamp
    r = run("--project-dir", str(project), "advance", "--stack", "production", "--wait", "--load-balancer-arn", alb.load_balancer, "--dry-run")
    assert r.exit_code == 1 and "cannot wait out the bake" in r.output, r.output


# --------------------------------------------------------------------------- plan output: repeats once, notes as notes


@pytest.fixture(scope="module")
def staging_plan():
    """The real staging plan with the real pack (its ALB baseline is advisory there: the same violations every step)."""
    from rollout.plan import build_plan, check_policy

    return check_policy(build_plan("staging"), pack_dir=ROOT / "policy", pack_config=ROOT / "policy" / "staging.json")


def test_a_violation_repeated_on_every_step_is_shown_once(staging_plan):
    from rollout.render import render_markdown, render_text
    from rich.console import Console

    md = render_markdown(staging_plan)
    assert md.count("`alb-deletion-protection`") == 1, md
    assert "as above)_" in md
    console = Console(record=True, width=400)
    render_text(staging_plan, console)
    text = console.export_text()
    assert text.count("alb-deletion-protection") == 1 and text.count("not evaluated offline") == 1, text


def test_offline_notes_are_marked_as_notes_in_json(staging_plan):
    import json as _json

    from rollout.analyzer import NOT_EVALUATED_OFFLINE
    from rollout.plan import _NOT_EVALUATED_OFFLINE
    from rollout.render import render_json

    assert _NOT_EVALUATED_OFFLINE == NOT_EVALUATED_OFFLINE
    entries = [v for row in _json.loads(render_json(staging_plan))["rows"] for v in row["policy"]]
    notes = [v for v in entries if v["kind"] == "note"]
    assert notes and all(v["message"].startswith("not evaluated offline") for v in notes)
    assert {v["kind"] for v in entries} == {"note", "violation"}
    assert all(not v["message"].startswith("not evaluated offline") for v in entries if v["kind"] == "violation")


def test_the_watchers_alert_carries_its_cause(aws, project, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    _set_step(project, 2)
    aws.build_alb(stable="blue", candidate_weight=25)
    gone = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/gone/0123456789abcdef"
    out = tmp_path / "github-output"
    r = run("--project-dir", str(project), "watch", "--stack", "production", "--load-balancer-arn", gone, "--github-output", str(out))
    assert r.exit_code == 1, r.output
    reason = dict(line.split("=", 1) for line in out.read_text().splitlines())["reason"]
    assert reason.startswith("production: rollout at step 2 but the live load balancer could not be read")
    assert "Cause: could not read the live load balancer state: load balancer not found" in reason, reason


def test_mistyped_colours_get_a_did_you_mean():
    from rollout.config import parse_stack_config
    from rollout.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^bluegreen:rollout.stable: must be blue \| green; got 'bleu' .*\(did you mean 'blue'\?\)$"):
        parse_stack_config({"rollout": {"stable": "bleu", "steps": [100], "step": 0}})
    r = run("gate", "--stack", "production", "--color", "gren")
    assert r.exit_code == 2 and "(did you mean 'green'?)" in r.output, r.output


def test_status_honours_an_organization_qualified_stack(aws, project, monkeypatch):
    """What the workflows pass when PULUMI_ORG is set: `acme/production` reads Pulumi.production.yaml."""
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    alb = aws.build_alb(stable="blue", candidate_weight=0)
    r = run("--project-dir", str(project), "status", "--stack", "acme/production", "--load-balancer-arn", alb.load_balancer)
    assert r.exit_code == 0 and "stack acme/production" in r.output and "in sync" in r.output, r.output
