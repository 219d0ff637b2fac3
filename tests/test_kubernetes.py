"""Colours on Kubernetes: the real program (`__main__.py` + the real stack files) under Pulumi's mock runtime.

Each platform is the same program with one config switch (`bluegreen:platform`), so every rollout
property is checked for every platform variant at every step:

- ``ecs``: the stack file as it is;
- ``kubernetes``: a kubeconfig context, an existing namespace;
- ``eks``: an EKS cluster reached through `aws eks get-token`, a namespace the program creates, and
  the AWS Load Balancer Controller installed from its Helm chart.

Bad `bluegreen:kubernetes` config is refused before any resource is registered, with the key named.
"""

from __future__ import annotations

import json
from functools import lru_cache

import pulumi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.kubernetes import (
    CONTROLLER_CHART,
    CONTROLLER_REPO,
    READINESS_GATE_LABEL,
    app_name,
    controller_values,
    eks_kubeconfig,
    object_name,
    probes,
    target_group_binding_spec,
)
from rollout.config import parse_stack_config
from rollout.errors import ConfigError
from rollout.rules import COLORS, weights_for
from rollout.workload import parse_workload_record
from rollout.simulate import RecordingMocks, diff_resources, load_stack_file, run_program, set_path
from tests.test_config_errors import DELETE  # one sentinel for "the case removes the key"

STACKS = ("staging", "production")
LISTENER = "aws:lb/listener:Listener"
TG = "aws:lb/targetGroup:TargetGroup"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
K8S_SERVICE = "kubernetes:core/v1:Service"
TGB = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_PROVIDER = "pulumi:providers:kubernetes"
ECS_SERVICE = "aws:ecs/service:Service"
ROLE_ARN = "arn:aws:iam::123456789012:role/aws-load-balancer-controller"

VARIANTS = {
    "ecs": {},
    "kubernetes": {"bluegreen:platform": "kubernetes", "bluegreen:kubernetes": {"namespace": "web", "context": "prod"}},
    "eks": {
        "bluegreen:platform": "kubernetes",
        "bluegreen:kubernetes": {
            "namespace": "web",
            "createNamespace": True,
            "eksClusterName": "prod-eks",
            "installLoadBalancerController": True,
            "controllerRoleArn": ROLE_ARN,
        },
    },
}
K8S_VARIANTS = ("kubernetes", "eks")
EXISTING_VPC = {"vpcId": "vpc-0fedcba9876543210", "publicSubnetIds": ["subnet-0aaa0000000000001", "subnet-0aaa0000000000002"]}


def config_of(stack: str, variant: str, **paths) -> dict:
    """The stack file, switched to `variant`, plus `--path` edits given as `bluegreen_COLON_idle__parked=True`."""
    cfg = load_stack_file(stack)
    for k, v in VARIANTS[variant].items():
        cfg = set_path(cfg, k, v)
    if variant in K8S_VARIANTS and cfg.get("bluegreen:network", {}).get("create"):
        # Pods register by IP: the ALB's target groups must be in the cluster's VPC, never a new one.
        cfg = set_path(cfg, "bluegreen:network", EXISTING_VPC)
    for k, v in paths.items():
        cfg = set_path(cfg, k.replace("__", ".").replace("_COLON_", ":"), v)
    return cfg


@lru_cache(maxsize=None)
def sim(stack: str, variant: str, step: int = 0, stable: str = "blue", **paths):
    cfg = config_of(stack, variant, bluegreen_COLON_rollout__step=step, bluegreen_COLON_rollout__stable=stable, **paths)
    mocks = RecordingMocks()
    s = run_program(stack, cfg, mocks=mocks)
    s.mocks = mocks  # the raw registrations: provider references
    return s


def n_steps(stack: str) -> int:
    return len(load_stack_file(stack)["bluegreen:rollout"]["steps"])


STEP_CASES = [(stack, variant, step) for stack in STACKS for variant in VARIANTS for step in range(n_steps(stack) + 1)]
MOVE_CASES = [c for c in STEP_CASES if c[2] < n_steps(c[0])]


