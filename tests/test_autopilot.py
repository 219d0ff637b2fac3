"""The autopilot: its decision as a pure function (properties over every input), its config keys (one-line
errors naming the key, before any resource), and the command end to end against moto_server and a local
bare git repository: the commit it makes, or does not make, and its message."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.autopilot import Action, decide
from rollout.config import AutopilotConfig
from rollout.rules import RolloutConfig

STEPS = (10, 25, 50, 75, 100)


def _decide(step=2, *, enabled=True, approve_above=50, max_bake=60, live="declared", baked=15.0, min_bake=10.0, verdict="pass",
            gate=True, aborted=False, steps=STEPS, declared_minutes=None):
    declared = RolloutConfig("blue", steps, step)
    live = declared.weights if live == "declared" else live
    return decide("production", declared, AutopilotConfig(enabled, approve_above, max_bake), live_weights=live, baked_minutes=baked,
                  min_bake_minutes=min_bake, verdict=verdict, gate_passed=gate, aborted=aborted, declared_minutes=declared_minutes)


def test_pass_after_the_bake_advances_one_step():
    d = _decide(step=2)
    assert (d.action, d.to_step) == (Action.ADVANCE, 3) and "advancing to step 3 (50%)" in d.reason, d


@pytest.mark.parametrize("kw, action, words", [
    ({"enabled": False}, Action.NONE, "autopilot is off"),
    ({"step": 0}, Action.NONE, "no rollout in flight"),
    ({"step": 5}, Action.NONE, "finishing is an operator's call"),
    ({"aborted": True}, Action.STOP, "the reflex rolled production back"),
    ({"live": None, "verdict": None, "gate": None}, Action.WAIT, "could not be read"),
    ({"live": {"blue": 90, "green": 10}}, Action.WAIT, "not live yet"),
    ({"live": {"blue": 90, "green": 10}, "declared_minutes": 59.0}, Action.WAIT, "not live yet"),
    ({"live": {"blue": 90, "green": 10}, "declared_minutes": 61.0}, Action.STOP, "committed 61 min ago and is still not live"),
    ({"baked": None}, Action.WAIT, "no bake clock"),
    ({"baked": 4.0}, Action.WAIT, "baked 4 of 10 min"),
    ({"verdict": "fail", "gate": False}, Action.STOP, "fails its health gate"),
    ({"verdict": "pass", "gate": False}, Action.STOP, "fails its health gate"),
    ({"verdict": "insufficient", "gate": False, "baked": 30.0}, Action.WAIT, "needs more evidence"),
    ({"verdict": "insufficient", "gate": False, "baked": 61.0}, Action.STOP, "maxBakeMinutes 60"),
    ({"verdict": None, "gate": True}, Action.STOP, "no judge verdict"),
    ({"step": 3}, Action.APPROVAL, "step 4 (75%) is above autopilot.approveAbove (50%)"),
])
def test_each_row_of_the_table(kw, action, words):
    d = _decide(**kw)
    assert d.action is action and words in d.reason, d


verdicts = st.sampled_from(["pass", "fail", "insufficient", None])
gates = st.sampled_from([True, False, None])


@st.composite
def rounds(draw):
    steps = tuple(sorted(draw(st.sets(st.integers(1, 99), max_size=5)))) + (100,)
    step = draw(st.integers(0, len(steps)))
    declared = RolloutConfig("blue", steps, step)
    live = draw(st.one_of(st.none(), st.just(declared.weights), st.builds(lambda w: {"blue": 100 - w, "green": w}, st.integers(0, 100))))
    return dict(
        declared=declared,
        config=AutopilotConfig(draw(st.booleans()), draw(st.integers(0, 100)), draw(st.integers(1, 240))),
        live_weights=live,
        baked_minutes=draw(st.one_of(st.none(), st.floats(0, 500))),
        min_bake_minutes=draw(st.floats(0, 60)),
        verdict=draw(verdicts),
        gate_passed=draw(gates),
        aborted=draw(st.booleans()),
    )


@given(rounds())
def test_it_advances_only_one_step_only_on_pass_after_the_bake_with_live_as_declared(r):
    d = decide("production", r["declared"], r["config"], **{k: v for k, v in r.items() if k not in ("declared", "config")})
    declared = r["declared"]
    if d.action in (Action.ADVANCE, Action.APPROVAL):
        assert d.to_step == declared.step + 1 <= declared.last_step
        assert r["config"].enabled and not r["aborted"] and r["verdict"] == "pass" and r["gate_passed"] is True
        assert r["baked_minutes"] is not None and r["baked_minutes"] >= r["min_bake_minutes"]
        assert r["live_weights"] is not None and {c: w for c, w in r["live_weights"].items()} == declared.weights
        above = declared.steps[declared.step] > r["config"].approve_above
        assert (d.action is Action.APPROVAL) == above
    else:
        assert d.to_step is None


@given(rounds())
def test_fail_never_advances_and_insufficient_past_the_cap_stops(r):
    d = decide("production", r["declared"], r["config"], **{k: v for k, v in r.items() if k not in ("declared", "config")})
    if r["verdict"] == "fail":
        assert d.action in (Action.NONE, Action.WAIT, Action.STOP), d
    live_ok = r["live_weights"] is not None and r["live_weights"] == r["declared"].weights
    if (r["config"].enabled and not r["aborted"] and 0 < r["declared"].step < r["declared"].last_step and live_ok
            and r["verdict"] == "insufficient" and r["baked_minutes"] is not None
            and r["baked_minutes"] >= max(r["config"].max_bake_minutes, r["min_bake_minutes"])):
        assert d.action is Action.STOP and "maxBakeMinutes" in d.reason, d


# --------------------------------------------------------------------------- config keys


@pytest.mark.parametrize("value, key, words", [
    ({"enabled": "yes"}, "bluegreen:autopilot.enabled", "true | false"),
    ({"approveAbove": 150}, "bluegreen:autopilot.approveAbove", "between 0 and 100"),
    ({"maxBakeMinutes": 0}, "bluegreen:autopilot.maxBakeMinutes", "between 1 and 1440"),
    ({"minBakeMinutes": 90, "maxBakeMinutes": 60}, "bluegreen:autopilot.minBakeMinutes", "at most maxBakeMinutes (60)"),
    ({"approveabove": 50}, "bluegreen:autopilot.approveabove", "did you mean 'approveAbove'"),
    ("on", "bluegreen:autopilot", "must be an object with fields enabled, approveAbove"),
])
def test_bad_autopilot_config_is_refused_before_any_resource(value, key, words):
    import pulumi

    from rollout.simulate import RecordingMocks, load_stack_file, run_program, set_path

    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program("production", set_path(load_stack_file("production"), "bluegreen:autopilot", value), mocks=mocks)
    message = str(err.value)
    assert f"{key}:" in message and words in message and "\n" not in message, message
    assert mocks.records == [], [a.name for a, _ in mocks.records]


def test_autopilot_defaults_and_a_valid_section():
    from rollout.config import parse_stack_config
    from rollout.simulate import load_stack_file

    raw = {k.split(":", 1)[1]: v for k, v in load_stack_file("production").items() if k.startswith("bluegreen:")}
    assert parse_stack_config(raw).autopilot == AutopilotConfig(False, 50, 60, None)
    raw["autopilot"] = {"enabled": True, "approveAbove": 25, "maxBakeMinutes": 90, "minBakeMinutes": 15}
    assert parse_stack_config(raw).autopilot == AutopilotConfig(True, 25, 90, 15)


# --------------------------------------------------------------------------- the command, end to end

import subprocess  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402

from rollout.desired import format_since  # noqa: E402
from tests.test_cli import expect, invoke, make_project, no_pulumi  # noqa: E402,F401 - fixture


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A bare 'origin' and a clone holding the project (autopilot on, step 2 of 10/25/50/75/100, bake 10 min)."""
    for k, v in {"GIT_AUTHOR_NAME": "bluegreen-autopilot", "GIT_AUTHOR_EMAIL": "autopilot@example.invalid",
                 "GIT_COMMITTER_NAME": "bluegreen-autopilot", "GIT_COMMITTER_EMAIL": "autopilot@example.invalid",
                 "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}.items():
        monkeypatch.setenv(k, v)
    import shutil

    bin_dir = tmp_path / "gitbin"  # git on PATH, and no Pulumi CLI
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(bin_dir))
    origin = tmp_path / "origin.git"
    _git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(origin))

    def make(step=2, committed_min_ago=0, **autopilot):
        proj = make_project(tmp_path, step=step, autopilot={"enabled": True, **autopilot})
        _git(proj, "init", "--quiet", "-b", "main")
        _git(proj, "add", "-A")
        with monkeypatch.context() as m:
            m.setenv("GIT_COMMITTER_DATE", f"@{int(time.time() - committed_min_ago * 60)} +0000")
            _git(proj, "commit", "--quiet", "-m", f"step {step}")
        _git(proj, "remote", "add", "origin", str(origin))
        _git(proj, "push", "--quiet", "origin", "main")
        return proj, origin

    return make


