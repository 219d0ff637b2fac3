"""`python -m rollout plan` with the real policy pack, offline (issue 5).

The pack is started as the engine starts it (`python policy`, rollout.analyzer over gRPC) in its
offline mode: the previous simulated step stands in for live AWS. These tests check the verdicts the
plan shows, that a skip-ahead and a rollback past a migration marker are refused, that the offline
pack makes no AWS call (a loopback listener counting connections stands where AWS would be), and
that offline mode cannot be switched on by a stack's policy config in a real preview/up.
"""

from __future__ import annotations

import json
import secrets
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import render
from rollout.analyzer import NOT_EVALUATED_OFFLINE, OFFLINE_KEY, POLICY_DIR, PolicyPackClient, offline_pack_env, policy_pack_env
from rollout.plan import build_plan, check_policy, offline_section
from rollout.simulate import ROOT, run_program
from tests.test_cli import expect, invoke, make_project

PROD_LISTENER = "aws:lb/listener:Listener"


def _plan_json(*args: str, code: int = 0) -> dict:
    """The plan as JSON; exit 1 means the pack would refuse a step (the JSON is still complete)."""
    result = invoke(*args, "--format", "json")
    expect(result, code)
    return json.loads(result.stdout)


def _real(row: dict) -> list[dict]:
    """A row's violations, without the 'not evaluated offline' notes."""
    return [v for v in row["policy"] if not v["message"].startswith(NOT_EVALUATED_OFFLINE)]


def _skipped(row: dict) -> set[str]:
    return {v["policyName"] for v in row["policy"] if v["message"].startswith(NOT_EVALUATED_OFFLINE)}