def forward_weights(s) -> dict[str, int]:
    arn_color = {r.outputs["arn"]: r.inputs["tags"]["bluegreen:color"] for r in s.by_type(TG)}
    (action,) = s.one(LISTENER, "-production").inputs["defaultActions"]
    return {arn_color[tg["arn"]]: tg["weight"] for tg in action["forward"]["targetGroups"]}


def bindings(s, variant: str) -> dict[str, list[str]]:
    """Target group ARN -> names of what registers targets in it (ECS services or TargetGroupBindings)."""
    out: dict[str, list[str]] = {}
    if variant == "ecs":
        for svc in s.by_type(ECS_SERVICE):
            for lb in svc.inputs["loadBalancers"]:
                out.setdefault(lb["targetGroupArn"], []).append(svc.name)
    else:
        for b in s.by_type(TGB):
            out.setdefault(b.inputs["spec"]["targetGroupARN"], []).append(b.name)
    return out


def workload(s, variant: str, color: str) -> tuple[str, int]:
    """(image, replicas) of a colour's workload on its platform."""
    if variant == "ecs":
        (container,) = json.loads(s.one("aws:ecs/taskDefinition:TaskDefinition", f"-{color}-task").inputs["containerDefinitions"])
        return container["image"], s.one(ECS_SERVICE, f"-{color}-service").inputs["desiredCount"]
    d = s.one(DEPLOYMENT, f"-{color}-deployment").inputs
    (container,) = d["spec"]["template"]["spec"]["containers"]
    return container["image"], int(d["spec"]["replicas"])


# --- the rollout behaves the same on every platform ------------------------------------------------


@pytest.mark.parametrize("stack, variant, step", STEP_CASES)
def test_listener_weights_at_every_step(stack, variant, step):
    s = sim(stack, variant, step)
    steps = load_stack_file(stack)["bluegreen:rollout"]["steps"]
    want = weights_for("blue", steps, step)
    got = forward_weights(s)
    assert got == want, f"{stack}/{variant} step {step}: {s.one(LISTENER, '-production').urn} weights {got}, want {want}"
    assert s.outputs["weights"] == want and s.outputs["platform"] == ("ecs" if variant == "ecs" else "kubernetes")


