"""`python -m rollout` in-process (click's CliRunner) against real loopback servers.

AWS is a `moto_server` process (tests/fixtures/aws.py), health endpoints are loopback HTTP servers
(tests/fixtures/servers.py), the webhook is a loopback server recording what it receives, and the
Pulumi CLI is either absent from PATH or a real `pulumi` script on PATH that records its argv.

Regenerate the golden plan with: BLUEGREEN_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_cli.py -k golden
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from rollout import operations
from rollout.cli import cli
from rollout.config import parse_stack_config
from rollout.errors import TransitionError
from rollout.notify import Delivery, format_message, send
from rollout.rules import RolloutConfig
from rollout.simulate import ROOT

GOLDEN = Path(__file__).parent / "golden"
STEPS = [10, 25, 50, 75, 100]


# --------------------------------------------------------------------------- helpers


def invoke(*args: str, input: str | None = None):
    """Run the CLI in-process; fail with the traceback if anything but a deliberate exit escaped."""
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"`python -m rollout {' '.join(args)}` raised {result.exception!r}\n"
            + "".join(traceback.format_exception(*result.exc_info)) + f"\noutput:\n{result.output}"
        )
    assert "Traceback" not in result.output, result.output
    return result


def expect(result, code: int, *texts: str) -> None:
    if os.environ.get("SHOW_OUTPUT"):
        print(f"\n=== exit {result.exit_code}\n{result.output}")
    assert result.exit_code == code, f"exit {result.exit_code} != {code}; output:\n{result.output}"
    for t in texts:
        assert t in result.output, f"{t!r} not in output:\n{result.output}"


def make_project(tmp_path: Path, stack: str = "production", *, stable: str = "blue", step: int = 0, **bluegreen) -> Path:
    """A project dir holding Pulumi.<stack>.yaml (the real one with rollout and keys replaced) and the pack's config."""
    src = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    cfg = src["config"]
    cfg["bluegreen:rollout"] = {"stable": stable, "steps": list(STEPS), "step": step}
    for key, value in bluegreen.items():
        cfg[f"bluegreen:{key}"] = value
    proj = tmp_path / "project"
    (proj / "policy").mkdir(parents=True, exist_ok=True)
    (proj / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(src, sort_keys=False))
    (proj / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    pack_cfg = ROOT / "policy" / f"{stack}.json"
    (proj / "policy" / f"{stack}.json").write_text(pack_cfg.read_text() if pack_cfg.exists() else "{}")
    return proj


_FAKE_PULUMI = """#!{python}
# A stand-in Pulumi CLI: records argv and cwd, answers `stack output`, fails `up` on request.
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as fh:
    fh.write(json.dumps({{"argv": args, "cwd": os.getcwd()}}) + "\\n")
if args[:2] == ["stack", "output"]:
    value = os.environ.get("FAKE_PULUMI_LB_ARN")
    if not value:
        print("error: current stack does not have output property", file=sys.stderr)
        sys.exit(255)
    print(value)
    sys.exit(0)
if args[:1] == ["up"]:
    print("Previewing update (" + args[args.index("--stack") + 1] + ")")
    code = int(os.environ.get("FAKE_PULUMI_UP_EXIT", "0"))
    if code:
        print("mandatory  healthy-promotion: green must pass its health gate before it receives more traffic")
    else:
        print("Resources: 1 updated")
    sys.exit(code)
sys.exit(int(os.environ.get("FAKE_PULUMI_SET_EXIT", "0")))
"""


class FakePulumi:
    def __init__(self, log: Path):
        self.log = log

    @property
    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()]

    @property
    def cwds(self) -> list[str]:
        return [json.loads(line)["cwd"] for line in self.log.read_text().splitlines()]


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePulumi:
    """A real `pulumi` executable (a script) first and alone on PATH; records every invocation."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    exe = bindir / "pulumi"
    exe.write_text(_FAKE_PULUMI.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "pulumi-calls.jsonl"
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    return FakePulumi(log)


@pytest.fixture
def no_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holds only an empty folder: no Pulumi CLI."""
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


