"""One colour of the service: its workload on the chosen platform, bound to its target group.

The component is the same for every platform; the platform object (EcsPlatform, KubernetesPlatform)
creates the workload's children under it. Switching platforms is a config switch, not a new program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Protocol, Sequence

import pulumi

__all__ = ["ColorEnvironment", "ColorEnvironmentArgs", "Platform"]


@dataclass
class ColorEnvironmentArgs:
    """What one colour runs and where its traffic comes from."""

    color: str  # blue | green
    image: str  # container image
    replicas: int  # tasks/pods; the idle policy may make this smaller, even 0
    target_group_arn: pulumi.Input[str]  # this colour's ALB target group
    port: int = 8080  # container port
    health_path: str = "/healthz"  # readiness/liveness path
    health_check_grace_seconds: int = 30  # ECS ignores failing ALB health checks this long after a task starts
    cpu: int = 256  # Fargate CPU units (ECS); Kubernetes uses its own requests/limits
    memory: int = 512  # MiB (ECS)
    environment: Mapping[str, str] = field(default_factory=dict)  # plain env vars
    secrets: Mapping[str, Any] = field(default_factory=dict)  # env var name -> rollout.workload.SecretRef (never plain env)
    break_glass: Optional[str] = None  # bluegreen:breakGlass.reason, tagged on the workload when set
    workload_fingerprint: Optional[str] = None  # rollout.workload fingerprint of what this colour runs (tag bluegreen:workload)
    pod_template: Optional[Mapping[str, Any]] = None  # Kubernetes: the Deployment's spec.template (rollout.pod_template.pod_template_for)
    vpc_id: pulumi.Input[str] = None
    subnet_ids: pulumi.Input[Sequence[str]] = None  # task subnets (ECS)
    assign_public_ip: bool = False  # ECS tasks in public subnets need it to pull images
    alb_security_group_id: pulumi.Input[str] = None  # the only source admitted to the tasks
    synthetic_security_group_id: pulumi.Input[str] = None  # also admitted on the port: the probe function's synthetic load
    listeners: Sequence[pulumi.Resource] = ()  # the target group must be on a listener before the service binds
    tags: Mapping[str, str] = field(default_factory=dict)


class Platform(Protocol):
    """Creates a colour's workload under the ColorEnvironment `parent`; returns its outputs."""

    def deploy(self, parent: "ColorEnvironment", name: str, args: ColorEnvironmentArgs) -> Mapping[str, Any]: ...


class ColorEnvironment(pulumi.ComponentResource):
    """One colour: the workload running that colour's image, attached to that colour's target group."""

    color: str
    image: pulumi.Output[str]
    replicas: pulumi.Output[int]
    target_group_arn: pulumi.Output[str]
    workload: Mapping[str, Any]

    def __init__(self, name: str, args: ColorEnvironmentArgs, platform: Platform, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bluegreen:index:ColorEnvironment", name, None, opts)
        self.color = args.color
        self.image = pulumi.Output.from_input(args.image)
        self.replicas = pulumi.Output.from_input(args.replicas)
        self.target_group_arn = pulumi.Output.from_input(args.target_group_arn)
        self.workload = platform.deploy(self, name, args)
        self.register_outputs(
            {"color": args.color, "image": self.image, "replicas": self.replicas, "target_group_arn": self.target_group_arn, **self.workload}
        )
