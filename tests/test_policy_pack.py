"""The pack as a publishable unit: its metadata over gRPC, its config files, its bundle, and the
never-raise guard.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import time

import pytest
import yaml

from tests.policy_harness import POLICY_DIR, PolicyPackClient, policy_pack_env

EXPECTED_LEVELS = {
    "healthy-promotion": "mandatory",
    "one-step-at-a-time": "mandatory",
    "bake-time": "mandatory",
    "valid-weights": "mandatory",
    "abort-marker": "mandatory",
    "stable-by-finish": "mandatory",
    "colour-identity": "mandatory",
    "migration-guard": "advisory",
    "live-state-readable": "advisory",
    "workload-frozen-while-live": "mandatory",
    "workload-steady-during-shift": "mandatory",
    "workload-break-glass": "advisory",
    "no-plain-secrets": "mandatory",
    "alb-https-only": "mandatory",
    "alb-tls-policy": "mandatory",
    "alb-deletion-protection": "mandatory",
    "alb-drop-invalid-header-fields": "mandatory",
    "alb-access-logs": "mandatory",
}


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory):
    env = policy_pack_env("http://127.0.0.1:9", tmp_path_factory.mktemp("pack-aws"))  # no AWS needed
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        yield client


def test_pack_metadata(pack):
    info = pack.info()
    assert info.name == "bluegreen"
    assert info.supportsConfig
    policies = pack.policies()
    assert {n: p["level"] for n, p in policies.items()} == EXPECTED_LEVELS
    for name, p in policies.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), f"{name} is not kebab-case"
        assert p["description"].startswith("Checks whether"), f"{name}: {p['description']!r}"


def test_config_keys_and_defaults(pack):
    schemas = {n: p["schema"] for n, p in pack.policies().items()}
    assert schemas["one-step-at-a-time"]["allowSkip"]["default"] is False
    assert schemas["bake-time"]["minutes"]["default"] == 10
    assert schemas["healthy-promotion"]["probeBaseUrl"]["default"] == ""
    assert schemas["healthy-promotion"]["verifyTls"]["default"] is True
    assert schemas["alb-tls-policy"]["minTlsVersion"]["default"] == "1.2"
    # the health gate's thresholds are the gate's own keys, with the gate's defaults
    from rollout.gate import GateThresholds

    assert GateThresholds.from_mapping(
        {k: v["default"] for k, v in schemas["healthy-promotion"].items() if k not in ("probeBaseUrl", "verifyTls", "probeSource") and "default" in v}
    ) == GateThresholds()


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_config_files_reconcile(pack, stack):
    sent = pack.configure_file(POLICY_DIR / f"{stack}.json")
    security = ["alb-https-only", "alb-tls-policy", "alb-deletion-protection", "alb-drop-invalid-header-fields", "alb-access-logs"]
    want = "mandatory" if stack == "production" else "advisory"
    assert {n: sent[n]["level"] for n in security} == dict.fromkeys(security, want)
    assert sent["healthy-promotion"]["level"] == "mandatory"
    assert sent["bake-time"]["properties"]["minutes"] == 10


def test_invalid_config_is_refused_like_the_engine_does(pack):
    with pytest.raises(ValueError, match="allowSkip"):
        pack.configure({"one-step-at-a-time": {"allowSkip": "yes"}})


def test_pack_files():
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "../.venv"  # the README setup's .venv; see test_pack_start.py
    reqs = (POLICY_DIR / "requirements.txt").read_text().lower()
    for dist in ("pulumi-policy", "pulumi", "boto3", "requests"):
        assert re.search(rf"^{re.escape(dist)}\b", reqs, re.M), f"policy/requirements.txt lacks {dist}"
    ignored = (POLICY_DIR / ".gitignore").read_text()
    assert "venv/" in ignored and "rollout" not in ignored  # a bundle's rollout/ must be published


def test_bundle_runs_on_its_own(tmp_path):
    """`python policy/bundle.py OUT` makes a pack that starts with no repository around it."""
    sys.path.insert(0, str(POLICY_DIR))
    try:
        bundle = importlib.import_module("bundle")
    finally:
        sys.path.remove(str(POLICY_DIR))
    out = bundle.bundle(tmp_path / "bluegreen-policy")
    assert (out / "rollout" / "rules.py").is_file() and (out / "__main__.py").is_file()
    assert not list(out.rglob("__pycache__"))
    env = policy_pack_env("http://127.0.0.1:9", tmp_path)
    env.pop("PYTHONPATH", None)
    with PolicyPackClient(out, env=env, cwd=tmp_path) as client:
        assert set(client.policies()) == set(EXPECTED_LEVELS)
        client.configure_file(out / "production.json")
        result = client.analyze("aws:lb/loadBalancer:LoadBalancer", {"loadBalancerType": "application"}, name="lb")
        assert result.find("alb-deletion-protection", "deletion protection"), result


# --------------------------------------------------------------------------- in-process units


@pytest.fixture(scope="module")
def pack_modules():
    """The pack's modules imported in-process (as `python policy` would find them)."""
    sys.path.insert(0, str(POLICY_DIR))
    try:
        yield {m: importlib.import_module(m) for m in ("abort_run", "guard", "props", "rollback_verdicts", "security")}
    finally:
        sys.path.remove(str(POLICY_DIR))


def test_an_unexpected_exception_becomes_a_violation_naming_it(pack_modules):
    guard = pack_modules["guard"]
    reported = []

    def boom(args, report):
        raise KeyError("defaultActions")

    guard.guarded("valid-weights", boom)(object(), reported.append)
    assert len(reported) == 1, reported
    assert "valid-weights could not finish its check, so it fails closed: unexpected KeyError: 'defaultActions'" in reported[0]


