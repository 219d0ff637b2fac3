"""The in-VPC probe function: a Lambda in the private subnets that probes the test listener every minute.

Why it exists: the pack and the CLI run outside the VPC with AWS read credentials only, the test
listener admits the VPC, and the certificate does not cover the ALB's DNS name. The function probes
from inside (its security group is admitted by reference) with TLS verified against
`bluegreen:traffic.testHostname`, and publishes CloudWatch metrics the gate reads from anywhere.
Thin: what a round does is `rollout/probe_runner.py`; this declares where and how it runs.

Nothing here depends on the rollout step, so a traffic step never changes the function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_aws as aws

from rollout.names import explicit_name
from components.scheduled import LOG_RETENTION_DAYS, RUNTIME, SCHEDULE, scheduled_vpc_function
from rollout.probe_settings import NAMESPACE, ProbeSettings

__all__ = ["ProbeFunction", "ProbeFunctionArgs", "probe_security_group", "LAMBDA_MODULES", "lambda_code", "SCHEDULE", "probe_policy", "VPC_ACCESS_ACTIONS", "RUNTIME", "LOG_RETENTION_DAYS"]

_ROOT = Path(__file__).resolve().parent.parent
# What the function's package holds: the handler and the rollout modules it imports (stdlib + boto3 only).
LAMBDA_MODULES = (
    "rollout/__init__.py",
    "rollout/errors.py",
    "rollout/live.py",
    "rollout/probe_path.py",  # rollout.probe_settings checks the synthetic path with it
    "rollout/probe_runner.py",
    "rollout/probe_settings.py",
    "rollout/synthetic_load.py",
    "rollout/probe_lambda.py",
)
HANDLER = "rollout.probe_lambda.handler"
# What Lambda needs to attach a function to the VPC (as in AWSLambdaVPCAccessExecutionRole); Resource must be *.
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def lambda_code(root: Path = _ROOT, modules: Sequence[str] = LAMBDA_MODULES) -> pulumi.AssetArchive:
    """A function's package: exactly `modules` (default LAMBDA_MODULES), from this checkout."""
    return pulumi.AssetArchive({rel: pulumi.FileAsset(str(root / rel)) for rel in modules})


def probe_policy(log_group_arn: str, synthetic: bool = False) -> str:
    """The function's IAM policy: read the listener and the ALB's interfaces, put `bluegreen` metrics, log;
    with `synthetic`, also read the target groups' targets (where the synthetic load goes).

    The elbv2 and ec2 Describe* actions support no resource-level permissions (Resource must be *);
    the ENI actions are what Lambda needs to attach to the VPC (as in AWSLambdaVPCAccessExecutionRole).
    """
    synthetic_reads = ["elasticloadbalancing:DescribeTargetHealth"] if synthetic else []  # the targets' addresses
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadTheTestListener",
                    "Effect": "Allow",
                    "Action": [
                        "elasticloadbalancing:DescribeLoadBalancers",
                        "elasticloadbalancing:DescribeListeners",
                        "elasticloadbalancing:DescribeRules",  # rollout.live reads every route
                        "elasticloadbalancing:DescribeTargetGroups",
                        "elasticloadbalancing:DescribeTags",
                        *synthetic_reads,
                    ],
                    "Resource": "*",
                },
                {
                    "Sid": "PublishProbeMetrics",
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
                },
                {"Sid": "RunInTheVpc", "Effect": "Allow", "Action": list(VPC_ACCESS_ACTIONS), "Resource": "*"},
                {
                    "Sid": "WriteItsLog",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{log_group_arn}:*",
                },
            ],
        },
        sort_keys=True,
    )


