"""Live tags the pack parses, each present but unreadable: none may read as "absent" in a way that lets a promotion
or a change to a colour carrying traffic through, and none may hold a rollback.

The real pack over gRPC against moto_server; proposed state is what the real program registers. The workload record
itself (`bluegreen:workload`) is attacked in tests/test_policy_workload_k8s.py and tests/test_attacks_late.py; the
ladder (`bluegreen:steps`) and the bake stamp (`bluegreen:weights-since`) in tests/test_policy_traffic.py.
"""

from __future__ import annotations

import pytest

from rollout.reflex import TAG_ABORTED
from rollout.workload import TAG_WORKLOAD
from tests.test_policy_workload import elb_only_pack, hook, pack, passes, refused  # noqa: F401 - fixtures
from tests.test_policy_workload_k8s import K8S_SERVICE, POLICY, TGB, deployment, judge, judge_as, k8s_record, listener, live_k8s, route


# --------------------------------------------------------------------------- bluegreen:aborted


@pytest.mark.parametrize("marker", ["", "   "], ids=["empty", "blank"])
def test_an_abort_marker_that_is_there_but_blank_still_stops_a_promotion(aws, pack, marker):
    """A blank value was read as no marker. (A marker-shaped value naming no real time makes the check raise: the guard
    then refuses the promotion and passes a rollback, tests/test_policy_guard.py.)"""
    alb = live_k8s(aws, step=0, since_minutes=1)
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": TAG_ABORTED, "Value": marker}])
    refused(listener(pack, alb, 1), "abort-marker", "only the all-on-stable shape", "gives traffic to green 10")
    assert listener(pack, alb, 0).of("abort-marker") == []  # step 0 passes, and clears it


def test_without_the_abort_tag_there_is_no_marker(aws, pack):
    alb = live_k8s(aws, step=0, since_minutes=1)
    assert listener(pack, alb, 1).of("abort-marker") == []


# --------------------------------------------------------------------------- bluegreen:workload through a tag resource


def test_a_tag_resource_may_not_write_the_workload_record(aws, pack):
    """The record must come from the listener's own update, where workload-steady-during-shift vets it: a separate
    aws:lb/tag:Tag could otherwise garble it (then only break-glass or a rollback passes) or forge a new image's
    fingerprint into it (then the next update's Deployment matches the forgery)."""
    alb = live_k8s(aws, step=1)
    for value in ("garbage", k8s_record(**{"bluegreen:colors.blue.image": "evil:1"})):
        tag = {"resourceArn": alb.production_listener, "key": TAG_WORKLOAD, "value": value}
        refused(pack.analyze("aws:lb/tag:Tag", tag, name="rec"), "colour-identity", "bluegreen:workload", "separate tag resource")
    other = {"resourceArn": alb.production_listener, "key": "team", "value": "payments"}
    passes(pack.analyze("aws:lb/tag:Tag", other, name="team"))


# --------------------------------------------------------------------------- bluegreen:color on a carrying target group


def _odd_colour(aws, step: int, value: str = "Blue", legacy: bool = False):
    """Stack `production` live at `step`, recording stable as the program does (`bluegreen:stable-tg`, the target group's
    ARN; `legacy`: only the older `bluegreen:stable` colour), its blue target group's colour tag damaged out of band."""
    alb = live_k8s(aws, step=step, since_minutes=1, record=k8s_record(**{"bluegreen:rollout.step": step}))
    elbv2 = aws.client("elbv2")
    if not legacy:
        elbv2.add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": "bluegreen:stable-tg", "Value": alb.target_groups["blue"]}])
    elbv2.add_tags(ResourceArns=[alb.target_groups["blue"]], Tags=[{"Key": "bluegreen:color", "Value": value}])
    return alb


def test_a_carrying_target_group_with_an_unreadable_colour_holds_the_routes_to_pods(aws, pack):
    """Its traffic was invisible to the route checks: a TargetGroupBinding re-pointed at another Service, or that
    Service's selector, passed while the group carries 50%. Now every object that could reach it is refused."""
    alb = _odd_colour(aws, 3)
    at = {"bluegreen:rollout.step": 3}
    props, name, urn = route(alb, "blue", TGB, **at)
    props["spec"]["serviceRef"]["name"] = "green"  # blue's live group bound to green's Service
    refused(judge_as(pack, TGB, (props, name, urn)), POLICY, "bluegreen:color tag is 'Blue'", "restore the tag")
    props, name, urn = route(alb, "blue", K8S_SERVICE, **at)
    props["spec"]["selector"]["color"] = "green"
    refused(judge_as(pack, K8S_SERVICE, (props, name, urn)), POLICY, "bluegreen:color tag is 'Blue'")
    for color in ("blue", "green"):
        refused(judge(pack, deployment(alb, color, **at)), POLICY, "bluegreen:color tag is 'Blue'", "only a rollback")


