"""The traffic layer: ALB, its security group, one target group per colour, and the listeners.

The production listener's forward action lists both target groups with the step's weights; a test
listener on its own port sends everything to the candidate; an optional header route does too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_aws as aws

from rollout.desired import TAG_COLOR, TAG_LISTENER, TAG_SINCE, TAG_STABLE_TG, TAG_STACK, ListenerPlan
from rollout.names import explicit_name
from rollout.rules import COLORS, other

__all__ = ["TrafficLayer", "TrafficLayerArgs"]


@dataclass
class TrafficLayerArgs:
    """Inputs of the traffic layer. Decisions (weights, tags, protocol) arrive made, in `plan`."""

    plan: ListenerPlan  # from rollout.desired.listener_plan
    stable: str  # blue | green
    stack: str
    vpc_id: pulumi.Input[str] = None
    subnet_ids: pulumi.Input[Sequence[str]] = None  # public subnets, >= 2 AZs
    ingress_cidrs: Sequence[str] = ("0.0.0.0/0",)  # who may reach the production ports
    test_cidrs: Sequence[str] = ("0.0.0.0/0",)  # who may reach the test listener
    certificate_arn: Optional[str] = None  # HTTPS when set
    ssl_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # TLS >= 1.2
    service_port: int = 8080  # targets' port
    health_path: str = "/healthz"
    health_matcher: str = "200"
    deregistration_delay: int = 30  # seconds
    deletion_protection: bool = True
    access_logs_bucket: Optional[str] = None  # S3 bucket for ALB access logs; None = off
    access_logs_prefix: str = "alb"
    idle_timeout: int = 60  # seconds
    internal: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    weights_since: Optional[pulumi.Input[str]] = None  # bluegreen:weights-since stamp for the production listener
    test_security_group_ids: Sequence[pulumi.Input[str]] = ()  # also admitted to the test listener (the probe function)
    test_listener_tags: Mapping[str, str] = field(default_factory=dict)  # extra tags, e.g. bluegreen:probe=in-vpc
    weights_since_from: Optional[object] = None  # callable(alb_arn Output) -> stamp Output; used when weights_since is None


class TrafficLayer(pulumi.ComponentResource):
    """ALB + weighted production listener + test listener + a target group per colour."""

    alb_arn: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    production_listener: aws.lb.Listener
    test_listener: aws.lb.Listener
    listeners: list
    target_group_arns: Mapping[str, pulumi.Output[str]]

    def add_header_route(self, after: Sequence[pulumi.Resource] = (), to_stable: bool = False) -> Optional[aws.lb.ListenerRule]:
        """The optional header route to the candidate, created after `after` (the colours' workloads):
        the pack gates it when it is created, so the candidate must be running by then. It forwards to
        the stable colour instead when `to_stable` (the stack config holds the reflex's abort)."""
        name, plan, base_tags, candidate_tg, stable_tg = self._header_route_args
        if not plan.header_route:
            return None
        header, value = plan.header_route
        return aws.lb.ListenerRule(
            f"{name}-header-route",
            listener_arn=self.production_listener.arn,
            priority=10,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(http_header_name=header, values=[value])
                )
            ],
            actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=(stable_tg if to_stable else candidate_tg).arn)],
            tags=base_tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )

    def __init__(self, name: str, args: TrafficLayerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bluegreen:index:TrafficLayer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = args.plan
        candidate = other(args.stable)
        base_tags = {TAG_STACK: args.stack, **args.tags}

        ports = [plan.port] + ([80] if plan.redirect_http else [])
        ingress = [
            aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=p, to_port=p, cidr_blocks=list(args.ingress_cidrs), description=f"production :{p}")
            for p in ports
        ]
        if args.test_cidrs or args.test_security_group_ids:  # `testCidrs: []` and no probe function: nobody reaches it
            ingress.append(
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=plan.test_port, to_port=plan.test_port, cidr_blocks=list(args.test_cidrs) or None,
                    description="test listener", security_groups=list(args.test_security_group_ids) or None,
                )
            )
        scope = f"{pulumi.get_project()}/{args.stack}"  # explicit names only where the autoname would not fit AWS
        sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            name=explicit_name("aws:ec2/securityGroup:SecurityGroup", f"{name}-alb-sg", scope),
            description="bluegreen ALB: production and test listeners",
            vpc_id=args.vpc_id,
            ingress=ingress,
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"], description="to targets")],
            tags=base_tags,
            opts=child,
        )
        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=explicit_name("aws:lb/loadBalancer:LoadBalancer", f"{name}-alb", scope),
            load_balancer_type="application",
            internal=args.internal,
            security_groups=[sg.id],
            subnets=args.subnet_ids,
            enable_deletion_protection=args.deletion_protection,
            drop_invalid_header_fields=True,
            idle_timeout=args.idle_timeout,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(bucket=args.access_logs_bucket, prefix=args.access_logs_prefix, enabled=True)
            if args.access_logs_bucket
            else None,
            tags=base_tags,
            opts=child,
        )
        if args.weights_since is None and args.weights_since_from is not None:
            args.weights_since = args.weights_since_from(alb.arn)
        self.weights_since = args.weights_since
        tgs = {}
        for color in COLORS:
            tgs[color] = aws.lb.TargetGroup(
                f"{name}-tg-{color}",
                name=explicit_name("aws:lb/targetGroup:TargetGroup", f"{name}-tg-{color}", scope),
                port=args.service_port,
                protocol="HTTP",
                target_type="ip",
                vpc_id=args.vpc_id,
                deregistration_delay=args.deregistration_delay,
                health_check=aws.lb.TargetGroupHealthCheckArgs(
                    enabled=True,
                    path=args.health_path,
                    matcher=args.health_matcher,
                    protocol="HTTP",
                    interval=15,
                    timeout=5,
                    healthy_threshold=2,
                    unhealthy_threshold=3,
                ),
                tags={**base_tags, TAG_COLOR: color},
                opts=child,
            )

        https = plan.protocol == "HTTPS"
        tls = dict(certificate_arn=args.certificate_arn, ssl_policy=args.ssl_policy) if https else {}
        # The test listener exists before the production listener, so that on a first deployment the
        # pack sees it on an otherwise empty load balancer (docs/safety-model.md, first deployment).
        self.test_listener = aws.lb.Listener(
            f"{name}-test",
            load_balancer_arn=alb.arn,
            port=plan.test_port,
            protocol=plan.protocol,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=tgs[candidate].arn)],
            tags={**base_tags, **args.test_listener_tags, TAG_LISTENER: "test"},
            opts=child,
            **tls,
        )
        self.production_listener = aws.lb.Listener(
            f"{name}-production",
            load_balancer_arn=alb.arn,
            port=plan.port,
            protocol=plan.protocol,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="forward",
                    forward=aws.lb.ListenerDefaultActionForwardArgs(
                        target_groups=[
                            aws.lb.ListenerDefaultActionForwardTargetGroupArgs(arn=tgs[c].arn, weight=plan.weights[c]) for c in COLORS
                        ],
                        stickiness=aws.lb.ListenerDefaultActionForwardStickinessArgs(
                            enabled=plan.stickiness_enabled, duration=plan.stickiness_seconds
                        ),
                    ),
                )
            ],
            tags={
                **base_tags,
                **plan.production_tags,
                TAG_STABLE_TG: tgs[args.stable].arn,  # the record the pack trusts (docs/safety-model.md)
                **({TAG_SINCE: args.weights_since} if args.weights_since is not None else {}),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.test_listener]),
            **tls,
        )
        self.listeners = [self.production_listener, self.test_listener]
        if plan.redirect_http:
            self.listeners.append(
                aws.lb.Listener(
                    f"{name}-http-redirect",
                    load_balancer_arn=alb.arn,
                    port=80,
                    protocol="HTTP",
                    default_actions=[
                        aws.lb.ListenerDefaultActionArgs(
                            type="redirect",
                            redirect=aws.lb.ListenerDefaultActionRedirectArgs(port="443", protocol="HTTPS", status_code="HTTP_301"),
                        )
                    ],
                    tags={**base_tags, TAG_LISTENER: "redirect"},
                    opts=child,
                )
            )
        self._header_route_args = (name, plan, base_tags, tgs[candidate], tgs[args.stable])
        self.alb_arn = alb.arn
        self.dns_name = alb.dns_name
        self.security_group_id = sg.id
        self.target_group_arns = {c: tgs[c].arn for c in COLORS}
        scheme = "https" if https else "http"
        self.production_url = alb.dns_name.apply(lambda d: f"{scheme}://{d}")
        self.test_url = alb.dns_name.apply(lambda d: f"{scheme}://{d}:{plan.test_port}")
        self.register_outputs(
            {
                "alb_arn": self.alb_arn,
                "dns_name": self.dns_name,
                "production_listener_arn": self.production_listener.arn,
                "test_listener_arn": self.test_listener.arn,
                "target_group_arns": self.target_group_arns,
            }
        )
