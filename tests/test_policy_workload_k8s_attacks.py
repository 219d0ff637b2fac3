"""Invariant 4 on Kubernetes, attacked through the Deployment's own annotation (the real pack over gRPC, moto).

The `bluegreen/target-group-arn` annotation is a label the same update writes, and the load balancer
controller never reads it (the TargetGroupBinding does). So it may only point the pack at the stack's
own production listener; which colour the pods are, and whether that colour carries traffic, are the
pods' `color` label checked against that listener's live target groups, in the stack's region (the
pack's: `aws:region` of the stack, else its environment), never the region in an ARN the update wrote.
Every attack here is a live green Deployment (25 % of traffic) taking a new image.
"""

from __future__ import annotations

import json

import pytest

from rollout.workload import ANNOTATION_TARGET_GROUP
from rollout.analyzer import OFFLINE_AWS_ENDPOINT
from tests.fixtures.aws import AlbArns
from tests.policy_harness import POLICY_DIR, PolicyPackClient, policy_pack_env
from tests.test_policy_workload import NEW, REASON, hook, pack, passes, refused  # noqa: F401 - fixtures
from tests.test_policy_workload_k8s import POLICY, container, deployment, judge, k8s_record, live_k8s

STEP = 2  # blue 75 %, green 25 %


def live_green(aws) -> AlbArns:
    return live_k8s(aws, step=STEP, record=None)


def new_green_image(alb: AlbArns, **overrides) -> tuple[dict, str, str]:
    """Green's Deployment as the program registers it at this step, with a new image (the record unchanged)."""
    props, name, urn = deployment(alb, "green", **overrides)
    container(props)["image"] = NEW
    return props, name, urn


def decoy_target_group(aws, alb: AlbArns, name: str = "decoy", color: str | None = None) -> str:
    """A target group in the stack's VPC that no route of the production listener forwards to."""
    elbv2 = aws.client("elbv2")
    tg = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=alb.vpc_id, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    if color:
        elbv2.add_tags(ResourceArns=[tg], Tags=[{"Key": "bluegreen:color", "Value": color}])
    return tg


def test_the_attacks_start_from_a_green_colour_carrying_traffic(aws, pack):
    """The baseline every attack below departs from: green's new image, annotation untouched, is refused."""
    alb = live_green(aws)
    refused(judge(pack, new_green_image(alb)), POLICY, "green carries 25% of live production traffic", f"image {NEW}")
    passes(judge(pack, deployment(alb, "green")))


# --------------------------------------------------------------------------- attack A: a decoy target group


@pytest.mark.parametrize("tagged", [None, "green", "blue"])
def test_a_decoy_target_group_on_no_production_listener_is_refused(aws, pack, tagged):
    """The annotation names a target group the program made, on no listener (tagged or not): the pack must
    not conclude "no production listener, nothing to protect"."""
    alb = live_green(aws)
    props, name, urn = new_green_image(alb)
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = decoy_target_group(aws, alb, color=tagged)
    refused(judge(pack, (props, name, urn)), POLICY, "to which no route of the stack's production listener forwards", "color=green")


def test_a_decoy_target_group_is_refused_even_with_break_glass(aws, pack):
    """Which colour a Deployment is cannot be excused: break-glass lets a known colour change, never an unknown one."""
    alb = live_green(aws)
    props, name, urn = new_green_image(alb, **{"bluegreen:breakGlass.reason": REASON})
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = decoy_target_group(aws, alb, color="green")
    result = judge(pack, (props, name, urn))
    refused(result, POLICY, "to which no route of the stack's production listener forwards")
    assert not result.of("workload-break-glass"), result


def test_a_decoy_on_another_listener_of_the_same_load_balancer_is_refused(aws, pack):
    """On the load balancer, but only behind a listener that is not the recorded production one."""
    alb = live_green(aws)
    decoy = decoy_target_group(aws, alb, color="green")
    aws.client("elbv2").create_listener(
        LoadBalancerArn=alb.load_balancer, Protocol="HTTP", Port=9999, DefaultActions=[{"Type": "forward", "TargetGroupArn": decoy}]
    )
    props, name, urn = new_green_image(alb)
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = decoy
    refused(judge(pack, (props, name, urn)), POLICY, "to which no route of the stack's production listener forwards")


def test_an_unlabelled_deployment_naming_a_stray_target_group_is_not_a_colour(aws, pack):
    """No `color` label: no colour's Service selects its pods, so no colour's traffic can reach them."""
    alb = live_green(aws)
    props, name, urn = new_green_image(alb)
    del props["spec"]["template"]["metadata"]["labels"]["color"]
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = decoy_target_group(aws, alb)
    passes(judge(pack, (props, name, urn)))


# --------------------------------------------------------------------------- attack B: a region the update writes


@pytest.mark.parametrize("region", ["us_east_1", "eu-west-3", "xx-nowhere-9"])
def test_a_region_written_into_the_annotation_is_refused(aws, pack, region):
    """A malformed region (botocore: InvalidRegionError), a real one the stack is not in, a well-formed unreachable
    one: none is AWS being unreadable for the pack, each is this update's input."""
    alb = live_green(aws)
    props, name, urn = new_green_image(alb)
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = alb.target_groups["green"].replace(":us-east-1:", f":{region}:")
    refused(judge(pack, (props, name, urn)), POLICY, f"region {region!r}", "us-east-1")