def test_a_rollback_passes_whatever_a_colour_tag_says(aws, pack):
    """The same damage must not hold a rollback: this run's listener update returns traffic to the recorded stable
    target group (the record is an ARN), so the unchanged objects pass."""
    alb = _odd_colour(aws, 3)
    back = {"bluegreen:rollout.step": 0}
    refused(judge(pack, deployment(alb, "blue", **back)), POLICY, "bluegreen:color tag is 'Blue'")  # no verdict yet
    result = listener(pack, alb, 0)
    assert result.of("workload-steady-during-shift") == [] and result.of("healthy-promotion") == [], result
    for color in ("blue", "green"):
        passes(judge(pack, deployment(alb, color, **back)))
        for kind in (K8S_SERVICE, TGB):
            passes(judge_as(pack, kind, route(alb, color, kind, **back)))


def test_a_legacy_record_the_damaged_colour_tag_no_longer_matches_fails_closed(aws, pack):
    """A stack that records stable only as the older `bluegreen:stable` colour loses its record when that colour's
    target group is re-tagged out of band: the listener then read as "no production listener here", and the route
    objects passed. Now they fail closed (the traffic policies already refuse every update without a record)."""
    alb = _odd_colour(aws, 3, legacy=True)
    at = {"bluegreen:rollout.step": 3}
    props, name, urn = route(alb, "blue", TGB, **at)
    props["spec"]["serviceRef"]["name"] = "green"
    refused(judge_as(pack, TGB, (props, name, urn)), POLICY, "cannot be identified", "no live listener records the stable target group")
    refused(judge_as(pack, K8S_SERVICE, route(alb, "blue", K8S_SERVICE, **at)), POLICY, "cannot be identified")


# --------------------------------------------------------------------------- ECS: the record is the fallback when ECS is unreadable


def test_with_ecs_unreadable_an_unreadable_record_no_longer_passes_a_task_definition_swap(aws, elb_only_pack):
    """ECS unreadable for the pack (the documented narrow shape) and the listener's record damaged: "nothing can tell"
    used to pass a service whose task definition the update swaps. Now it is refused, naming both; this run's rollback
    still passes the unchanged service."""
    from tests.test_policy_workload import NEW, LiveEcs, analyze, service_props
    from tests.test_policy_traffic import live_alb, proposed

    alb = live_alb(aws, step=1, since_minutes=1, extra_tags={TAG_WORKLOAD: "blue=zz green=??"})
    live = LiveEcs(aws, alb)
    changed = service_props(live, "blue", task_definition=live.register("blue", NEW), **{"bluegreen:colors.blue.image": NEW})
    unchanged = service_props(live, "blue", **{"bluegreen:rollout.step": 0})
    props, name, urn = proposed(alb, step=0, **{"bluegreen:rollout.step": 0})
    with aws.enforce_iam():
        swapped = analyze(elb_only_pack, changed)
        back = elb_only_pack.analyze("aws:lb/listener:Listener", props, name=name, urn=urn)
        kept = analyze(elb_only_pack, unchanged)
    refused(swapped, POLICY, "ECS is unreadable", "AccessDenied", "bluegreen:workload tag", "'blue=zz green=??'", "breakGlass")
    assert back.of("workload-steady-during-shift") == [] and back.of(POLICY) == [], back
    passes(kept)


# --------------------------------------------------------------------------- bluegreen:stable-tg


def test_a_stable_record_naming_no_target_group_does_not_let_a_promotion_skip_the_ladder(aws, pack):
    """Damaged out of band, and the program edited to write the same value (so stable-by-finish sees no change): every
    share counted as the candidate's, so 50% -> 100% read as no move at all for the ladder. Now the ladder check
    refuses it."""
    alb = live_k8s(aws, step=3, since_minutes=30)
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": "bluegreen:stable-tg", "Value": "garbage"}])
    from tests.test_policy_traffic import proposed
    from tests.test_policy_workload_k8s import K8S

    props, name, urn = proposed(alb, step=5, **K8S)
    props["tags"]["bluegreen:stable-tg"] = "garbage"
    result = pack.analyze("aws:lb/listener:Listener", props, name=name, urn=urn)
    refused(result, "one-step-at-a-time", "bluegreen:stable-tg is 'garbage'")
    assert result.of("stable-by-finish") == [], result  # the control: the record itself is unchanged


def test_with_a_damaged_stable_record_the_gate_says_there_is_no_baseline(aws, pack):
    """With no trustworthy stable target group no update is a rollback (docs/safety-model.md), so the all-on-blue update
    is gated; the judge says why it has nothing to compare with instead of failing on the damaged value itself."""
    alb = live_k8s(aws, step=3, since_minutes=30)
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": "bluegreen:stable-tg", "Value": "garbage"}])
    from tests.test_policy_traffic import proposed
    from tests.test_policy_workload_k8s import K8S

    props, name, urn = proposed(alb, step=0, **K8S)
    result = pack.analyze("aws:lb/listener:Listener", props, name=name, urn=urn)
    refused(result, "healthy-promotion",
            "judge: no stable colour to compare blue with: the live bluegreen:stable-tg ('garbage') names no target group with a live colour")
    assert not any("dimension" in v.message for v in result.violations), result
