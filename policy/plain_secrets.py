"""Invariant 9 in the pack: no secret in a workload's plain environment.

`no-plain-secrets` reads what the engine is about to hand ECS or Kubernetes -- a task definition's
container definitions, a Deployment's containers -- and refuses a plain environment variable that is
named like a secret or holds a credential-shaped value (`rollout.workload.looks_secret`, the same
test the config validator applies to `bluegreen:service.environment`). Secrets belong in
`secrets[].valueFrom` (ECS) or `valueFrom.secretKeyRef` (Kubernetes). Messages name the container
and the variable, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from guard import resource_policy
from props import is_seq
from rollout.workload import looks_secret

__all__ = ["no_plain_secrets"]

TASK_DEFINITION_TYPES = frozenset({"aws:ecs/taskDefinition:TaskDefinition"})
DEPLOYMENT_TYPES = frozenset({"kubernetes:apps/v1:Deployment"})
_HINT = "use the container's secrets[].valueFrom (ECS) or env[].valueFrom.secretKeyRef (Kubernetes): bluegreen:service.secrets"


def _containers(args: ResourceValidationArgs) -> list[Mapping[str, Any]]:
    props = args.props
    if args.resource_type in TASK_DEFINITION_TYPES:
        raw = props.get("containerDefinitions")
        try:
            parsed = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            return []  # not JSON: the provider refuses it; nothing to read here
        return [c for c in parsed if isinstance(c, Mapping)] if isinstance(parsed, list) else []
    if args.resource_type in DEPLOYMENT_TYPES:
        spec = props.get("spec")
        template = spec.get("template") if isinstance(spec, Mapping) else None
        pod = template.get("spec") if isinstance(template, Mapping) else None
        containers = pod.get("containers") if isinstance(pod, Mapping) else None
        return [c for c in containers if isinstance(c, Mapping)] if is_seq(containers) else []
    return []


def _check(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    key = "environment" if args.resource_type in TASK_DEFINITION_TYPES else "env"
    for container in _containers(args):
        env = container.get(key)
        for var in env if is_seq(env) else []:
            if not isinstance(var, Mapping) or "value" not in var or not isinstance(var.get("name"), str):
                continue  # valueFrom: a reference, which is the point
            if looks_secret(var["name"], var.get("value")):
                report_violation(
                    f"a secret must not be in a container's plain environment, where anyone who can read the "
                    f"{'task definition' if key == 'environment' else 'Deployment'} reads it: container "
                    f"{container.get('name', '?')!s} has {var['name']} in plain text (value not shown); {_HINT}"
                )


def no_plain_secrets() -> ResourceValidationPolicy:
    return resource_policy(
        "no-plain-secrets",
        "Checks whether an ECS task definition or a Kubernetes Deployment puts a secret (a secret-like name or a "
        "credential-shaped value) in a container's plain environment.",
        _check,
        Severity.HIGH,
    )
