"""The reflex function: a Lambda next to the load balancer that rolls a breaking live candidate back in seconds.

What a run does is `rollout/reflex.py` (the handler `rollout/reflex_lambda.py` is thin); this declares
where and how it runs: in the probe function's subnets with the probe function's security group (the
test listener admits it by reference, so its probes reach the candidate from inside the VPC), invoked
every minute by EventBridge, each invocation checking every `interval_seconds` for ~50 s.

Its role may change the production listener and its rules only: `ModifyListener` and `AddTags` on the
listener's ARN, `ModifyRule` on its rules' ARNs; everything else it may only read. Nothing here depends on the rollout step, so a traffic step,
a rollback or a finish never changes the function (the program's "one step, one resource" holds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi

from components.probe import VPC_ACCESS_ACTIONS, lambda_code
from components.scheduled import scheduled_vpc_function
from rollout.reflex_settings import ReflexSettings

__all__ = ["ReflexFunction", "ReflexFunctionArgs", "reflex_policy", "REFLEX_MODULES", "REFLEX_HANDLER", "TIMEOUT_SECONDS", "BUDGET_SECONDS"]

# The function's package: the handler and the rollout modules it imports (stdlib + boto3 only).
REFLEX_MODULES = (
    "rollout/__init__.py",
    "rollout/config.py",  # rollout.desired (the weights-since stamp) imports it
    "rollout/desired.py",
    "rollout/errors.py",
    "rollout/judge.py",
    "rollout/live.py",
    "rollout/metrics.py",
    "rollout/probe_path.py",
    "rollout/probe_runner.py",
    "rollout/probe_settings.py",
    "rollout/reflex.py",
    "rollout/reflex_lambda.py",
    "rollout/reflex_settings.py",
    "rollout/rules.py",
    "rollout/synthetic_load.py",  # rollout.metrics reads its metric names
    "rollout/workload.py",
)
REFLEX_HANDLER = "rollout.reflex_lambda.handler"
TIMEOUT_SECONDS = 60  # one invocation a minute; the handler stops checking 8 s before the timeout
BUDGET_SECONDS = 50  # how long one invocation keeps checking (while a candidate carries traffic)


def listener_rules_arn(listener_arn: str) -> str:
    """The ARN pattern of every rule of one listener: `...:listener-rule/app/<lb>/<lb id>/<listener id>/*`."""
    return listener_arn.replace(":listener/", ":listener-rule/", 1) + "/*"


def reflex_policy(listener_arn: str, log_group_arn: str, topic_arn: Optional[str] = None) -> str:
    """The least the reflex needs: read the load balancer and the judge's CloudWatch counts, change the
    production listener (its default action and its tags, nothing else), run in the VPC, write its log,
    and publish to its topic.

    elbv2 Describe* support no resource-level permissions (Resource must be *); ModifyListener and
    AddTags are scoped to the one listener ARN, ModifyRule to that listener's rules.
    """
    statements = [
        {
            "Sid": "ReadTheLoadBalancer",
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeRules",  # rollout.live reads every route
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
            "Resource": "*",
        },
        {
            "Sid": "MoveProductionTrafficToStable",
            "Effect": "Allow",
            "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:ModifyListener"],
            "Resource": listener_arn,
        },
        {
            # the header route (any rule of the production listener forwarding to the candidate) follows the abort
            "Sid": "MoveTheListenersRulesToStable",
            "Effect": "Allow",
            "Action": ["elasticloadbalancing:ModifyRule"],
            "Resource": listener_rules_arn(listener_arn),
        },
        {
            # the judge's per-minute counts of both target groups; GetMetricData has no resource-level permissions
            "Sid": "ReadTheJudgesCounts",
            "Effect": "Allow",
            "Action": ["cloudwatch:GetMetricData"],
            "Resource": "*",
        },
        {"Sid": "RunInTheVpc", "Effect": "Allow", "Action": list(VPC_ACCESS_ACTIONS), "Resource": "*"},
        {"Sid": "WriteItsLog", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{log_group_arn}:*"},
    ]
    if topic_arn:
        statements.append({"Sid": "NotifyRollbacks", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


@dataclass
class ReflexFunctionArgs:
    """Inputs of the reflex function. Nothing here may depend on the rollout step."""

    stack: str
    load_balancer_arn: pulumi.Input[str]
    listener_arn: pulumi.Input[str]  # the production listener: the only resource the role may change
    subnet_ids: Sequence[str]  # the probe function's subnets (NAT or endpoints for elasticloadbalancing, ec2)
    security_group_id: pulumi.Input[str]  # the probe function's security group, admitted by the test listener
    hostname: Optional[str] = None  # bluegreen:traffic.testHostname (probes' SNI, Host and TLS name)
    probes: int = 5  # per check
    timeout_seconds: int = 2  # per probe
    expected_status: int = 200
    interval_seconds: int = 5  # between checks
    breach_checks: int = 2  # consecutive bad checks of one signal that make a breach
    topic_arn: Optional[str] = None  # SNS topic told of rollbacks
    judge_slow_request_ms: Optional[float] = None  # the gate's slowRequestMs: the reflex's judge counts slow requests too
    judge_synthetic_stack: Optional[str] = None  # the probe function's stack when it sends synthetic load (the gate's stratum)
    tags: Mapping[str, str] = field(default_factory=dict)


class ReflexFunction(pulumi.ComponentResource):
    """Role, log group, function, and the one-minute schedule that invokes it."""

    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ReflexFunctionArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bluegreen:index:ReflexFunction", name, None, opts)
        env = ReflexSettings(
            stack=args.stack,
            load_balancer_arn="",  # Outputs: set below
            listener_arn="",
            hostname=args.hostname,
            probes=args.probes,
            timeout_s=float(args.timeout_seconds),
            expected_status=args.expected_status,
            interval_s=float(args.interval_seconds),
            budget_s=float(BUDGET_SECONDS),
            breach_checks=args.breach_checks,
            topic_arn=args.topic_arn,
            judge_slow_request_ms=args.judge_slow_request_ms,
            judge_synthetic_stack=args.judge_synthetic_stack,
        ).to_env()
        variables = pulumi.Output.all(args.load_balancer_arn, args.listener_arn).apply(
            lambda a: {**env, ReflexSettings.ENV["load_balancer_arn"]: a[0], ReflexSettings.ENV["listener_arn"]: a[1]}
        )
        made = scheduled_vpc_function(
            self,
            name,
            role_description="bluegreen reflex: moves production traffic back to stable on a breach",
            description="bluegreen reflex: rolls a breaking live candidate back to stable within seconds",
            rule_description="bluegreen reflex: one invocation a minute",
            handler=REFLEX_HANDLER,
            code=lambda_code(modules=REFLEX_MODULES),
            timeout=TIMEOUT_SECONDS,
            policy=lambda log_group_arn: pulumi.Output.all(args.listener_arn, log_group_arn).apply(
                lambda a: reflex_policy(a[0], a[1], args.topic_arn)
            ),
            variables=variables,
            subnet_ids=args.subnet_ids,
            security_group_id=args.security_group_id,
            tags=args.tags,
        )
        fn, role = made.function, made.role
        self.function_arn = fn.arn
        self.role_arn = role.arn
        self.register_outputs({"function_arn": fn.arn, "role_arn": role.arn})
