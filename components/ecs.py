"""Colours on ECS Fargate: a shared cluster and execution role; per colour a log group, a security
group admitting only the ALB, a task definition with that colour's image, and a service."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import pulumi
import pulumi_aws as aws

from rollout.names import explicit_name
from rollout.workload import TAG_BREAK_GLASS, TAG_WORKLOAD, SecretRef, ssm_parameter_name

from .color import ColorEnvironment, ColorEnvironmentArgs

__all__ = ["EcsPlatform", "EcsPlatformArgs", "container_secrets", "secrets_read_policy"]

_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
CONTAINER_NAME = "app"
ENCRYPTED_PLACEHOLDER = "(encrypted in the stack file)"  # a `secure:` value read without the Pulumi CLI


def container_secrets(value_from: Mapping[str, str]) -> list[dict[str, str]]:
    """The container definition's `secrets`: name -> SSM parameter / Secrets Manager ARN, sorted."""
    return [{"name": n, "valueFrom": arn} for n, arn in sorted(value_from.items())]


def secrets_read_policy(arns: list[str], program_created: int = 0) -> str:
    """IAM policy for the execution role: read exactly these secrets, nothing else. The first
    `program_created` ARNs are the SSM parameters the program made; the rest were given in config."""
    given = arns[program_created:]
    ssm = sorted([*arns[:program_created], *(a for a in given if ":ssm:" in a)])
    sm = sorted(a for a in given if ":secretsmanager:" in a)
    statements = []
    if ssm:
        statements.append({"Sid": "ReadSsmSecrets", "Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": ssm})
    if sm:
        statements.append({"Sid": "ReadSecretsManager", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": sm})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


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
        self._execution_role_name = role.name
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
                ),
                *([aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=args.port, to_port=args.port, security_groups=[args.synthetic_security_group_id],
                    description="synthetic load from the probe function",
                )] if args.synthetic_security_group_id is not None else []),
            ],
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"], description="image pulls, APIs")],
            tags=tags,
            opts=child,
        )
        region = aws.get_region_output().region
        names, arns = self._secrets(parent, name, args)
        containers = pulumi.Output.all(logs.name, region, *arns).apply(
            lambda a: json.dumps(
                [
                    {
                        "name": CONTAINER_NAME,
                        "image": args.image,
                        "essential": True,
                        "portMappings": [{"containerPort": args.port, "protocol": "tcp"}],
                        "environment": [{"name": k, "value": v} for k, v in sorted(args.environment.items())],
                        **({"secrets": container_secrets(dict(zip(names, a[2:])))} if names else {}),
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
            tags=_service_tags(tags, args),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(args.listeners)),
        )
        return {"service_name": service.name, "security_group_id": sg.id, "task_definition_arn": task.arn}

    def _secrets(self, parent: ColorEnvironment, name: str, args: ColorEnvironmentArgs) -> tuple[list[str], list[Any]]:
        """(names, ARNs) of the colour's secrets: a SecureString per value set with --secret, the given
        ARN otherwise; the execution role may read exactly those (and the task never sees a value)."""
        child = pulumi.ResourceOptions(parent=parent)
        refs: Mapping[str, SecretRef] = args.secrets
        # Program-created parameters first, then the given ARNs (secrets_read_policy relies on it).
        ordered = sorted(refs.items(), key=lambda kv: (kv[1].arn is not None, kv[0]))
        names: list[str] = []
        arns: list[Any] = []
        created = 0
        for secret_name, ref in ordered:
            names.append(secret_name)
            if ref.arn:
                arns.append(ref.arn)
                continue
            created += 1
            value = ref.value if ref.value is not None else ENCRYPTED_PLACEHOLDER
            param = aws.ssm.Parameter(
                f"{name}-secret-{secret_name}",
                name=ssm_parameter_name(pulumi.get_stack(), name, secret_name),
                type="SecureString",
                value=pulumi.Output.secret(value),
                description=f"bluegreen {args.color}: {secret_name} (bluegreen:service.secrets)",
                tags={**self._args.tags, **args.tags, "bluegreen:color": args.color},
                opts=child,
            )
            arns.append(param.arn)
        if arns:
            aws.iam.RolePolicy(
                f"{name}-secrets-read",
                role=self._execution_role_name,
                policy=pulumi.Output.all(*arns).apply(lambda a: secrets_read_policy(list(a), created)),
                opts=child,
            )
        return names, arns


def _service_tags(tags: Mapping[str, str], args: ColorEnvironmentArgs) -> dict[str, str]:
    """The service's tags: what it runs (policy/workload.py reads it when ECS is unreadable) and a break-glass reason."""
    out = dict(tags)
    if args.workload_fingerprint:
        out[TAG_WORKLOAD] = args.workload_fingerprint
    if args.break_glass:
        out[TAG_BREAK_GLASS] = args.break_glass
    return out
