"""bluegreen: two colours of one service behind a weighted ALB; one traffic step per `pulumi up`.

Reads every `bluegreen:` key, validates all of it with the pure rules in `rollout/` BEFORE any resource
is registered, then declares the network, the traffic layer and one ColorEnvironment per colour.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pulumi  # noqa: E402
from pulumi.runtime import config as _runtime_config  # noqa: E402

from components import ColorEnvironment, ColorEnvironmentArgs, Network, NetworkArgs, TrafficLayer, TrafficLayerArgs  # noqa: E402
from components.probe import ProbeFunction, ProbeFunctionArgs, probe_security_group  # noqa: E402
from components.reflex import ReflexFunction, ReflexFunctionArgs  # noqa: E402
from rollout.config import NAMESPACE, StackConfig, check_secrets_are_secret, parse_stack_config  # noqa: E402
from rollout.desired import TAG_SINCE, TAG_STABLE_TG, listener_plan, since_stamp, stamp_clock  # noqa: E402
from rollout.errors import ConfigError  # noqa: E402
from rollout.probe_settings import PROBE_IN_VPC, TAG_PROBE  # noqa: E402
from rollout.rules import COLORS  # noqa: E402
from rollout.workload import stack_fingerprints  # noqa: E402


def read_config() -> StackConfig:
    """All `bluegreen:` keys of the stack (engine-set and environment), validated."""
    merged = {**_runtime_config.get_config_env(), **_runtime_config.CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    raw = {k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)}
    region = merged.get("aws:region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    try:
        cfg = parse_stack_config(raw, region=region)
        if "PULUMI_CONFIG_SECRET_KEYS" in os.environ:  # set by the engine's language host (not under mocks)
            check_secrets_are_secret(cfg, _runtime_config.get_config_secret_keys_env())
        return cfg
    except ConfigError as e:
        # RunError: Pulumi prints the message without a Python traceback.
        raise pulumi.RunError(f"invalid stack config: {e}") from None


def _unknown() -> pulumi.Output:
    """A value not known until `pulumi up` (shown as "[unknown]" in the preview and in a saved plan)."""
    import asyncio

    loop = asyncio.get_event_loop()
    value, known = loop.create_future(), loop.create_future()
    value.set_result(None)
    known.set_result(False)
    return pulumi.Output(set(), value, known)


def weights_since(plan, alb_arn: pulumi.Output) -> pulumi.Output:
    """The production listener's `bluegreen:weights-since` stamp (the bake clock).

    The previous stamp is read from the LIVE recorded listener of this load balancer (the provider's
    `aws:resourcegroupstaggingapi/getResources` invoke: listeners carrying `bluegreen:stable-tg`; it
    answers an empty list when there is none, where a failing invoke would fail the program): kept while the weights stay the same, so `preview` and `up` agree; when
    the weights change the new stamp is "now", which is known only at `up`, so a preview (and a saved
    plan) carries an unknown there. The program reads no stack outputs, not even its own.
    """
    import pulumi_aws as aws

    def stamp(arn):
        prefix = arn.replace(":loadbalancer/", ":listener/", 1) + "/"
        found = aws.resourcegroupstaggingapi.get_resources(
            resource_type_filters=["elasticloadbalancing:listener"],
            tag_filters=[aws.resourcegroupstaggingapi.GetResourcesTagFilterArgs(key=TAG_STABLE_TG)],
        )
        previous = next(
            (
                (m.tags or {}).get(TAG_SINCE)
                for m in found.resource_tag_mapping_lists or []
                if str(m.resource_arn).startswith(prefix) and (m.tags or {}).get(TAG_SINCE)
            ),
            None,
        )
        kept = since_stamp(plan.weights, previous, 0)
        if previous is not None and kept == str(previous).strip():
            return kept
        if pulumi.runtime.is_dry_run():
            return _unknown()
        return since_stamp(plan.weights, None, stamp_clock())

    return alb_arn.apply(stamp)


def _pod_template(cfg: StackConfig, color: str):
    """A Kubernetes colour's pod template (None on ECS, which does not load the module)."""
    if cfg.platform != "kubernetes":
        return None
    from rollout.pod_template import pod_template_for

    return pod_template_for(cfg, color)