def _live(aws, *, weight=25, stamp_min=15, candidate=(750, 7)):
    """Moto ALB live at the step's weight, its bake clock `stamp_min` ago, healthy (or not) per-minute counts."""
    alb = aws.build_alb(candidate_weight=weight)
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[
        {"Key": "bluegreen:stable-tg", "Value": alb.target_groups["blue"]},
        {"Key": "bluegreen:weights-since", "Value": format_since(time.time() - stamp_min * 60, {"blue": 100 - weight, "green": weight})}])
    aws.put_minutes(alb, stable=(2250, 22), candidate=candidate, ago=range(2, stamp_min))
    return alb


def _run(proj, alb, url, *extra):
    return invoke("--project-dir", str(proj), "autopilot", "--stack", "production", "--load-balancer-arn", alb.load_balancer,
                  "--probe-base-url", url.rsplit("/healthz", 1)[0], *extra)


def _step_in(text):
    return yaml.safe_load(text)["config"]["bluegreen:rollout"]["step"]


def test_a_pass_after_the_bake_commits_and_pushes_the_next_step(aws, repo, http_server, tmp_path):
    proj, origin = repo(step=2)
    alb = _live(aws)
    out = tmp_path / "gh"
    r = _run(proj, alb, http_server("healthy"), "--push", "origin", "--github-output", str(out))
    expect(r, 0, "advance: production: green passes at step 2", "advancing to step 3 (50%)", "pushed to origin/main")
    subject, body = _git(origin, "log", "-1", "--format=%s"), _git(origin, "log", "-1", "--format=%b")
    assert subject == "autopilot: advance production to step 3 (green 50%)" and "passes at step 2" in body, (subject, body)
    assert _step_in(_git(origin, "show", "main:Pulumi.production.yaml")) == 3
    assert _git(origin, "show", "--stat", "--format=", "main").split("|")[0].strip() == "Pulumi.production.yaml"  # that file only
    lines = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert lines["action"] == "advance" and lines["to_step"] == "3" and lines["commit"] == _git(origin, "rev-parse", "main")


