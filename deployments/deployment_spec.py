"""What Pulumi Deployments does for each bluegreen stack, as plain data. Pure: no Pulumi import.

`__main__.py` turns each `StackDeployment` into a `pulumiservice.DeploymentSettings`; the tests read
both. Config (namespace `bluegreen-deployments`, see docs/delivery.md):

    organization   Pulumi Cloud organization that owns the stacks (required)
    repository     GitHub repository, owner/name (required)
    project        Pulumi project of the stacks; default bluegreen
    branch         branch that deploys; default main
    repoDir        where Pulumi.yaml lives in the repository; default "."
    stacks         {<stack>: {awsRoleArn (required), deployCommits: true, previewPullRequests: true,
                   sessionDurationSeconds: 3600, policyGroup: bluegreen-<stack>}}; default: staging and
                   production, each needing awsRoleArn
    policyPackVersion  the published `bluegreen` pack's version each stack's policy group enforces;
                   default: `version` in policy/PulumiPolicy.yaml (publish that version first)

Deployments runs `pulumi up` without `--policy-pack`: the pack guards a stack only when it is
published and a policy group enforces it. Each stack gets its own policy group with its own
`policy/<stack>.json` config, so production's baseline never lands on staging (a stack in two groups
would run one version of the pack with the groups' configs aggregated).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["NAMESPACE", "PACK_NAME", "StackDeployment", "SpecError", "paths_for", "pre_run_commands", "pack_version", "policy_config", "parse_spec"]

NAMESPACE = "bluegreen-deployments"
REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "bluegreen"  # PolicyPack(name=...) in policy/pack_config.py
DEFAULT_STACKS = ("staging", "production")
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_STACK_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

# Files every stack's deployment depends on (the program, its components, the rules, the policy pack).
SHARED_PATHS = (
    "Pulumi.yaml",
    "__main__.py",
    "requirements.txt",
    "components/**",
    "rollout/**",
    "policy/**",
)


class SpecError(ValueError):
    """A `bluegreen-deployments:*` config value is missing or invalid (the message names the key)."""


@dataclass(frozen=True)
class StackDeployment:
    """Deployment settings of one stack."""

    organization: str
    project: str
    stack: str
    repository: str
    branch: str
    repo_dir: str
    aws_role_arn: str
    deploy_commits: bool  # push-to-deploy from `branch`
    preview_pull_requests: bool
    session_duration: str  # Go duration, e.g. "1h0m0s"
    paths: tuple[str, ...]
    pre_run_commands: tuple[str, ...]
    environment: Mapping[str, str]
    skip_intermediate_deployments: bool = False  # never: every step commit must deploy in order
    policy_group: str = ""  # the Pulumi Cloud policy group that enforces the pack on this stack only
    policy_pack_version: str = ""
    policy_config: Mapping[str, Any] = field(default_factory=dict)  # policy/<stack>.json


def paths_for(stack: str, repo_dir: str = ".") -> tuple[str, ...]:
    """Path filters: the shared program files plus this stack's own file, never another stack's."""
    prefix = "" if repo_dir in ("", ".") else repo_dir.strip("/") + "/"
    return tuple(prefix + p for p in (*SHARED_PATHS, f"Pulumi.{stack}.yaml"))


def pre_run_commands(stack: str) -> tuple[str, ...]:
    """Install the program and policy pack requirements, then validate the stack config offline."""
    return (
        "python -m pip install --quiet -r requirements.txt -r policy/requirements.txt",
        f"python -m rollout plan --stack {stack} --format text",
    )


def pack_version(repo: Path = REPO) -> str:
    """`version:` of policy/PulumiPolicy.yaml: what `pulumi policy publish` publishes."""
    m = re.search(r"^version:\s*[\"']?([^\s\"'#]+)", (repo / "policy" / "PulumiPolicy.yaml").read_text(), re.M)
    if not m:
        raise SpecError("policy/PulumiPolicy.yaml has no version: set one, publish it, or set bluegreen-deployments:policyPackVersion")
    return m.group(1)


def policy_config(stack: str, repo: Path = REPO) -> dict[str, Any]:
    """The pack's config for this stack (policy/<stack>.json), as the policy group enforces it."""
    path = repo / "policy" / f"{stack}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SpecError(f"{NAMESPACE}:stacks.{stack}: the policy group needs policy/{stack}.json (the pack's config for this stack): {e}") from None


def _duration(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s"


def _str(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    v = raw.get(key, default)
    if not isinstance(v, str) or not v.strip():
        raise SpecError(f"{NAMESPACE}:{key} is required (a non-empty string); got {v!r}")
    return v


def _bool(raw: Mapping[str, Any], key: str, name: str, default: bool) -> bool:
    v = raw.get(name, default)
    if isinstance(v, str) and v in ("true", "false"):
        v = v == "true"
    if not isinstance(v, bool):
        raise SpecError(f"{key}.{name} must be true | false; got {v!r}")
    return v


def parse_spec(raw: Mapping[str, Any]) -> list[StackDeployment]:
    """Validate the `bluegreen-deployments:` keys (namespace stripped); one StackDeployment per stack."""
    org = _str(raw, "organization")
    repository = _str(raw, "repository")
    if not _REPO_RE.match(repository):
        raise SpecError(f"{NAMESPACE}:repository must be owner/name (e.g. acme/bluegreen); got {repository!r}")
    project = _str(raw, "project", "bluegreen")
    branch = _str(raw, "branch", "main")
    repo_dir = _str(raw, "repoDir", ".")
    stacks = raw.get("stacks") or {s: {} for s in DEFAULT_STACKS}
    if not isinstance(stacks, Mapping) or not stacks:
        raise SpecError(f"{NAMESPACE}:stacks must be an object of stack name -> settings; got {stacks!r}")
    version = raw.get("policyPackVersion") or pack_version()
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+\.\d+", version):
        raise SpecError(f"{NAMESPACE}:policyPackVersion must be a published version such as 0.1.0; got {version!r}")
    out = []
    groups: dict[str, str] = {}
    for stack, settings in stacks.items():
        key = f"{NAMESPACE}:stacks.{stack}"
        if not isinstance(stack, str) or not _STACK_RE.match(stack):
            raise SpecError(f"{key}: not a valid stack name")
        settings = settings or {}
        if not isinstance(settings, Mapping):
            raise SpecError(f"{key} must be an object; got {settings!r}")
        allowed = ("awsRoleArn", "deployCommits", "previewPullRequests", "sessionDurationSeconds", "policyGroup")
        unknown = sorted(set(settings) - set(allowed))
        if unknown:
            raise SpecError(f"{key}.{unknown[0]} is not a setting; allowed: {', '.join(allowed)}")
        group = settings.get("policyGroup", f"bluegreen-{stack}")
        if not isinstance(group, str) or not _STACK_RE.match(group):
            raise SpecError(f"{key}.policyGroup must be a policy group name (letters, digits, . _ -); got {group!r}")
        if group in groups:
            raise SpecError(f"{key}.policyGroup {group!r} is also {groups[group]}'s: each stack needs its own group, "
                            f"or one stack's pack config (e.g. production's baseline) would apply to the other")
        groups[group] = stack
        role = settings.get("awsRoleArn")
        if not isinstance(role, str) or not _ROLE_RE.match(role):
            raise SpecError(f"{key}.awsRoleArn is required: the IAM role Pulumi Deployments assumes with OIDC "
                            f"(arn:aws:iam::123456789012:role/name); got {role!r}")
        seconds = settings.get("sessionDurationSeconds", 3600)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 900 <= seconds <= 43200:
            raise SpecError(f"{key}.sessionDurationSeconds must be an integer 900..43200; got {seconds!r}")
        out.append(StackDeployment(
            organization=org,
            project=project,
            stack=stack,
            repository=repository,
            branch=branch,
            repo_dir=repo_dir,
            aws_role_arn=role,
            deploy_commits=_bool(settings, key, "deployCommits", True),
            preview_pull_requests=_bool(settings, key, "previewPullRequests", True),
            session_duration=_duration(seconds),
            paths=paths_for(stack, repo_dir),
            pre_run_commands=pre_run_commands(stack),
            environment={"PYTHONUNBUFFERED": "1", "BLUEGREEN_STACK": stack},
            policy_group=group,
            policy_pack_version=version,
            policy_config=policy_config(stack),
        ))
    return out
