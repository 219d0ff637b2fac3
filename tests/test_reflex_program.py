"""The program declares the reflex function (under Pulumi's mock runtime, with the real stack files): its
role may change only the production listener, a one-minute schedule invokes it, it is on by default in
production, and no traffic step, rollback or finish changes it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import boto3
import pulumi
import pytest

from components.reflex import BUDGET_SECONDS, REFLEX_HANDLER, REFLEX_MODULES, TIMEOUT_SECONDS
from components.probe import lambda_code
from rollout.config import parse_stack_config
from rollout.errors import ConfigError
from rollout.reflex import ReflexSettings
from rollout.simulate import diff_resources, load_stack_file, run_program, set_path

FN = "aws:lambda/function:Function"
LISTENER = "aws:lb/listener:Listener"


@lru_cache(maxsize=None)
def sim(stack="production", step=None, stable=None):
    overrides = {}
    if step is not None:
        overrides["bluegreen:rollout.step"] = step
    if stable is not None:
        overrides["bluegreen:rollout.stable"] = stable
    return run_program(stack, overrides=overrides)


def reflex_resources(s):
    return [r for r in s.resources if "-reflex" in r.name]


def test_production_declares_the_reflex_in_the_probe_subnets_with_the_probe_security_group():
    s = sim()
    fn = s.one(FN, "-reflex-fn")
    i = fn.inputs
    assert (i["runtime"], i["handler"], i["timeout"], i["memorySize"]) == ("python3.12", REFLEX_HANDLER, TIMEOUT_SECONDS, 128), fn.urn
    probe = s.one(FN, "-probe-fn").inputs
    assert i["vpcConfig"] == probe["vpcConfig"], f"{fn.urn}: {i['vpcConfig']}"
    env = ReflexSettings.from_env(i["environment"]["variables"])
    alb = s.by_type("aws:lb/loadBalancer:LoadBalancer")[0]
    prod = s.one(LISTENER, "-production")
    assert (env.load_balancer_arn, env.listener_arn) == (alb.outputs["arn"], prod.outputs["arn"]), env
    assert (env.stack, env.hostname, env.interval_s, env.budget_s, env.breach_checks, env.probes) == (
        "production", "canary.example.com", 5.0, float(BUDGET_SECONDS), 2, 5), env
    assert env.budget_s + 8 <= TIMEOUT_SECONDS  # the last check ends inside the timeout


def test_the_role_may_change_only_the_production_listener_and_its_rules():
    s = sim()
    policy = json.loads(s.one("aws:iam/rolePolicy:RolePolicy", "-reflex-policy").inputs["policy"])
    prod_arn = s.one(LISTENER, "-production").outputs["arn"]
    writes = {}
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow" and "NotAction" not in st and "NotResource" not in st, st
        for action in [st["Action"]] if isinstance(st["Action"], str) else st["Action"]:
            assert "*" not in action, action
            if action.startswith("elasticloadbalancing:") and not action.split(":")[1].startswith("Describe"):
                writes[action] = st["Resource"]
    rules = prod_arn.replace(":listener/", ":listener-rule/", 1) + "/*"  # the header route follows an abort
    assert writes == {"elasticloadbalancing:ModifyListener": prod_arn, "elasticloadbalancing:AddTags": prod_arn,
                      "elasticloadbalancing:ModifyRule": rules}, writes
    actions = {a for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    assert "elasticloadbalancing:DescribeTargetHealth" in actions and not any(a.startswith(("iam:", "lambda:", "ecs:")) for a in actions)
    assert not any(a.startswith("sns:") for a in actions)  # no topic configured: no publish right


def test_a_topic_gets_publish_on_that_topic_only():
    topic = "arn:aws:sns:us-east-1:123456789012:rollbacks"
    s = run_program("production", overrides={"bluegreen:reflex": {"notifyTopicArn": topic}})
    policy = json.loads(s.one("aws:iam/rolePolicy:RolePolicy", "-reflex-policy").inputs["policy"])
    (st,) = [st for st in policy["Statement"] if st["Sid"] == "NotifyRollbacks"]
    assert (st["Action"], st["Resource"]) == ("sns:Publish", topic)
    env = s.one(FN, "-reflex-fn").inputs["environment"]["variables"]
    assert env["BLUEGREEN_REFLEX_TOPIC_ARN"] == topic


def test_a_one_minute_schedule_invokes_it():
    s = sim()
    fn = s.one(FN, "-reflex-fn")
    rule = s.one("aws:cloudwatch/eventRule:EventRule", "-reflex-schedule")
    assert rule.inputs["scheduleExpression"] == "rate(1 minute)"
    target = s.one("aws:cloudwatch/eventTarget:EventTarget", "-reflex-target").inputs
    assert target["arn"] == fn.outputs["arn"]
    perm = s.one("aws:lambda/permission:Permission", "-reflex-invoke").inputs
    assert (perm["principal"], perm["sourceArn"]) == ("events.amazonaws.com", rule.outputs["arn"])


def test_every_step_rollback_and_finish_leaves_the_reflex_alone():
    """A traffic step changes exactly one resource (the production listener); the reflex never changes."""
    steps = load_stack_file("production")["bluegreen:rollout"]["steps"]
    base = {r.urn: r.inputs for r in reflex_resources(sim())}
    assert len(base) == 8, sorted(base)  # component, role, logs, policy, function, rule, permission, target
    for step in range(1, len(steps) + 1):
        d = diff_resources(sim(step=step - 1), sim(step=step))
        assert [u.rsplit("::", 1)[1] for u in d["update"]] == ["web-traffic-production"] and not d["create"] and not d["delete"], d
    for other in (sim(step=len(steps)), sim(step=0, stable="green"), sim(step=2)):
        assert {r.urn: r.inputs for r in reflex_resources(other)} == base


def test_staging_without_the_probe_function_has_no_reflex():
    assert reflex_resources(sim("staging")) == []


def test_reflex_can_be_turned_off():
    s = run_program("production", overrides={"bluegreen:reflex": {"enabled": False}})
    assert reflex_resources(s) == [] and s.one(FN, "-probe-fn")


def _cfg(**sections):
    raw = {k.split(":", 1)[1]: v for k, v in load_stack_file("production").items() if k.startswith("bluegreen:")}
    raw.update(sections)
    return parse_stack_config(raw)


@pytest.mark.parametrize(
    "sections, key, words",
    [
        ({"probe": {"enabled": False}, "reflex": {"enabled": True}}, "bluegreen:reflex.enabled", "bluegreen:probe.enabled is false"),
        ({"reflex": {"intervalSeconds": 1}}, "bluegreen:reflex.intervalSeconds", "between 2 and 30"),
        ({"reflex": {"breachChecks": 0}}, "bluegreen:reflex.breachChecks", "between 1 and 10"),
        ({"reflex": {"notifyTopicArn": "rollbacks"}}, "bluegreen:reflex.notifyTopicArn", "an SNS topic ARN"),
        ({"reflex": {"enable": True}}, "bluegreen:reflex.enable", "did you mean 'enabled'"),
    ],
)
def test_bad_reflex_config_names_the_key(sections, key, words):
    with pytest.raises(ConfigError) as e:
        _cfg(**sections)
    assert e.value.key == key and words in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_defaults_follow_the_probe_function():
    assert _cfg().reflex.enabled and not _cfg(probe={"enabled": False}).reflex.enabled


def test_the_package_imports_with_the_lambda_runtime_only(tmp_path):
    archive = lambda_code(modules=REFLEX_MODULES)
    pkg = tmp_path / "pkg"
    for rel, asset in archive.assets.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_bytes(Path(asset.path).read_bytes())
    site = str(Path(boto3.__file__).resolve().parent.parent)
    module, func = REFLEX_HANDLER.rsplit(".", 1)
    code = (
        "import sys\n"
        f"sys.path[:] = [{str(pkg)!r}] + [p for p in sys.path if 'site-packages' not in p] + [{site!r}]\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('requests', 'pulumi', 'pulumi_aws', 'click', 'rich', 'yaml'):\n"
        "            raise ImportError(f'not in the Lambda runtime: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import {module} as m\n"
        f"assert callable(m.{func}) and m.__file__.startswith({str(pkg)!r}), m.__file__\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_reflex_judges_the_synthetic_stratum_the_probe_function_publishes():
    """With synthetic load on, the probe function publishes it under the stack's name and the reflex's
    judge reads that stratum (as the gate does); without it, the reflex reads none."""
    plain = ReflexSettings.from_env(sim().one(FN, "-reflex-fn").inputs["environment"]["variables"])
    assert plain.judge_synthetic_stack is None and plain.judge_slow_request_ms is None
    s = run_program("production", overrides={"bluegreen:probe": {"syntheticPerMinute": 30}})
    env = ReflexSettings.from_env(s.one(FN, "-reflex-fn").inputs["environment"]["variables"])
    from rollout.probe_runner import ProbeSettings

    published = ProbeSettings.from_env(s.one(FN, "-probe-fn").inputs["environment"]["variables"]).stack
    assert env.judge_synthetic_stack == published == "production", (env, published)


# --------------------------------------------------------------------------- the gate's slowRequestMs reaches the reflex


def _project_with_pack_config(tmp_path: Path, gate: dict | str | None, text: str | None = None) -> Path:
    """A copy of the program whose `policy/production.json` is the repository's with `healthy-promotion` replaced."""
    from rollout.simulate import ROOT

    shutil.copy(ROOT / "__main__.py", tmp_path / "__main__.py")
    (tmp_path / "policy").mkdir()
    doc = json.loads((ROOT / "policy" / "production.json").read_text())
    if gate is None:
        doc.pop("healthy-promotion")
    else:
        doc["healthy-promotion"] = gate
    (tmp_path / "policy" / "production.json").write_text(text if text is not None else json.dumps(doc))
    return tmp_path


