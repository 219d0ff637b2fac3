"""The names AWS sees: the provider's autoname rule, AWS's limits per resource type, and the explicit
name the program gives a resource when the autoname would break a limit.

The provider's rule (pulumi-aws `providerHooks`: `prov.SetAutonaming(255, "-")`; the target group's
own `tfbridge.AutoName("name", 32, "-")`; pulumi-terraform-bridge `AutoName` → `Randlen: 7`;
pulumi `resource.NewUniqueName`): an unset `name` becomes the logical name + "-" + 7 random hex
characters. A target group whose logical name is longer than 24 characters fails at preview ("plus 7
random chars is longer than maximum length 32"); a load balancer's is generated and then refused by
AWS (at most 32 characters). So any name that would not fit gets an explicit name instead:
deterministic (the same inputs always give the same name, so it never changes between updates) and
unique per project, stack and resource. Names that fit keep the provider's autoname, so a stack that
deploys today never sees a rename (a new `name` would replace a target group, which is itself a
traffic change).

Pure: no Pulumi or AWS import.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["AUTONAME_SUFFIX_LEN", "NameRule", "RULES", "autoname", "explicit_name", "name_problem"]

AUTONAME_SUFFIX_LEN = 8  # "-" + 7 hex characters


@dataclass(frozen=True)
class NameRule:
    """What AWS accepts as the name of one resource type (from each service's API reference)."""

    prop: str  # the Pulumi input that carries the name
    max_len: int
    pattern: re.Pattern
    forbidden_prefixes: tuple[str, ...] = ()
    autonamed: bool = True  # the provider fills `prop` when the program leaves it unset


_ALNUM_DASH = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")  # ELBv2 names: no leading/trailing dash
RULES: dict[str, NameRule] = {
    # CreateLoadBalancer: at most 32, alphanumerics and hyphens, not starting or ending with a hyphen,
    # not starting with "internal-".
    "aws:lb/loadBalancer:LoadBalancer": NameRule("name", 32, _ALNUM_DASH, ("internal-",)),
    # CreateTargetGroup: at most 32, alphanumerics and hyphens, not starting or ending with a hyphen.
    "aws:lb/targetGroup:TargetGroup": NameRule("name", 32, _ALNUM_DASH),
    # CreateRole: RoleName 1..64 of [\w+=,.@-].
    "aws:iam/role:Role": NameRule("name", 64, re.compile(r"^[\w+=,.@-]+$")),
    # CreateLogGroup: 1..512 of [\.\-_/#A-Za-z0-9].
    "aws:cloudwatch/logGroup:LogGroup": NameRule("name", 512, re.compile(r"^[.\-_/#A-Za-z0-9]+$")),
    # ECS: cluster and service names up to 255 letters, numbers, underscores, hyphens.
    "aws:ecs/cluster:Cluster": NameRule("name", 255, re.compile(r"^[A-Za-z0-9_-]+$")),
    "aws:ecs/service:Service": NameRule("name", 255, re.compile(r"^[A-Za-z0-9_-]+$")),
    "aws:ecs/taskDefinition:TaskDefinition": NameRule("family", 255, re.compile(r"^[A-Za-z0-9_-]+$"), autonamed=False),
    # CreateSecurityGroup: GroupName up to 255, a-zA-Z0-9 spaces and ._-:/()#,@[]+=&;{}!$*, not "sg-...".
    "aws:ec2/securityGroup:SecurityGroup": NameRule("name", 255, re.compile(r"^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+$"), ("sg-",)),
}


def autoname(logical: str, suffix: str = "0123abc") -> str:
    """The name the provider would give a resource named `logical` (the suffix stands for 7 random hex)."""
    return f"{logical}-{suffix}"


def name_problem(resource_type: str, name: str) -> str | None:
    """Why AWS would refuse `name` for `resource_type`, or None."""
    rule = RULES.get(resource_type)
    if rule is None:
        return None
    if len(name) > rule.max_len:
        return f"{name!r} is {len(name)} characters; AWS allows at most {rule.max_len}"
    if not rule.pattern.match(name):
        return f"{name!r} has characters AWS does not allow there ({rule.pattern.pattern})"
    for prefix in rule.forbidden_prefixes:
        if name.lower().startswith(prefix):
            return f"{name!r} starts with {prefix!r}, which AWS does not allow there"
    return None


def explicit_name(resource_type: str, logical: str, scope: str) -> str | None:
    """None when the provider's autoname for `logical` is valid (keep it); else a short, stable, unique name.

    `scope` (e.g. "project/stack") makes the name unique across stacks in one account and region.
    """
    rule = RULES[resource_type]
    if name_problem(resource_type, autoname(logical)) is None:
        return None
    digest = hashlib.sha256(f"{scope}/{logical}".encode()).hexdigest()[:8]
    room = rule.max_len - len(digest) - 1
    head = re.sub(r"[^A-Za-z0-9-]", "-", logical)[:room].strip("-")
    name = f"{head}-{digest}" if head else f"bg-{digest}"
    # The whole name must avoid the forbidden prefixes: "sg" + "-" + digest starts with "sg-" too.
    if any(name.lower().startswith(prefix) for prefix in rule.forbidden_prefixes):
        head = ("bg-" + head)[:room].rstrip("-")
        name = f"{head}-{digest}"
    return name