def make_platform(cfg: StackConfig, name: str, tags: dict, vpc_id):
    if cfg.platform == "kubernetes":
        from components.kubernetes import KubernetesPlatform, KubernetesPlatformArgs

        args = KubernetesPlatformArgs.from_config(cfg.kubernetes, region=cfg.region, tags=tags, vpc_id=vpc_id)
        return KubernetesPlatform(f"{name}-k8s", args)
    from components.ecs import EcsPlatform, EcsPlatformArgs

    return EcsPlatform(f"{name}-ecs", EcsPlatformArgs(tags=tags))


def read_gate_slow_request_ms(cfg: StackConfig, stack: str) -> float | None:
    """The gate's `slowRequestMs` from the pack's config file of this stack, for the reflex to judge the same kinds."""
    if not cfg.reflex.enabled:
        return None
    from pathlib import Path

    from rollout.pack_settings import gate_slow_request_ms

    try:
        return gate_slow_request_ms(Path(__file__).resolve().parent / "policy", stack)
    except ConfigError as e:
        raise pulumi.RunError(f"invalid policy pack config: {e}") from None


def main() -> None:
    cfg = read_config()  # every check happens here, before the first resource
    stack = pulumi.get_stack()
    slow_request_ms = read_gate_slow_request_ms(cfg, stack)
    name = cfg.service.name
    tags = {"bluegreen:stack": stack, "bluegreen:service": name}
    plan = listener_plan(cfg, stack)

    net = Network(
        f"{name}-network",
        NetworkArgs(
            create=cfg.network.create,
            cidr=cfg.network.cidr,
            vpc_id=cfg.network.vpc_id,
            public_subnet_ids=cfg.network.public_subnet_ids,
            private_subnet_ids=cfg.network.private_subnet_ids,
            availability_zones=cfg.network.availability_zones,
            region=cfg.region or "us-east-1",
        ),
    )
    synthetic_port = cfg.service.port if cfg.probe.synthetic_per_minute else None  # straight to the targets
    probe_sg = probe_security_group(f"{name}-probe", net.vpc_id, cfg.traffic.test_port, tags, synthetic_port=synthetic_port) if cfg.probe.enabled else None
    traffic = TrafficLayer(
        f"{name}-traffic",
        TrafficLayerArgs(
            plan=plan,
            stable=cfg.rollout.stable,
            stack=stack,
            vpc_id=net.vpc_id,
            subnet_ids=net.public_subnet_ids,
            ingress_cidrs=cfg.network.ingress_cidrs,
            test_cidrs=cfg.network.ingress_cidrs if cfg.traffic.test_cidrs is None else cfg.traffic.test_cidrs,
            certificate_arn=cfg.traffic.certificate_arn,
            ssl_policy=cfg.traffic.ssl_policy,
            service_port=cfg.service.port,
            health_path=cfg.service.health_path,
            health_matcher=cfg.service.health_matcher,
            deregistration_delay=cfg.traffic.deregistration_delay,
            deletion_protection=cfg.traffic.deletion_protection,
            access_logs_bucket=cfg.traffic.access_logs_bucket,
            access_logs_prefix=cfg.traffic.access_logs_prefix,
            idle_timeout=cfg.traffic.idle_timeout,
            internal=cfg.traffic.internal,
            tags={"bluegreen:service": name},
            test_security_group_ids=[probe_sg.id] if probe_sg else [],
            test_listener_tags={TAG_PROBE: PROBE_IN_VPC} if probe_sg else {},
            weights_since_from=lambda alb_arn: weights_since(plan, alb_arn),
        ),
    )
    if probe_sg:
        ProbeFunction(
            f"{name}-probe",
            ProbeFunctionArgs(
                stack=stack,
                load_balancer_arn=traffic.alb_arn,
                subnet_ids=cfg.probe.subnet_ids,
                security_group_id=probe_sg.id,
                hostname=cfg.traffic.test_hostname,
                probes=cfg.probe.probes,
                timeout_seconds=cfg.probe.timeout_seconds,
                expected_status=cfg.probe.expected_status,
                synthetic_per_minute=cfg.probe.synthetic_per_minute,
                synthetic_path=cfg.probe.synthetic_path,
                synthetic_representative=cfg.probe.synthetic_representative,
                tags=tags,
            ),
        )
    if probe_sg and cfg.reflex.enabled:
        ReflexFunction(
            f"{name}-reflex",
            ReflexFunctionArgs(
                stack=stack,
                load_balancer_arn=traffic.alb_arn,
                listener_arn=traffic.production_listener.arn,
                subnet_ids=cfg.probe.subnet_ids,
                security_group_id=probe_sg.id,
                hostname=cfg.traffic.test_hostname,
                probes=cfg.reflex.probes,
                timeout_seconds=cfg.probe.timeout_seconds,
                expected_status=cfg.probe.expected_status,
                interval_seconds=cfg.reflex.interval_seconds,
                breach_checks=cfg.reflex.breach_checks,
                topic_arn=cfg.reflex.notify_topic_arn,
                # the gate's synthetic stratum: the probe function publishes it under this stack's name
                judge_synthetic_stack=stack if cfg.probe.synthetic_per_minute else None,
                judge_slow_request_ms=slow_request_ms,  # the gate's: the reflex judges what the gate judges
                tags=tags,
            ),
        )
    platform = make_platform(cfg, name, tags, net.vpc_id)
    colors = {}
    fingerprints = stack_fingerprints(cfg)
    for color in COLORS:
        colors[color] = ColorEnvironment(
            f"{name}-{color}",
            ColorEnvironmentArgs(
                color=color,
                image=cfg.colors[color].image,
                replicas=cfg.replicas(color),
                target_group_arn=traffic.target_group_arns[color],
                port=cfg.service.port,
                health_path=cfg.service.health_path,
                health_check_grace_seconds=cfg.service.health_check_grace_seconds,
                cpu=cfg.service.cpu,
                memory=cfg.service.memory,
                environment=cfg.service.environment,
                secrets=cfg.service.secrets,
                break_glass=cfg.break_glass_reason,
                workload_fingerprint=fingerprints[color],
                pod_template=_pod_template(cfg, color),
                vpc_id=net.vpc_id,
                subnet_ids=net.task_subnet_ids,
                assign_public_ip=net.assign_public_ip,
                alb_security_group_id=traffic.security_group_id,
                synthetic_security_group_id=probe_sg.id if synthetic_port else None,
                listeners=traffic.listeners,
                tags=tags,
            ),
            platform=platform,
        )

    # gated on creation: the candidate runs by then; on stable while the config holds the reflex's abort
    # (bluegreen:aborted, committed with step 0; cleared by the next release), so git is the truth
    traffic.add_header_route(after=list(colors.values()), to_stable=cfg.aborted is not None)

    r = cfg.rollout
    pulumi.export("platform", cfg.platform)
    pulumi.export("albDnsName", traffic.dns_name)
    pulumi.export("productionUrl", traffic.production_url)
    pulumi.export("testUrl", traffic.test_url)
    pulumi.export("loadBalancerArn", traffic.alb_arn)
    pulumi.export("listenerArn", traffic.production_listener.arn)
    pulumi.export("testListenerArn", traffic.test_listener.arn)
    pulumi.export("targetGroupArns", traffic.target_group_arns)
    pulumi.export("stable", r.stable)
    pulumi.export("candidate", r.candidate)
    pulumi.export("step", r.step)
    pulumi.export("steps", list(r.steps))
    pulumi.export("weights", {c: r.weights[c] for c in COLORS})
    pulumi.export("images", {c: cfg.colors[c].image for c in COLORS})
    pulumi.export("replicas", {c: cfg.replicas(c) for c in COLORS})
    pulumi.export("healthPath", cfg.service.health_path)
    pulumi.export("weightsSince", traffic.weights_since)


main()
