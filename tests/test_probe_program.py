"""The program declares the in-VPC probe function (under Pulumi's mock runtime, with the real stack files),
its package imports with the Lambda runtime's libraries only, and its config is validated up front."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

import boto3
import pytest

from components.probe import HANDLER, LAMBDA_MODULES, SCHEDULE, lambda_code
from rollout.config import parse_stack_config
from rollout.errors import ConfigError
from rollout.simulate import ROOT, diff_resources, load_stack_file, run_program

FN = "aws:lambda/function:Function"
SG = "aws:ec2/securityGroup:SecurityGroup"
LISTENER = "aws:lb/listener:Listener"
PROBE_TYPES = (
    FN,
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/eventTarget:EventTarget",
    "aws:lambda/permission:Permission",
)


@lru_cache(maxsize=None)
def sim(stack="production", step=None, stable=None, service=None):
    overrides = {}
    if step is not None:
        overrides["bluegreen:rollout.step"] = step
    if stable is not None:
        overrides["bluegreen:rollout.stable"] = stable
    if service is not None:
        overrides["bluegreen:service.name"] = service
    return run_program(stack, overrides=overrides)


def probe_resources(s):
    return [r for r in s.resources if r.custom and "-probe-" in r.name and (r.type in PROBE_TYPES or r.type == SG)]


def test_production_declares_the_function_in_the_private_subnets():
    s = sim()
    fn = s.one(FN, "-probe-fn")
    i = fn.inputs
    assert (i["runtime"], i["handler"], i["architectures"]) == ("python3.12", HANDLER, ["arm64"]), fn.urn
    private = load_stack_file("production")["bluegreen:network"]["privateSubnetIds"]
    sg = s.one(SG, "-probe-sg")
    assert i["vpcConfig"] == {"subnetIds": private, "securityGroupIds": [sg.id]}, f"{fn.urn}: {i['vpcConfig']}"
    alb = s.by_type("aws:lb/loadBalancer:LoadBalancer")[0]
    env = i["environment"]["variables"]
    assert env == {
        "BLUEGREEN_STACK": "production",
        "BLUEGREEN_LOAD_BALANCER_ARN": alb.outputs["arn"],
        "BLUEGREEN_TEST_HOSTNAME": "canary.example.com",
        "BLUEGREEN_PROBES": "10",
        "BLUEGREEN_PROBE_TIMEOUT_SECONDS": "2",
        "BLUEGREEN_EXPECTED_STATUS": "200",
    }, f"{fn.urn}: {env}"
    assert i["timeout"] == 30 and i["memorySize"] == 128
    role = s.one("aws:iam/role:Role", "-probe-role")
    assert i["role"] == role.outputs["arn"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    logs = s.one("aws:cloudwatch/logGroup:LogGroup", "-probe-logs")
    assert i["loggingConfig"]["logGroup"] == logs.outputs.get("name", logs.inputs.get("name")) and logs.inputs["retentionInDays"] == 14


def test_the_role_may_only_read_the_listener_publish_bluegreen_metrics_and_run_in_the_vpc():
    s = sim()
    policy = json.loads(s.one("aws:iam/rolePolicy:RolePolicy", "-probe-policy").inputs["policy"])
    by_sid = {st["Sid"]: st for st in policy["Statement"]}
    actions = sorted(a for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"]))
    write = [a for a in actions if not re.match(r"^[a-z0-9]+:(Describe|Get|List)", a)]
    assert write == sorted([
        "cloudwatch:PutMetricData",
        "ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses",
        "logs:CreateLogStream", "logs:PutLogEvents",
    ]), write
    assert not any(a.endswith("*") for a in actions), actions
    assert by_sid["PublishProbeMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "bluegreen"}}
    logs_arn = s.one("aws:cloudwatch/logGroup:LogGroup", "-probe-logs").outputs["arn"]
    assert by_sid["WriteItsLog"]["Resource"] == f"{logs_arn}:*"
    assert not any(a.startswith("elasticloadbalancing:") and not a.split(":")[1].startswith("Describe") for a in actions)


def test_the_test_listener_admits_the_function_by_security_group_and_says_in_vpc():
    s = sim()
    probe_sg = s.one(SG, "-probe-sg")
    assert not probe_sg.inputs.get("ingress"), "the probe function accepts no connections"
    assert sorted(e["fromPort"] for e in probe_sg.inputs["egress"]) == [443, 8443]
    (rule,) = [r for r in s.one(SG, "-alb-sg").inputs["ingress"] if r["fromPort"] == 8443]
    assert rule["securityGroups"] == [probe_sg.id] and rule["cidrBlocks"] == ["10.0.0.0/8"], rule
    tags = s.one(LISTENER, "-test").inputs["tags"]
    assert tags["bluegreen:probe"] == "in-vpc" and tags["bluegreen:stack"] == "production", tags


def test_empty_test_cidrs_admit_only_the_probe_function():
    """`traffic.testCidrs: []` means "nobody but the probe function", not "same as ingressCidrs"."""
    s = run_program("production", overrides={"bluegreen:traffic.testCidrs": []})
    probe_sg = s.one(SG, "-probe-sg")
    (rule,) = [r for r in s.one(SG, "-alb-sg").inputs["ingress"] if r["fromPort"] == 8443]
    assert rule["securityGroups"] == [probe_sg.id] and not rule.get("cidrBlocks"), rule


def test_empty_test_cidrs_without_a_probe_function_open_no_test_port():
    s = run_program("staging", overrides={"bluegreen:traffic.testCidrs": []})
    rules = [r for r in s.one(SG, "-alb-sg").inputs["ingress"] if r["fromPort"] == 8443]
    assert rules == [], rules


def test_a_one_minute_schedule_invokes_the_function():
    s = sim()
    fn = s.one(FN, "-probe-fn")
    rule = s.one("aws:cloudwatch/eventRule:EventRule", "-probe-schedule")
    assert rule.inputs["scheduleExpression"] == SCHEDULE == "rate(1 minute)"
    target = s.one("aws:cloudwatch/eventTarget:EventTarget", "-probe-target").inputs
    assert target["arn"] == fn.outputs["arn"] and target["rule"] == rule.outputs.get("name", rule.name)
    perm = s.one("aws:lambda/permission:Permission", "-probe-invoke").inputs
    assert perm["principal"] == "events.amazonaws.com" and perm["sourceArn"] == rule.outputs["arn"] and perm["action"] == "lambda:InvokeFunction"


def test_staging_without_a_certificate_has_no_probe_function():
    s = sim("staging")
    assert probe_resources(s) == [] and "bluegreen:probe" not in s.one(LISTENER, "-test").inputs["tags"]
    rule = [r for r in s.one(SG, "-alb-sg").inputs["ingress"] if r["fromPort"] == 8443][0]
    assert not rule.get("securityGroups")


def test_no_step_rollback_or_finish_changes_the_probe_function():
    steps = load_stack_file("production")["bluegreen:rollout"]["steps"]
    base = {r.urn: r.inputs for r in probe_resources(sim())}
    assert len(base) == 8, sorted(base)
    for step in range(1, len(steps) + 1):
        d = diff_resources(sim(step=step - 1), sim(step=step))
        assert [u.rsplit("::", 1)[1] for u in d["update"]] == ["web-traffic-production"], d
    for other in (sim(step=len(steps)), sim(step=0, stable="green"), sim(step=2)):
        assert {r.urn: r.inputs for r in probe_resources(other)} == base


@pytest.mark.parametrize("service", ["ab", "a-b-c-d-e-f-g-h-i-j-k-l9", "abcdefghijklmnopqrstuvwx"])
def test_probe_names_are_valid_for_every_service_name_the_validator_accepts(service):
    """Autonamed resources get `<logical name>-<7 hex>`: within each service's limit and character set
    for the shortest and the longest (24) names the validator accepts (the names grow with it only)."""
    limits = {  # type: (max length, allowed characters)
        FN: (64, r"[A-Za-z0-9_-]+"),
        "aws:iam/role:Role": (64, r"[\w+=,.@-]+"),
        "aws:iam/rolePolicy:RolePolicy": (128, r"[\w+=,.@-]+"),
        "aws:cloudwatch/eventRule:EventRule": (64, r"[.\-_A-Za-z0-9]+"),
        "aws:cloudwatch/logGroup:LogGroup": (512, r"[.\-_/#A-Za-z0-9]+"),
        SG: (255, r"[ -~]+"),
    }
    s = sim(service=service)
    checked = 0
    for r in probe_resources(s):
        if r.type not in limits:
            continue
        physical = r.inputs.get("name") or f"{r.name}-1234567"
        longest, chars = limits[r.type]
        assert len(physical) <= longest and re.fullmatch(chars, physical), f"{r.urn}: {physical!r} ({len(physical)} chars)"
        checked += 1
    assert checked == 6


# --------------------------------------------------------------------------- the package


def test_the_package_holds_exactly_the_handler_and_the_modules_it_imports(tmp_path):
    """Unpack the archive the program hands Lambda and import the handler with only the standard
    library and what the Lambda Python runtime ships (boto3, botocore and their dependencies)."""
    archive = lambda_code()
    assert sorted(archive.assets) == sorted(LAMBDA_MODULES)
    pkg = tmp_path / "pkg"
    for rel, asset in archive.assets.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_bytes(Path(asset.path).read_bytes())
    site = str(Path(boto3.__file__).resolve().parent.parent)
    module, func = HANDLER.rsplit(".", 1)
    code = (
        "import sys, json\n"
        f"sys.path[:] = [{str(pkg)!r}] + [p for p in sys.path if 'site-packages' not in p] + [{site!r}]\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('requests', 'pulumi', 'pulumi_aws', 'click', 'rich', 'yaml', 'cryptography'):\n"
        "            raise ImportError(f'not in the Lambda runtime: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import {module} as m\n"
        f"assert callable(m.{func}) and m.__file__.startswith({str(pkg)!r}), m.__file__\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    top = set(json.loads(out.stdout))
    runtime = {"boto3", "botocore", "jmespath", "s3transfer", "dateutil", "urllib3", "six", "rollout", "certifi", "idna", "charset_normalizer"}
    foreign = top - set(sys.stdlib_module_names) - runtime - {"__main__", "__mp_main__", "_distutils_hack", "_virtualenv", "sitecustomize", "_sitebuiltins"}
    assert foreign == set(), f"the probe package imports what the Lambda runtime lacks: {sorted(foreign)}"
    assert "rollout.gate" not in out.stdout


def test_the_handler_is_the_lambda_signature():
    import inspect

    from rollout import probe_lambda

    assert HANDLER == "rollout.probe_lambda.handler"
    assert list(inspect.signature(probe_lambda.handler).parameters) == ["event", "context"]


# --------------------------------------------------------------------------- config


def _cfg(**changes):
    raw = {k.split(":", 1)[1]: v for k, v in load_stack_file("production").items() if k.startswith("bluegreen:")}
    for path, value in changes.items():
        section, _, key = path.partition(".")
        if key:
            raw[section] = {**(raw.get(section) or {}), key: value}
        else:
            raw[section] = value
    return parse_stack_config(raw)


def test_probe_config_defaults_follow_the_certificate():
    cfg = _cfg()
    assert cfg.probe.enabled and cfg.probe.subnet_ids == tuple(cfg.network.private_subnet_ids) and cfg.probe.probes == 10
    assert cfg.traffic.test_hostname == "canary.example.com"
    staging = {k.split(":", 1)[1]: v for k, v in load_stack_file("staging").items() if k.startswith("bluegreen:")}
    assert not parse_stack_config(staging).probe.enabled


@pytest.mark.parametrize(
    "changes, key, words",
    [
        ({"traffic.testHostname": None}, "bluegreen:traffic.testHostname", "is required while bluegreen:probe.enabled is true"),
        ({"traffic.testHostname": "*.example.com"}, "bluegreen:traffic.testHostname", "no wildcard"),
        ({"traffic.testHostname": "canary"}, "bluegreen:traffic.testHostname", "DNS name"),
        ({"traffic.testHostname": "Canary.Example.com"}, "bluegreen:traffic.testHostname", "lowercase"),
        ({"network.privateSubnetIds": []}, "bluegreen:probe.subnetIds", "needs private subnets"),
        ({"probe.subnetIds": ["sub-1"]}, "bluegreen:probe.subnetIds", "subnet id"),
        ({"probe.probes": 0}, "bluegreen:probe.probes", "between 1 and 50"),
        ({"probe.timeoutSeconds": 30}, "bluegreen:probe.timeoutSeconds", "between 1 and 10"),
        ({"probe.expectedStatus": 99}, "bluegreen:probe.expectedStatus", "between 100 and 599"),
        ({"probe.enable": True}, "bluegreen:probe.enable", "did you mean 'enabled'"),
        ({"probe.enabled": "yes"}, "bluegreen:probe.enabled", "true | false"),
        ({"probe.syntheticPerMinute": 1001}, "bluegreen:probe.syntheticPerMinute", "between 0 and 1000"),
        ({"probe.syntheticPerMinute": -1}, "bluegreen:probe.syntheticPerMinute", "between 0 and 1000"),
        ({"probe.syntheticPerMinute": "300"}, "bluegreen:probe.syntheticPerMinute", "must be an integer 0..1000"),
        ({"probe.syntheticPerMinute": 300, "probe.enabled": False}, "bluegreen:probe.syntheticPerMinute", "bluegreen:probe.enabled is false"),
        ({"probe.syntheticPath": "api/ping"}, "bluegreen:probe.syntheticPath", "absolute URL path"),
    ],
)
def test_bad_probe_config_names_the_key(changes, key, words):
    with pytest.raises(ConfigError) as e:
        _cfg(**changes)
    assert e.value.key == key and words in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_probe_off_needs_no_hostname_and_declares_nothing():
    cfg = _cfg(**{"probe.enabled": False, "traffic.testHostname": None})
    assert not cfg.probe.enabled
    s = run_program("production", overrides={"bluegreen:probe": {"enabled": False}})
    assert probe_resources(s) == [] and "bluegreen:probe" not in s.one(LISTENER, "-test").inputs["tags"]


def test_probe_settings_reach_the_function_unchanged():
    s = run_program("production", overrides={"bluegreen:probe": {"probes": 4, "timeoutSeconds": 5, "expectedStatus": 204}})
    env = s.one(FN, "-probe-fn").inputs["environment"]["variables"]
    assert (env["BLUEGREEN_PROBES"], env["BLUEGREEN_PROBE_TIMEOUT_SECONDS"], env["BLUEGREEN_EXPECTED_STATUS"]) == ("4", "5", "204"), env
    from rollout.probe_runner import ProbeSettings

    back = ProbeSettings.from_env(env)
    assert (back.probes, back.timeout_s, back.expected_status, back.hostname) == (4, 5.0, 204, "canary.example.com")


@pytest.mark.parametrize(
    "env, words",
    [
        ({"BLUEGREEN_LOAD_BALANCER_ARN": "arn:x"}, "BLUEGREEN_STACK is not set"),
        ({"BLUEGREEN_STACK": "p"}, "BLUEGREEN_LOAD_BALANCER_ARN is not set"),
        ({"BLUEGREEN_STACK": "p", "BLUEGREEN_LOAD_BALANCER_ARN": "arn:x", "BLUEGREEN_PROBES": "ten"}, "BLUEGREEN_PROBES must be a number"),
        ({"BLUEGREEN_STACK": "p", "BLUEGREEN_LOAD_BALANCER_ARN": "arn:x", "BLUEGREEN_PROBES": "0"}, "BLUEGREEN_PROBES must be between 1 and 100"),
    ],
)
def test_the_function_names_the_variable_it_cannot_use(env, words):
    from rollout.probe_runner import ProbeSettings, ProbeSetupError

    with pytest.raises(ProbeSetupError, match=words):
        ProbeSettings.from_env(env)


# --------------------------------------------------------------------------- synthetic load (issue 11)

TASK_SGS = ("-blue-sg", "-green-sg")


def test_synthetic_load_is_off_by_default_and_declares_nothing_for_it():
    s = sim()
    assert "BLUEGREEN_SYNTHETIC_PER_MINUTE" not in s.one(FN, "-probe-fn").inputs["environment"]["variables"]
    policy = s.one("aws:iam/rolePolicy:RolePolicy", "-probe-policy").inputs["policy"]
    assert "DescribeTargetHealth" not in policy
    assert sorted(e["fromPort"] for e in s.one(SG, "-probe-sg").inputs["egress"]) == [443, 8443]
    for name in TASK_SGS:
        assert [r["description"] for r in s.one(SG, name).inputs["ingress"]] == ["from the ALB"], name


def test_synthetic_load_reaches_the_targets_by_security_group_and_reads_them():
    """On: the function gets the setting, may read the targets' health (their addresses), may leave on the
    service port, and each colour's tasks admit it there by reference (nobody else new)."""
    s = run_program("production", overrides={"bluegreen:probe": {"syntheticPerMinute": 300, "syntheticPath": "/api/ping"}})
    env = s.one(FN, "-probe-fn").inputs["environment"]["variables"]
    from rollout.probe_runner import ProbeSettings

    back = ProbeSettings.from_env(env)
    assert (back.synthetic_per_minute, back.synthetic_path) == (300, "/api/ping")
    policy = json.loads(s.one("aws:iam/rolePolicy:RolePolicy", "-probe-policy").inputs["policy"])
    actions = [a for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])]
    assert "elasticloadbalancing:DescribeTargetHealth" in actions
    probe_sg = s.one(SG, "-probe-sg")
    port = load_stack_file("production")["bluegreen:service"].get("port", 8080)
    assert sorted(e["fromPort"] for e in probe_sg.inputs["egress"]) == sorted([443, 8443, port])
    alb_sg = s.one(SG, "-alb-sg")
    for name in TASK_SGS:
        rules = {r["description"]: r for r in s.one(SG, name).inputs["ingress"]}
        assert set(rules) == {"from the ALB", "synthetic load from the probe function"}, name
        assert rules["synthetic load from the probe function"]["securityGroups"] == [probe_sg.id]
        assert rules["synthetic load from the probe function"]["fromPort"] == port == rules["from the ALB"]["fromPort"]
        assert rules["from the ALB"]["securityGroups"] == [alb_sg.id]