def probe_security_group(name: str, vpc_id: pulumi.Input[str], test_port: int, tags: Mapping[str, str],
                          opts: Optional[pulumi.ResourceOptions] = None, *, synthetic_port: Optional[int] = None) -> aws.ec2.SecurityGroup:
    """The probe function's security group: no ingress; egress to the test listener and to AWS APIs, and
    with `synthetic_port` (the service port) to the colours' targets, which their security group admits
    from this one by reference.

    Created before the traffic layer, whose ALB security group admits it on the test port by reference
    (an inline rule: the ALB group's rules are all inline, and a separate rule resource would fight them).
    """
    to_targets = [] if synthetic_port is None else [
        aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=synthetic_port, to_port=synthetic_port, cidr_blocks=["0.0.0.0/0"],
                                        description="synthetic load to the targets of both colours")
    ]
    return aws.ec2.SecurityGroup(
        f"{name}-sg",
        name=explicit_name("aws:ec2/securityGroup:SecurityGroup", f"{name}-sg", f"{pulumi.get_project()}/{pulumi.get_stack()}"),
        description="bluegreen probe function: egress to the ALB test listener and AWS APIs",
        vpc_id=vpc_id,
        egress=[
            aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=test_port, to_port=test_port, cidr_blocks=["0.0.0.0/0"], description="ALB test listener"),
            aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], description="AWS APIs (NAT or VPC endpoints)"),
            *to_targets,
        ],
        tags=dict(tags),
        opts=opts,
    )


@dataclass
class ProbeFunctionArgs:
    """Inputs of the probe function. Nothing here may depend on the rollout step."""

    stack: str  # the Stack dimension of its metrics (the test listener's bluegreen:stack tag)
    load_balancer_arn: pulumi.Input[str]
    subnet_ids: Sequence[str]  # private subnets with NAT or endpoints for elasticloadbalancing, ec2, monitoring
    security_group_id: pulumi.Input[str]  # from probe_security_group
    hostname: Optional[str] = None  # bluegreen:traffic.testHostname; None: the ALB's DNS name (plain HTTP)
    probes: int = 10  # per round
    timeout_seconds: int = 2  # per probe
    expected_status: int = 200  # what a healthy health path answers
    synthetic_per_minute: int = 0  # synthetic requests to each colour's targets a round (0: none)
    synthetic_path: Optional[str] = None  # what they GET; None: the health path
    synthetic_representative: bool = False  # publish the operator's declaration that the path is representative
    tags: Mapping[str, str] = field(default_factory=dict)


class ProbeFunction(pulumi.ComponentResource):
    """Role, log group, function, and the one-minute schedule that invokes it."""

    function_arn: pulumi.Output[str]
    function_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ProbeFunctionArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bluegreen:index:ProbeFunction", name, None, opts)
        env = ProbeSettings(
            stack=args.stack,
            load_balancer_arn="",  # an Output: set below
            hostname=args.hostname,
            probes=args.probes,
            timeout_s=float(args.timeout_seconds),
            expected_status=args.expected_status,
            synthetic_per_minute=args.synthetic_per_minute,
            synthetic_path=args.synthetic_path,
            synthetic_representative=args.synthetic_representative,
        ).to_env()
        variables = pulumi.Output.from_input(args.load_balancer_arn).apply(
            lambda arn: {**env, ProbeSettings.ENV["load_balancer_arn"]: arn}
        )
        made = scheduled_vpc_function(
            self,
            name,
            role_description="bluegreen probe function",
            description="bluegreen: probes the test listener from inside the VPC every minute",
            rule_description="bluegreen probe round",
            handler=HANDLER,
            code=lambda_code(),
            timeout=30,
            policy=lambda log_group_arn: log_group_arn.apply(lambda arn: probe_policy(arn, synthetic=bool(args.synthetic_per_minute))),
            variables=variables,
            subnet_ids=args.subnet_ids,
            security_group_id=args.security_group_id,
            tags=args.tags,
        )
        fn, role = made.function, made.role
        self.function_arn = fn.arn
        self.function_name = fn.name
        self.role_arn = role.arn
        self.register_outputs({"function_arn": fn.arn, "function_name": fn.name, "role_arn": role.arn})
