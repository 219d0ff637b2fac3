"""abort-marker, with the pack started as the engine starts it and driven over gRPC: while the reflex's
marker stands on the live production listener only the all-on-stable shape may be deployed, and that
update (the one that clears the marker) always passes."""

from __future__ import annotations

from rollout.reflex import TAG_ABORTED, TAG_STABLE_TG
from tests.test_policy_traffic import analyze, configure, expect, expect_clean, live_alb, pack, proposed  # noqa: F401 - fixtures

MARKER = "2026-11-23T16:05:03Z probes-failed green=25"


def aborted(aws, *, step: int = 0, marker: str = MARKER, record: str | None = None, **kw):
    """The live ALB after the reflex acted: all on stable, the marker on the production listener."""
    alb = live_alb(aws, step=step, since_minutes=1, **kw)
    tags = [{"Key": TAG_ABORTED, "Value": marker}]
    if record is not None:
        tags.append({"Key": TAG_STABLE_TG, "Value": record})
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=tags)
    return alb


def test_promotion_after_an_abort_is_refused_with_the_reason(aws, pack, configure):
    configure("healthy")
    alb = aborted(aws)
    props, name, urn = proposed(alb, step=1)  # git still says step 1..k: `pulumi up` would send 10 % back to green
    result = analyze(pack, props, name, urn)
    expect(result, "abort-marker", "probes-failed at 2026-11-23T16:05:03Z")
    expect(result, "abort-marker", "gives traffic to green 10")


def test_the_stale_step_is_refused_even_with_the_candidate_healthy_and_baked(aws, pack, configure):
    """The step the config still declares (3: 50 %) is the one a plain `pulumi up` would restore."""
    configure("healthy")
    alb = aborted(aws)
    props, name, urn = proposed(alb, step=3)
    expect(analyze(pack, props, name, urn), "abort-marker", "only the all-on-stable shape")


def test_step_zero_passes_and_its_tags_clear_the_marker(aws, pack, configure):
    configure("healthy")
    alb = aborted(aws)
    props, name, urn = proposed(alb, step=0)
    assert TAG_ABORTED not in props["tags"]  # the program never writes the marker: the converging update drops it
    expect_clean(analyze(pack, props, name, urn))


def test_the_record_decides_what_stable_is(aws, pack, configure):
    """bluegreen:stable-tg names green's target group although the colour tag says blue: all-on-blue is refused."""
    configure("healthy")
    alb = aborted(aws)
    elbv2 = aws.client("elbv2")
    elbv2.add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": TAG_STABLE_TG, "Value": alb.target_groups["green"]}])
    # where the reflex would have left it: all on the recorded stable target group
    elbv2.modify_listener(ListenerArn=alb.production_listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": alb.target_groups["blue"], "Weight": 0}, {"TargetGroupArn": alb.target_groups["green"], "Weight": 100}]}}])
    props, name, urn = proposed(alb, step=0)
    expect(analyze(pack, props, name, urn), "abort-marker", "gives traffic to blue 100")


def test_an_unreadable_marker_still_stops_promotions(aws, pack, configure):
    configure("healthy")
    alb = aborted(aws, marker="set by hand")
    props, name, urn = proposed(alb, step=1)
    expect(analyze(pack, props, name, urn), "abort-marker", "marker 'set by hand'")


def test_without_a_marker_the_policy_says_nothing(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=2)
    expect_clean(analyze(pack, props, name, urn))


def test_end_to_end_the_real_reflex_then_the_pack(aws, pack, configure):
    """The reflex rolls a breaking candidate (step 2, 25 %) back on moto_server; then the pack refuses the
    stale step the config still declares and lets step 0 (the converging update) through."""
    from tests.test_reflex_reconcile import reflex_rolls_back

    configure("healthy")
    alb = reflex_rolls_back(aws, live_alb(aws, step=2), fault="dead")
    props, name, urn = proposed(alb, step=2)
    expect(analyze(pack, props, name, urn), "abort-marker", "probes-failed at ")
    props, name, urn = proposed(alb, step=0)
    result = analyze(pack, props, name, urn)
    assert not result.find("abort-marker", ""), result
    assert not result.mandatory, result