def test_synthetic_load_changes_nothing_a_traffic_step_touches():
    """Turning it on is a config change of its own; with it on, a step still changes only the production listener."""
    on = {"bluegreen:probe": {"syntheticPerMinute": 300}}
    a = run_program("production", overrides={**on, "bluegreen:rollout.step": 1})
    b = run_program("production", overrides={**on, "bluegreen:rollout.step": 2})
    d = diff_resources(a, b)
    assert not d["create"] and not d["delete"] and [u.rsplit("::", 1)[1] for u in d["update"]] == ["web-traffic-production"], d


def test_synthetic_load_on_kubernetes_admits_the_function_to_the_pods_through_the_binding():
    """On Kubernetes the pods' port is opened by the load balancer controller from the TargetGroupBinding's
    networking rule: the probe function's security group joins the ALB's there, on the same port."""
    cfg = load_stack_file("production")
    cfg["bluegreen:platform"] = "kubernetes"
    cfg["bluegreen:kubernetes"] = {"namespace": "web", "context": "prod"}
    cfg["bluegreen:probe"] = {**(cfg.get("bluegreen:probe") or {}), "syntheticPerMinute": 300}
    s = run_program("production", cfg)
    probe_sg, alb_sg = s.one(SG, "-probe-sg"), s.one(SG, "-alb-sg")
    port = cfg["bluegreen:service"]["port"]
    for color in ("blue", "green"):
        tgb = s.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", f"-{color}-tgb")
        assert tgb.inputs["spec"]["networking"]["ingress"] == [{
            "from": [{"securityGroup": {"groupID": alb_sg.id}}, {"securityGroup": {"groupID": probe_sg.id}}],
            "ports": [{"protocol": "TCP", "port": port}],
        }], tgb.urn
    off = run_program("production", {**cfg, "bluegreen:probe": {**cfg["bluegreen:probe"], "syntheticPerMinute": 0}})
    tgb = off.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "-blue-tgb")
    assert tgb.inputs["spec"]["networking"]["ingress"][0]["from"] == [{"securityGroup": {"groupID": off.one(SG, "-alb-sg").id}}], tgb.urn
