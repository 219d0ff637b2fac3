"""healthy-promotion with in-VPC probes: the pack (started as the engine starts it, over gRPC) reads the
probe function's CloudWatch metrics from moto_server and sends nothing to the test listener itself."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rollout.probe_runner import ColourRound, ProbeOutcome, ProbeRound, publish_round
from tests.test_policy_traffic import analyze, expect, expect_clean, live_alb, pack, proposed  # noqa: F401 - fixture

STACK = "production"


def in_vpc(aws, alb) -> None:
    """Tag the live test listener as the program does when the probe function is on."""
    aws.client("elbv2").add_tags(
        ResourceArns=[alb.test_listener],
        Tags=[{"Key": "bluegreen:probe", "Value": "in-vpc"}, {"Key": "bluegreen:stack", "Value": STACK}],
    )


def publish(aws, alb, color: str, *, failed: int = 0, reason: str = "status", rounds: int = 2, probes: int = 10) -> None:
    """What the probe function publishes after `rounds` rounds (one a minute, ending now)."""
    now = datetime.now(timezone.utc)
    for i in range(rounds):
        outcomes = tuple(
            ProbeOutcome(ok=n >= failed, reason="" if n >= failed else reason, detail="", latency_ms=12.0, address="10.0.1.5")
            for n in range(probes)
        )
        colour = ColourRound(color, alb.target_groups[color], "https://canary.example.com:8443/healthz", outcomes)
        publish_round(aws.client("cloudwatch"), ProbeRound(STACK, now - timedelta(minutes=rounds - 1 - i), (colour,)))


def configure_in_vpc(pack) -> None:
    """production.json as shipped: no probeBaseUrl, so the live test listener decides the source."""
    from tests.policy_harness import POLICY_DIR

    pack.configure_file(POLICY_DIR / "production.json", {"healthy-promotion": {"deadlineSeconds": 5}})


def test_healthy_in_vpc_evidence_lets_the_promotion_through(aws, pack):
    configure_in_vpc(pack)
    alb = live_alb(aws, step=1)
    in_vpc(aws, alb)
    publish(aws, alb, "green")
    props, name, urn = proposed(alb, step=2)
    expect_clean(analyze(pack, props, name, urn))


def test_failing_in_vpc_evidence_refuses_the_promotion_with_the_reason(aws, pack):
    configure_in_vpc(pack)
    alb = live_alb(aws, step=1)
    in_vpc(aws, alb)
    publish(aws, alb, "green", failed=10, reason="tls")
    props, name, urn = proposed(alb, step=2)
    expect(analyze(pack, props, name, urn), "healthy-promotion", "20/20 in-VPC probes of green failed in the last 3 min (TLS verification failed 20)")


def test_no_evidence_refuses_the_promotion(aws, pack):
    configure_in_vpc(pack)
    alb = live_alb(aws, step=1)
    in_vpc(aws, alb)
    props, name, urn = proposed(alb, step=2)
    expect(analyze(pack, props, name, urn), "healthy-promotion", "0 rounds of results for green")


def test_a_rollback_needs_no_evidence(aws, pack):
    configure_in_vpc(pack)
    alb = live_alb(aws, step=3, since_minutes=1)
    in_vpc(aws, alb)
    publish(aws, alb, "green", failed=10)
    props, name, urn = proposed(alb, step=0)
    expect_clean(analyze(pack, props, name, urn))


def test_production_takes_the_probe_source_from_its_pack_config_not_from_a_tag(aws, pack):
    """The test listener's bluegreen:probe / bluegreen:stack tags are labels the same `pulumi up` writes
    (the test listener is updated before the production listener is judged). Production's pack config
    says in-vpc and the stack comes from the engine's URN: healthy rounds published under another
    stack's name (which a tag points at) are no evidence for this one."""
    configure_in_vpc(pack)
    alb = live_alb(aws, step=1)
    aws.client("elbv2").add_tags(
        ResourceArns=[alb.test_listener],
        Tags=[{"Key": "bluegreen:probe", "Value": "in-vpc"}, {"Key": "bluegreen:stack", "Value": "forged"}],
    )
    now = datetime.now(timezone.utc)
    ok = tuple(ProbeOutcome(ok=True, reason="", detail="", latency_ms=12.0, address="10.0.1.5") for _ in range(10))
    for i in range(2):
        colour = ColourRound("green", alb.target_groups["green"], "https://canary.example.com:8443/healthz", ok)
        publish_round(aws.client("cloudwatch"), ProbeRound("forged", now - timedelta(minutes=1 - i), (colour,)))
    props, name, urn = proposed(alb, step=2)
    assert urn.startswith(f"urn:pulumi:{STACK}::"), urn
    expect(analyze(pack, props, name, urn), "healthy-promotion", "green")
    refused = [v for v in analyze(pack, props, name, urn).mandatory if v.policy == "healthy-promotion"]
    assert refused and "in-VPC" in refused[0].message, refused


def _thin_step_with_synthetic_load(aws, declared: bool):
    """Step 1 live for 12 minutes on a thin service (5 req/s, 10 %: users too few for a pass on their own), healthy
    in-VPC probes, and 1,000 synthetic requests a minute to each colour, sent with or without the declaration."""
    from rollout.synthetic_load import SyntheticColour, SyntheticRound, publish_synthetic
    from tests.test_policy_traffic import SINCE, stamp, weights_at

    w = weights_at(1)
    alb = aws.build_alb(stable="blue", candidate_weight=w["green"])
    aws.put_minutes(alb, stable=(270, 1), candidate=(30, 0), ago=range(2, 12))
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[
        {"Key": "bluegreen:steps", "Value": "10/25/50/75/100"}, {"Key": SINCE, "Value": stamp(w, 12)}])
    in_vpc(aws, alb)
    publish(aws, alb, "green")
    now = datetime.now(timezone.utc).replace(second=30, microsecond=0)
    for ago in range(2, 12):
        publish_synthetic(aws.client("cloudwatch"), SyntheticRound(STACK, now - timedelta(minutes=ago), (
            SyntheticColour("blue", alb.target_groups["blue"], 1000, 5),
            SyntheticColour("green", alb.target_groups["green"], 1000, 4)), representative=declared))
    return alb


@pytest.mark.parametrize("declared", [False, True])
def test_the_pack_lets_a_thin_service_through_on_synthetic_load_sent_under_the_declaration(aws, pack, declared):
    configure_in_vpc(pack)
    alb = _thin_step_with_synthetic_load(aws, declared=declared)
    props, name, urn = proposed(alb, step=2)
    if declared:
        expect_clean(analyze(pack, props, name, urn))
    else:
        expect(analyze(pack, props, name, urn), "healthy-promotion", "ratio not yet shown below 2x on user traffic")
