"""Invariant 9: a value set with `pulumi config set --secret` never reaches plain text.

The real program runs under mocks (rollout.simulate) with secrets in `bluegreen:service.secrets`;
the CLI runs in-process on stack files holding `secure:` values; the webhook is a loopback port
nobody listens on. Every assertion names where the value was found.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.config import _NAME_RE, parse_stack_config
from rollout.errors import ConfigError
from rollout.notify import send
from rollout.simulate import ROOT, load_stack_file, run_program
from rollout.workload import SECRET_NAME_RE, ssm_name_problem, ssm_parameter_name
from tests.test_cli import expect, fake_pulumi, invoke, make_project  # noqa: F401 - fake_pulumi is a fixture

SECRET = "pa55-Word-only-in-ssm-7Qx"
CIPHERTEXT = "v1:Q2lwaGVydGV4dE9mVGhlU2VjcmV0VmFsdWU="
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")  # the engine's secret marker
GIVEN_SSM = "arn:aws:ssm:us-east-1:123456789012:parameter/shared/stripe-key"
GIVEN_SM = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"
PARAM = "aws:ssm/parameter:Parameter"
K8S = {"bluegreen:platform": "kubernetes", "bluegreen:kubernetes": {"namespace": "web", "context": "prod"}}


def _is_secret_wrapped(value) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def _places(value, path="") -> list[str]:
    """Every path inside `value` where SECRET occurs outside a secret-marked value."""
    if _is_secret_wrapped(value):
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _places(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _places(v, f"{path}[{i}]")]
    return [path or "."] if isinstance(value, str) and SECRET in value else []


# --------------------------------------------------------------------------- the program (ECS)


@pytest.fixture(scope="module")
def ecs_sim():
    return run_program("production", overrides={"bluegreen:service.secrets": {"DB_PASSWORD": SECRET, "STRIPE_KEY": GIVEN_SSM, "DB_URL": GIVEN_SM}})


def test_the_value_is_only_in_a_secret_marked_securestring(ecs_sim):
    for r in ecs_sim.resources:
        leaks = _places(dict(r.inputs)) + _places(dict(r.outputs))
        assert not leaks, f"{r.type} {r.name}: the secret value is in plain text at {leaks}"
    params = ecs_sim.by_type(PARAM)
    assert sorted(p.inputs["name"] for p in params) == ["/bluegreen/production/web-blue/DB_PASSWORD", "/bluegreen/production/web-green/DB_PASSWORD"]
    for p in params:
        assert p.inputs["type"] == "SecureString", p.name
        assert _is_secret_wrapped(p.inputs["value"]) and p.inputs["value"]["value"] == SECRET, f"{p.name}: value not marked secret"
    assert not _places(ecs_sim.outputs), f"stack outputs hold the secret: {_places(ecs_sim.outputs)}"


@pytest.mark.parametrize("color", ["blue", "green"])
def test_the_task_reads_secrets_by_reference_and_the_role_reads_exactly_those(ecs_sim, color):
    td = ecs_sim.one("aws:ecs/taskDefinition:TaskDefinition", f"{color}-task")
    (container,) = json.loads(td.inputs["containerDefinitions"])
    plain = {e["name"] for e in container["environment"]}
    assert not plain & {"DB_PASSWORD", "STRIPE_KEY", "DB_URL"}, f"{td.name}: secrets in the plain environment: {plain}"
    param = ecs_sim.one(PARAM, f"{color}-secret-DB_PASSWORD")
    want = {"DB_PASSWORD": param.outputs["arn"], "STRIPE_KEY": GIVEN_SSM, "DB_URL": GIVEN_SM}
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == want, td.name
    policy = json.loads(ecs_sim.one("aws:iam/rolePolicy:RolePolicy", f"{color}-secrets-read").inputs["policy"])
    allowed = {a: sorted(s["Resource"]) for s in policy["Statement"] for a in s["Action"]}
    assert allowed == {"ssm:GetParameters": sorted([param.outputs["arn"], GIVEN_SSM]), "secretsmanager:GetSecretValue": [GIVEN_SM]}, policy


def test_no_secrets_no_new_resources():
    sim = run_program("production")
    secret_policies = [r.name for r in sim.by_type("aws:iam/rolePolicy:RolePolicy") if "-secrets-read" in r.name]
    assert sim.by_type(PARAM) == [] and secret_policies == [], secret_policies
    td = sim.one("aws:ecs/taskDefinition:TaskDefinition", "blue-task")
    assert "secrets" not in json.loads(td.inputs["containerDefinitions"])[0]


# --------------------------------------------------------------------------- the program (Kubernetes)


def test_kubernetes_uses_a_secret_and_secret_key_refs():
    sim = run_program("production", overrides={**K8S, "bluegreen:service.secrets": {"DB_PASSWORD": SECRET}})
    for r in sim.resources:
        leaks = _places(dict(r.inputs)) + _places(dict(r.outputs))
        assert not leaks, f"{r.type} {r.name}: the secret value is in plain text at {leaks}"
    for color in ("blue", "green"):
        secret = sim.one("kubernetes:core/v1:Secret", f"{color}-secrets")
        assert secret.inputs["metadata"]["name"] == f"web-{color}-secrets"
        data = secret.inputs["stringData"]
        assert _is_secret_wrapped(data) and data["value"] == {"DB_PASSWORD": SECRET}, f"{secret.name}: stringData not marked secret"
        dep = sim.one("kubernetes:apps/v1:Deployment", f"{color}-deployment")
        env = dep.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
        ref = next(e for e in env if e["name"] == "DB_PASSWORD")
        assert ref == {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"web-{color}-secrets", "key": "DB_PASSWORD"}}}, ref


def test_kubernetes_refuses_an_arn_it_cannot_read():
    raw = _bluegreen(load_stack_file("production"))
    raw.update(platform="kubernetes", kubernetes={"context": "prod"})
    raw["service"] = {**raw.get("service", {}), "secrets": {"DB_URL": GIVEN_SM}}
    with pytest.raises(ConfigError, match=r"bluegreen:service.secrets.DB_URL: is an ARN, which only ECS can read"):
        parse_stack_config(raw)


# --------------------------------------------------------------------------- validation never echoes a value


def _bluegreen(cfg: dict) -> dict:
    return {k.split(":", 1)[1]: v for k, v in cfg.items() if k.startswith("bluegreen:")}


@pytest.mark.parametrize(
    "secrets, key",
    [
        ({"db-password": SECRET}, "bluegreen:service.secrets.db-password"),
        ({"LOG_LEVEL": SECRET}, "bluegreen:service.secrets.LOG_LEVEL"),  # also in service.environment below
        ({"DB_PASSWORD": ""}, "bluegreen:service.secrets.DB_PASSWORD"),
        ({"DB_PASSWORD": SECRET * 200}, "bluegreen:service.secrets.DB_PASSWORD"),
        ({"DB_PASSWORD": "arn:aws:ssm:us-east-1:123:parameter/x"}, "bluegreen:service.secrets.DB_PASSWORD"),
    ],
)
def test_bad_secrets_are_refused_without_showing_the_value(secrets, key):
    raw = _bluegreen(load_stack_file("production"))
    raw["service"] = {**raw.get("service", {}), "environment": {"LOG_LEVEL": "info"}, "secrets": secrets}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    assert str(err.value).startswith(key + ":") and SECRET not in str(err.value), str(err.value)


# --------------------------------------------------------------------------- everything handed AWS is valid

PULUMI_STACK = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,100}\Z")  # what `pulumi stack init` accepts
SERVICE = st.from_regex(_NAME_RE.pattern.replace("^", r"\A").replace("$", r"\Z"))
SECRET_NAME = st.from_regex(SECRET_NAME_RE.pattern.replace("^", r"\A").replace("$", r"\Z"))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None)
@given(stack=PULUMI_STACK, service=SERVICE, color=st.sampled_from(["blue", "green"]), name=SECRET_NAME)
def test_every_parameter_name_is_one_ssm_accepts(stack, service, color, name):
    param = ssm_parameter_name(stack, f"{service}-{color}", name)
    assert ssm_name_problem(param) is None, f"{param!r}: {ssm_name_problem(param)}"


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None)
@given(stack=PULUMI_STACK, service=SERVICE, name=SECRET_NAME)
def test_ssm_stores_every_parameter_the_program_names(aws, stack, service, name):
    """The same names, handed to SSM (moto_server) as the program does: a SecureString under that name."""
    param = ssm_parameter_name(stack, f"{service}-blue", name)
    ssm = aws.client("ssm")
    ssm.put_parameter(Name=param, Value="x", Type="SecureString", Overwrite=True)
    assert ssm.get_parameter(Name=param, WithDecryption=True)["Parameter"]["Name"] == param


def test_ssm_name_problem_knows_what_ssm_refuses():
    assert ssm_name_problem("/aws/reserved") and ssm_name_problem("/SSM-x/y") and ssm_name_problem("/a b")
    assert ssm_name_problem("/" + "/".join(["a"] * 16)) and ssm_name_problem("/" + "a" * 1011)
    assert ssm_name_problem("/bluegreen/production/web-blue/DB_PASSWORD") is None


# --------------------------------------------------------------------------- CLI on stack files with secure: values


def _secure_project(tmp_path: Path) -> Path:
    proj = make_project(tmp_path, step=1)
    path = proj / "Pulumi.production.yaml"
    doc = yaml.safe_load(path.read_text())
    service = doc["config"].setdefault("bluegreen:service", {})
    service["secrets"] = {"DB_PASSWORD": {"secure": CIPHERTEXT}, "STRIPE_KEY": GIVEN_SSM}
    doc["config"]["aws:secretKey"] = {"secure": CIPHERTEXT}  # another provider's secret: not ours to read
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return proj


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_plan_runs_on_secure_values_and_prints_none(tmp_path, fmt):
    proj = _secure_project(tmp_path)
    r = invoke("--project-dir", str(proj), "plan", "--stack", "production", "--format", fmt)
    expect(r, 0)
    assert CIPHERTEXT not in r.output and "(encrypted in the stack file)" not in r.output, r.output


def test_plan_of_a_kubernetes_stack_with_a_secure_kubeconfig(tmp_path):
    proj = _secure_project(tmp_path)
    path = proj / "Pulumi.production.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["bluegreen:platform"] = "kubernetes"
    doc["config"]["bluegreen:kubernetes"] = {"kubeconfig": {"secure": CIPHERTEXT}}
    doc["config"]["bluegreen:service"]["secrets"] = {"DB_PASSWORD": {"secure": CIPHERTEXT}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = invoke("--project-dir", str(proj), "plan", "--stack", "production", "--format", "json")
    expect(r, 0)
    assert CIPHERTEXT not in r.output


def test_advance_config_only_runs_on_secure_values(tmp_path, fake_pulumi):  # noqa: F811 - the fixture
    proj = _secure_project(tmp_path)
    r = invoke("--project-dir", str(proj), "advance", "--stack", "production", "--config-only", "--yes")
    expect(r, 0, "--config-only")
    assert CIPHERTEXT not in r.output


def test_status_and_gate_run_on_secure_values(tmp_path, aws, healthy_url):
    from tests.test_cli import base

    proj = _secure_project(tmp_path)
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    r = invoke("--project-dir", str(proj), "status", "--stack", "production", "--load-balancer-arn", alb.load_balancer)
    assert r.exit_code in (0, 1) and "invalid stack config" not in r.output and CIPHERTEXT not in r.output, r.output
    r = invoke("--project-dir", str(proj), "gate", "--stack", "production", "--load-balancer-arn", alb.load_balancer, "--probe-base-url", base(healthy_url))
    assert r.exit_code in (0, 1) and "invalid stack config" not in r.output and CIPHERTEXT not in r.output, r.output


def test_a_whole_key_encrypted_is_a_one_line_error(tmp_path):
    proj = make_project(tmp_path, step=0, traffic={"secure": CIPHERTEXT})
    r = invoke("--project-dir", str(proj), "plan", "--stack", "production")
    expect(r, 2, "bluegreen:traffic: is encrypted (secure:) in the stack file")


# --------------------------------------------------------------------------- webhooks


@pytest.mark.parametrize("path", ["/services/T0000/B0000/XXXXsecretTOKEN", "/hook?token=XXXXsecretTOKEN"])
def test_a_failed_webhook_never_says_its_url(refused_url, path):
    url = refused_url.rstrip("/") + path
    d = send(url, "text")
    assert not d.sent and d.reason.startswith("webhook unreachable"), d
    port = re.search(r":(\d+)", refused_url).group(1)
    for piece in (url, path, "XXXXsecretTOKEN", f"127.0.0.1:{port}"):
        assert piece not in d.reason, f"{piece!r} in {d.reason!r}"


def test_a_failed_webhook_in_the_cli_never_prints_its_url(tmp_path, fake_pulumi, refused_url, monkeypatch):  # noqa: F811
    url = refused_url.rstrip("/") + "/services/T0000/B0000/XXXXsecretTOKEN"
    monkeypatch.setenv("BLUEGREEN_WEBHOOK_URL", url)
    proj = make_project(tmp_path, step=0)
    r = invoke("--project-dir", str(proj), "advance", "--stack", "production", "--yes")
    expect(r, 0, "not delivered")
    assert "XXXXsecretTOKEN" not in r.output and url not in r.output, r.output



# --------------------------------------------------------------------------- a plain value is refused under the engine


def test_a_plain_value_is_refused_when_the_engine_says_it_is_not_secret(monkeypatch):
    """The language host always sets PULUMI_CONFIG_SECRET_KEYS; `bluegreen:service` is in it only when a
    value under it was set with --secret."""
    overrides = {"bluegreen:service.secrets": {"DB_PASSWORD": SECRET}}
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", '["aws:secretKey"]')
    with pytest.raises(Exception, match=r"bluegreen:service.secrets.DB_PASSWORD: is in plain text in the stack config") as err:
        run_program("production", overrides=overrides)
    assert SECRET not in str(err.value)
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", '["bluegreen:service"]')
    assert run_program("production", overrides=overrides).by_type(PARAM)


# --------------------------------------------------------------------------- the pack: no-plain-secrets, over gRPC


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    from tests.policy_harness import POLICY_DIR, PolicyPackClient, policy_pack_env

    env = policy_pack_env("http://127.0.0.1:9", tmp_path_factory.mktemp("pack"))  # no AWS read for these resources
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        client.configure_file(POLICY_DIR / "production.json")
        yield client


def _task_definition(ecs_sim, env: list[dict]) -> tuple[dict, str, str]:
    td = ecs_sim.one("aws:ecs/taskDefinition:TaskDefinition", "blue-task")
    props = json.loads(json.dumps(dict(td.inputs)))
    containers = json.loads(props["containerDefinitions"])
    containers[0]["environment"] = env
    props["containerDefinitions"] = json.dumps(containers)
    return props, td.name, td.urn


def test_the_programs_task_definition_with_secrets_passes(pack, ecs_sim):
    td = ecs_sim.one("aws:ecs/taskDefinition:TaskDefinition", "blue-task")
    result = pack.analyze(td.type, dict(td.inputs), name=td.name, urn=td.urn)
    assert result.of("no-plain-secrets") == [], result


@pytest.mark.parametrize(
    "env",
    [
        [{"name": "DB_PASSWORD", "value": SECRET}],
        [{"name": "LOG_LEVEL", "value": "info"}, {"name": "STRIPE_API_KEY", "value": SECRET}],
        [{"name": "UPSTREAM", "value": "AKIA" + "ABCDEFGHIJKLMNOP"}],  # a credential-shaped value under a harmless name
    ],
    ids=["password", "api-key", "access-key-value"],
)
def test_a_secret_in_a_task_definitions_plain_environment_is_refused(pack, ecs_sim, env):
    props, name, urn = _task_definition(ecs_sim, env)
    result = pack.analyze("aws:ecs/taskDefinition:TaskDefinition", props, name=name, urn=urn)
    found = [v for v in result.mandatory if v.policy == "no-plain-secrets"]
    assert found and "in plain text (value not shown)" in found[0].message, result
    assert all(SECRET not in v.message and "AKIAABCD" not in v.message for v in result.violations), result


def test_a_secret_in_a_deployments_plain_env_is_refused(pack):
    sim = run_program("production", overrides={**K8S, "bluegreen:service.secrets": {"DB_PASSWORD": SECRET}})
    dep = sim.one("kubernetes:apps/v1:Deployment", "blue-deployment")
    props = json.loads(json.dumps(dict(dep.inputs)))
    assert pack.analyze(dep.type, props, name=dep.name, urn=dep.urn).of("no-plain-secrets") == []
    props["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "GITHUB_TOKEN", "value": SECRET})
    result = pack.analyze(dep.type, props, name=dep.name, urn=dep.urn)
    found = [v for v in result.mandatory if v.policy == "no-plain-secrets"]
    assert found and "GITHUB_TOKEN" in found[0].message and SECRET not in found[0].message, result
