"""Read the live state of the load balancer from AWS (elbv2 only, read-only calls).

What this module reads, and nothing more:

* ``describe_load_balancers`` -- the load balancer's DNS name;
* ``describe_listeners`` + ``describe_tags`` -- which listener is the production one
  (tag ``bluegreen:listener=production``, else the one on ``production_port``) and which
  is the test one (tag ``bluegreen:listener=test``), and their forward actions;
* ``describe_target_groups`` + ``describe_tags`` -- each target group's colour (tag
  ``bluegreen:color``) and health check path.

Colours always come from the target groups' tags as read from AWS, never from names.
Every AWS fault becomes a :class:`~rollout.errors.LiveStateError` whose message says what
went wrong in operator terms (see :func:`aws_fault_reason`).
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import botocore.exceptions  # boto3, botocore.config and botocore.parsers load when first needed: an offline
# pack (`rollout plan`) imports this module and never makes a client

from rollout.errors import LiveStateError

__all__ = [
    "LIVE_READ_SECONDS",
    "bounded_read",
    "COLOR_TAG",
    "LISTENER_TAG",
    "STABLE_TAG",
    "LiveListener",
    "LiveState",
    "read_live_state",
    "target_group_colors",
    "elbv2_client",
    "cloudwatch_client",
    "client_config",
    "aws_fault_reason",
    "LiveRoute",
    "Record",
    "fault_is_environmental",
    "condition_key",
    "STABLE_TG_TAG",
    "STEPS_TAG",
    "SINCE_TAG",
]

COLOR_TAG = "bluegreen:color"
LISTENER_TAG = "bluegreen:listener"
STABLE_TAG = "bluegreen:stable"
STABLE_TG_TAG = "bluegreen:stable-tg"  # the record: the stable target group's ARN
STEPS_TAG = "bluegreen:steps"
SINCE_TAG = "bluegreen:weights-since"
_COLORS = ("blue", "green")
_TAGS_PER_CALL = 20  # elbv2 DescribeTags accepts at most 20 ARNs per call

_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
_ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
)
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_REJECTED_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "InvalidAccessKeyId",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
_NOT_FOUND_CODES = {
    "TargetGroupNotFound": "target group not found",
    "LoadBalancerNotFound": "load balancer not found",
    "ListenerNotFound": "listener not found",
}


@dataclass(frozen=True)
class LiveListener:
    """One listener as AWS has it now."""

    arn: str
    port: int
    protocol: str
    weights: Mapping[str, int]  # colour -> weight of that colour's target group
    target_groups: Mapping[str, str]  # colour -> target group ARN
    tags: Mapping[str, str] = field(default_factory=dict)  # the listener's own tags


@dataclass(frozen=True)
class LiveRoute:
    """One route of the load balancer: a listener's default action, or one of its rules.

    Recognised by what it forwards to, never by tags. `shares` maps each target group ARN the route
    forwards to onto its share (0..1) of the route's requests.
    """

    listener_arn: str
    port: int
    shares: Mapping[str, float]
    rule_arn: str | None = None  # None: the listener's default action
    priority: int | None = None
    conditions: str = ""  # condition_key() of the rule's conditions


@dataclass(frozen=True)
class Record:
    """What the live listener records about the rollout (only a checked transition writes it)."""

    listener_arn: str
    stable_tg: str  # ARN of the stable target group
    steps: str | None  # the bluegreen:steps tag
    since: str | None  # the bluegreen:weights-since tag
    legacy: bool = False  # read from the older bluegreen:stable colour tag


@dataclass(frozen=True)
class LiveState:
    """The load balancer as AWS has it now: production and test listeners, health paths."""

    load_balancer_arn: str
    dns_name: str
    production: LiveListener | None
    test: LiveListener | None
    health_paths: Mapping[str, str]  # colour -> health check path of that colour's target group
    routes: tuple[LiveRoute, ...] = ()  # every listener default action and every rule
    colors: Mapping[str, str] = field(default_factory=dict)  # target group ARN -> live colour tag
    listener_tags: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    record: Record | None = None
    record_problem: str | None = None  # why there is no record although routes exist

    def listener_route(self, port: int) -> LiveRoute | None:
        """The default-action route of the listener on `port` (a listener's identity on its load balancer)."""
        for r in self.routes:
            if r.rule_arn is None and r.port == port:
                return r
        return None

    def rule_route(self, listener_arn: str, priority: int | None, conditions: str) -> LiveRoute | None:
        """The live rule with the same listener, priority and conditions, if any."""
        for r in self.routes:
            if r.rule_arn is not None and r.listener_arn == listener_arn and r.priority == priority and r.conditions == conditions:
                return r
        return None

    def share_anywhere(self, tg_arn: str) -> float:
        """The largest share of any live route that `tg_arn` receives (0 = it carries no traffic)."""
        return max((r.shares.get(tg_arn, 0.0) for r in self.routes), default=0.0)


LIVE_READ_SECONDS = 5.0  # bound on one read of live state (bounded_read), whatever the endpoint does


def bounded_read(read: Callable[[], Any], what: str, seconds: float = LIVE_READ_SECONDS) -> Any:
    """Run one live AWS read within `seconds`; a hung endpoint becomes a LiveStateError, not a stall.

    botocore's own timeouts (connect, read, retries) can add up to far more than a gate deadline; the
    read runs on a daemon thread so an answer that never comes cannot hold the pack or its exit.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = read()
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            box["error"] = e

    worker = threading.Thread(target=run, name="bluegreen-live-read", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        err = LiveStateError(f"no answer from AWS within {seconds:g} s reading {what}")
        err.environmental = True  # type: ignore[attr-defined] - a hung endpoint: no input causes it
        raise err
    if "error" in box:
        raise box["error"]
    return box["value"]


def client_config(
    connect_timeout: float = 3.0, read_timeout: float = 10.0, max_attempts: int = 2
) -> botocore.config.Config:
    """Botocore config with bounded timeouts and few retries (standard mode retries throttling)."""
    import botocore.config

    return botocore.config.Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
    )


def elbv2_client(region: str | None = None, *, config: botocore.config.Config | None = None):
    """An elbv2 client with sane timeouts; honours AWS_ENDPOINT_URL like every boto3 client."""
    import boto3

    return boto3.session.Session().client(
        "elbv2", region_name=region, config=config or client_config()
    )


def cloudwatch_client(region: str | None = None, *, config: botocore.config.Config | None = None):
    """A CloudWatch client with sane timeouts; honours AWS_ENDPOINT_URL like every boto3 client."""
    import boto3

    return boto3.session.Session().client(
        "cloudwatch", region_name=region, config=config or client_config()
    )


def _short(text: Any, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _code_from_body(body: str, status: str) -> tuple[str, str]:
    """Recover Code/Message from an XML or JSON error body; else keep the HTTP status."""
    code = re.search(r"<Code>([^<]+)</Code>", body) or re.search(r'"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"', body)
    message = re.search(r"<Message>([^<]*)</Message>", body) or re.search(r'"[mM]essage"\s*:\s*"([^"]*)"', body)
    if not code:
        return f"HTTP {status}", body
    return code.group(1).strip(), html.unescape(message.group(1)) if message else ""


def aws_fault_reason(exc: BaseException, subject: str | None = None) -> str:
    """A short operator-facing reason for an AWS (boto3/botocore) failure.

    ``subject`` names what was asked for (an ARN) and is used for "not found" faults.
    """
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials"
    if isinstance(exc, botocore.exceptions.PartialCredentialsError):
        return f"incomplete AWS credentials: {_short(exc)}"
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return "no AWS region configured (set AWS_REGION or aws:region)"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"AWS endpoint unreachable: {exc.kwargs.get('endpoint_url', '?')}"
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError):
        return f"AWS endpoint timed out while connecting: {exc.kwargs.get('endpoint_url', '?')}"
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        return f"AWS endpoint timed out while answering: {exc.kwargs.get('endpoint_url', '?')}"
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(err.get("Code") or "Unknown")
        raw_message = str(err.get("Message") or "")
        if code.isdigit():  # an error body the protocol parser could not read (e.g. XML for JSON)
            code, raw_message = _code_from_body(raw_message, code)
        message = _short(raw_message)
        op = getattr(exc, "operation_name", None) or "call"
        if code in _THROTTLING_CODES:
            return f"AWS throttling ({code}) on {op} after retries: {message}".rstrip(": ")
        if code in _ACCESS_DENIED_CODES:
            return f"AWS AccessDenied on {op}: {message}".rstrip(": ")
        if code in _EXPIRED_CODES:
            return f"AWS credentials expired ({code}): {message}".rstrip(": ")
        if code in _REJECTED_CODES:
            return f"AWS credentials rejected ({code}): {message}".rstrip(": ")
        if code in _NOT_FOUND_CODES:
            what = _NOT_FOUND_CODES[code]
            return f"{what}: {subject}" if subject else f"{what}: {message}"
        return f"AWS {code} on {op}: {message}".rstrip(": ")
    if isinstance(exc, _response_parser_error()):
        return "AWS endpoint returned a response that is not an AWS API answer"
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return f"AWS client error ({type(exc).__name__}): {_short(exc)}"
    return f"unexpected {type(exc).__name__}: {_short(exc)}"


_ENVIRONMENT_EXC = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def _response_parser_error() -> type[Exception]:
    """botocore.parsers.ResponseParserError, imported on first use (the parsers load with a client anyway)."""
    import botocore.parsers

    return botocore.parsers.ResponseParserError


def fault_is_environmental(exc: BaseException | None) -> bool:
    """Whether an AWS fault comes from where the reader runs (credentials, network, throttling,
    timeouts, AWS itself), so that no resource input could have caused it."""
    while exc is not None:
        if isinstance(exc, (*_ENVIRONMENT_EXC, _response_parser_error())):
            return True
        if isinstance(exc, botocore.exceptions.ClientError):
            err = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
            code = str(err.get("Code") or "")
            status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode", 0) if isinstance(exc.response, dict) else 0
            if code.isdigit():
                code = _code_from_body(str(err.get("Message") or ""), code)[0]
            return (
                code in _THROTTLING_CODES or code in _ACCESS_DENIED_CODES or code in _EXPIRED_CODES
                or code in _REJECTED_CODES or (isinstance(status, int) and status >= 500)
            )
        if isinstance(exc, LiveStateError) and getattr(exc, "environmental", False):
            return True
        exc = exc.__cause__
    return False


def _fault(exc: BaseException, subject: str | None = None) -> LiveStateError:
    return LiveStateError(f"could not read the live load balancer state: {aws_fault_reason(exc, subject)}")


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _tags_by_arn(elbv2, arns: Sequence[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    unique = list(dict.fromkeys(arns))
    for chunk in _chunks(unique, _TAGS_PER_CALL):
        resp = elbv2.describe_tags(ResourceArns=list(chunk))
        for desc in resp.get("TagDescriptions", []):
            out[desc["ResourceArn"]] = {t["Key"]: t.get("Value", "") for t in desc.get("Tags", [])}
    return out


def target_group_colors(elbv2, arns: Sequence[str]) -> dict[str, str]:
    """Map target group ARN -> colour from its ``bluegreen:color`` tag; untagged ARNs are left out.

    Raises LiveStateError on any AWS fault.
    """
    if not arns:
        return {}
    try:
        tags = _tags_by_arn(elbv2, arns)
    except Exception as exc:  # every AWS fault is reported the same way
        raise _fault(exc, ", ".join(arns)) from exc
    return {arn: t[COLOR_TAG] for arn, t in tags.items() if COLOR_TAG in t}


def _forward_target_groups(actions: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(target group ARN, weight) pairs of the first forward action; [] if there is none."""
    for action in sorted(actions, key=lambda a: a.get("Order", 0)):
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if groups:
            sole = len(groups) == 1
            return [
                (g["TargetGroupArn"], int(g.get("Weight", 100 if sole else 1))) for g in groups
            ]
        if action.get("TargetGroupArn"):
            return [(action["TargetGroupArn"], 100)]
    return []


def _listener(raw: Mapping[str, Any], tags: Mapping[str, str], colors: Mapping[str, str]) -> LiveListener:
    weights: dict[str, int] = {}
    groups: dict[str, str] = {}
    for arn, weight in _forward_target_groups(raw.get("DefaultActions", [])):
        color = colors.get(arn)
        if color is None:
            raise LiveStateError(
                f"target group {arn} behind listener {raw['ListenerArn']} has no "
                f"{COLOR_TAG} tag (expected blue or green)"
            )
        if color not in _COLORS:
            raise LiveStateError(
                f"target group {arn} has {COLOR_TAG}={color!r}; expected blue or green"
            )
        if color in groups:
            raise LiveStateError(
                f"listener {raw['ListenerArn']} forwards to two {color} target groups: "
                f"{groups[color]} and {arn}"
            )
        weights[color] = weight
        groups[color] = arn
    return LiveListener(
        arn=raw["ListenerArn"],
        port=int(raw.get("Port", 0)),
        protocol=str(raw.get("Protocol", "")),
        weights=weights,
        target_groups=groups,
        tags=dict(tags),
    )


def read_live_state(elbv2, load_balancer_arn: str, *, production_port: int | None = None, strict: bool = True) -> LiveState:
    """Read listeners, weights per colour and health paths of one load balancer.

    The production listener is the one tagged ``bluegreen:listener=production``; if none is
    tagged, the one on ``production_port`` (if given). The test listener is the one tagged
    ``bluegreen:listener=test``. Only the listeners' default actions are read (not rules).
    Raises LiveStateError on any AWS fault or on a state bluegreen cannot interpret; with
    ``strict=False`` (the policy pack) a tagged listener that cannot be interpreted is left out
    (production/test None) instead, since every route is still read into ``routes``.
    """
    try:
        lbs = elbv2.describe_load_balancers(LoadBalancerArns=[load_balancer_arn])["LoadBalancers"]
        if not lbs:
            raise LiveStateError(f"load balancer not found: {load_balancer_arn}")
        dns_name = lbs[0].get("DNSName", "")
        listeners: list[dict[str, Any]] = []
        for page in elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=load_balancer_arn):
            listeners.extend(page.get("Listeners", []))
        tgs: list[dict[str, Any]] = []
        for page in elbv2.get_paginator("describe_target_groups").paginate(LoadBalancerArn=load_balancer_arn):
            tgs.extend(page.get("TargetGroups", []))
        listener_tags = _tags_by_arn(elbv2, [ls["ListenerArn"] for ls in listeners])
        tg_arns = [tg["TargetGroupArn"] for tg in tgs]
        for ls in listeners:
            tg_arns.extend(arn for arn, _ in _forward_target_groups(ls.get("DefaultActions", [])))
        rules: dict[str, list[dict[str, Any]]] = {}
        for ls in listeners:
            found_rules: list[dict[str, Any]] = []
            for page in elbv2.get_paginator("describe_rules").paginate(ListenerArn=ls["ListenerArn"]):
                found_rules.extend(page.get("Rules", []))
            rules[ls["ListenerArn"]] = found_rules
            for rule in found_rules:
                tg_arns.extend(arn for arn, _ in _forward_target_groups(rule.get("Actions", [])))
        tg_tags = _tags_by_arn(elbv2, tg_arns)
    except LiveStateError:
        raise
    except Exception as exc:
        raise _fault(exc, load_balancer_arn) from exc

    colors = {arn: t[COLOR_TAG] for arn, t in tg_tags.items() if COLOR_TAG in t}
    health_paths: dict[str, str] = {}
    for tg in tgs:
        color = colors.get(tg["TargetGroupArn"])
        if color in _COLORS and tg.get("HealthCheckPath"):
            health_paths[color] = tg["HealthCheckPath"]

    def tagged(role: str) -> list[dict[str, Any]]:
        return [ls for ls in listeners if listener_tags.get(ls["ListenerArn"], {}).get(LISTENER_TAG) == role]

    production_raw = tagged("production")
    if not production_raw and production_port is not None:
        production_raw = [ls for ls in listeners if int(ls.get("Port", -1)) == production_port]
    test_raw = tagged("test")
    for role, found in (("production", production_raw), ("test", test_raw)):
        if len(found) > 1 and not strict:
            found.clear()
        if len(found) > 1:
            arns = ", ".join(ls["ListenerArn"] for ls in found)
            raise LiveStateError(f"more than one {role} listener on {load_balancer_arn}: {arns}")

    def build(found: list[dict[str, Any]]) -> LiveListener | None:
        if not found:
            return None
        try:
            return _listener(found[0], listener_tags.get(found[0]["ListenerArn"], {}), colors)
        except LiveStateError:
            if strict:
                raise
            return None

    routes: list[LiveRoute] = []
    for ls in listeners:
        port = int(ls.get("Port", 0))
        routes.append(LiveRoute(ls["ListenerArn"], port, _shares(ls.get("DefaultActions", []))))
        for rule in rules.get(ls["ListenerArn"], []):
            if rule.get("IsDefault") or str(rule.get("Priority", "")) == "default":
                continue
            prio = str(rule.get("Priority", ""))
            routes.append(
                LiveRoute(
                    ls["ListenerArn"], port, _shares(rule.get("Actions", [])), rule_arn=rule.get("RuleArn"),
                    priority=int(prio) if prio.isdigit() else None, conditions=condition_key(rule.get("Conditions", []), aws=True),
                )
            )
    record, record_problem = _record(listeners, listener_tags, colors, routes)
    return LiveState(
        load_balancer_arn=load_balancer_arn,
        dns_name=dns_name,
        production=build(production_raw),
        test=build(test_raw),
        health_paths=health_paths,
        routes=tuple(routes),
        colors={a: c for a, c in colors.items()},
        listener_tags={k: dict(v) for k, v in listener_tags.items()},
        record=record,
        record_problem=record_problem,
    )