class _Webhook(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.headers.get("Content-Type"), json.loads(body)))
        status = self.server.status
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch):
    """A loopback Slack-style webhook recording every JSON body; BLUEGREEN_WEBHOOK_URL points at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    server.received, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    monkeypatch.setenv("BLUEGREEN_WEBHOOK_URL", url)
    server.url = url
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_webhook_by_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("BLUEGREEN_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("BLUEGREEN_PROJECT_DIR", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_RUN_ID", raising=False)


def base(url: str) -> str:
    """http://127.0.0.1:PORT/healthz -> http://127.0.0.1:PORT"""
    return url.rsplit("/", 1)[0]


# --------------------------------------------------------------------------- every command documents itself


def test_every_command_has_an_example_and_help():
    for name, command in cli.commands.items():
        assert "Example: python -m rollout " + name in (command.help or ""), f"{name} docstring lacks an Example:"
        expect(invoke(name, "--help"), 0, "Example:")


# --------------------------------------------------------------------------- plan (offline)


def test_plan_markdown_matches_golden():
    result = invoke("plan", "--stack", "production", "--format", "markdown")
    expect(result, 0, "<!-- bluegreen-plan -->")
    golden = GOLDEN / "plan-production.md"
    if os.environ.get("BLUEGREEN_UPDATE_GOLDEN"):
        golden.write_text(result.output)
    assert golden.exists(), "no golden file: run with BLUEGREEN_UPDATE_GOLDEN=1"
    assert result.output == golden.read_text(), "plan markdown changed; if intended, regenerate with BLUEGREEN_UPDATE_GOLDEN=1"