@pytest.mark.parametrize("stack, variant, step", MOVE_CASES)
def test_each_step_changes_exactly_the_production_listener(stack, variant, step):
    d = diff_resources(sim(stack, variant, step), sim(stack, variant, step + 1))
    assert d["create"] == [] and d["delete"] == [], f"{stack}/{variant} {step}->{step + 1}: {d}"
    assert len(d["update"]) == 1 and d["update"][0].endswith("::web-traffic-production"), f"{stack}/{variant} {step}->{step + 1}: {d}"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_a_rollback_changes_exactly_the_production_listener(stack, variant):
    n = n_steps(stack)
    for frm in range(1, n + 1):
        d = diff_resources(sim(stack, variant, frm), sim(stack, variant, 0))
        assert not d["create"] and not d["delete"], f"{stack}/{variant} {frm}->0: {d}"
        assert len(d["update"]) == 1 and d["update"][0].endswith("::web-traffic-production"), f"{stack}/{variant} {frm}->0: {d}"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_finish_touches_no_kubernetes_object(stack, variant):
    before, after = sim(stack, variant, n_steps(stack)), sim(stack, variant, 0, "green")
    d = diff_resources(before, after)
    touched = [u for u in d["update"] + d["create"] + d["delete"] if "::kubernetes:" in u or "providers:kubernetes" in u]
    assert touched == [], f"{stack}/{variant}: the finish changed {touched}"
    assert forward_weights(before) == forward_weights(after) == {"blue": 0, "green": 100}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_traffic_layer_is_identical_on_every_platform(stack, variant):
    ecs, k8s = sim(stack, "ecs", 2), sim(stack, variant, 2)
    # staging creates its VPC on ECS; on Kubernetes it uses the cluster's: only the network ids may differ
    network_keys = {"vpcId", "subnets"} if stack == "staging" else set()

    def inputs(r):
        out = {k: v for k, v in r.inputs.items() if k not in network_keys}
        if isinstance(out.get("tags"), dict) and "bluegreen:workload" in out["tags"]:
            # What each colour runs is recorded per platform (rollout.workload.stack_record): Kubernetes records its
            # Deployments' pod fingerprints, ECS its config's. Compared here: that a valid record is there.
            out["tags"] = {**out["tags"], "bluegreen:workload": parse_workload_record(out["tags"]["bluegreen:workload"]) is not None}
        return out

    for typ in (TG, LISTENER, "aws:lb/loadBalancer:LoadBalancer", "aws:lb/listenerRule:ListenerRule"):
        a = {r.urn: inputs(r) for r in ecs.by_type(typ)}
        b = {r.urn: inputs(r) for r in k8s.by_type(typ)}
        assert a == b, f"{stack}/{variant}: {typ} differs from ECS: {sorted(set(a) ^ set(b)) or [u for u in a if a[u] != b.get(u)]}"
    assert all(r.inputs["targetType"] == "ip" for r in k8s.by_type(TG)), f"{stack}/{variant}: target groups must be target type ip"
    kinds = {parse_workload_record(r.inputs["tags"].get("bluegreen:workload")).kind for r in k8s.by_type(LISTENER) if "bluegreen:workload" in r.inputs["tags"]}
    assert kinds == {"pod"}, f"{stack}/{variant}: the production listener must record pod fingerprints, got {kinds}"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_target_group_is_bound_exactly_once_to_its_colour(stack, variant):
    s = sim(stack, variant, 1)
    bound = bindings(s, variant)
    assert len(bound) == 2, f"{stack}/{variant}: bindings {bound}"
    for color in COLORS:
        tg = s.one(TG, f"-tg-{color}")
        assert bound.get(tg.outputs["arn"]) is not None and len(bound[tg.outputs["arn"]]) == 1, f"{stack}/{variant}: {tg.urn} bound by {bound.get(tg.outputs['arn'])}"
        (binder,) = bound[tg.outputs["arn"]]
        assert binder.startswith(f"web-{color}-"), f"{stack}/{variant}: {tg.urn} bound by {binder}, not by the {color} workload"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_binding_points_at_its_colours_service_and_pods(stack, variant):
    s = sim(stack, variant, 1)
    port = load_stack_file(stack)["bluegreen:service"]["port"]
    alb_sg = s.one("aws:ec2/securityGroup:SecurityGroup", "-alb-sg")
    for color in COLORS:
        tgb = s.one(TGB, f"web-{color}-tgb")
        svc = s.one(K8S_SERVICE, f"web-{color}-service").inputs
        dep = s.one(DEPLOYMENT, f"web-{color}-deployment").inputs
        spec = tgb.inputs["spec"]
        assert tgb.inputs["apiVersion"] == "elbv2.k8s.aws/v1beta1" and tgb.inputs["kind"] == "TargetGroupBinding", tgb.urn
        assert spec["targetType"] == "ip" and spec["targetGroupARN"] == s.one(TG, f"-tg-{color}").outputs["arn"], f"{tgb.urn}: {spec}"
        assert spec["serviceRef"] == {"name": svc["metadata"]["name"], "port": port}, f"{tgb.urn}: {spec['serviceRef']}"
        assert spec["networking"]["ingress"] == [
            {"from": [{"securityGroup": {"groupID": alb_sg.id}}], "ports": [{"protocol": "TCP", "port": port}]}
        ], f"{tgb.urn}: only the ALB may reach the pods"
        assert tgb.inputs["metadata"]["namespace"] == svc["metadata"]["namespace"] == dep["metadata"]["namespace"] == "web", tgb.urn
        assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["selector"] == {"app": "web", "color": color}, f"{color}: {svc['spec']}"
        assert svc["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}], svc["spec"]["ports"]
        assert dep["spec"]["selector"] == {"matchLabels": {"app": "web", "color": color}}, dep["spec"]["selector"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert labels["app"] == "web" and labels["color"] == color, f"{color}: pod labels {labels}"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_colour_runs_its_image(stack, variant):
    s = sim(stack, variant, 0, bluegreen_COLON_colors__green__image="example.com/web:2.0")
    blue_image = load_stack_file(stack)["bluegreen:colors"]["blue"]["image"]
    for color, image in (("blue", blue_image), ("green", "example.com/web:2.0")):
        assert workload(s, variant, color)[0] == image, f"{stack}/{variant}: {color} runs {workload(s, variant, color)[0]}, want {image}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_idle_policy_scales_the_parked_colour_only(variant):
    def replicas(stack, **paths):
        s = sim(stack, variant, 0, **paths)
        return {c: workload(s, variant, c)[1] for c in COLORS}

    assert replicas("staging") == {"blue": 1, "green": 1}  # not parked: full size
    assert replicas("staging", bluegreen_COLON_idle__parked=True) == {"blue": 1, "green": 0}  # staging policy: zero
    assert replicas("production", bluegreen_COLON_idle__parked=True) == {"blue": 3, "green": 3}  # production: warm
    assert replicas("production", bluegreen_COLON_idle__parked=True, bluegreen_COLON_idle__policy="scale") == {"blue": 3, "green": 1}


@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_pods_have_probes_and_resources_from_config(variant):
    s = sim(
        "production", variant, 0,
        bluegreen_COLON_service__healthPath="/ready",
        bluegreen_COLON_kubernetes__cpuRequest="100m",
        bluegreen_COLON_kubernetes__memoryLimit="1Gi",
    )
    for color in COLORS:
        d = s.one(DEPLOYMENT, f"web-{color}-deployment")
        (c,) = d.inputs["spec"]["template"]["spec"]["containers"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"] == {"path": "/ready", "port": 8080, "scheme": "HTTP"}, f"{d.urn}: {probe} {c[probe]}"
        assert c["livenessProbe"]["failureThreshold"] > c["readinessProbe"]["failureThreshold"], f"{d.urn}: liveness must be slower to act"
        assert c["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}, f"{d.urn}: {c['resources']}"
        assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}], f"{d.urn}: {c['ports']}"
        assert {"name": "BLUEGREEN_COLOR", "value": color} in c["env"], f"{d.urn}: {c['env']}"
        assert d.inputs["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, f"{d.urn}: a rollout must not drop capacity"


@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_every_kubernetes_object_uses_the_platforms_provider(variant):
    s = sim("production", variant, 1)
    (provider,) = s.by_type(K8S_PROVIDER)
    ref = f"{provider.urn}::{provider.id}"
    k8s = [(a.typ, a.name, a.provider) for a, _ in s.mocks.records if a.typ.startswith("kubernetes:")]
    assert k8s, f"{variant}: no Kubernetes object registered"
    wrong = [(t, n, p) for t, n, p in k8s if p != ref]
    assert wrong == [], f"{variant}: objects not on {ref}: {wrong}"
    assert provider.parent.endswith("bluegreen:index:KubernetesPlatform"), provider.urn
    for color in COLORS:
        for typ, suffix in ((DEPLOYMENT, "deployment"), (K8S_SERVICE, "service"), (TGB, "tgb")):
            r = s.one(typ, f"web-{color}-{suffix}")
            assert r.parent.endswith("bluegreen:index:ColorEnvironment") and r.urn.endswith(f"::web-{color}-{suffix}"), r.urn


def test_kubeconfig_context_provider():
    s = sim("production", "kubernetes")
    (provider,) = s.by_type(K8S_PROVIDER)
    assert provider.inputs.get("context") == "prod" and not provider.inputs.get("kubeconfig"), f"{provider.urn}: {provider.inputs}"
    assert s.by_type(NAMESPACE) == [] and s.by_type(RELEASE) == [], "namespace and controller are opt-in"
    assert s.by_type(ECS_SERVICE) == [] and s.by_type("aws:ecs/cluster:Cluster") == [], "no ECS resources on kubernetes"


def test_kubeconfig_content_is_passed_as_a_secret_and_a_path_as_is():
    from pulumi.runtime import rpc

    content = "apiVersion: v1\nkind: Config\nclusters: []\n"
    s = sim("staging", "kubernetes", 0, bluegreen_COLON_kubernetes__kubeconfig=content)
    (provider,) = s.by_type(K8S_PROVIDER)
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": content}
    assert provider.inputs["kubeconfig"] == secret and provider.inputs["context"] == "prod", f"{provider.urn}: {provider.inputs}"
    s = sim("staging", "kubernetes", 0, bluegreen_COLON_kubernetes__kubeconfig="~/.kube/prod.yaml")
    (provider,) = s.by_type(K8S_PROVIDER)
    assert provider.inputs["kubeconfig"] == "~/.kube/prod.yaml", f"{provider.urn}: {provider.inputs}"


def test_ecs_platform_registers_no_kubernetes_object():
    s = sim("production", "ecs")
    assert [r.urn for r in s.resources if r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes"))] == []


def test_eks_cluster_provider_uses_get_token():
    s = sim("production", "eks")
    (provider,) = s.by_type(K8S_PROVIDER)
    kc = json.loads(provider.inputs["kubeconfig"])
    (cluster,) = kc["clusters"]
    assert cluster["cluster"]["server"] == "https://prod-eks.eks.us-east-1.amazonaws.com", f"{provider.urn}: {cluster}"
    assert cluster["cluster"]["certificate-authority-data"] == "bW9jaw==", f"{provider.urn}: {cluster}"
    (user,) = kc["users"]
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "aws" and exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1", f"{provider.urn}: {exec_}"
    assert exec_["args"] == ["eks", "get-token", "--cluster-name", "prod-eks", "--output", "json", "--region", "us-east-1"], exec_["args"]
    assert "token" not in json.dumps(kc["users"]).replace("get-token", ""), f"{provider.urn}: no static token in the kubeconfig"
    assert not provider.inputs.get("context"), f"{provider.urn}: {provider.inputs}"


def test_eks_namespace_is_created_with_the_readiness_gate():
    s = sim("production", "eks")
    (ns,) = s.by_type(NAMESPACE)
    assert ns.inputs["metadata"]["name"] == "web" and ns.inputs["metadata"]["labels"][READINESS_GATE_LABEL] == "enabled", ns.inputs
    assert ns.parent.endswith("bluegreen:index:KubernetesPlatform"), ns.urn


def test_controller_release_from_the_eks_charts():
    s = sim("production", "eks")
    (release,) = s.by_type(RELEASE)
    i = release.inputs
    assert (i["chart"], i["repositoryOpts"]["repo"], i["version"]) == (CONTROLLER_CHART, CONTROLLER_REPO, "1.8.1"), f"{release.urn}: {i}"
    assert i["namespace"] == "kube-system" and i["name"] == "aws-load-balancer-controller", f"{release.urn}: {i}"
    assert i["values"] == {
        "clusterName": "prod-eks",
        "region": "us-east-1",
        "vpcId": "vpc-0mock",  # the EKS cluster's VPC, from aws:eks/getCluster
        "serviceAccount": {"create": True, "name": "aws-load-balancer-controller", "annotations": {"eks.amazonaws.com/role-arn": ROLE_ARN}},
    }, f"{release.urn}: {i['values']}"


@pytest.fixture
def dependencies(monkeypatch):
    """name -> URNs the program declared the resource depends on, as the engine receives them."""
    from pulumi.runtime.mocks import MockMonitor

    seen: dict[str, list[str]] = {}
    register = MockMonitor.RegisterResource

    def spy(self, request):
        seen[request.name] = list(request.dependencies)
        return register(self, request)

    monkeypatch.setattr(MockMonitor, "RegisterResource", spy)
    return seen


@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_bindings_wait_for_the_controller_and_the_listeners(dependencies, variant):
    s = run_program("production", config_of("production", variant))
    releases = [r.urn for r in s.by_type(RELEASE)]
    assert len(releases) == (1 if variant == "eks" else 0), releases
    production = s.one(LISTENER, "-production").urn
    for color in COLORS:
        deps = dependencies[f"web-{color}-tgb"]
        assert production in deps, f"web-{color}-tgb must wait for {production}; depends on {deps}"
        pods = dependencies[f"web-{color}-deployment"]
        assert production in pods, f"web-{color}-deployment must be judged with this update's listener live; depends on {pods}"
        svc = dependencies[f"web-{color}-service"]
        assert production in svc, f"web-{color}-service must be judged with this update's listener live; depends on {svc}"
        assert s.one(K8S_SERVICE, f"web-{color}-service").urn in deps, f"web-{color}-tgb must wait for its Service; depends on {deps}"
        for r in releases:
            assert r in deps, f"web-{color}-tgb must wait for the controller {r}; depends on {deps}"
            assert r in dependencies[f"web-{color}-deployment"], f"web-{color}-deployment must wait for {r} (readiness gate webhook)"


def test_controller_with_kubeconfig_needs_a_cluster_name_and_reuses_an_existing_service_account():
    s = sim(
        "production", "kubernetes", 0,
        bluegreen_COLON_kubernetes__installLoadBalancerController=True,
        bluegreen_COLON_kubernetes__controllerClusterName="shared-eks",
        bluegreen_COLON_kubernetes__controllerCreateServiceAccount=False,
        bluegreen_COLON_kubernetes__controllerChartVersion="1.13.0",
    )
    (release,) = s.by_type(RELEASE)
    v = release.inputs["values"]
    assert v["clusterName"] == "shared-eks" and release.inputs["version"] == "1.13.0", f"{release.urn}: {release.inputs}"
    assert v["serviceAccount"] == {"create": False, "name": "aws-load-balancer-controller"}, f"{release.urn}: {v}"
    vpc = load_stack_file("production")["bluegreen:network"]["vpcId"]
    assert v["vpcId"] == vpc, f"{release.urn}: the controller gets the stack's VPC ({vpc}), not IMDS discovery: {v}"


# --- bad config: refused before any resource, the key named ------------------------------------------

K = "bluegreen:kubernetes"
# (config path, bad value, key named in the error, words the error must contain); applied to the `kubernetes` variant.
BAD = [
    ("bluegreen:platform", "kubernets", "bluegreen:platform", "did you mean 'kubernetes'"),
    ("bluegreen:platform", "k8s", "bluegreen:platform", "ecs | kubernetes"),
    (K, {"namespace": "web"}, K, "needs a cluster"),
    (K, DELETE, K, "needs a cluster"),
    (K, "prod", K, "must be an object"),
    (f"{K}.eksClusterName", "prod-eks", f"{K}.eksClusterName", "choose one way to reach the cluster"),
    (f"{K}.namespace", "Web_NS", f"{K}.namespace", "Kubernetes name"),
    (f"{K}.namespace", "x" * 64, f"{K}.namespace", "at most 63"),
    (f"{K}.createNamespace", "yes", f"{K}.createNamespace", "true | false"),
    (f"{K}.cpuRequest", "250 millicores", f"{K}.cpuRequest", "Kubernetes quantity"),
    (f"{K}.memoryLimit", "lots", f"{K}.memoryLimit", "Kubernetes quantity"),
    (f"{K}.memoryRequest", True, f"{K}.memoryRequest", "non-empty string"),
    (f"{K}.cpuLimit", -1, f"{K}.cpuLimit", "non-empty string"),
    (f"{K}.cpuRequest", "2", f"{K}.cpuRequest", "must not exceed cpuLimit (500m)"),
    (f"{K}.memoryRequest", "1Gi", f"{K}.memoryRequest", "must not exceed memoryLimit (512Mi)"),
    (f"{K}.namepsace", "web", f"{K}.namepsace", "did you mean 'namespace'"),
    (f"{K}.eksClustername", "prod", f"{K}.eksClustername", "did you mean 'eksClusterName'"),
    (f"{K}.installLoadBalancerController", True, f"{K}.controllerClusterName", "is required when installLoadBalancerController is true"),
    (f"{K}.controllerRoleArn", ROLE_ARN, f"{K}.controllerRoleArn", "installLoadBalancerController is false"),
    (f"{K}.controllerChartVersion", "1.9.0", f"{K}.controllerChartVersion", "installLoadBalancerController is false"),
]
# The same, on the `eks` variant (EKS cluster, controller installed, namespace created).
BAD_EKS = [
    (f"{K}.context", "prod", f"{K}.eksClusterName", "choose one way to reach the cluster"),
    (f"{K}.kubeconfig", "~/.kube/config", f"{K}.eksClusterName", "choose one way to reach the cluster"),
    (f"{K}.eksClusterName", "prod eks", f"{K}.eksClusterName", "EKS cluster name"),
    (f"{K}.eksClusterName", "", f"{K}.eksClusterName", "non-empty"),
    (f"{K}.namespace", "default", f"{K}.createNamespace", "always exists"),
    (f"{K}.controllerChartVersion", "latest", f"{K}.controllerChartVersion", "chart version such as 1.8.1"),
    (f"{K}.controllerRoleArn", "aws-load-balancer-controller", f"{K}.controllerRoleArn", "IAM role ARN"),
    (f"{K}.controllerRoleArn", "arn:aws:iam::123456789012:policy/alb", f"{K}.controllerRoleArn", "IAM role ARN"),
    (f"{K}.controllerCreateServiceAccount", False, f"{K}.controllerRoleArn", "controllerCreateServiceAccount is false"),
    (f"{K}.controllerServiceAccountName", "ALB Controller", f"{K}.controllerServiceAccountName", "Kubernetes name"),
    (f"{K}.controllerNamespace", "kube_system", f"{K}.controllerNamespace", "Kubernetes name"),
    (f"{K}.installLoadBalancerControler", True, f"{K}.installLoadBalancerControler", "did you mean 'installLoadBalancerController'"),
]
CASES = [("kubernetes", *c) for c in BAD] + [("eks", *c) for c in BAD_EKS]


def _apply(cfg: dict, path: str, value) -> dict:
    if value is not DELETE:
        return set_path(cfg, path, value)
    out = dict(cfg)
    del out[path]
    return out


@pytest.mark.parametrize("variant, path, value, key, words", CASES, ids=[f"{c[0]}:{c[1]}={c[2]!r}"[:70] for c in CASES])
def test_bad_kubernetes_config_is_refused_before_any_resource(variant, path, value, key, words):
    cfg = _apply(config_of("production", variant), path, value)
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program("production", cfg, mocks=mocks)
    message = str(err.value)
    assert f"{key}:" in message, message
    assert words in message, message
    registered = [(a.typ, a.name) for a, _ in mocks.records]
    assert registered == [], f"{key}: resources registered before the error: {registered}"


def _raw(variant: str, **paths) -> dict:
    return {k.split(":", 1)[1]: v for k, v in config_of("production", variant, **paths).items() if k.startswith("bluegreen:")}


def test_config_defaults_and_derived_values():
    k = parse_stack_config(_raw("kubernetes")).kubernetes
    assert (k.namespace, k.create_namespace, k.context, k.kubeconfig, k.eks_cluster_name) == ("web", False, "prod", None, None)
    assert (k.install_load_balancer_controller, k.controller_cluster_name, k.controller_chart_version) == (False, None, "1.8.1")
    assert (k.cpu_request, k.memory_request, k.cpu_limit, k.memory_limit) == ("250m", "256Mi", "500m", "512Mi")
    e = parse_stack_config(_raw("eks")).kubernetes
    assert e.controller_cluster_name == "prod-eks", "the controller manages the EKS cluster the program deploys to"
    assert (e.controller_namespace, e.controller_service_account_name, e.controller_create_service_account) == ("kube-system", "aws-load-balancer-controller", True)
    assert e.controller_role_arn == ROLE_ARN
    assert parse_stack_config(_raw("kubernetes", bluegreen_COLON_kubernetes__cpuLimit="2", bluegreen_COLON_kubernetes__cpuRequest="1500m")).kubernetes.cpu_request == "1500m"


def test_numeric_quantities_are_accepted():
    k = parse_stack_config(_raw("kubernetes", bluegreen_COLON_kubernetes__cpuLimit=2, bluegreen_COLON_kubernetes__cpuRequest=0.5)).kubernetes
    assert (k.cpu_request, k.cpu_limit) == ("0.5", "2")


def test_the_documented_example_is_valid_config():
    import re

    import yaml

    from rollout.simulate import ROOT

    text = (ROOT / "docs" / "kubernetes.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "bluegreen:kubernetes" in b and "config:" in b]
    assert blocks, "docs/kubernetes.md: no example stack config"
    for block in blocks:
        cfg = yaml.safe_load(block)["config"]
        raw = {k.split(":", 1)[1]: v for k, v in cfg.items() if k.startswith("bluegreen:")}
        k = parse_stack_config(raw, region=cfg.get("aws:region")).kubernetes
        assert k is not None and k.eks_cluster_name == "prod-eks" and k.controller_cluster_name == "prod-eks", k
        s = run_program("production", cfg)
        assert len(s.by_type(TGB)) == 2 and len(s.by_type(RELEASE)) == 1, [r.urn for r in s.resources]
    documented = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    assert documented == set(KEYS) - {"nmespace"}, f"docs/kubernetes.md documents {sorted(documented)}"


KEYS = ["namespace", "createNamespace", "kubeconfig", "context", "eksClusterName", "installLoadBalancerController", "controllerChartVersion",
        "controllerNamespace", "controllerClusterName", "controllerServiceAccountName", "controllerCreateServiceAccount", "controllerRoleArn",
        "controllerPodIdentity", "cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit", "preStopSeconds", "nmespace"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=8), st.sampled_from(["1Gi", "100m", "arn:aws:iam::1:role/x", "1.2.3"]))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(VARIANTS.keys() - {"ecs"})), st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=4))
def test_any_kubernetes_edit_is_accepted_or_a_config_error_naming_a_kubernetes_key(variant, edits):
    raw = _raw(variant)
    raw["kubernetes"] = {**raw["kubernetes"], **edits}
    try:
        parse_stack_config(raw)
    except ConfigError as e:
        assert e.key.startswith("bluegreen:kubernetes"), e


# --- the pure decisions -----------------------------------------------------------------------------


def test_pure_decisions():
    assert app_name("web-blue", "blue") == "web" and app_name("shop-green", "green", {"bluegreen:service": "shop"}) == "shop"
    assert object_name("web-green") == "web-green"
    with pytest.raises(ValueError, match="Kubernetes Service"):
        object_name("1web-blue")
    p = probes("/healthz", 8080)
    assert set(p) == {"readinessProbe", "livenessProbe"} and p["readinessProbe"]["httpGet"]["port"] == 8080
    assert target_group_binding_spec("web-blue", 8080, "arn:tg") == {"serviceRef": {"name": "web-blue", "port": 8080}, "targetGroupARN": "arn:tg", "targetType": "ip"}
    assert controller_values("c", None) == {"clusterName": "c", "serviceAccount": {"create": True, "name": "aws-load-balancer-controller"}}
    kc = json.loads(eks_kubeconfig("c", "https://e", "Y2E="))
    assert kc["current-context"] == "c" and "--region" not in kc["users"][0]["user"]["exec"]["args"]