@pytest.mark.parametrize("case, code, words", [
    ("fail", 1, "stop: production: green fails its health gate at step 2"),
    ("young", 0, "wait: production: step 2 has baked"),
    ("insufficient-cap", 1, "autopilot.maxBakeMinutes 20"),
    ("approval", 0, "approval: production: green passes at step 3; step 4 (75%) is above autopilot.approveAbove (50%)"),
    ("not-live", 0, "wait: production: step 2 is declared but not live yet"),
    ("never-live", 1, "stop: production: step 2 was committed 90 min ago and is still not live"),
])
def test_no_commit_unless_it_advances(aws, repo, http_server, case, code, words):
    proj, origin = repo(step=3 if case == "approval" else 2, committed_min_ago=90 if case == "never-live" else 0,
                        **({"maxBakeMinutes": 20} if case == "insufficient-cap" else {}))
    before = _git(origin, "rev-parse", "main")
    alb = _live(aws, weight=50 if case == "approval" else (10 if case in ("not-live", "never-live") else 25),
                stamp_min={"young": 4, "insufficient-cap": 25}.get(case, 15),
                candidate={"fail": (750, 40), "insufficient-cap": (0, 0)}.get(case, (750, 7)))
    r = _run(proj, alb, http_server("healthy"), "--push", "origin")
    expect(r, code, words)
    assert _git(origin, "rev-parse", "main") == before and _git(proj, "status", "--porcelain") == "", "nothing may be committed"


def test_off_by_default_reads_nothing(tmp_path, no_pulumi):
    proj = make_project(tmp_path, step=2)
    r = invoke("--project-dir", str(proj), "autopilot", "--stack", "production")  # no ARN, no AWS: off decides first
    expect(r, 0, "none: production: autopilot is off")


