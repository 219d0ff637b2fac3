"""Colours on Kubernetes (EKS): a Deployment and a ClusterIP Service per colour, bound to that colour's
ALB target group by a TargetGroupBinding that the AWS Load Balancer Controller acts on.

The ALB, its listeners and the target groups (target type ip) stay in the TrafficLayer, exactly as
for ECS: the controller only registers the pod IPs of a colour's Service in that colour's target
group. A traffic step therefore still changes one resource, the production listener.

Shared pieces live in `KubernetesPlatform`: the `kubernetes.Provider` (from a kubeconfig/context, or
from an EKS cluster through `aws eks get-token`), the namespace when the program owns it, and,
optionally, the controller's Helm release. Decisions (names, labels, probes, the binding's spec, the
chart's values) are small pure functions below, so tests can check them without the runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from rollout.pod_template import (
    CONTAINER_NAME,
    PORT_NAME,
    app_name,
    container_env,
    object_name,
    pod_labels,
    probes,
    resource_requirements,
    secret_object_name,
    selector_labels,
    service_ref,
    service_spec,
)
from rollout.workload import ANNOTATION_BREAK_GLASS, ANNOTATION_TARGET_GROUP

from .color import ColorEnvironment, ColorEnvironmentArgs

__all__ = [
    "KubernetesPlatform",
    "KubernetesPlatformArgs",
    "CONTAINER_NAME",
    "CONTROLLER_CHART",
    "CONTROLLER_RELEASE_NAME",
    "CONTROLLER_REPO",
    "READINESS_GATE_LABEL",
    "TARGET_GROUP_BINDING_API_VERSION",
    "app_name",
    "container_env",
    "secret_object_name",
    "controller_values",
    "eks_kubeconfig",
    "object_name",
    "pod_labels",
    "probes",
    "resource_requirements",
    "selector_labels",
    "target_group_binding_spec",
]

CONTROLLER_REPO = "https://aws.github.io/eks-charts"
CONTROLLER_CHART = "aws-load-balancer-controller"
CONTROLLER_RELEASE_NAME = "aws-load-balancer-controller"
TARGET_GROUP_BINDING_API_VERSION = "elbv2.k8s.aws/v1beta1"
# Namespace label that makes the controller's webhook add a readiness gate to new pods: a pod only counts
# as ready once the ALB reports it healthy, so a rolling update inside one colour never drops capacity.
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"
_IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


# --- decisions: pure functions -------------------------------------------------------------------


def target_group_binding_spec(service_name: str, port: int, target_group_arn: Any, alb_security_group_id: Any = None,
                              *, also_admit: Sequence[Any] = ()) -> dict[str, Any]:
    """The TargetGroupBinding spec: register the pod IPs behind `service_name:port` in `target_group_arn`.

    With the ALB's security group given, the controller also opens `port` on the pods' (nodes') security
    group to that group only, the Kubernetes counterpart of the ECS tasks' security group; `also_admit`
    security groups (the probe function's synthetic load) get the same port.
    """
    spec: dict[str, Any] = {
        "serviceRef": service_ref(service_name, port),
        "targetGroupARN": target_group_arn,
        "targetType": "ip",
    }
    if alb_security_group_id is not None:
        spec["networking"] = {
            "ingress": [{"from": [{"securityGroup": {"groupID": g}} for g in (alb_security_group_id, *also_admit)],
                         "ports": [{"protocol": "TCP", "port": port}]}]
        }
    return spec


def controller_values(
    cluster_name: Any,
    region: Optional[str],
    vpc_id: Any = None,
    service_account_name: str = "aws-load-balancer-controller",
    create_service_account: bool = True,
    role_arn: Optional[str] = None,
) -> dict[str, Any]:
    """Helm values of the aws-load-balancer-controller chart. Region and VPC are passed so the controller
    needs no EC2 instance metadata (IMDSv2 hop limits on EKS nodes often block it)."""
    service_account: dict[str, Any] = {"create": create_service_account, "name": service_account_name}
    if role_arn:
        service_account["annotations"] = {_IRSA_ANNOTATION: role_arn}
    values: dict[str, Any] = {"clusterName": cluster_name, "serviceAccount": service_account}
    if region:
        values["region"] = region
    if vpc_id is not None:
        values["vpcId"] = vpc_id
    return values


def eks_kubeconfig(cluster_name: str, endpoint: str, certificate_authority_data: str, region: Optional[str] = None) -> str:
    """A kubeconfig (JSON, which is YAML) for an EKS cluster, authenticating with `aws eks get-token`.

    No token is stored: the provider runs the AWS CLI with the caller's AWS credentials on every run.
    """
    args = ["eks", "get-token", "--cluster-name", cluster_name, "--output", "json"]
    if region:
        args += ["--region", region]
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority_data}}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": args,
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        },
        indent=2,
    )


# --- the component -------------------------------------------------------------------------------


@dataclass
class KubernetesPlatformArgs:
    """Where and how colours run on Kubernetes. Defaults are those of `bluegreen:kubernetes` (docs/kubernetes.md)."""

    namespace: str = "default"  # namespace of every colour's objects
    create_namespace: bool = False  # true: create the namespace (labelled for the controller's pod readiness gate)
    kubeconfig: Optional[str] = None  # a kubeconfig path or content; None: $KUBECONFIG / ~/.kube/config
    context: Optional[str] = None  # kubeconfig context; None: the current context
    eks_cluster_name: Optional[str] = None  # instead of kubeconfig/context: reach this EKS cluster via `aws eks get-token`
    region: Optional[str] = None  # AWS region of the cluster (get-token, controller values); None: the AWS CLI's default
    install_load_balancer_controller: bool = False  # true: install the AWS Load Balancer Controller chart
    controller_chart_version: str = "1.8.1"  # eks-charts aws-load-balancer-controller version
    controller_namespace: str = "kube-system"
    controller_cluster_name: Optional[str] = None  # the chart's clusterName; None: eks_cluster_name
    controller_service_account_name: str = "aws-load-balancer-controller"
    controller_create_service_account: bool = True  # false: use an existing service account (eksctl create iamserviceaccount)
    controller_role_arn: Optional[str] = None  # IRSA role annotated on the service account the chart creates
    vpc_id: pulumi.Input[str] = None  # the controller's vpcId without eks_cluster_name (with it: the cluster's VPC); None: discovered from instance metadata
    cpu_request: str = "250m"  # per pod
    memory_request: str = "256Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "512Mi"
    pre_stop_seconds: int = 15  # preStop sleep: the ALB deregisters the pod before it stops serving
    tags: Mapping[str, str] = field(default_factory=dict)  # AWS tags (used for the app name); not copied to Kubernetes labels

    @classmethod
    def from_config(cls, cfg: Any, *, region: Optional[str] = None, tags: Optional[Mapping[str, str]] = None, vpc_id: pulumi.Input[str] = None) -> "KubernetesPlatformArgs":
        """From a validated `rollout.config.KubernetesConfig`."""
        if cfg is None:
            raise ValueError("bluegreen:kubernetes is required when bluegreen:platform is kubernetes")
        return cls(
            namespace=cfg.namespace,
            create_namespace=cfg.create_namespace,
            kubeconfig=cfg.kubeconfig,
            context=cfg.context,
            eks_cluster_name=cfg.eks_cluster_name,
            region=region,
            install_load_balancer_controller=cfg.install_load_balancer_controller,
            controller_chart_version=cfg.controller_chart_version,
            controller_namespace=cfg.controller_namespace,
            controller_cluster_name=cfg.controller_cluster_name,
            controller_service_account_name=cfg.controller_service_account_name,
            controller_create_service_account=cfg.controller_create_service_account,
            controller_role_arn=cfg.controller_role_arn,
            vpc_id=vpc_id,
            cpu_request=cfg.cpu_request,
            memory_request=cfg.memory_request,
            cpu_limit=cfg.cpu_limit,
            memory_limit=cfg.memory_limit,
            pre_stop_seconds=cfg.pre_stop_seconds,
            tags=dict(tags or {}),
        )


class KubernetesPlatform(pulumi.ComponentResource):
    """The Kubernetes provider, the namespace and (optionally) the AWS Load Balancer Controller both colours share."""

    provider: kubernetes.Provider
    namespace: pulumi.Output[str]
    controller: Optional[kubernetes.helm.v3.Release]

    def __init__(self, name: str, args: KubernetesPlatformArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bluegreen:index:KubernetesPlatform", name, None, opts)
        if args.eks_cluster_name and (args.kubeconfig or args.context):
            raise ValueError("KubernetesPlatformArgs: eks_cluster_name excludes kubeconfig and context")
        self._args = args
        child = pulumi.ResourceOptions(parent=self)

        vpc_id: pulumi.Input[str] = args.vpc_id
        if args.eks_cluster_name:
            cluster = aws.eks.get_cluster_output(name=args.eks_cluster_name, opts=pulumi.InvokeOptions(parent=self))
            kubeconfig: pulumi.Input[str] = pulumi.Output.all(cluster.endpoint, cluster.certificate_authorities).apply(
                lambda a: eks_kubeconfig(args.eks_cluster_name, a[0], _field(a[1][0], "data"), args.region)
            )
            vpc_id = cluster.vpc_config.apply(lambda v: _field(v, "vpc_id", "vpcId"))  # the controller manages the cluster's VPC
            self.provider = kubernetes.Provider(f"{name}-provider", kubeconfig=kubeconfig, opts=child)
        else:
            kubeconfig = args.kubeconfig
            if kubeconfig and _is_kubeconfig_content(kubeconfig):
                kubeconfig = pulumi.Output.secret(kubeconfig)  # credentials: never in plain text in the state
            self.provider = kubernetes.Provider(f"{name}-provider", kubeconfig=kubeconfig, context=args.context, opts=child)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)

        self._namespace_ready: list = []  # pods are created after the readiness-gate label is in place
        if args.create_namespace:
            ns = kubernetes.core.v1.Namespace(
                f"{name}-namespace",
                metadata=kubernetes.meta.v1.ObjectMetaArgs(
                    name=args.namespace,
                    labels={READINESS_GATE_LABEL: "enabled", "app.kubernetes.io/managed-by": "pulumi"},
                ),
                opts=on_cluster,
            )
            # The name as given, known in a preview (the pack identifies a colour's Service by namespace and name);
            # objects wait for the namespace through _namespace_ready.
            self._namespace_ready.append(ns)
            self.namespace = pulumi.Output.from_input(args.namespace)
        else:
            # A namespace the program does not own still needs the readiness-gate label, or new pods count
            # as ready before the ALB sees them healthy (a rolling update can then drop every target).
            # A server-side-apply patch adds only that label and leaves the namespace's owner alone.
            self._namespace_ready.append(kubernetes.core.v1.NamespacePatch(
                f"{name}-namespace-readiness-gate",
                metadata=kubernetes.meta.v1.ObjectMetaPatchArgs(name=args.namespace, labels={READINESS_GATE_LABEL: "enabled"}),
                opts=on_cluster,
            ))
            self.namespace = pulumi.Output.from_input(args.namespace)

        self.controller = None
        if args.install_load_balancer_controller:
            cluster_name = args.controller_cluster_name or args.eks_cluster_name
            if not cluster_name:
                raise ValueError("KubernetesPlatformArgs: the controller needs controller_cluster_name or eks_cluster_name")
            self.controller = kubernetes.helm.v3.Release(
                f"{name}-lb-controller",
                name=CONTROLLER_RELEASE_NAME,
                chart=CONTROLLER_CHART,
                version=args.controller_chart_version,
                repository_opts=kubernetes.helm.v3.RepositoryOptsArgs(repo=CONTROLLER_REPO),
                namespace=args.controller_namespace,
                values=controller_values(
                    cluster_name,
                    args.region,
                    vpc_id,
                    args.controller_service_account_name,
                    args.controller_create_service_account,
                    args.controller_role_arn,
                ),
                atomic=True,  # a failed install rolls back instead of leaving a half-ready webhook
                opts=on_cluster,
            )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "controller_status": self.controller.status if self.controller is not None else None,
            }
        )

    def deploy(self, parent: ColorEnvironment, name: str, args: ColorEnvironmentArgs) -> Mapping[str, Any]:
        """A colour's Deployment, its ClusterIP Service and the TargetGroupBinding to its target group."""
        a = self._args
        app = app_name(name, args.color, {**a.tags, **args.tags})
        k8s_name = object_name(name)
        labels = pod_labels(app, args.color)
        selector = selector_labels(app, args.color)
        # The controller's webhook and CRDs must exist before pods (readiness gate) and bindings are created.
        after_controller = ([self.controller] if self.controller is not None else []) + self._namespace_ready
        on_cluster = pulumi.ResourceOptions(parent=parent, provider=self.provider, depends_on=after_controller)
        metadata = kubernetes.meta.v1.ObjectMetaArgs(name=k8s_name, namespace=self.namespace, labels=labels)
        secret_names = sorted(args.secrets)
        secret_object = secret_object_name(name) if secret_names else ""
        if secret_names:
            kubernetes.core.v1.Secret(
                f"{name}-secrets",
                metadata=kubernetes.meta.v1.ObjectMetaArgs(name=secret_object, namespace=self.namespace, labels=labels),
                type="Opaque",
                string_data={n: pulumi.Output.secret(_secret_value(args.secrets[n])) for n in secret_names},
                opts=on_cluster,
            )

        # What the pack needs to judge the Deployment against AWS (policy/workload.py): the target group its
        # pods serve (cross-checked with that group's live colour) and a break-glass reason, if any. On the
        # Deployment's own metadata, so changing them does not restart pods.
        annotations: dict[str, Any] = {ANNOTATION_TARGET_GROUP: args.target_group_arn}
        if args.break_glass:
            annotations[ANNOTATION_BREAK_GLASS] = args.break_glass
        if not args.pod_template:
            raise ValueError(f"ColorEnvironmentArgs.pod_template is required on Kubernetes ({name})")
        # After the listeners, like the binding: in `pulumi up` the pack then judges the Deployment with this update's
        # weights and record live, so new pods cannot reach a colour that the same update gives traffic.
        after_listeners = pulumi.ResourceOptions(parent=parent, provider=self.provider, depends_on=[*after_controller, *_resources(args.listeners)])
        deployment = kubernetes.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name=k8s_name, namespace=self.namespace, labels=labels, annotations=annotations),
            spec=kubernetes.apps.v1.DeploymentSpecArgs(
                replicas=args.replicas,
                selector=kubernetes.meta.v1.LabelSelectorArgs(match_labels=selector),
                strategy=kubernetes.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=kubernetes.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge="25%"),
                ),
                # rollout.pod_template.pod_template_for: the very dict whose fingerprint the listener records.
                template=args.pod_template,
            ),
            opts=after_listeners,
        )
        # The path from the target group to the pods, as rollout.pod_template.routing_for gives it to the listener's
        # record: the Service's spec and the binding's serviceRef are the very dicts fingerprinted there.
        route_annotations = {ANNOTATION_BREAK_GLASS: args.break_glass} if args.break_glass else None
        route_metadata = kubernetes.meta.v1.ObjectMetaArgs(name=k8s_name, namespace=self.namespace, labels=labels, annotations=route_annotations)
        service = kubernetes.core.v1.Service(
            f"{name}-service",
            metadata=route_metadata,
            spec=service_spec(app, args.color, args.port),
            # After the listeners, like the Deployment: in `pulumi up` the pack judges the selector with this update's
            # weights live, so a Service cannot select other pods for a colour that the same update gives traffic.
            opts=after_listeners,
        )
        binding = kubernetes.apiextensions.CustomResource(
            f"{name}-tgb",
            api_version=TARGET_GROUP_BINDING_API_VERSION,
            kind="TargetGroupBinding",
            metadata=route_metadata,
            # The Service by its fixed name (known in a preview), after it exists.
            spec=target_group_binding_spec(
                k8s_name, args.port, args.target_group_arn, args.alb_security_group_id,
                also_admit=[args.synthetic_security_group_id] if args.synthetic_security_group_id is not None else [],
            ),
            # Like the ECS service: the target group must be on a listener before targets are registered.
            opts=pulumi.ResourceOptions.merge(after_listeners, pulumi.ResourceOptions(depends_on=[service])),
        )
        return {
            "deployment_name": deployment.metadata.apply(lambda m: m.name),
            "service_name": service.metadata.apply(lambda m: m.name),
            "target_group_binding_name": binding.metadata.apply(lambda m: m["name"] if isinstance(m, Mapping) else m.name),
            "namespace": self.namespace,
        }


def _secret_value(ref: Any) -> str:
    """A secret's value for the Secret object; a `secure:` value read without Pulumi stays a placeholder."""
    return ref.value if getattr(ref, "value", None) is not None else "(encrypted in the stack file)"


def _field(obj: Any, name: str, wire_name: Optional[str] = None) -> Any:
    """A field of an invoke result's nested object: a typed result at run time, a plain dict under mocks."""
    if isinstance(obj, Mapping):
        return obj.get(name, obj.get(wire_name or name))
    return getattr(obj, name)


def _is_kubeconfig_content(value: str) -> bool:
    """A kubeconfig given inline (YAML or JSON) rather than as a path."""
    return "\n" in value or value.lstrip().startswith(("{", "apiVersion"))


def _resources(items: Sequence[Any]) -> list[pulumi.Resource]:
    return [r for r in items if isinstance(r, pulumi.Resource)]
