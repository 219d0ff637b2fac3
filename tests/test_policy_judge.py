"""healthy-promotion with the relative judge, end to end: the real pack over gRPC, a moto ALB whose
CloudWatch holds per-minute traffic of both colours, loopback health servers. Healthy traffic passes
(tests/test_policy_traffic.py's happy path); here regressed, thin and absent traffic are refused
with the judge's reason, and a rollback passes whatever the judge says."""

from __future__ import annotations

from tests.fixtures.aws import AwsEnv
from tests.test_policy_traffic import (  # noqa: F401 - pytest fixtures used by name
    SINCE,
    analyze,
    configure,
    expect,
    expect_clean,
    pack,
    proposed,
    stamp,
    weights_at,
)


def alb_at_step_1(aws: AwsEnv, *, since_minutes: float = 30, stable=None, candidate=None, ago=range(2, 12)):
    """A moto ALB live at step 1 (green 10 %), stamped ``since_minutes`` ago, with the given per-minute traffic."""
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    if stable or candidate:
        aws.put_minutes(alb, stable=stable or (0, 0), candidate=candidate or (0, 0), ago=ago)
    tags = {"bluegreen:steps": "10/25/50/75/100", SINCE: stamp(weights_at(1), since_minutes)}
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return alb


def test_regressed_candidate_is_refused_with_the_evidence(aws, pack, configure):
    configure("healthy")
    alb = alb_at_step_1(aws, stable=(20000, 100), candidate=(2000, 60), ago=range(2, 6))
    props, name, urn = proposed(alb, step=2)
    result = analyze(pack, props, name, urn)
    expect(result, "healthy-promotion", "judge: fail: evidence of a regression")
    expect(result, "healthy-promotion", "240 failed requests (target 5xx, connection errors) from the candidate vs 400 from stable")


def test_thin_traffic_holds_the_promotion_and_says_how_long(aws, pack, configure):
    configure("healthy")
    alb = alb_at_step_1(aws, stable=(270, 1), candidate=(30, 0))
    props, name, urn = proposed(alb, step=2)
    result = analyze(pack, props, name, urn)
    expect(result, "healthy-promotion", "judge: insufficient: not enough evidence yet (~")
    expect(result, "healthy-promotion", "more min at current traffic")


def test_absent_traffic_holds_the_promotion(aws, pack, configure):
    configure("healthy")
    alb = alb_at_step_1(aws)
    props, name, urn = proposed(alb, step=2)
    expect(analyze(pack, props, name, urn), "healthy-promotion", "judge: insufficient: no candidate requests")


def test_advisory_judge_lets_a_thin_promotion_through(aws, pack, configure):
    configure("healthy", healthy_promotion={"judge": "advisory"})
    alb = alb_at_step_1(aws, stable=(270, 1), candidate=(30, 0))
    props, name, urn = proposed(alb, step=2)
    expect_clean(analyze(pack, props, name, urn))


def test_rollback_passes_whatever_the_judge_says(aws, pack, configure):
    configure("healthy")
    alb = alb_at_step_1(aws, stable=(20000, 100), candidate=(2000, 60), ago=range(2, 6))
    props, name, urn = proposed(alb, step=0)
    expect_clean(analyze(pack, props, name, urn))