def test_a_region_in_the_annotation_does_not_excuse_an_unchanged_deployment_either(aws, pack):
    """Identity, not change: an unchanged Deployment naming its target group in another region is refused too."""
    alb = live_green(aws)
    props, name, urn = deployment(alb, "green")
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = alb.target_groups["green"].replace(":us-east-1:", ":us_east_1:")
    refused(judge(pack, (props, name, urn)), POLICY, "region 'us_east_1'")


@pytest.fixture
def pack_for_stack(moto_endpoint: str, tmp_path_factory):
    """A pack started as the engine starts it: the stack's configuration in PULUMI_CONFIG (analyzer_plugin.go,
    constructEnv), its environment's default region another one."""

    def start(stack_region: str, endpoint: str | None = None) -> PolicyPackClient:
        env = policy_pack_env(endpoint or moto_endpoint, tmp_path_factory.mktemp("pack-aws"), region="eu-west-1")
        env["PULUMI_CONFIG"] = json.dumps({"aws:region": stack_region, "bluegreen:platform": "kubernetes"})
        client = PolicyPackClient(POLICY_DIR, env=env)
        client.__enter__()
        client.configure_file(POLICY_DIR / "production.json")
        started.append(client)
        return client

    started: list[PolicyPackClient] = []
    yield start
    for client in started:
        client.__exit__(None, None, None)


def test_the_region_is_the_stacks_aws_region_not_the_environments(aws, pack_for_stack):
    """`aws:region` (us-east-1, where the ALB is) wins over the pack's environment (eu-west-1): the unchanged
    Deployment passes, the new image is refused."""
    alb = live_green(aws)
    stack = pack_for_stack("us-east-1")
    passes(judge(stack, deployment(alb, "green")))
    refused(judge(stack, new_green_image(alb)), POLICY, "green carries 25% of live production traffic")


def test_a_malformed_stack_region_fails_closed(aws, pack_for_stack):
    """`pulumi config set aws:region us_east_1` is an input too: not an unreadable AWS."""
    alb = live_green(aws)
    stack = pack_for_stack("us_east_1")
    refused(judge(stack, new_green_image(alb)), POLICY, "'us_east_1'")


@pytest.mark.parametrize("stack_region, verdict", [("us-east-1", passes), ("xx-nowhere-9", refused)])
def test_aws_unreachable_excuses_only_a_region_aws_has(aws, pack_for_stack, stack_region, verdict):
    """Every endpoint closed (127.0.0.1:9): in us-east-1 that is AWS being unreachable for the pack, and an unchanged
    Deployment passes (as a rollback must); in a well-formed region no partition has, it is the config's fault."""
    alb = live_green(aws)
    stack = pack_for_stack(stack_region, endpoint=OFFLINE_AWS_ENDPOINT)
    props, name, urn = deployment(alb, "green")
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = alb.target_groups["green"].replace(":us-east-1:", f":{stack_region}:")
    result = judge(stack, (props, name, urn))
    if verdict is refused:
        refused(result, POLICY, "cannot be checked", "AWS endpoint unreachable")
    else:
        passes(result)


def test_a_second_target_group_of_the_live_colour_at_weight_zero_does_not_hide_its_traffic(aws, pack):
    """The decoy is on the production listener (weight 0) and tagged green: what counts is green's traffic on the
    listener, whichever of green's target groups the annotation names."""
    alb = live_green(aws)
    decoy = decoy_target_group(aws, alb, color="green")
    elbv2 = aws.client("elbv2")
    # moto lists a target group's LoadBalancerArns from create_listener only (AWS: from any listener or rule using it)
    elbv2.create_listener(LoadBalancerArn=alb.load_balancer, Protocol="HTTP", Port=9999, DefaultActions=[{"Type": "forward", "TargetGroupArn": decoy}])
    action = elbv2.describe_listeners(ListenerArns=[alb.production_listener])["Listeners"][0]["DefaultActions"][0]
    groups = action["ForwardConfig"]["TargetGroups"] + [{"TargetGroupArn": decoy, "Weight": 0}]
    elbv2.modify_listener(ListenerArn=alb.production_listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}])
    props, name, urn = new_green_image(alb)
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = decoy
    refused(judge(pack, (props, name, urn)), POLICY, "green carries 25% of live production traffic", f"image {NEW}")


def test_a_decoy_load_balancer_the_program_creates_for_the_stack(aws, pack):
    """A program edit creates a second ALB tagged for this stack, whose production listener records the same pod
    fingerprints and gives its own green target group 0 %: the annotation names the decoy, and the pack still judges
    green on the stack's real listener, where it carries 25 %."""
    alb = live_green(aws)
    decoy = aws.build_alb(name="decoy", candidate_weight=0, test_listener=False)
    aws.client("elbv2").add_tags(ResourceArns=[decoy.load_balancer], Tags=[{"Key": "bluegreen:stack", "Value": "production"}])
    aws.client("elbv2").add_tags(
        ResourceArns=[decoy.production_listener], Tags=[{"Key": "bluegreen:stack", "Value": "production"}, {"Key": "bluegreen:workload", "Value": k8s_record()}]
    )
    props, name, urn = new_green_image(alb)
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = decoy.target_groups["green"]
    refused(judge(pack, (props, name, urn)), POLICY, "green carries 25% of live production traffic", f"image {NEW}")