def test_plan_text_and_json_for_one_step(tmp_path):
    proj = make_project(tmp_path, step=2)
    text = invoke("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "3")
    expect(text, 0, "bluegreen plan", "step 3", "promotion: green 25% -> 50%", "resources changed per update: 1")
    data = json.loads(invoke("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "3", "--format", "json").output)
    assert data["currentStep"] == 2
    assert [r["weights"] for r in data["rows"]] == [{"blue": 75, "green": 25}, {"blue": 50, "green": 50}]
    assert [c["type"] for c in data["rows"][1]["changes"]] == ["aws:lb/listener:Listener"], data["rows"][1]


def test_plan_unknown_stack_and_bad_step_are_usage_errors(tmp_path):
    expect(invoke("plan", "--stack", "nosuch"), 2, "no stack file Pulumi.nosuch.yaml", "production")
    expect(invoke("plan", "--stack", "production", "--to-step", "9"), 2, "--to-step: must be between 0 and 5")


def test_plan_invalid_stack_config_names_the_key(tmp_path):
    proj = make_project(tmp_path, step=7)
    expect(invoke("--project-dir", str(proj), "plan", "--stack", "production"), 2, "bluegreen:rollout.step", "got 7")


# --------------------------------------------------------------------------- status (moto)


def test_status_in_sync(aws, tmp_path, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=25)
    proj = make_project(tmp_path, step=2)
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    expect(r, 0, "in sync", "step 2 of 5, blue stable", "75%", "25%", "2 healthy of 2")


def test_status_drift_after_finish_names_the_old_version(aws, tmp_path, no_pulumi):
    # The stack file says the rollout finished (green stable, all traffic on green) but the listener is
    # still the one of step 4, tagged blue stable, sending 25 % to blue: the old version.
    alb = aws.build_alb(stable="blue", candidate_weight=75)
    proj = make_project(tmp_path, stable="green", step=0)
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    expect(r, 1, "error: drift:", "declares step 0 of 5 with green stable (blue 0% · green 100%)", "sends blue 25% · green 75%",
           "blue still receives 25% although all traffic should be on green: the rollout finished (green stable) "
           "while the ALB still sends traffic to the old version")
    alb1 = aws.build_alb(name="bg1", stable="green", candidate_weight=10)  # tagged green: a hand edit or an undeployed rollback
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb1.load_balancer)
    expect(r, 1, "blue still receives 10%", "has not been deployed, or the listener was edited by hand")
    alb2 = aws.build_alb(name="bg2", stable="blue", candidate_weight=100)  # tagged blue stable: finish not deployed
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb2.load_balancer)
    expect(r, 1, "drift", "tagged bluegreen:stable=blue", "finish that made green stable has not been deployed")


def test_status_drift_declared_step_not_deployed(aws, tmp_path, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    proj = make_project(tmp_path, step=3)
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    expect(r, 1, "declares step 3 of 5", "sends blue 90% · green 10%", "less traffic than declared (10% < 50%)",
           "pulumi up --stack production --policy-pack policy")


def test_status_json(aws, tmp_path, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    proj = make_project(tmp_path, step=1)
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--format", "json")
    expect(r, 0)
    data = json.loads(r.output)
    assert data["live"]["weights"] == {"blue": 90, "green": 10} and data["drift"] is None
    assert data["health"]["green"]["healthy"] == 2 and data["health"]["green"]["targetGroupArn"] == alb.target_groups["green"]


def test_status_gets_the_arn_from_pulumi_stack_output(aws, tmp_path, fake_pulumi, monkeypatch):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    monkeypatch.setenv("FAKE_PULUMI_LB_ARN", alb.load_balancer)
    proj = make_project(tmp_path, step=1)
    expect(invoke("--project-dir", str(proj), "status", "--stack", "production"), 0, "in sync")
    assert fake_pulumi.calls == [["stack", "output", "loadBalancerArn", "--stack", "production"]]
    assert fake_pulumi.cwds == [str(proj.resolve())]


def test_status_without_arn_or_pulumi_is_a_usage_error(tmp_path, no_pulumi):
    proj = make_project(tmp_path, step=1)
    expect(invoke("--project-dir", str(proj), "status", "--stack", "production"), 2,
           "pass --load-balancer-arn", "pulumi stack output loadBalancerArn --stack production")


def test_status_failing_stack_output_is_a_usage_error(tmp_path, fake_pulumi):
    proj = make_project(tmp_path, step=1)
    expect(invoke("--project-dir", str(proj), "status", "--stack", "production"), 2,
           "pulumi stack output loadBalancerArn --stack production failed (exit 255)", "does not have output property")


def test_status_unknown_load_balancer_fails_without_traceback(aws, tmp_path, no_pulumi):
    proj = make_project(tmp_path, step=1)
    missing = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/nope/0123456789abcdef"
    expect(invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", missing), 1,
           "could not read the live load balancer state")


# --------------------------------------------------------------------------- gate (moto + loopback HTTP)


def test_gate_passes_on_a_healthy_candidate(aws, tmp_path, healthy_url, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    aws.put_minutes(alb, stable=(20000, 100), candidate=(2000, 10), ago=range(2, 10))
    aws.stamp_step(alb, 11)
    proj = make_project(tmp_path, step=1)
    r = invoke("--project-dir", str(proj), "gate", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(healthy_url))
    expect(r, 0, "colour green", "http-probes", "target-health", "metrics", "judge: pass · e-value",
           "PASS: green passed its health gate: 10/10 probes", "judge: pass: no regression")


def test_gate_is_pending_on_thin_traffic_and_says_how_long(aws, tmp_path, healthy_url, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    aws.put_minutes(alb, stable=(270, 1), candidate=(30, 0), ago=range(2, 8))
    aws.stamp_step(alb, 9)
    proj = make_project(tmp_path, step=1)
    r = invoke("--project-dir", str(proj), "gate", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(healthy_url))
    expect(r, 1, "judge: insufficient · e-value", "more min at current traffic", "error: PENDING: green must pass")


def test_gate_fails_a_regressed_candidate_on_the_judge(aws, tmp_path, healthy_url, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    aws.put_minutes(alb, stable=(20000, 100), candidate=(2000, 60), ago=range(2, 5))
    aws.stamp_step(alb, 6)
    proj = make_project(tmp_path, step=1)
    r = invoke("--project-dir", str(proj), "gate", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(healthy_url), "--format", "json")
    expect(r, 1, "error: FAIL: green must pass its health gate")
    data = json.loads(r.output[: r.output.rindex("}") + 1])
    assert data["judge"]["verdict"] == "fail" and data["pending"] is False


def test_gate_fails_on_a_503_candidate(aws, tmp_path, unhealthy_url, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    proj = make_project(tmp_path, step=1)
    r = invoke("--project-dir", str(proj), "gate", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(unhealthy_url))
    expect(r, 1, "FAIL", "error: FAIL: green must pass its health gate before it gets more traffic", "HTTP 503")


def test_gate_thresholds_file_and_json(aws, tmp_path, healthy_url, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    proj = make_project(tmp_path, step=1)
    th = tmp_path / "th.json"
    th.write_text(json.dumps({"probes": 3, "maxP95Ms": 2000, "judge": "advisory"}))
    r = invoke("--project-dir", str(proj), "gate", "--stack", "production", "--color", "blue", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(healthy_url), "--thresholds", str(th), "--format", "json")
    expect(r, 0)
    data = json.loads(r.output)
    assert data["color"] == "blue" and data["passed"] is True
    assert data["checks"][0]["reason"].startswith("3/3 probes"), data["checks"][0]


def test_gate_bad_thresholds_are_usage_errors(tmp_path, healthy_url, no_pulumi):
    proj = make_project(tmp_path, step=1)
    th = tmp_path / "th.json"
    th.write_text(json.dumps({"probez": 3}))
    expect(invoke("--project-dir", str(proj), "gate", "--stack", "production", "--probe-base-url", base(healthy_url), "--thresholds", str(th)),
           2, "probez: unknown gate setting")
    th.write_text("{not json")
    expect(invoke("--project-dir", str(proj), "gate", "--stack", "production", "--probe-base-url", base(healthy_url), "--thresholds", str(th)),
           2, "cannot read thresholds file")


def test_gate_probes_only_without_a_load_balancer(tmp_path, healthy_url, no_pulumi):
    proj = make_project(tmp_path, step=1)
    r = invoke("--project-dir", str(proj), "gate", "--stack", "production", "--probe-base-url", base(healthy_url))
    expect(r, 0, "probing only", "target-health skipped", "PASS")


# --------------------------------------------------------------------------- advance / rollback / finish


def test_advance_without_pulumi_prints_the_commands_and_changes_nothing(tmp_path, no_pulumi):
    proj = make_project(tmp_path, step=2)
    before = (proj / "Pulumi.production.yaml").read_text()
    r = invoke("--project-dir", str(proj), "advance", "--stack", "production", "--yes")
    expect(r, 1, "not on PATH, so nothing was changed",
           "pulumi config set --path bluegreen:rollout.step 3 --stack production",
           "pulumi up --refresh --stack production --policy-pack policy --policy-pack-config policy/production.json --yes")
    assert (proj / "Pulumi.production.yaml").read_text() == before


def test_dry_run_exits_zero_with_the_commands(tmp_path, no_pulumi):
    proj = make_project(tmp_path, step=5)
    r = invoke("--project-dir", str(proj), "finish", "--stack", "production", "--dry-run")
    expect(r, 0, "dry run, nothing changed", "finish: green becomes stable at step 0",
           "pulumi config set --path bluegreen:rollout.stable green --stack production",
           "pulumi config set --path bluegreen:rollout.step 0 --stack production")


def test_advance_runs_the_exact_commands(tmp_path, fake_pulumi):
    proj = make_project(tmp_path, step=2)
    r = invoke("--project-dir", str(proj), "advance", "--stack", "production", "--yes")
    expect(r, 0, "step 2 -> 3 of 5: promotion: green 25% -> 50%", "Resources: 1 updated", "done:")
    assert fake_pulumi.calls == [
        ["config", "set", "--path", "bluegreen:rollout.step", "3", "--stack", "production"],
        ["up", "--refresh", "--stack", "production", "--policy-pack", "policy", "--policy-pack-config", "policy/production.json", "--yes"],
    ]
    assert set(fake_pulumi.cwds) == {str(proj.resolve())}


def test_rollback_runs_the_exact_commands(tmp_path, fake_pulumi):
    proj = make_project(tmp_path, step=3)
    expect(invoke("--project-dir", str(proj), "rollback", "--stack", "production", "--to-step", "1", "--yes", "--policy-pack", "policy"),
           0, "partial-rollback: blue 50% -> 90%")
    expect(invoke("--project-dir", str(proj), "rollback", "--stack", "production", "--yes"), 0, "full-rollback: blue 50% -> 100%")
    sets = [c for c in fake_pulumi.calls if c[0] == "config"]
    assert sets == [
        ["config", "set", "--path", "bluegreen:rollout.step", "1", "--stack", "production"],
        ["config", "set", "--path", "bluegreen:rollout.step", "0", "--stack", "production"],
    ]
    assert sum(c[0] == "up" for c in fake_pulumi.calls) == 2


def test_finish_sets_stable_then_step(tmp_path, fake_pulumi):
    proj = make_project(tmp_path, step=5)
    expect(invoke("--project-dir", str(proj), "finish", "--stack", "production", "--yes"), 0, "green becomes stable")
    assert fake_pulumi.calls[:2] == [
        ["config", "set", "--path", "bluegreen:rollout.stable", "green", "--stack", "production"],
        ["config", "set", "--path", "bluegreen:rollout.step", "0", "--stack", "production"],
    ]
    assert fake_pulumi.calls[2][0] == "up"


@pytest.mark.parametrize(
    "command, step, text",
    [
        (["advance"], 5, "already 5, the last step (green at 100%); run finish"),
        (["rollback"], 0, "already 0: all traffic is on blue, nothing to roll back"),
        (["rollback", "--to-step", "4"], 2, "a rollback goes to a step from 0 to 1"),
        (["finish"], 3, "finish needs the candidate at 100%"),
        (["park"], 2, "park needs bluegreen:rollout.step 0"),
        (["release", "--image", "web:2"], 1, "a new release starts at bluegreen:rollout.step 0"),
    ],
)
def test_refused_moves_exit_1_and_run_nothing(tmp_path, fake_pulumi, command, step, text):
    proj = make_project(tmp_path, step=step)
    expect(invoke("--project-dir", str(proj), command[0], "--stack", "production", "--yes", *command[1:]), 1, "error: ", text)
    # nothing run: no config set, no up (a rollback to step 0 may first read the load balancer's ARN to look for
    # the reflex's abort marker, a read-only `stack output`)
    assert [c for c in fake_pulumi.calls if c[:2] != ["stack", "output"]] == []


def test_failed_up_restores_the_config_and_notifies_a_block(tmp_path, fake_pulumi, webhook, monkeypatch):
    monkeypatch.setenv("FAKE_PULUMI_UP_EXIT", "255")
    proj = make_project(tmp_path, step=1)
    r = invoke("--project-dir", str(proj), "advance", "--stack", "production", "--yes")
    expect(r, 1, "healthy-promotion", "advance refused", "exited 255", "the stack file is back as it was", "notified: block")
    assert fake_pulumi.calls[-1] == ["config", "set", "--path", "bluegreen:rollout.step", "1", "--stack", "production"]
    assert len(webhook.received) == 1
    ctype, body = webhook.received[0]
    assert ctype == "application/json" and set(body) == {"text"}
    assert "bluegreen block on *production*" in body["text"] and "advance refused" in body["text"]


def test_failed_config_set_deploys_nothing(tmp_path, fake_pulumi, monkeypatch):
    monkeypatch.setenv("FAKE_PULUMI_SET_EXIT", "1")
    proj = make_project(tmp_path, step=1)
    expect(invoke("--project-dir", str(proj), "advance", "--stack", "production", "--yes"), 1, "exited 1; nothing was deployed")
    assert [c[0] for c in fake_pulumi.calls] == ["config"]


def test_confirmation_is_asked_without_yes(tmp_path, fake_pulumi):
    proj = make_project(tmp_path, step=1)
    expect(invoke("--project-dir", str(proj), "advance", "--stack", "production", input="n\n"), 1, "Go ahead?", "not confirmed; nothing changed")
    assert fake_pulumi.calls == []
    expect(invoke("--project-dir", str(proj), "advance", "--stack", "production"), 1, "not confirmed")  # no input: EOF
    expect(invoke("--project-dir", str(proj), "advance", "--stack", "production", input="y\n"), 0, "done:")
    assert [c[0] for c in fake_pulumi.calls] == ["config", "up"]


def test_config_only_sets_without_up(tmp_path, fake_pulumi):
    proj = make_project(tmp_path, step=2)
    expect(invoke("--project-dir", str(proj), "rollback", "--stack", "production", "--config-only", "--yes"), 0, "not deployed (--config-only)")
    assert fake_pulumi.calls == []  # --config-only edits the stack file itself: no Pulumi CLI needed
    assert yaml.safe_load((proj / "Pulumi.production.yaml").read_text())["config"]["bluegreen:rollout"]["step"] == 0


def test_release_and_park(tmp_path, fake_pulumi):
    proj = make_project(tmp_path, step=0, idle={"policy": "zero", "delayMinutes": 15, "parked": True})
    expect(invoke("--project-dir", str(proj), "release", "--stack", "production", "--image", "web:1.5.0", "--yes"), 0, "release web:1.5.0 on green")
    assert fake_pulumi.calls[:2] == [
        ["config", "set", "--path", "bluegreen:colors.green.image", "web:1.5.0", "--stack", "production"],
        ["config", "set", "--path", "bluegreen:idle.parked", "false", "--stack", "production"],
    ]
    expect(invoke("--project-dir", str(proj), "park", "--stack", "production", "--yes", "--ignore-delay"), 1, "already true")
    proj2 = make_project(tmp_path / "two", step=0, idle={"policy": "zero"})
    # --ignore-delay: the wait for idle.delayMinutes reads the live listener (tests/test_operator_cli.py)
    expect(invoke("--project-dir", str(proj2), "park", "--stack", "production", "--yes", "--ignore-delay"), 0, "park green: the idle colour scales to 0")
    assert fake_pulumi.calls[-2] == ["config", "set", "--path", "bluegreen:idle.parked", "true", "--stack", "production"]


# --------------------------------------------------------------------------- notifications


def test_promotion_is_notified(tmp_path, fake_pulumi, webhook):
    proj = make_project(tmp_path, step=0)
    expect(invoke("--project-dir", str(proj), "advance", "--stack", "production", "--yes"), 0, "notified: promotion")
    (_, body), = webhook.received
    assert body["text"].startswith(":arrow_up: bluegreen promotion on *production*: step 0 -> 1 of 5")


def test_a_dead_webhook_never_fails_the_command(tmp_path, fake_pulumi, refused_url, monkeypatch):
    monkeypatch.setenv("BLUEGREEN_WEBHOOK_URL", refused_url)
    proj = make_project(tmp_path, step=0)
    expect(invoke("--project-dir", str(proj), "advance", "--stack", "production", "--yes"), 0,
           "done:", "warning: the promotion notification was not delivered (webhook unreachable")


def test_webhook_errors_are_reported(webhook):
    webhook.status = 500
    d = send(webhook.url, "x")
    assert d == Delivery(False, "webhook answered HTTP 500: ok")
    assert send(None, "x") == Delivery(False, "off")
    assert send("not a url", "x").reason.startswith("webhook failed (")


def test_notify_command(tmp_path, webhook):
    proj = make_project(tmp_path, step=2)
    expect(invoke("--project-dir", str(proj), "notify", "--stack", "production", "--event", "promotion"), 0, "notified: promotion")
    assert webhook.received[-1][1]["text"].endswith("step 2 of 5, blue stable: blue 75% · green 25%")
    expect(invoke("notify", "--stack", "production", "--event", "rollback", "rolled", "back"), 0)
    assert webhook.received[-1][1]["text"] == ":rewind: bluegreen rollback on *production*: rolled back"


def test_notify_is_off_by_default(tmp_path):
    expect(invoke("notify", "--stack", "production", "--event", "block", "x"), 0, "notifications are off")


def test_format_message_link_and_unknown_event():
    assert format_message("block", "s", "t", link="https://x/y") == ":no_entry: bluegreen block on *s*: t <https://x/y|details>"
    with pytest.raises(ValueError):
        format_message("party", "s", "t")


# --------------------------------------------------------------------------- watch (one watcher round)


def test_watch_rolls_back_a_failing_candidate_carrying_traffic(aws, tmp_path, unhealthy_url, no_pulumi, webhook):
    alb = aws.build_alb(stable="blue", candidate_weight=25)
    proj = make_project(tmp_path, step=2)
    out = tmp_path / "github_output"
    r = invoke("--project-dir", str(proj), "watch", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(unhealthy_url), "--github-output", str(out))
    expect(r, 1, "rollback: production: green failed its health gate while carrying 25% of traffic at step 2", "notified: rollback")
    lines = out.read_text().splitlines()
    assert lines[:2] == ["action=rollback", "to_step=0"] and lines[2].startswith("reason=production: green failed")
    assert "HTTP 503" in webhook.received[0][1]["text"]


def test_watch_keeps_baking_while_the_evidence_is_insufficient(aws, tmp_path, healthy_url, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=25)
    aws.put_minutes(alb, stable=(270, 1), candidate=(90, 0), ago=range(2, 6))
    aws.stamp_step(alb, 7)
    proj = make_project(tmp_path, step=2)
    r = invoke("--project-dir", str(proj), "watch", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(healthy_url))
    expect(r, 0, "judge: insufficient", "none: production: green at step 2 of 5", "still earning its evidence")


def test_watch_rolls_back_on_the_judge_s_fail(aws, tmp_path, healthy_url, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=25)
    aws.put_minutes(alb, stable=(15000, 75), candidate=(5000, 150), ago=range(2, 5))
    aws.stamp_step(alb, 6)
    proj = make_project(tmp_path, step=2)
    r = invoke("--project-dir", str(proj), "watch", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(healthy_url))
    expect(r, 1, "judge: fail", "rollback: production: green failed its health gate while carrying 25% of traffic",
           "evidence of a regression")


def test_status_shows_the_judge_and_a_bake_plan(aws, tmp_path, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=25)
    aws.put_minutes(alb, stable=(2250, 11), candidate=(750, 4), ago=range(2, 30))
    aws.stamp_step(alb, 31)
    proj = make_project(tmp_path, step=2)
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--bake-plan", "1")
    expect(r, 0, "judge: ", "e-value", "bake plan from the last 1 day(s)", "2x regression", "3x regression")
    data = json.loads(invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn",
                             alb.load_balancer, "--bake-plan", "1", "--format", "json").output)
    assert data["judge"]["verdict"] in ("pass", "insufficient") and data["judge"]["minutes"] > 0
    steps = data["bakePlan"]["steps"]
    assert [s["weight"] for s in steps] == [10, 25, 50, 75, 100]
    assert steps[0]["minutes3x"] < steps[0]["minutes2x"], steps


def test_watch_healthy_candidate_does_nothing(aws, tmp_path, healthy_url, no_pulumi):
    alb = aws.build_alb(stable="blue", candidate_weight=25)
    proj = make_project(tmp_path, step=2)
    r = invoke("--project-dir", str(proj), "watch", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
               "--probe-base-url", base(healthy_url), "--format", "json")
    expect(r, 0)
    assert json.loads(r.output)["action"] == "none"


def test_watch_unreadable_load_balancer_alerts(aws, tmp_path, no_pulumi):
    proj = make_project(tmp_path, step=2)
    missing = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/nope/0123456789abcdef"
    r = invoke("--project-dir", str(proj), "watch", "--stack", "production", "--load-balancer-arn", missing)
    expect(r, 1, "alert: production: rollout at step 2 but the live load balancer could not be read; nothing changed")


# --------------------------------------------------------------------------- pure pieces


def _stack(step: int, stable: str = "blue", **extra):
    raw = yaml.safe_load((ROOT / "Pulumi.production.yaml").read_text())["config"]
    bg = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("bluegreen:")}
    bg["rollout"] = {"stable": stable, "steps": STEPS, "step": step}
    bg.update(extra)
    return parse_stack_config(bg)


def test_operations_restore_in_reverse_and_quote_for_the_shell():
    op = operations.finish(_stack(5))
    assert op.restore_commands("production") == [
        ["pulumi", "config", "set", "--path", "bluegreen:rollout.step", "5", "--stack", "production"],
        ["pulumi", "config", "set", "--path", "bluegreen:rollout.stable", "blue", "--stack", "production"],
    ]
    assert operations.shell_line(["pulumi", "config", "set", "--path", "a b", "1"]) == "pulumi config set --path 'a b' 1"
    with pytest.raises(TransitionError, match="with no spaces"):
        operations.release(_stack(0), "web 2")


@pytest.mark.parametrize(
    "live, expected",
    [({"blue": 90, "green": 10}, {"blue": 90, "green": 10}), ({"blue": 9, "green": 1}, {"blue": 90, "green": 10}),
     ({"blue": 1}, {"blue": 100, "green": 0}), ({}, {"blue": 0, "green": 0})],
)
def test_percentages(live, expected):
    assert operations.percentages(live) == expected


def test_compare_traffic_more_than_declared():
    d = operations.compare_traffic("production", RolloutConfig("blue", tuple(STEPS), 1), {"blue": 50, "green": 50}, "blue")
    assert d is not None and "green gets more traffic than declared (50% > 10%)" in d.explanation
    assert operations.compare_traffic("production", RolloutConfig("blue", tuple(STEPS), 1), {"blue": 90, "green": 10}, "blue") is None
