"""Pulumi Deployments for the bluegreen stacks: push-to-deploy from main, previews on pull requests.

One `pulumiservice.DeploymentSettings` per stack (staging, production), each with path filters, pre-run
commands that install the policy pack requirements, and OIDC to AWS; and one `pulumiservice.PolicyGroup`
per stack enforcing the published `bluegreen` pack with that stack's `policy/<stack>.json`. The decisions are in
deployment_spec.py (pure); this file only declares them. See docs/delivery.md.
"""

import json
import sys
from pathlib import Path

import pulumi
import pulumi_pulumiservice as ps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deployment_spec import NAMESPACE, PACK_NAME, SpecError, parse_spec  # noqa: E402


def _raw_config() -> dict:
    cfg = pulumi.Config(NAMESPACE)
    raw = {}
    for key in ("organization", "repository", "project", "branch", "repoDir", "policyPackVersion"):
        value = cfg.get(key)
        if value is not None:
            raw[key] = value
    stacks = cfg.get("stacks")
    if stacks is not None:
        try:
            raw["stacks"] = json.loads(stacks)
        except ValueError:
            raise SpecError(f"{NAMESPACE}:stacks must be an object (set it with `pulumi config set --path`); got {stacks!r}") from None
    return raw


try:
    deployments = parse_spec(_raw_config())
except SpecError as e:
    raise pulumi.RunError(str(e)) from None

for d in deployments:
    settings = ps.DeploymentSettings(
        f"{d.stack}-deployment-settings",
        organization=d.organization,
        project=d.project,
        stack=d.stack,
        vcs=ps.DeploymentSettingsVcsArgs(
            provider="github",
            repository=d.repository,
            deploy_commits=d.deploy_commits,
            preview_pull_requests=d.preview_pull_requests,
            paths=list(d.paths),
        ),
        source_context=ps.DeploymentSettingsSourceContextArgs(
            git=ps.DeploymentSettingsGitSourceArgs(branch=d.branch, repo_dir=d.repo_dir),
        ),
        operation_context=ps.DeploymentSettingsOperationContextArgs(
            pre_run_commands=list(d.pre_run_commands),
            environment_variables=dict(d.environment),
            options=ps.OperationContextOptionsArgs(skip_intermediate_deployments=d.skip_intermediate_deployments),
            oidc=ps.OperationContextOIDCArgs(
                aws=ps.AWSOIDCConfigurationArgs(
                    role_arn=d.aws_role_arn,
                    session_name=f"pulumi-deployments-{d.project}-{d.stack}",
                    duration=d.session_duration,
                ),
            ),
        ),
    )
    pulumi.export(f"{d.stack}Settings", settings.id)
    # Deployments runs `pulumi up` without --policy-pack: this group is what makes the published pack
    # run on this stack, with this stack's config only.
    group = ps.PolicyGroup(
        f"{d.stack}-policy-group",
        name=d.policy_group,
        organization_name=d.organization,
        entity_type="stacks",
        mode="preventative",
        stacks=[ps.PolicyGroupStackReferenceArgs(name=d.stack, routing_project=d.project)],
        policy_packs=[ps.PolicyGroupPolicyPackReferenceInputArgs(name=PACK_NAME, version_tag=d.policy_pack_version, config=dict(d.policy_config))],
    )
    pulumi.export(f"{d.stack}PolicyGroup", group.name)

pulumi.export("stacks", [d.stack for d in deployments])