def test_a_push_rejected_because_main_moved_fails_loudly_and_forces_nothing(aws, repo, http_server, tmp_path):
    proj, origin = repo(step=2)
    other = tmp_path / "other"
    _git(tmp_path, "clone", "--quiet", str(origin), str(other))
    (other / "README.md").write_text("moved\n")
    _git(other, "add", "README.md")
    _git(other, "commit", "--quiet", "-m", "someone else")
    _git(other, "push", "--quiet", "origin", "main")
    moved = _git(origin, "rev-parse", "main")
    r = _run(proj, _live(aws), http_server("healthy"), "--push", "origin")
    expect(r, 1)
    assert "autopilot could not commit or push step 3" in r.output and _git(origin, "rev-parse", "main") == moved


# --------------------------------------------------------------------------- the approval notice: once per step

from tests.test_cli import webhook  # noqa: E402,F401 - fixture

# A stand-in `gh` keeping open pull requests' head branches in a file: `pr list --head B ... --jq length`
# prints how many are open for B, `pr create --head B` opens one.
_FAKE_GH = """#!{python}
import os, sys
args, state = sys.argv[1:], os.environ["GH_STATE"]
open_heads = open(state).read().split() if os.path.exists(state) else []
head = args[args.index("--head") + 1]
if args[:2] == ["pr", "list"]:
    print(open_heads.count(head))
elif args[:2] == ["pr", "create"]:
    open(state, "a").write(head + "\\n")
    print("https://github.invalid/o/r/pull/1")
else:
    sys.exit("unexpected gh call: " + " ".join(args))
"""


def test_the_approval_notice_is_sent_once_per_step_while_its_pull_request_is_open(repo, tmp_path, webhook):
    """Every watcher round (5 min) decides `approval` again while the human has not answered; the approval
    job's script, run by bash as GitHub runs it against a bare origin, notifies only in the round that
    opens the step's pull request. Closing it unmerged asks (and notifies) again."""
    import os
    import shutil
    import sys
    from pathlib import Path

    from tests.test_workflows import load, steps

    _, origin = repo(step=3)
    binp = tmp_path / "approvalbin"
    binp.mkdir()
    (binp / "gh").write_text(_FAKE_GH.format(python=sys.executable))
    (binp / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    for f in ("gh", "python"):
        (binp / f).chmod(0o755)
    job = load("watch.yml")["jobs"]["approval"]
    script = next(s for s in steps(job) if "gh pr create" in s.get("run", ""))["run"]
    state = tmp_path / "open-prs"
    env = {**os.environ, "PATH": f"{binp}{os.pathsep}{os.environ['PATH']}", "GH_STATE": str(state), "STACK": "production",
           "TO_STEP": "4", "REASON": "green passes at step 3", "HAS_PUSH_TOKEN": "true",
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "BLUEGREEN_WEBHOOK_URL": webhook.url}
    assert job["env"]["BLUEGREEN_WEBHOOK_URL"] == "${{ secrets.BLUEGREEN_WEBHOOK_URL }}"

    rounds = iter(range(100))

    def round_() -> subprocess.CompletedProcess:
        runner = tmp_path / f"round{next(rounds)}"  # each round is a fresh checkout of main, as on GitHub
        _git(tmp_path, "clone", "--quiet", "--branch", "main", str(origin), str(runner))
        res = subprocess.run([shutil.which("bash", path="/usr/bin:/bin"), "-e", "-c", script], cwd=runner, env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, (res.stdout, res.stderr)
        return res

    round_()
    assert _step_in(_git(origin, "show", "autopilot/production-step-4:Pulumi.production.yaml")) == 4
    assert len(webhook.received) == 1 and "approval needed" in str(webhook.received[0][1])
    for _ in range(2):
        assert "already open for approval" in round_().stdout
    assert len(webhook.received) == 1, "a waiting approval is announced once, not every round"
    state.write_text("")  # the pull request was closed unmerged
    round_()
    assert len(webhook.received) == 2


def test_the_autopilot_round_itself_sends_no_approval_notice(aws, repo, http_server, webhook):
    proj, _ = repo(step=3)
    r = _run(proj, _live(aws, weight=50), http_server("healthy"))
    expect(r, 0, "approval: production: green passes at step 3")
    assert webhook.received == []
