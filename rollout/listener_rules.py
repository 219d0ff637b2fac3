"""The production listener's rules as the operator sees them: what each rule matches and which colour
it forwards to, and the rules the stack file does not declare.

A listener rule sends every request it matches to its own targets, past the weighted default action:
a rule the stack file does not declare (a hand edit, another tool) can send users to a colour the
declared step keeps at 0 %. `status` reads them (AWS `DescribeRules`) and reports each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .live import aws_fault_reason
from .errors import LiveStateError

__all__ = ["ListenerRoute", "read_routes", "undeclared_routes"]


@dataclass(frozen=True)
class ListenerRoute:
    """One non-default rule of a listener."""

    priority: str
    conditions: str  # e.g. "http-header X-Canary=always; path /beta/*"
    forwards: Mapping[str, int]  # colour (or target group ARN when not a colour) -> weight
    action: str  # forward | redirect | fixed-response | ...


def _condition_text(c: Mapping[str, Any]) -> str:
    field = c.get("Field", "?")
    if field == "http-header":
        cfg = c.get("HttpHeaderConfig") or {}
        return f"http-header {cfg.get('HttpHeaderName')}={','.join(cfg.get('Values') or [])}"
    if field == "query-string":
        pairs = (c.get("QueryStringConfig") or {}).get("Values") or []
        return "query " + ",".join(f"{p.get('Key') or ''}={p.get('Value')}" for p in pairs)
    for key in ("PathPatternConfig", "HostHeaderConfig", "HttpRequestMethodConfig", "SourceIpConfig"):
        if c.get(key):
            return f"{field} {','.join(c[key].get('Values') or [])}"
    return f"{field} {','.join(c.get('Values') or [])}"


def _forwards(actions: Sequence[Mapping[str, Any]], color_of: Mapping[str, str]) -> tuple[str, dict[str, int]]:
    for a in actions:
        if a.get("Type") != "forward":
            continue
        groups = (a.get("ForwardConfig") or {}).get("TargetGroups") or ([{"TargetGroupArn": a["TargetGroupArn"], "Weight": 1}] if a.get("TargetGroupArn") else [])
        return "forward", {color_of.get(g["TargetGroupArn"], g["TargetGroupArn"]): int(g.get("Weight", 1)) for g in groups}
    return (actions[0].get("Type", "?") if actions else "none"), {}


def read_routes(elbv2, listener_arn: str, color_of: Mapping[str, str]) -> list[ListenerRoute]:
    """Every non-default rule of the listener, in priority order. Raises LiveStateError when unreadable."""
    try:
        rules: list[dict[str, Any]] = []
        for page in elbv2.get_paginator("describe_rules").paginate(ListenerArn=listener_arn):
            rules.extend(page.get("Rules", []))
    except Exception as e:  # botocore errors, timeouts: one line for the operator
        raise LiveStateError(aws_fault_reason(e, f"the rules of {listener_arn}")) from None
    out = []
    for rule in rules:
        if rule.get("IsDefault"):
            continue
        action, forwards = _forwards(rule.get("Actions") or [], color_of)
        conditions = "; ".join(_condition_text(c) for c in rule.get("Conditions") or []) or "(none)"
        out.append(ListenerRoute(str(rule.get("Priority")), conditions, forwards, action))
    return sorted(out, key=lambda r: int(r.priority) if r.priority.isdigit() else 1 << 30)


def undeclared_routes(routes: Sequence[ListenerRoute], header_route: tuple[str, str] | None, candidate: str,
                      weights: Mapping[str, int]) -> list[str]:
    """Why each rule that sends traffic to a colour the declared step keeps below 100 % is not declared."""
    problems = []
    for r in routes:
        gains = [c for c, w in r.forwards.items() if w > 0 and weights.get(c, 0) < 100]
        if not gains:
            continue
        declared = header_route is not None and r.conditions == f"http-header {header_route[0]}={header_route[1]}" and set(gains) == {candidate}
        if not declared:
            problems.append(f"listener rule {r.priority} ({r.conditions}) forwards to {', '.join(gains)}, which the stack file does not declare")
    return problems