def _listener_verdict(verdicts, *, rollback: bool, arn: str = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/b/c"):
    """Record a verdict on a production listener as `note` does from a `routes.RouteView` (the fields it reads)."""
    from types import SimpleNamespace

    route = SimpleNamespace(listener_arn=arn, shares={"tg-blue": 1.0})
    view = SimpleNamespace(kind="listener", offline=False, problem=None, recorded=True, live_route=route,
                           live=SimpleNamespace(listener_tags={arn: {}}), tags={}, shares={"tg-blue": 1.0},
                           is_rollback=lambda: rollback)
    verdicts.note(view)


@pytest.mark.parametrize("noted", [None, "promotion", "rollback", "stale rollback"])
def test_a_fault_in_a_kubernetes_objects_check_refuses_it_unless_this_run_rolls_back(pack_modules, monkeypatch, capsys, noted):
    """A Deployment's check cannot see its listener; a fault in it fails closed, except when this run's verdict on the
    production listener was a rollback (invariant 5: a rollback is never refused for a fault)."""
    guard, verdicts = pack_modules["guard"], pack_modules["rollback_verdicts"]
    monkeypatch.setattr(verdicts, "_VERDICTS", {})
    if noted is not None:
        _listener_verdict(verdicts, rollback=noted != "promotion")
    if noted == "stale rollback":
        monkeypatch.setattr(verdicts, "TTL_SECONDS", -1.0)

    def boom(args, report):
        raise KeyError("template")

    from types import SimpleNamespace

    deployment = SimpleNamespace(resource_type="kubernetes:apps/v1:Deployment", props={}, urn="urn:pulumi:p::b::kubernetes:apps/v1:Deployment::web-blue")
    reported: list[str] = []
    guard.guarded("workload-frozen-while-live", boom)(deployment, reported.append)
    if noted == "rollback":
        assert reported == []
        assert "workload-frozen-while-live failed on a rollback, which passes anyway: KeyError" in capsys.readouterr().err
    else:
        assert len(reported) == 1 and "fails closed: unexpected KeyError: 'template'" in reported[0], reported
    other = SimpleNamespace(resource_type="aws:ecs/taskDefinition:TaskDefinition", props={}, urn="urn:x")
    reported.clear()
    guard.guarded("workload-frozen-while-live", boom)(other, reported.append)
    assert len(reported) == 1, "only Kubernetes objects read the run's verdict; others fail closed on their own"


def test_the_kept_abort_marker_outlives_any_wait_and_a_pending_release_does_not(pack_modules, monkeypatch):
    """The marker the run's listener saw holds the header route however long `up` waits for ECS (an expiry would let
    the route through); a preview's pending release expires (an expiry only refuses) and a listener's call clears it."""
    run = pack_modules["abort_run"]
    monkeypatch.setattr(run, "_STARTS", {})
    monkeypatch.setattr(run, "_PENDING", {})
    run.note_marker("listener-a", "2026-11-24T01:00:00Z judge green=25", {"tg-green": frozenset({"c1"})})
    run.note_pending(["tg-green"])
    monkeypatch.setattr(run, "TTL_SECONDS", -1.0)  # every bound has passed
    assert run.marker("listener-a") == "2026-11-24T01:00:00Z judge green=25"
    assert not run.pending("tg-green")
    monkeypatch.setattr(run, "TTL_SECONDS", 1800.0)
    run.note_pending(["tg-green"])
    run.note_marker("listener-a", "2026-11-24T01:00:00Z judge green=25", {})  # the next phase's listener call
    assert not run.pending("tg-green")
    run.forget("listener-a")  # a later run whose listener finds no marker
    assert run.marker("listener-a") is None


def test_unknown_values_propagate_as_the_sdks_advisory_skip(pack_modules):
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    guard = pack_modules["guard"]

    def touch(args, report):
        raise UnknownValueError(UNKNOWN_STRING_VALUE, ["loadBalancerArn"])

    with pytest.raises(UnknownValueError) as err:
        guard.guarded("bake-time", touch)(object(), lambda m: None)
    assert "skipped, not failed" in err.value.message


@pytest.mark.parametrize(
    ("policy", "minimum"),
    [
        ("ELBSecurityPolicy-TLS13-1-2-2021-06", "1.2"),
        ("ELBSecurityPolicy-TLS13-1-3-2021-06", "1.3"),
        ("ELBSecurityPolicy-TLS13-1-0-2021-06", "1.0"),
        ("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", "1.2"),
        ("ELBSecurityPolicy-FS-1-2-Res-2020-10", "1.2"),
        ("ELBSecurityPolicy-TLS-1-1-2017-01", "1.1"),
        ("ELBSecurityPolicy-2016-08", "1.0"),
        ("ELBSecurityPolicy-FS-2018-06", "1.0"),
        ("ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04", "1.2"),
        ("something-else", None),
    ],
)
def test_tls_minimum_from_policy_name(pack_modules, policy, minimum):
    assert pack_modules["security"].tls_minimum(policy) == minimum


def test_since_stamp_round_trip(pack_modules):
    common = pack_modules["props"]
    now = int(time.time())
    value = common.format_since(now, {"blue": 75, "green": 25})
    assert re.fullmatch(r"^([\w\s_.:/=+\-@]*)$", value), "must be a valid ELBv2 tag value"
    assert common.parse_since(value) == (now, {"blue": 75, "green": 25})
    for bad in ("", "yesterday", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z blue=90", "2025-13-01T00:00:00Z blue=1 green=99"):
        assert common.parse_since(bad) is None, bad


def test_config_files_are_valid_json_for_every_policy():
    for stack in ("staging", "production"):
        data = json.loads((POLICY_DIR / f"{stack}.json").read_text())
        assert set(data) == set(EXPECTED_LEVELS), stack
