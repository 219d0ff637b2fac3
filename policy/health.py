"""healthy-promotion: a colour gets more traffic only if it passes its health gate now.

The gate is `rollout.gate.run_gate`, the same verdict `python -m rollout gate` reaches: HTTP probes
of the colour's health path through the TEST listener, ALB target health, CloudWatch metrics.
"""

from __future__ import annotations

from typing import Any, Mapping

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from rollout.errors import ConfigError, GateError
from rollout.gate import GateTarget, GateThresholds, run_gate
from rollout.probe_evidence import in_vpc_probe_stack
from rollout.rules import ChangeKind, other

import pack_config
from common import TrafficView, assess, aws_client, region_of, resource_policy, weights_text

__all__ = ["healthy_promotion", "gate_colour"]

NAME = "healthy-promotion"


def _probe_url(view: TrafficView, color: str, cfg: Mapping[str, Any]) -> tuple[str | None, str]:
    """(probe URL, '') or (None, why not)."""
    live = view.live_state
    if live is None:
        return None, "the load balancer's live state is unknown"
    path = live.health_paths.get(color)
    if not path:
        return None, f"the {color} target group has no health check path in AWS"
    base = cfg.get("probeBaseUrl")
    if isinstance(base, str) and base.strip():
        return base.strip().rstrip("/") + (path if path.startswith("/") else "/" + path), ""
    test = live.test
    if test is None:
        return None, (
            "the load balancer has no test listener (tag bluegreen:listener=test) to probe it through; "
            "deploy the test listener first or set probeBaseUrl"
        )
    if color not in test.target_groups:
        sent = ", ".join(sorted(test.target_groups)) or "no colour"
        return None, f"the test listener forwards to {sent}, so probing it would not test {color}"
    if not live.dns_name:
        return None, "the load balancer has no DNS name yet"
    scheme = "https" if str(test.protocol).upper() == "HTTPS" else "http"
    return f"{scheme}://{live.dns_name}:{test.port}{path}", ""


def gate_colour(view: TrafficView, color: str, cfg: Mapping[str, Any]) -> str | None:
    """Run the health gate on `color`; None if it passed, else the reason it did not."""
    gate_cfg = {k: v for k, v in cfg.items() if k not in pack_config.HEALTH_OWN_KEYS}
    try:
        thresholds = GateThresholds.from_mapping(gate_cfg, prefix=f"{NAME}.")
    except ConfigError as e:
        return f"{color} must pass its health gate before it gets more traffic, but the gate is misconfigured: {e}"
    # The live test listener tagged bluegreen:probe=in-vpc: the probe function's metrics are the evidence.
    probe_stack = None if str(cfg.get("probeBaseUrl") or "").strip() else in_vpc_probe_stack(view.live_state)
    url, why = _probe_url(view, color, cfg) if probe_stack is None else (None, "")
    if url is None and probe_stack is None:
        return f"{color} must pass its health gate before it gets more traffic, but it cannot be probed: {why}"
    region = region_of(view.load_balancer_arn)
    target = GateTarget(
        color=color,
        probe_url=url,
        target_group_arn=view.arn_of(color),
        load_balancer_arn=view.load_balancer_arn,
        verify_tls=bool(cfg.get("verifyTls", True)),
        probe_stack=probe_stack,
    )
    try:
        verdict = run_gate(
            target,
            thresholds,
            elbv2=aws_client("elbv2", region),
            cloudwatch=aws_client("cloudwatch", region),
        )
    except GateError as e:
        return f"{color} must pass its health gate before it gets more traffic, but the gate reached no verdict: {e}"
    return None if verdict.passed else verdict.message()


def _check(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    view = assess(args)
    if view is None:
        return
    cfg = pack_config.settings(NAME, args.get_config())
    if view.problem is not None:
        if view.full_rollback_shape():
            return  # a full rollback needs no live data; live-state-readable notes the fault
        report_violation(
            "a colour may get more traffic only after passing its health gate, and this change cannot be "
            f"told apart from a promotion: {view.problem}. Promotions fail closed until that is fixed; "
            f"a full rollback ({view.stable or 'the stable colour'} at 100%) is let through."
        )
        return
    t = view.transition
    assert t is not None and view.proposed is not None
    if t.kind in (ChangeKind.NONE, ChangeKind.FINISH) or t.kind.is_rollback:
        return
    if t.kind is ChangeKind.INITIAL:
        # No live production listener yet: nothing serves traffic through it. Weight 0 on the
        # candidate needs no gate; anything else is a promotion with no history -> the gate decides.
        stable = view.stable
        colors = [other(stable)] if stable else [c for c, w in view.proposed.weights.items() if w > 0]
        gaining = [c for c in colors if view.proposed.weights.get(c, 0) > 0]
        for color in gaining:
            if view.offline:
                report_violation(view.not_evaluated_offline(NAME, f"(the health gate of {color}, which this first deployment gives traffic)"))
                continue
            failure = gate_colour(view, color, cfg)
            if failure:
                report_violation(f"{failure} [first deployment of the production listener: {weights_text(view.proposed.weights)}]")
        return
    color = t.gaining
    if color is None:
        return
    if view.offline:
        report_violation(view.not_evaluated_offline(NAME, f"(the health gate of {color}, {t.from_weight}% -> {t.to_weight}%)"))
        return
    failure = gate_colour(view, color, cfg)
    if failure:
        report_violation(f"{failure} [this update moves {color} from {t.from_weight}% to {t.to_weight}%]")


def healthy_promotion() -> ResourceValidationPolicy:
    return resource_policy(
        NAME,
        (
            "Checks whether a colour that gets more traffic than it has live passes its health gate "
            "(probes through the test listener, ALB target health, CloudWatch); rollbacks always pass."
        ),
        _check,
        Severity.CRITICAL,
    )
