"""deployments/: the Pulumi Deployments settings program under Pulumi's mock runtime (like the main
program in rollout/simulate.py, each run in its own context), and its pure spec."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pulumi
import pytest

from rollout.simulate import RecordingMocks, run_program

DEPLOYMENTS = Path(__file__).resolve().parent.parent / "deployments"
TYPE = "pulumiservice:index:DeploymentSettings"
GROUP = "pulumiservice:index:PolicyGroup"
ROOT = DEPLOYMENTS.parent
ROLES = {"staging": "arn:aws:iam::123456789012:role/bluegreen-staging", "production": "arn:aws:iam::210987654321:role/bluegreen-production"}
CONFIG = {
    "bluegreen-deployments:organization": "acme",
    "bluegreen-deployments:repository": "acme/bluegreen",
    "bluegreen-deployments:stacks": {
        "staging": {"awsRoleArn": ROLES["staging"]},
        "production": {"awsRoleArn": ROLES["production"], "sessionDurationSeconds": 1800},
    },
}


def _spec():
    spec = importlib.util.spec_from_file_location("deployment_spec_under_test", DEPLOYMENTS / "deployment_spec.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sim():
    return run_program("acme", CONFIG, root=DEPLOYMENTS)


def settings(sim, stack: str) -> dict:
    (r,) = [r for r in sim.by_type(TYPE) if r.inputs["stack"] == stack]
    return r.inputs


def test_one_settings_resource_and_one_policy_group_per_stack(sim):
    found = sorted((r.name, r.inputs["stack"]) for r in sim.by_type(TYPE))
    assert found == [("production-deployment-settings", "production"), ("staging-deployment-settings", "staging")], found
    assert sim.outputs["stacks"] == ["staging", "production"]
    assert sorted(r.type for r in sim.resources) == sorted([GROUP, GROUP, TYPE, TYPE]), [r.type for r in sim.resources]


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_published_pack_is_enforced_on_each_stack_with_its_own_config_only(sim, stack):
    """Deployments runs `pulumi up` without --policy-pack: without a group enforcing the published pack
    there is no gate at all; with one group for both, production's baseline would land on staging."""
    (group,) = [r.inputs for r in sim.by_type(GROUP) if r.name == f"{stack}-policy-group"]
    assert group["name"] == f"bluegreen-{stack}" and group["organizationName"] == "acme"
    assert group["entityType"] == "stacks" and group["mode"] == "preventative"
    assert group["stacks"] == [{"name": stack, "routingProject": "bluegreen"}], group["stacks"]
    (pack,) = group["policyPacks"]
    version = re.search(r"^version:\s*(\S+)", (ROOT / "policy" / "PulumiPolicy.yaml").read_text(), re.M).group(1)
    assert (pack["name"], pack["versionTag"]) == ("bluegreen", version)  # what `pulumi policy publish` published
    assert pack["config"] == json.loads((ROOT / "policy" / f"{stack}.json").read_text())


def test_two_stacks_in_one_policy_group_are_refused():
    spec = _spec()
    stacks = {s: {"awsRoleArn": ROLES[s], "policyGroup": "shared"} for s in ("staging", "production")}
    with pytest.raises(spec.SpecError, match=r"stacks.production.policyGroup 'shared' is also staging's"):
        spec.parse_spec({"organization": "acme", "repository": "acme/bluegreen", "stacks": stacks})


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_settings_as_declared(sim, stack):
    s = settings(sim, stack)
    urn = f"{TYPE}::{stack}-deployment-settings"
    assert (s["organization"], s["project"], s["stack"]) == ("acme", "bluegreen", stack), urn
    vcs = s["vcs"]
    assert vcs["provider"] == "github" and vcs["repository"] == "acme/bluegreen", urn
    assert vcs["deployCommits"] is True and vcs["previewPullRequests"] is True, f"{urn}: push-to-deploy and PR previews"
    assert f"Pulumi.{stack}.yaml" in vcs["paths"] and "policy/**" in vcs["paths"] and "rollout/**" in vcs["paths"], urn
    other = "production" if stack == "staging" else "staging"
    assert f"Pulumi.{other}.yaml" not in vcs["paths"], f"{urn}: a change to {other} must not deploy {stack}"
    assert s["sourceContext"]["git"] == {"branch": "main", "repoDir": "."}, urn
    op = s["operationContext"]
    assert any("-r policy/requirements.txt" in c for c in op["preRunCommands"]), f"{urn}: pre-run installs the pack requirements"
    assert f"python -m rollout plan --stack {stack} --format text" in op["preRunCommands"], urn
    assert op["options"]["skipIntermediateDeployments"] is False, f"{urn}: every step commit must deploy, in order"
    aws = op["oidc"]["aws"]
    assert aws["roleARN"] == ROLES[stack] and aws["sessionName"] == f"pulumi-deployments-bluegreen-{stack}", urn
    assert aws["duration"] == ("0h30m0s" if stack == "production" else "1h0m0s"), urn


def test_invalid_config_fails_the_program_naming_the_key():
    bad = {**CONFIG, "bluegreen-deployments:stacks": {"production": {"awsRoleArn": "role/nope"}}}
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=r"bluegreen-deployments:stacks.production.awsRoleArn is required"):
        run_program("acme", bad, root=DEPLOYMENTS, mocks=mocks)
    assert not [a for a, _ in mocks.records if a.typ == TYPE], "nothing may be registered from an invalid config"


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"repository": "acme/bluegreen"}, "organization is required"),
        ({"organization": "acme", "repository": "bluegreen"}, "repository must be owner/name"),
        ({"organization": "acme", "repository": "a/b"}, "stacks.staging.awsRoleArn is required"),
        ({"organization": "acme", "repository": "a/b", "stacks": {"production": {"awsRoleArn": ROLES["production"], "deployCommit": True}}},
         "stacks.production.deployCommit is not a setting"),
        ({"organization": "acme", "repository": "a/b", "stacks": {"production": {"awsRoleArn": ROLES["production"], "sessionDurationSeconds": 60}}},
         "sessionDurationSeconds must be an integer 900..43200"),
    ],
)
def test_spec_errors(raw, message):
    spec = _spec()
    with pytest.raises(spec.SpecError, match=message):
        spec.parse_spec(raw)


def test_spec_repo_dir_prefixes_the_paths():
    spec = _spec()
    (d,) = spec.parse_spec({"organization": "o", "repository": "o/r", "repoDir": "infra/bluegreen",
                            "stacks": {"production": {"awsRoleArn": ROLES["production"], "deployCommits": False}}})
    assert d.paths[-1] == "infra/bluegreen/Pulumi.production.yaml" and d.deploy_commits is False
