"""healthy-promotion (invariant 1): traffic is gained only through the gate.

The gate is `rollout.gate.run_gate`, the same verdict `python -m rollout gate` reaches: HTTP probes
of the colour's health path through the TEST listener, ALB target health, CloudWatch metrics.
"""

from __future__ import annotations

from typing import Any, Mapping

from datetime import datetime, timezone

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from rollout.errors import ConfigError, GateError
from rollout.gate import GateTarget, GateThresholds, run_gate
from rollout.probe_evidence import in_vpc_probe_stack
from rollout.desired import TAG_STABLE_TG, parse_since

import pack_config
from clients import aws_client, region_of
from guard import resource_policy
from routes import Gain, RouteView, route_view

__all__ = ["healthy_promotion", "gate_colour", "check_traffic_gained_through_gate"]

NAME = "healthy-promotion"


def _probe_url(view: RouteView, color: str, cfg: Mapping[str, Any]) -> tuple[str | None, str]:
    """(probe URL, '') or (None, why not)."""
    live = view.live
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


def gate_colour(view: RouteView, color: str, cfg: Mapping[str, Any], target_group_arn: str | None = None,
                gain: Gain | None = None, finish: bool = False) -> str | None:
    """Run the health gate on `color`; None if it passed, else the reason it did not.

    The judge compares the colour with the live-recorded stable target group over the minutes since the
    live weights-since stamp; `gain` (the share before and after) also sets the capacity floor."""
    gate_cfg = {k: v for k, v in cfg.items() if k not in pack_config.HEALTH_OWN_KEYS}
    try:
        thresholds = GateThresholds.from_mapping(gate_cfg, prefix=f"{NAME}.")
    except ConfigError as e:
        return f"{color} must pass its health gate before it gets more traffic, but the gate is misconfigured: {e}"
    # The live test listener tagged bluegreen:probe=in-vpc: the probe function's metrics are the evidence.
    probe_stack = _probe_stack(view, cfg)
    url, why = _probe_url(view, color, cfg) if probe_stack is None else (None, "")
    if url is None and probe_stack is None:
        return f"{color} must pass its health gate before it gets more traffic, but it cannot be probed: {why}"
    region = region_of(view.load_balancer_arn)
    target = GateTarget(
        color=color,
        probe_url=url,
        target_group_arn=target_group_arn or view.arn_of(color),
        load_balancer_arn=view.load_balancer_arn,
        verify_tls=bool(cfg.get("verifyTls", True)),
        probe_stack=probe_stack,
        **_judge_context(view, target_group_arn or view.arn_of(color), gain, finish),
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
    except Exception as e:  # noqa: BLE001 - e.g. no client offline: a gate that did not pass
        return f"{color} must pass its health gate before it gets more traffic, but the gate could not run: {type(e).__name__}: {e}"
    return None if verdict.passed else verdict.message()


def _probe_stack(view: RouteView, cfg: Mapping[str, Any]) -> str | None:
    """The stack whose in-VPC probe metrics are the evidence, or None to probe directly."""
    if str(cfg.get("probeBaseUrl") or "").strip():
        return None
    source = cfg.get("probeSource", "auto")
    if source == "direct":
        return None
    if source == "in-vpc":  # from the engine's URN, never from a tag the update may write
        stack = view.urn.split("::", 1)[0].rsplit(":", 1)[-1] if view.urn.startswith("urn:pulumi:") else ""
        return stack or None
    return in_vpc_probe_stack(view.live)


def _judge_context(view: RouteView, target_group_arn: str | None, gain: Gain | None, finish: bool = False) -> dict[str, Any]:
    """What the gate would otherwise read again from AWS: the baseline (the recorded stable target
    group), the colour's live share of production traffic (its share of the recorded listener's
    default action, whatever route is being changed), the share after the change (recorded listener
    only) and when the live weights began. At a finish there is no baseline: no relative judge."""
    out: dict[str, Any] = {}
    if finish:
        out["relative"] = False
    stable = view.stable_tg
    if stable and stable != target_group_arn:
        if view.live is not None and stable not in view.live.colors:  # a damaged record: no target group to read
            out["baseline_problem"] = f"the live {TAG_STABLE_TG} ({stable!r}) names no target group with a live colour on this load balancer"
        else:
            out["baseline_target_group_arn"] = stable
    record = view.record
    if view.live is not None and record is not None and target_group_arn:
        for route in view.live.routes:
            if route.rule_arn is None and route.listener_arn == record.listener_arn:
                out["live_share"] = round(100 * route.shares.get(target_group_arn, 0.0))
    if gain is not None and view.recorded:
        out["live_share"] = round(gain.before * 100)
        out["share"] = round(gain.after * 100)
    parsed = parse_since(record.since) if record is not None else None
    if parsed is not None:
        out["since"] = datetime.fromtimestamp(parsed[0], timezone.utc)
    return out


def _where(view: RouteView) -> str:
    if view.kind == "rule":
        return f"listener rule (priority {view.priority}) on {view.listener_arn}"
    return f"listener on port {view.port}"


def check_traffic_gained_through_gate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Traffic is gained only through the gate: a change that raises a target group's share of any
    route passes only if that target group's colour passes the gate now, unless the target group is
    the live-recorded stable target group."""
    view = route_view(args)
    if view is None or not view.groups:
        return
    if view.passes_unconditionally():
        return
    cfg = pack_config.settings(NAME, args.get_config())
    if view.problem is not None:
        report_violation(
            "a target group may get more traffic only after passing its health gate, and this change cannot be "
            f"told apart from a promotion: {view.problem}. Promotions fail closed until that is fixed; a listener "
            "forwarding 100% to one target group is let through only when AWS itself cannot be read."
        )
        return
    stable_proposed = view.tags.get(TAG_STABLE_TG) if view.first_deploy and view.kind == "listener" else None
    if view.first_deploy and stable_proposed is None:
        return  # nothing on this load balancer carries traffic yet; the listener recording stable is gated
    for gain in view.ungated_gains():
        if gain.arn == stable_proposed:
            continue  # first deployment: the stable target group it records takes the traffic
        color = view.color(gain.arn)
        what = f"[this update moves {gain.text(color)} on the {_where(view)}]"
        if color is None:
            report_violation(
                f"a target group may get more traffic only after passing its health gate, and {gain.arn} has no live "
                f"bluegreen:color tag (blue | green), so it cannot be gated {what}"
            )
            continue
        if view.offline:
            report_violation(view.not_evaluated_offline(NAME, f"(the health gate of {color}, {gain.text(None)})"))
            continue
        failure = gate_colour(view, color, cfg, gain.arn, gain)
        if failure:
            report_violation(f"{failure} {what}")
    new_stable = view.tags.get(TAG_STABLE_TG)
    if view.recorded and new_stable and new_stable != view.stable_tg:  # a finish: the new stable passes its gate
        color = view.color(new_stable)
        if color is not None and not view.offline:
            failure = gate_colour(view, color, cfg, new_stable, finish=True)
            if failure:
                report_violation(f"{failure} [this update makes {color} ({new_stable}) the stable target group]")


def healthy_promotion() -> ResourceValidationPolicy:
    return resource_policy(
        NAME,
        (
            "Checks whether every target group that gets a larger share of any route (a listener's default action or "
            "any listener rule) passes its colour's health gate now; traffic returning to the live-recorded stable "
            "target group always passes."
        ),
        check_traffic_gained_through_gate,
        Severity.CRITICAL,
    )