def _shares(actions: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Target group ARN -> share of the route's requests, from the first forward action."""
    pairs = _forward_target_groups(actions)
    total = sum(max(w, 0) for _, w in pairs)
    if total <= 0:
        return {arn: 0.0 for arn, _ in pairs}
    out: dict[str, float] = {}
    for arn, w in pairs:
        out[arn] = out.get(arn, 0.0) + max(w, 0) / total
    return out


def _record(
    listeners: Sequence[Mapping[str, Any]],
    listener_tags: Mapping[str, Mapping[str, str]],
    colors: Mapping[str, str],
    routes: Sequence[LiveRoute],
) -> tuple[Record | None, str | None]:
    """The rollout record: the listener carrying bluegreen:stable-tg (or, from older deployments, a
    bluegreen:stable colour that maps to exactly one target group)."""
    holders = [ls["ListenerArn"] for ls in listeners if listener_tags.get(ls["ListenerArn"], {}).get(STABLE_TG_TAG)]
    values = {listener_tags[a][STABLE_TG_TAG] for a in holders}
    if len(values) > 1:
        return None, f"listeners disagree on {STABLE_TG_TAG}: {', '.join(sorted(values))}"
    if holders:
        arn = holders[0]
        tags = listener_tags.get(arn, {})
        return Record(arn, tags[STABLE_TG_TAG], tags.get(STEPS_TAG), tags.get(SINCE_TAG)), None
    for ls in listeners:
        tags = listener_tags.get(ls["ListenerArn"], {})
        legacy = str(tags.get(STABLE_TAG, "")).strip().lower()
        if legacy in _COLORS:
            forwarded = {a for a, _ in _forward_target_groups(ls.get("DefaultActions", []))}
            match = [a for a in forwarded if colors.get(a) == legacy]
            if len(match) == 1:
                return Record(ls["ListenerArn"], match[0], tags.get(STEPS_TAG), tags.get(SINCE_TAG), legacy=True), None
    if any(r.shares for r in routes):
        return None, f"no live listener records the stable target group ({STABLE_TG_TAG})"
    return None, None


_CONDITION_FIELDS = {
    # AWS field name -> (its config key, the Pulumi input key)
    "host-header": ("HostHeaderConfig", "hostHeader"),
    "path-pattern": ("PathPatternConfig", "pathPattern"),
    "http-request-method": ("HttpRequestMethodConfig", "httpRequestMethod"),
    "source-ip": ("SourceIpConfig", "sourceIp"),
}


def condition_key(conditions: Any, *, aws: bool = False) -> str:
    """A canonical text of a rule's conditions, equal for AWS's and Pulumi's spelling of the same rule.

    Every condition kind is kept (an unknown kind is kept verbatim), so a rule whose audience
    changes never matches its old self.
    """
    items: list[str] = []
    if not isinstance(conditions, Sequence) or isinstance(conditions, (str, bytes)):
        return repr(conditions)
    for c in conditions:
        if not isinstance(c, Mapping):
            items.append(repr(c))
            continue
        if aws:
            field_name = str(c.get("Field", ""))
            if field_name in _CONDITION_FIELDS:
                cfg = c.get(_CONDITION_FIELDS[field_name][0]) or {}
                vals = cfg.get("Values") or c.get("Values") or []
                items.append(f"{field_name}:{sorted(map(str, vals))}")
            elif field_name == "http-header":
                cfg = c.get("HttpHeaderConfig") or {}
                items.append(f"http-header:{str(cfg.get('HttpHeaderName', '')).lower()}:{sorted(map(str, cfg.get('Values') or []))}")
            elif field_name == "query-string":
                cfg = c.get("QueryStringConfig") or {}
                vals = [f"{v.get('Key', '')}={v.get('Value', '')}" for v in cfg.get("Values") or []]
                items.append(f"query-string:{sorted(vals)}")
            else:
                items.append(repr(sorted(c.items())))
            continue
        known = False
        for field_name, (_, key) in _CONDITION_FIELDS.items():
            if isinstance(c.get(key), Mapping):
                vals = c[key].get("values") or []
                items.append(f"{field_name}:{sorted(map(str, vals))}")
                known = True
        if isinstance(c.get("httpHeader"), Mapping):
            h = c["httpHeader"]
            items.append(f"http-header:{str(h.get('httpHeaderName', '')).lower()}:{sorted(map(str, h.get('values') or []))}")
            known = True
        qs = c.get("queryStrings")
        if isinstance(qs, Sequence) and not isinstance(qs, (str, bytes)):
            vals = [f"{q.get('key') or ''}={q.get('value', '')}" for q in qs if isinstance(q, Mapping)]
            items.append(f"query-string:{sorted(vals)}")
            known = True
        if not known:
            items.append(repr(sorted((str(k), repr(v)) for k, v in c.items())))
    return "|".join(sorted(items))

