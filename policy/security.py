"""The ALB security baseline: HTTPS with a TLS >= 1.2 policy, HTTP only as a redirect to HTTPS,
deletion protection, invalid header fields dropped, access logs on.

Checks on the resources' inputs. Mandatory by default; `staging.json` makes them advisory,
`production.json` keeps them mandatory. The load balancer checks stop an update from making the
load balancer worse: when the live load balancer (found by name) already violates in the same way,
they skip, so an update that only rolls traffic back is never held hostage to old debt
(docs/safety-model.md, invariant 5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

import pack_config
from clients import aws_client
from guard import resource_policy
from offline import offline_section
from props import LISTENER_TYPES, LOAD_BALANCER_TYPES, describe, is_seq, tags_of
from rollout.live import bounded_read

__all__ = [
    "alb_https_only",
    "alb_tls_policy",
    "alb_deletion_protection",
    "alb_drop_invalid_header_fields",
    "alb_access_logs",
    "tls_minimum",
]


def _listener_label(args: ResourceValidationArgs) -> str:
    role = tags_of(args.props).get("bluegreen:listener")
    port = args.props.get("port")
    port_text = f" on port {int(port)}" if isinstance(port, (int, float)) and not isinstance(port, bool) else ""
    return f"the {role} listener{port_text}" if role else f"listener {args.name}{port_text}"


def _protocol(props: Mapping[str, Any]) -> str:
    p = props.get("protocol")
    return p.upper() if isinstance(p, str) and p else "HTTP"  # the ALB default when omitted


def _actions(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = props.get("defaultActions")
    return [a for a in raw if isinstance(a, Mapping)] if is_seq(raw) else []


# --------------------------------------------------------------------------- alb-https-only


def _check_https_only(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in LISTENER_TYPES:
        return
    protocol = _protocol(args.props)
    if protocol != "HTTP":
        return  # HTTPS (checked by alb-tls-policy), or an NLB protocol
    label = _listener_label(args)
    actions = _actions(args.props)
    kinds = [a.get("type") for a in actions]
    redirects_to_https = [
        a for a in actions
        if a.get("type") == "redirect"
        and isinstance(a.get("redirect"), Mapping)
        and str(a["redirect"].get("protocol", "")).upper() == "HTTPS"
    ]
    others = [k for k in kinds if k != "redirect"]
    if redirects_to_https and not others:
        return
    found = ", ".join(str(k) for k in kinds) if kinds else "no default action"
    if tags_of(args.props).get("bluegreen:listener") == "production":
        report_violation(
            f"the production listener must use HTTPS (protocol HTTPS, a certificate and a TLS >= 1.2 policy), "
            f"and plain HTTP may only redirect to HTTPS: {label} is HTTP with default action(s): {found}"
        )
        return
    report_violation(
        f"an HTTP listener may only redirect to HTTPS (a redirect action with protocol HTTPS): "
        f"{label} is HTTP with default action(s): {found}"
    )


def alb_https_only() -> ResourceValidationPolicy:
    name = "alb-https-only"
    return resource_policy(
        name,
        "Checks whether every ALB listener is HTTPS, or plain HTTP that only redirects to HTTPS.",
        _check_https_only,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- alb-tls-policy

_TLS_IN_NAME = re.compile(r"^ELBSecurityPolicy-(?:TLS13|TLS|FS)-1-(\d)(?:-|$)")
_LEGACY_TLS10 = re.compile(r"^ELBSecurityPolicy-(?:FS-)?\d{4}-\d{2}$")  # 2015-05, 2016-08, FS-2018-06


def tls_minimum(policy: str) -> str | None:
    """The lowest TLS version an ELB security policy accepts ('1.0'..'1.3'), None if unknown."""
    m = _TLS_IN_NAME.match(policy)
    if m:
        return f"1.{m.group(1)}"
    if _LEGACY_TLS10.match(policy):
        return "1.0"
    return None


def _check_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in LISTENER_TYPES:
        return
    protocol = _protocol(args.props)
    if protocol not in ("HTTPS", "TLS"):
        return
    cfg = pack_config.settings("alb-tls-policy", args.get_config())
    wanted = cfg.get("minTlsVersion") if cfg.get("minTlsVersion") in ("1.2", "1.3") else "1.2"
    label = _listener_label(args)
    policy = args.props.get("sslPolicy")
    if not isinstance(policy, str) or not policy:
        report_violation(
            f"an {protocol} listener must name a TLS >= {wanted} security policy in sslPolicy (e.g. "
            f"ELBSecurityPolicy-TLS13-1-2-2021-06) rather than rely on AWS's default: {label} has sslPolicy {describe(policy)}"
        )
        return
    got = tls_minimum(policy)
    if got is None:
        report_violation(
            f"an {protocol} listener must use a security policy whose minimum is TLS {wanted} or newer: {label} uses "
            f"{policy}, whose minimum TLS version is not known to this pack"
        )
    elif got < wanted:
        report_violation(
            f"an {protocol} listener must use a security policy whose minimum is TLS {wanted} or newer (e.g. "
            f"ELBSecurityPolicy-TLS13-1-2-2021-06): {label} uses {policy}, which accepts TLS {got}"
        )
    cert = args.props.get("certificateArn")
    if protocol == "HTTPS" and (not isinstance(cert, str) or not cert):
        report_violation(f"an HTTPS listener needs a certificate (certificateArn): {label} has {describe(cert)}")


def alb_tls_policy() -> ResourceValidationPolicy:
    name = "alb-tls-policy"
    return resource_policy(
        name,
        "Checks whether HTTPS listeners use a certificate and a security policy with TLS 1.2 or newer as the minimum.",
        _check_tls,
        Severity.HIGH,
    )


# --------------------------------------------------------------------------- load balancer settings


def _application_lb(args: ResourceValidationArgs) -> bool:
    if args.resource_type not in LOAD_BALANCER_TYPES:
        return False
    kind = args.props.get("loadBalancerType")
    return kind is None or kind == "application"


_LIVE_ATTRIBUTE = {
    "enableDeletionProtection": "deletion_protection.enabled",
    "dropInvalidHeaderFields": "routing.http.drop_invalid_header_fields.enabled",
    "accessLogs": "access_logs.s3.enabled",
}


def already_violates_live(args: ResourceValidationArgs, prop: str) -> bool:
    """Whether the live load balancer of this name already has `prop` off (so this update does not make it worse).

    Any fault reading it: False (the static check decides). Offline: False (nothing live).
    """
    name = args.props.get("name")
    if not isinstance(name, str) or not name:
        return False
    offline, problem = offline_section(args)
    if offline is not None or problem is not None:
        return False

    def read() -> dict[str, str]:
        elbv2 = aws_client("elbv2", None)
        lbs = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
        attrs = elbv2.describe_load_balancer_attributes(LoadBalancerArn=lbs[0]["LoadBalancerArn"])["Attributes"]
        return {a["Key"]: str(a.get("Value", "")).lower() for a in attrs}

    try:
        attrs = bounded_read(read, f"the live attributes of load balancer {name}")
    except Exception:  # noqa: BLE001 - not found (a new load balancer) or unreadable: judge the inputs
        return False
    return attrs.get(_LIVE_ATTRIBUTE[prop]) == "false"


def _must_be_true(prop: str, what: str) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """A check that an application load balancer sets the boolean `prop` to true."""

    def check(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not _application_lb(args):
            return
        value = args.props.get(prop)
        if value is not True and not already_violates_live(args, prop):
            report_violation(
                f"an application load balancer must {what} ({prop}: true): "
                f"{args.name} has {describe(value) if value is not False else 'false'}"
            )

    return check


def _check_access_logs(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not _application_lb(args):
        return
    logs = args.props.get("accessLogs")
    if not isinstance(logs, Mapping) and already_violates_live(args, "accessLogs"):
        return
    if not isinstance(logs, Mapping):
        report_violation(
            f"an application load balancer must write access logs (accessLogs: {{bucket, enabled: true}}): "
            f"{args.name} has accessLogs {describe(logs)}"
        )
        return
    enabled, bucket = logs.get("enabled"), logs.get("bucket")
    if enabled is not True and already_violates_live(args, "accessLogs"):
        return
    problems = []
    if enabled is not True:
        problems.append(f"accessLogs.enabled is {describe(enabled) if enabled is not False else 'false'}")
    if not isinstance(bucket, str) or not bucket:
        problems.append(f"accessLogs.bucket is {describe(bucket)}")
    if problems:
        report_violation(
            f"an application load balancer must write access logs to an S3 bucket: {args.name}: {'; '.join(problems)}"
        )


def alb_deletion_protection() -> ResourceValidationPolicy:
    return resource_policy(
        "alb-deletion-protection",
        "Checks whether application load balancers have deletion protection enabled.",
        _must_be_true("enableDeletionProtection", "have deletion protection on"),
        Severity.MEDIUM,
    )


def alb_drop_invalid_header_fields() -> ResourceValidationPolicy:
    return resource_policy(
        "alb-drop-invalid-header-fields",
        "Checks whether application load balancers drop invalid HTTP header fields.",
        _must_be_true("dropInvalidHeaderFields", "drop invalid HTTP header fields"),
        Severity.MEDIUM,
    )


def alb_access_logs() -> ResourceValidationPolicy:
    return resource_policy(
        "alb-access-logs",
        "Checks whether application load balancers write access logs to an S3 bucket.",
        _check_access_logs,
        Severity.MEDIUM,
    )