class _Counter(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.connections = 0
        counter = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                counter.connections += 1

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def aws_stand_in() -> Iterator[_Counter]:
    """A loopback listener where AWS would be: counts every connection made to it."""
    server = _Counter()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _endpoint(server: _Counter) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


# --------------------------------------------------------------------------- offline mode cannot leak


def test_shipped_pack_configs_never_enable_offline_mode():
    for path in sorted(POLICY_DIR.glob("*.json")):
        config = json.loads(path.read_text())
        for name, section in config.items():
            assert not (isinstance(section, dict) and OFFLINE_KEY in section), f"{path.name}: {name} carries `{OFFLINE_KEY}`"
        assert "BLUEGREEN_POLICY_OFFLINE" not in path.read_text(), path.name
    for name in ("production.json", "staging.json"):
        assert (POLICY_DIR / name).is_file(), name
    assert render.NOT_EVALUATED_OFFLINE == NOT_EVALUATED_OFFLINE


def _listener_of(sim):
    return next(r for r in sim.by_type(PROD_LISTENER) if r.inputs["tags"].get("bluegreen:listener") == "production")


def test_offline_section_in_a_real_run_is_refused_not_obeyed(tmp_path, aws_stand_in):
    """A pack without the token (a real preview/up) that gets an `offline` section fails closed."""
    before, after = run_program("production"), run_program("production", overrides={"bluegreen:rollout.step": 1})
    section = offline_section(secrets.token_hex(16), before)
    config = json.loads((POLICY_DIR / "production.json").read_text())
    listener = _listener_of(after)
    with PolicyPackClient(env=policy_pack_env(_endpoint(aws_stand_in), tmp_path)) as pack:
        for name in pack.policies():  # as if someone pasted the plan's config into a stack's pack config
            given = config.get(name, {})
            config[name] = {**({"enforcementLevel": given} if isinstance(given, str) else given), OFFLINE_KEY: section}
        pack.configure(config)
        result = pack.analyze(listener.type, listener.inputs, urn=listener.urn, name=listener.name)
    for policy in ("one-step-at-a-time", "bake-time", "healthy-promotion"):
        refused = result.find(policy, "only `python -m rollout plan` may send")
        assert refused and refused[0].level == "mandatory", result
    assert not [v for v in result.violations if NOT_EVALUATED_OFFLINE in v.message], result
    assert aws_stand_in.connections == 0  # refused before reading anything


def test_offline_token_without_its_section_fails_closed_and_reads_nothing(aws_stand_in):
    after = run_program("production", overrides={"bluegreen:rollout.step": 1})
    listener = _listener_of(after)
    token = secrets.token_hex(16)
    with PolicyPackClient(env=offline_pack_env(token, aws_endpoint=_endpoint(aws_stand_in))) as pack:
        pack.configure_file(POLICY_DIR / "production.json")
        result = pack.analyze(listener.type, listener.inputs, urn=listener.urn, name=listener.name)
        wrong = {name: {OFFLINE_KEY: offline_section("not-the-token", after)} for name in pack.policies()}
        pack.configure(wrong)
        mismatched = pack.analyze(listener.type, listener.inputs, urn=listener.urn, name=listener.name)
    for res in (result, mismatched):
        assert res.find("one-step-at-a-time", "runs offline"), res
        assert res.find("healthy-promotion", "runs offline"), res
    assert aws_stand_in.connections == 0


def test_offline_plan_makes_no_aws_call(aws_stand_in):
    plan = check_policy(build_plan("production"), pack_config=POLICY_DIR / "production.json", aws_endpoint=_endpoint(aws_stand_in))
    assert aws_stand_in.connections == 0
    text = json.dumps(plan.to_dict()["rows"])
    for fault in ("could not", "fails closed", "cannot be told", "unknown", "runs offline"):
        assert fault not in text, text


# --------------------------------------------------------------------------- what the plan shows


def test_plan_production_passes_policy_on_every_step():
    data = _plan_json("plan", "--stack", "production")
    assert data["policyChecked"] is True
    rows = data["rows"]
    assert [r["label"] for r in rows][-1].startswith("finish")
    for row in rows:
        assert _real(row) == [], row  # the security baseline and every traffic policy pass
    assert _skipped(rows[0]) == set() and _skipped(rows[-1]) == set()  # no promotion: nothing to skip
    assert _skipped(rows[1]) == {"healthy-promotion"}  # 0% -> 10%: nothing to bake yet
    for row in rows[2:-1]:
        assert _skipped(row) == {"healthy-promotion", "bake-time"}, row
        assert all(v["enforcementLevel"] == "advisory" for v in row["policy"]), row
    md = invoke("plan", "--stack", "production", "--format", "markdown").output
    # The offline note is said once under the table, not on every row (tests/test_operator_cli.py).
    assert "| policy |" in md and md.count("not evaluated offline") == 1, md
    assert "_Note: not evaluated offline (they need live AWS and run at `pulumi preview` / `pulumi up`): healthy-promotion, bake-time._" in md, md


def test_plan_staging_http_listener_is_advisory():
    rows = _plan_json("plan", "--stack", "staging", "--to-step", "1")["rows"]
    for row in rows:
        found = _real(row)
        assert found and all(v["enforcementLevel"] == "advisory" for v in found), row
        https = [v for v in found if v["policyName"] == "alb-https-only"]
        assert any("production listener on port 80 is HTTP" in v["message"] for v in https), row


def test_plan_skip_ahead_is_a_mandatory_violation(tmp_path):
    proj = make_project(tmp_path, step=1)
    data = _plan_json("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "3", code=1)
    assert [r["weights"]["green"] for r in data["rows"]] == [10, 50]
    assert _real(data["rows"][0]) == []
    found = _real(data["rows"][1])
    assert [(v["enforcementLevel"], v["policyName"]) for v in found] == [("mandatory", "one-step-at-a-time")], found
    assert "green 10% -> 50% skips 1 step(s) (25%)" in found[0]["message"]
    assert found[0]["resource"] == "web-traffic-production"
    text = invoke("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "3")
    expect(text, 1, "mandatory one-step-at-a-time", "1 mandatory", "the policy pack would refuse 1 change(s) in this plan")


def test_plan_rollback_past_a_migration_marker_is_noted_never_refused(tmp_path):
    """Changed deliberately: rollbacks are never refused (docs/safety-model.md, invariant 5)."""
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:"
    colors = {"blue": {"image": image + "1.4.1"}, "green": {"image": image + "1.5.0", "breakingMigration": True}}
    proj = make_project(tmp_path, step=3, colors=colors)
    data = _plan_json("--project-dir", str(proj), "plan", "--stack", "production", "--to-step", "1")
    row = data["rows"][1]
    assert "rollback" in row["kind"], row
    found = _real(row)
    guard = [v for v in found if v["policyName"] == "migration-guard"]
    assert guard and guard[0]["enforcementLevel"] == "advisory", found
    assert not [v for v in found if v["enforcementLevel"] == "mandatory"], found
    assert "green 50% -> 10%" in guard[0]["message"]
    assert _skipped(row) == set()  # a rollback is never held back by health or bake time
    # without the marker the same rollback passes
    proj2 = make_project(tmp_path / "unmarked", step=3)
    assert _real(_plan_json("--project-dir", str(proj2), "plan", "--stack", "production", "--to-step", "1")["rows"][1]) == []


def test_no_policy_skips_the_pack():
    data = _plan_json("plan", "--stack", "production", "--to-step", "1", "--no-policy")
    assert data["policyChecked"] is False and all(r["policy"] == [] for r in data["rows"])
    md = invoke("plan", "--stack", "production", "--to-step", "1", "--no-policy", "--format", "markdown").output
    assert "| policy |" not in md


def test_the_cli_does_not_import_the_tests():
    for path in (ROOT / "rollout").glob("*.py"):
        assert "from tests" not in path.read_text() and "import tests" not in path.read_text(), path.name


def test_a_resource_whose_inputs_change_between_rows_is_judged_again():
    """The plan sends a resource that reads nothing of the previous row only when its inputs differ from an earlier
    row's (`rollout.plan._judge`): the same load balancer gets the same verdict, a changed one its own."""
    from types import SimpleNamespace

    from rollout.plan import OfflinePack, PlanRow
    from rollout.simulate import load_stack_file, run_program, set_path

    protected = set_path(load_stack_file("staging"), "bluegreen:traffic.deletionProtection", True)
    rows = [run_program("staging"), run_program("staging"), run_program("staging", protected), run_program("staging")]
    plan = SimpleNamespace(rows=[PlanRow(0, f"row {i}", {"blue": 100, "green": 0}, "", "step", (), simulation=s) for i, s in enumerate(rows)])
    pack = OfflinePack("staging")
    try:
        verdicts = pack.verdicts(plan)  # submits every row, in order
    finally:
        pack.close()
    unprotected = [any(v["policyName"] == "alb-deletion-protection" for v in verdicts[i]) for i in range(len(rows))]
    assert unprotected == [True, True, False, True], unprotected
