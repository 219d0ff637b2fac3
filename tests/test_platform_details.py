"""Details a first real deploy depends on, checked on what the program registers under the mock runtime."""

from __future__ import annotations

import pytest

from rollout.simulate import run_program

SUBNET = "aws:ec2/subnet:Subnet"


def test_created_vpc_uses_the_zones_aws_reports_not_region_a_b():
    """The mock reports us-east-1b, c, d, f (as an account without an "a" zone would)."""
    s = run_program("staging")
    zones = sorted(r.inputs["availabilityZone"] for r in s.by_type(SUBNET))
    assert zones == ["us-east-1b", "us-east-1c"], zones
    assert sorted(r.inputs["tags"]["Name"] for r in s.by_type(SUBNET))[0].endswith("-public-us-east-1b")


def test_explicit_zones_are_kept():
    s = run_program("staging", overrides={"bluegreen:network.availabilityZones": ["us-east-1d", "us-east-1f"]})
    assert sorted(r.inputs["availabilityZone"] for r in s.by_type(SUBNET)) == ["us-east-1d", "us-east-1f"]


def test_task_definition_waits_for_the_execution_role_policy(monkeypatch):
    """Without the dependency the first task can start before the role may pull the image or write logs."""
    import pulumi_aws as aws

    seen = {}
    real = aws.ecs.TaskDefinition.__init__

    def spy(self, resource_name, *args, opts=None, **kwargs):
        seen[resource_name] = [getattr(d, "_name", None) for d in (opts.depends_on or [])] if opts else []
        return real(self, resource_name, *args, opts=opts, **kwargs)

    monkeypatch.setattr(aws.ecs.TaskDefinition, "__init__", spy)
    run_program("production")
    assert set(seen) == {"web-blue-task", "web-green-task"}, seen
    for name, deps in seen.items():
        assert "web-ecs-execution" in deps, f"{name} depends on {deps}"


@pytest.mark.parametrize("value, expected", [(None, 30), (180, 180)])
def test_health_check_grace_period_is_configurable(value, expected):
    overrides = {} if value is None else {"bluegreen:service.healthCheckGracePeriod": value}
    s = run_program("production", overrides=overrides)
    services = s.by_type("aws:ecs/service:Service")
    assert [r.inputs["healthCheckGracePeriodSeconds"] for r in services] == [expected, expected]


def test_a_negative_grace_period_is_refused_naming_the_key():
    from rollout.config import parse_stack_config
    from rollout.errors import ConfigError

    with pytest.raises(ConfigError, match=r"bluegreen:service.healthCheckGracePeriod: must be between 0 and 2147483647; got -1"):
        parse_stack_config({"rollout": {"stable": "blue", "steps": [100], "step": 0}, "colors": {"blue": {"image": "a"}, "green": {"image": "a"}},
                            "network": {"create": True}, "service": {"healthCheckGracePeriod": -1}})


# --------------------------------------------------------------------------- Kubernetes


def _k8s(**paths):
    from tests.test_kubernetes import sim

    return sim("production", "kubernetes", 0, **paths)


def test_pods_wait_before_stopping_so_the_alb_drains_them_first():
    s = _k8s()
    for d in s.by_type("kubernetes:apps/v1:Deployment"):
        pod = d.inputs["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 15}}}, d.urn
        assert pod["terminationGracePeriodSeconds"] > 15, d.urn
    s = _k8s(bluegreen_COLON_kubernetes__preStopSeconds=40)
    pod = s.by_type("kubernetes:apps/v1:Deployment")[0].inputs["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 40 and pod["terminationGracePeriodSeconds"] == 85


def test_a_namespace_the_program_does_not_create_still_gets_the_readiness_gate_label():
    s = _k8s()  # namespace "web", createNamespace false
    (patch,) = s.by_type("kubernetes:core/v1:NamespacePatch")
    assert patch.inputs["metadata"] == {"name": "web", "labels": {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}}, patch.inputs


def test_installing_the_controller_without_an_iam_identity_is_refused():
    from rollout.config import parse_stack_config
    from rollout.errors import ConfigError

    base = {"rollout": {"stable": "blue", "steps": [100], "step": 0}, "colors": {"blue": {"image": "a"}, "green": {"image": "a"}},
            "network": {"vpcId": "vpc-0123456789abcdef0", "publicSubnetIds": ["subnet-01", "subnet-02"]}, "platform": "kubernetes"}
    k8s = {"eksClusterName": "prod", "installLoadBalancerController": True}
    with pytest.raises(ConfigError, match=r"^bluegreen:kubernetes.controllerRoleArn: is required when installLoadBalancerController is true"):
        parse_stack_config({**base, "kubernetes": k8s})
    for ok in ({"controllerRoleArn": "arn:aws:iam::123456789012:role/lbc"}, {"controllerPodIdentity": True}, {"controllerCreateServiceAccount": False}):
        parse_stack_config({**base, "kubernetes": {**k8s, **ok}})
