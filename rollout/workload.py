"""What a colour runs, as the program records it and the policy pack checks it. Pure: no Pulumi, no AWS.

* `workload_fingerprint` -- a short hash of everything that decides what a colour's tasks/pods run
  (image, size, port, plain environment, the secrets' names and references -- never a secret value).
  The program records both colours' fingerprints on the production listener (`TAG_WORKLOAD`), so
  the pack can tell, from that listener alone, that one update moves weights AND changes a workload.
* `deployment_fingerprint` -- for Kubernetes, the hash of a Deployment's pod template and replica count
  as the engine hands them to the provider (and to the policy pack), so the pack computes it itself
  from the Deployment it is about to apply. The listener records these (`POD_RECORD` kind) instead.
* `service_fingerprint` / `binding_fingerprint` -- for Kubernetes, the path from a colour's target group to its
  pods: its Service (namespace, name, spec: selector, ports, type) and its TargetGroupBinding's `serviceRef`
  (with the binding's namespace); `service_identity` names the Service. Recorded as `svc`, `tgb` and `id`
  entries next to the pod ones, so the pack can refuse a program edit that points a live target group at
  other pods.
* `TAG_BREAK_GLASS` -- the operator's reason for a workload change on a colour carrying traffic
  (`bluegreen:breakGlass.reason`), recorded on the production listener and on the changed workload.
* `ssm_parameter_name` -- where the program keeps a secret value set with `--secret` (an SSM
  SecureString), valid for every stack, service and secret name the validator accepts.
* `SecretRef` -- one entry of `bluegreen:service.secrets`: a value to store, or an existing ARN.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .rules import COLORS

__all__ = [
    "TAG_WORKLOAD",
    "TAG_BREAK_GLASS",
    "BREAK_GLASS_RE",
    "SECRET_NAME_RE",
    "SECRET_ARN_RE",
    "SSM_NAME_RE",
    "SecretRef",
    "workload_fingerprint",
    "deployment_fingerprint",
    "service_fingerprint",
    "binding_fingerprint",
    "service_identity",
    "fingerprints_tag",
    "parse_fingerprints_tag",
    "parse_workload_record",
    "read_record_tag",
    "WorkloadRecord",
    "UnreadableRecord",
    "POD_RECORD",
    "CONFIG_RECORD",
    "ANNOTATION_TARGET_GROUP",
    "ANNOTATION_BREAK_GLASS",
    "ssm_parameter_name",
    "ssm_name_problem",
    "looks_secret",
]

TAG_WORKLOAD = "bluegreen:workload"  # on the production listener: "blue=<12 hex> green=<12 hex>"
TAG_BREAK_GLASS = "bluegreen:break-glass"  # on the production listener and the changed workload: the reason
# Kinds of `bluegreen:workload` record. "config": "blue=<12 hex> green=<12 hex>", `workload_fingerprint` of the
# config (ECS, and Kubernetes stacks deployed before pod fingerprints). "pod": "pod blue=<12 hex> green=<12 hex>",
# `deployment_fingerprint` of each colour's Deployment (Kubernetes), followed since routes were recorded by
# "svc blue=.. green=.. tgb blue=.. green=.. id blue=.. green=.." (`service_fingerprint`, `binding_fingerprint`,
# `service_identity`, 12 hex each).
CONFIG_RECORD = "config"
POD_RECORD = "pod"
SERVICE_GROUP = "svc"
BINDING_GROUP = "tgb"
IDENTITY_GROUP = "id"
_ROUTE_GROUPS = (SERVICE_GROUP, BINDING_GROUP, IDENTITY_GROUP)
# On a colour's Deployment (metadata.annotations, so changing them restarts no pod): the target group its pods
# serve (the pack reads that group's live colour and traffic) and a break-glass reason.
ANNOTATION_TARGET_GROUP = "bluegreen/target-group-arn"
ANNOTATION_BREAK_GLASS = "bluegreen/break-glass"

# Characters every tag API the program writes to accepts (ELBv2, ECS, SSM): letters, digits, spaces
# and + - = . _ : / @. 10..200 characters: a reason, not a flag.
BREAK_GLASS_RE = re.compile(r"^[A-Za-z0-9 +\-=._:/@]{10,200}$")
# An environment variable name that ECS, Kubernetes (as a Secret key too) and shells accept.
SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# An existing secret: an SSM parameter or a Secrets Manager secret ARN (what ECS accepts in valueFrom).
SECRET_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:(ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_.\-/]{1,1011}"
    r"|secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@\-]{1,512})$"
)
# SSM Parameter Store: names of letters, digits and _ . - /, a leading /, at most 15 levels, at most
# 1011 characters, and no first level starting with "aws" or "ssm" (reserved).
SSM_NAME_RE = re.compile(r"^/[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+){0,14}$")
# What a plain environment variable must not look like: a secret's name, or a well-known credential.
_SECRET_LIKE_NAME_RE = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
_SECRET_LIKE_VALUE_RE = re.compile(r"(AKIA|ASIA)[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|xox[abpr]-[0-9A-Za-z-]{10,}|gh[pousr]_[0-9A-Za-z]{30,}")
_SSM_MAX = 1011
_STACK_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True)
class SecretRef:
    """One `bluegreen:service.secrets` entry. Exactly one of `value` and `arn` is set, or neither
    when the value is encrypted in a stack file the CLI cannot decrypt (`secure: v1:...`)."""

    name: str  # environment variable name in the container
    value: str | None = field(default=None, repr=False)  # a value set with `pulumi config set --secret`
    arn: str | None = None  # an existing SSM parameter / Secrets Manager secret
    encrypted: bool = False  # `secure:` in the stack file, read without the Pulumi CLI (offline plan)

    def __str__(self) -> str:  # never the value
        return f"{self.name} -> {self.arn or 'a SecureString the program creates'}"


def looks_secret(name: str, value: Any) -> bool:
    """A plain environment variable that is probably a secret (by its name, or a credential-shaped value)."""
    return bool(_SECRET_LIKE_NAME_RE.search(name) or (isinstance(value, str) and _SECRET_LIKE_VALUE_RE.search(value)))


def ssm_parameter_name(stack: str, service: str, secret: str) -> str:
    """`/bluegreen/<stack>/<service>/<SECRET>`: the SSM parameter holding one secret value.

    `stack` is a Pulumi stack name (letters, digits, `_ . -`, any `/` made `-`), `service` and `secret`
    are validated names; the result always satisfies `ssm_name_problem`.
    """
    stack_part = _STACK_SAFE.sub("-", stack)[:100] or "stack"
    return f"/bluegreen/{stack_part}/{service}/{secret}"


def ssm_name_problem(name: str) -> str | None:
    """Why SSM would refuse `name` as a parameter name, or None."""
    if len(name) > _SSM_MAX:
        return f"longer than {_SSM_MAX} characters"
    if not SSM_NAME_RE.match(name):
        return "not a /-separated path of letters, digits, _ . - with at most 15 levels"
    first = name.lstrip("/").split("/", 1)[0].lower()
    if first.startswith(("aws", "ssm")):
        return "its first level starts with aws or ssm (reserved)"
    return None


def workload_fingerprint(
    *,
    image: str,
    cpu: int,
    memory: int,
    port: int,
    health_path: str,
    environment: Mapping[str, str],
    secrets: Mapping[str, SecretRef] | None = None,
) -> str:
    """12 hex characters that change whenever what the colour runs changes.

    Secrets enter by name and reference only: a hash of a secret value in a tag would let anyone who
    can read tags test guesses against it. A new value of a program-created secret reaches the tasks
    at their next start (ECS reads SSM when a task starts), not through this update.
    """
    doc: dict[str, Any] = {  # platform-neutral: the traffic layer is the same on ECS and Kubernetes
        "image": image,
        "cpu": cpu,
        "memory": memory,
        "port": port,
        "healthPath": health_path,
        "environment": dict(sorted(environment.items())),
        "secrets": {n: (s.arn or "program") for n, s in sorted((secrets or {}).items())},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def deployment_fingerprint(template: Any, replicas: Any) -> str:
    """12 hex characters that change whenever a Kubernetes colour's pods change: its Deployment's pod
    template (`spec.template`: labels, containers, images, environment, probes, resources, volumes,
    anything) and its replica count (`spec.replicas`; absent = 1, the API's default).

    Canonical over the ways the same value travels: integral floats are ints (the engine's protobuf
    Struct carries every number as a double), None and absent are the same (dropped), keys sorted.
    Raises ValueError on a value that is not JSON-like (the pack treats that as "cannot tell").
    """
    return _digest({"template": _canonical(template), "replicas": _canonical(1 if replicas is None else replicas)})


def service_fingerprint(namespace: Any, name: Any, spec: Any) -> str:
    """12 hex characters that change whenever a Kubernetes Service selects other pods or forwards other ports:
    its namespace and name (who the TargetGroupBinding resolves) and its whole `spec` (selector, ports, type...).
    Canonical like `deployment_fingerprint`; raises ValueError on a value that is not JSON-like."""
    return _digest({"namespace": _canonical(namespace), "name": _canonical(name), "spec": _canonical(spec)})


def binding_fingerprint(namespace: Any, service_ref: Any) -> str:
    """12 hex characters that change whenever a TargetGroupBinding registers another Service's pods: its namespace
    (where `serviceRef` is resolved) and its `spec.serviceRef` (`name`, and `port`: a Service port number or name)."""
    return _digest({"namespace": _canonical(namespace), "serviceRef": _canonical(service_ref)})


def service_identity(name: Any) -> str:
    """12 hex characters naming a colour's Service by its name alone, so the pack can tell from the record that a
    Service, or an EndpointSlice or Endpoints object feeding a Service's endpoints, may be that colour's. Without
    the namespace on purpose: an object whose namespace is left to the provider's default, or a same-named one
    elsewhere, is judged as the colour's (and refused unless it is exactly the recorded one)."""
    return _digest({"service": _canonical(name)})


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    raise ValueError(f"not a JSON value: {type(value).__name__}")


@dataclass(frozen=True)
class WorkloadRecord:
    """A parsed `bluegreen:workload` record: its kind (`CONFIG_RECORD` | `POD_RECORD`) and a fingerprint per colour;
    for a pod record written since routes were recorded, each colour's Service and TargetGroupBinding fingerprints."""

    kind: str
    fingerprints: Mapping[str, str]
    services: Mapping[str, str] | None = None
    bindings: Mapping[str, str] | None = None
    identities: Mapping[str, str] | None = None

    @property
    def shape(self) -> str:
        """What the record holds: 'config', 'pod', or 'pod+route' (comparable only with a record of the same shape)."""
        return f"{self.kind}+route" if self.services is not None else self.kind


def fingerprints_tag(
    fingerprints: Mapping[str, str],
    kind: str = CONFIG_RECORD,
    services: Mapping[str, str] | None = None,
    bindings: Mapping[str, str] | None = None,
    identities: Mapping[str, str] | None = None,
) -> str:
    """'blue=<hash> green=<hash>' in colour order ('pod blue=... green=...' for Deployment fingerprints, followed by
    'svc blue=... green=... tgb blue=... green=... id blue=... green=...' when the routes are given). At most 164
    characters (AWS allows 256)."""

    def body(group: Mapping[str, str]) -> str:
        return " ".join(f"{c}={group[c]}" for c in COLORS if c in group)

    if kind != POD_RECORD:
        return body(fingerprints)
    out = f"{POD_RECORD} {body(fingerprints)}"
    if services is not None and bindings is not None and identities is not None:
        out += f" {SERVICE_GROUP} {body(services)} {BINDING_GROUP} {body(bindings)} {IDENTITY_GROUP} {body(identities)}"
    return out


def parse_workload_record(value: Any) -> WorkloadRecord | None:
    """The inverse of `fingerprints_tag`; None when the value is not one."""
    return _parse_record(value)[0]


def _parse_record(value: Any) -> tuple[WorkloadRecord | None, str]:
    """(the record, "") or (None, what is wrong with `value`, in a few words)."""
    if not isinstance(value, str):
        return None, f"a {type(value).__name__}, not text"
    parts = value.split()
    if not parts:
        return None, "it is empty"
    kind = CONFIG_RECORD
    if parts[0] == POD_RECORD:
        kind, parts = POD_RECORD, parts[1:]
    groups: dict[str, dict[str, str]] = {"": {}}
    current = ""
    for part in parts:
        if kind == POD_RECORD and part in _ROUTE_GROUPS and part not in groups:
            current = part
            groups[current] = {}
            continue
        color, sep, digest = part.partition("=")
        out = groups[current]
        where = f" in its {current} group" if current else ""
        if not sep or color not in COLORS or not re.fullmatch(r"[0-9a-f]{12}", digest):
            return None, f"{_clip(part)!r}{where} is not blue=<12 hex> or green=<12 hex>"
        if color in out:
            return None, f"it names {color} twice{where or ' in its first group'}"
        out[color] = digest
    for name, group in groups.items():
        if set(group) != set(COLORS):  # every group names both colours
            missing = " and ".join(c for c in COLORS if c not in group)
            return None, f"its {name or 'first'} group lacks {missing}"
    if list(groups) not in ([""], ["", *_ROUTE_GROUPS]):  # the routes come whole and in order, or not at all
        return None, f"its groups are {' '.join(g or kind for g in groups)}, not {kind} {' '.join(_ROUTE_GROUPS)}"
    return WorkloadRecord(kind, groups[""], groups.get(SERVICE_GROUP), groups.get(BINDING_GROUP), groups.get(IDENTITY_GROUP)), ""


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class UnreadableRecord:
    """A `bluegreen:workload` tag that is there but holds no record `fingerprints_tag` writes (an empty value included):
    damaged out of band, not a stack that never recorded one. Nothing can be compared with it."""

    raw: str
    why: str  # what is wrong with it, in a few words

    def shown(self, limit: int = 60) -> str:
        """The value as found, quoted, on one line and at most `limit` characters, and what is wrong with it."""
        text = " ".join(self.raw.split()) if self.raw.strip() else self.raw
        return f"{_clip(text, limit)!r}: {self.why}"


def read_record_tag(tags: Mapping[str, Any]) -> WorkloadRecord | UnreadableRecord | None:
    """The `bluegreen:workload` record among a listener's live tags: the record; `UnreadableRecord` when the tag is
    there but is not one; None only when there is no such tag (an ECS stack or a stack from before the record)."""
    if TAG_WORKLOAD not in tags:
        return None
    value = tags[TAG_WORKLOAD]
    record, why = _parse_record(value)
    return record if record is not None else UnreadableRecord(value if isinstance(value, str) else repr(value), why)


def parse_fingerprints_tag(value: Any) -> dict[str, str] | None:
    """The per-colour fingerprints of a record of either kind; None when the value is not one."""
    record = parse_workload_record(value)
    return dict(record.fingerprints) if record is not None else None


def stack_fingerprints(cfg: Any) -> dict[str, str]:
    """Both colours' `workload_fingerprint` from a validated `rollout.config.StackConfig`."""
    s = cfg.service
    return {
        c: workload_fingerprint(
            image=cfg.colors[c].image,
            cpu=s.cpu,
            memory=s.memory,
            port=s.port,
            health_path=s.health_path,
            environment=s.environment,
            secrets=s.secrets,
        )
        for c in COLORS
    }


def stack_record(cfg: Any) -> str:
    """The production listener's `bluegreen:workload` value for a validated `rollout.config.StackConfig`.

    Kubernetes: each colour's `deployment_fingerprint` of the very pod template the program hands its
    Deployment (`rollout.pod_template.pod_template_for`) and its replicas, and the fingerprints of the very
    Service spec and serviceRef it hands the colour's Service and TargetGroupBinding
    (`rollout.pod_template.routing_for`), so the pack can recompute each from the resource itself. ECS: the config fingerprint (the pack reads the live ECS service).
    """
    if getattr(cfg, "platform", "ecs") == "kubernetes":
        from .pod_template import pod_template_for, routing_for

        pods = {c: deployment_fingerprint(pod_template_for(cfg, c), cfg.replicas(c)) for c in COLORS}
        routes = {c: routing_for(cfg, c) for c in COLORS}
        services = {c: service_fingerprint(ns, name, spec) for c, (ns, name, spec, _) in routes.items()}
        bindings = {c: binding_fingerprint(ns, ref) for c, (ns, _, _, ref) in routes.items()}
        identities = {c: service_identity(name) for c, (_, name, _, _) in routes.items()}
        return fingerprints_tag(pods, POD_RECORD, services, bindings, identities)
    return fingerprints_tag(stack_fingerprints(cfg))


__all__ += ["stack_fingerprints", "stack_record"]
