"""Colours on ECS Fargate: a shared cluster and execution role; per colour a log group, a security
group admitting only the ALB, a task definition with that colour's image, and a service."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import pulumi
import pulumi_aws as aws

from rollout.names import explicit_name

from .color import ColorEnvironment, ColorEnvironmentArgs

__all__ = ["EcsPlatform", "EcsPlatformArgs"]

_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
CONTAINER_NAME = "app"


@dataclass
class EcsPlatformArgs:
    """Shared ECS pieces."""

    log_retention_days: int = 30  # CloudWatch Logs retention per colour
    container_insights: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


class EcsPlatform(pulumi.ComponentResource):
    """The ECS cluster and task execution role both colours share."""

    cluster_arn: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: EcsPlatformArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bluegreen:index:EcsPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._args = args
        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled" if args.container_insights else "disabled")],
            tags=dict(args.tags),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-execution",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
                }
            ),
            tags=dict(args.tags),
            opts=child,
        )
        # Task definitions wait for this: a task started before it cannot pull its image or write logs.
        self._execution_policy = aws.iam.RolePolicyAttachment(f"{name}-execution", role=role.name, policy_arn=_EXECUTION_POLICY, opts=child)
        self.cluster_arn = cluster.arn
        self.execution_role_arn = role.arn
        self.register_outputs({"cluster_arn": self.cluster_arn, "execution_role_arn": self.execution_role_arn})

    def deploy(self, parent: ColorEnvironment, name: str, args: ColorEnvironmentArgs) -> Mapping[str, Any]:
        child = pulumi.ResourceOptions(parent=parent)
        tags = {**self._args.tags, **args.tags, "bluegreen:color": args.color}
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", retention_in_days=self._args.log_retention_days, tags=tags, opts=child)
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=explicit_name("aws:ec2/securityGroup:SecurityGroup", f"{name}-sg", f"{pulumi.get_project()}/{pulumi.get_stack()}"),
            description=f"bluegreen {args.color} tasks: only the ALB may connect",
            vpc_id=args.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=args.port, to_port=args.port, security_groups=[args.alb_security_group_id], description="from the ALB"
                )
            ],
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"], description="image pulls, APIs")],
            tags=tags,
            opts=child,
        )
        region = aws.get_region_output().region
        containers = pulumi.Output.all(logs.name, region).apply(
            lambda a: json.dumps(
                [
                    {
                        "name": CONTAINER_NAME,
                        "image": args.image,
                        "essential": True,
                        "portMappings": [{"containerPort": args.port, "protocol": "tcp"}],
                        "environment": [{"name": k, "value": v} for k, v in sorted(args.environment.items())],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {"awslogs-group": a[0], "awslogs-region": a[1], "awslogs-stream-prefix": args.color},
                        },
                    }
                ]
            )
        )
        task = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=name,
            cpu=str(args.cpu),
            memory=str(args.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=self.execution_role_arn,
            container_definitions=containers,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[self._execution_policy]),
        )
        service = aws.ecs.Service(
            f"{name}-service",
            cluster=self.cluster_arn,
            task_definition=task.arn,
            desired_count=args.replicas,
            launch_type="FARGATE",
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            health_check_grace_period_seconds=args.health_check_grace_seconds,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.subnet_ids, security_groups=[sg.id], assign_public_ip=args.assign_public_ip
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(target_group_arn=args.target_group_arn, container_name=CONTAINER_NAME, container_port=args.port)
            ],
            propagate_tags="SERVICE",
            wait_for_steady_state=True,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(args.listeners)),
        )
        return {"service_name": service.name, "security_group_id": sg.id, "task_definition_arn": task.arn}
