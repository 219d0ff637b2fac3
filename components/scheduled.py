"""A Lambda function in the VPC, invoked by a one-minute EventBridge schedule: what the probe function and
the reflex have in common (role, log group, inline policy, function, rule, permission, target).

Children are parented to the calling component and named from `name`, exactly as they were when each
component declared them itself (renames would need aliases).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import pulumi
import pulumi_aws as aws

__all__ = ["ScheduledFunction", "scheduled_vpc_function", "RUNTIME", "SCHEDULE", "LOG_RETENTION_DAYS"]

RUNTIME = "python3.12"
SCHEDULE = "rate(1 minute)"
LOG_RETENTION_DAYS = 14
_ASSUME_LAMBDA = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
)


@dataclass(frozen=True)
class ScheduledFunction:
    role: aws.iam.Role
    function: aws.lambda_.Function
    rule: aws.cloudwatch.EventRule


def scheduled_vpc_function(
    parent: pulumi.Resource,
    name: str,
    *,
    role_description: str,
    description: str,
    rule_description: str,
    handler: str,
    code: pulumi.Archive,
    timeout: int,  # seconds
    policy: Callable[[pulumi.Output[str]], pulumi.Input[str]],  # the role's policy, from the log group's ARN
    variables: pulumi.Input[Mapping[str, str]],
    subnet_ids: Sequence[str],
    security_group_id: pulumi.Input[str],
    tags: Mapping[str, str],
) -> ScheduledFunction:
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(f"{name}-role", description=role_description, assume_role_policy=_ASSUME_LAMBDA, tags=dict(tags), opts=child)
    logs = aws.cloudwatch.LogGroup(f"{name}-logs", retention_in_days=LOG_RETENTION_DAYS, tags=dict(tags), opts=child)
    role_policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy(logs.arn), opts=child)
    fn = aws.lambda_.Function(
        f"{name}-fn",
        description=description,
        runtime=RUNTIME,
        architectures=["arm64"],
        handler=handler,
        code=code,
        role=role.arn,
        memory_size=128,
        timeout=timeout,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
        vpc_config=aws.lambda_.FunctionVpcConfigArgs(subnet_ids=list(subnet_ids), security_group_ids=[security_group_id]),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=logs.name),
        tags=dict(tags),
        # Lambda checks the role's ENI permissions when it creates a VPC function.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[role_policy]),
    )
    rule = aws.cloudwatch.EventRule(f"{name}-schedule", description=rule_description, schedule_expression=SCHEDULE, tags=dict(tags), opts=child)
    aws.lambda_.Permission(
        f"{name}-invoke", action="lambda:InvokeFunction", function=fn.name, principal="events.amazonaws.com", source_arn=rule.arn, opts=child
    )
    aws.cloudwatch.EventTarget(f"{name}-target", rule=rule.name, arn=fn.arn, opts=child)
    return ScheduledFunction(role, fn, rule)