@pytest.mark.parametrize(("gate", "judged"), [
    ({"enforcementLevel": "mandatory", "probeSource": "in-vpc", "slowRequestMs": 750}, 750.0),
    ({"enforcementLevel": "mandatory", "slowRequestMs": 0.25}, 0.25),
    ({"enforcementLevel": "mandatory", "slowRequestMs": None}, None),
    ("mandatory", None),
    (None, None),
])
def test_the_reflex_judges_slow_requests_exactly_when_the_gate_does(tmp_path, gate, judged):
    """The gate's `slowRequestMs` lives in the pack's config file of the stack; the program reads that same file, so
    the reflex's judge counts the same slow requests as the gate's (or none, when the gate counts none)."""
    root = _project_with_pack_config(tmp_path, gate)
    s = run_program("production", load_stack_file("production"), root=root)
    env = ReflexSettings.from_env(s.one(FN, "-reflex-fn").inputs["environment"]["variables"])
    assert env.judge_slow_request_ms == judged, env


@pytest.mark.parametrize(("gate", "text", "words"), [
    ({"slowRequestMs": 0}, None, "policy/production.json: healthy-promotion.slowRequestMs: must be greater than 0, got 0"),
    ({"slowRequestMs": "fast"}, None, "policy/production.json: healthy-promotion.slowRequestMs: must be a number, got str"),
    ({"slowRequestMs": 600001}, None, "healthy-promotion.slowRequestMs: must be at most 600000, got 600001"),
    (None, "{not json", "policy/production.json: is not valid JSON"),
    (None, "[1, 2]", "policy/production.json: must be a JSON object of policy settings, got list"),
])
def test_a_slow_request_threshold_the_gate_refuses_stops_the_program_before_any_resource(tmp_path, gate, text, words):
    from rollout.simulate import RecordingMocks

    root = _project_with_pack_config(tmp_path, gate, text)
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program("production", load_stack_file("production"), root=root, mocks=mocks)
    message = str(err.value)
    assert message.startswith("invalid policy pack config: ") and words in message and "\n" not in message, message
    assert mocks.records == []


def test_without_the_reflex_the_program_does_not_read_the_pack_config(tmp_path):
    root = _project_with_pack_config(tmp_path, None, "{not json")
    cfg = set_path(load_stack_file("production"), "bluegreen:reflex.enabled", False)
    s = run_program("production", cfg, root=root)
    assert not reflex_resources(s)
