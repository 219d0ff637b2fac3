"""bluegreen:probe.syntheticRepresentative: a pass that rests on the synthetic load, when the operator declares it
representative of user requests.

Attacks first: the opt-in must not weaken the fail side at all, must keep the false-pass bound when its assumption
holds (a regression that hits user and synthetic requests alike), must not pass while the users themselves show
fail evidence, must change nothing without it, and must be refused where it cannot mean anything (no synthetic
load, the health check as the synthetic path). Then the seams: the program hands the declaration to the probe
function, the function publishes it with each round's synthetic counts, and the gate reads both back from CloudWatch
(moto_server) and says when a pass rests on synthetic evidence, only for load sent under the declaration.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pulumi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.judge import FAIL, INSUFFICIENT, PASS, PASS_GRID, FAIL_GRID, JudgeConfig, Minute, fail_log_factors, judge, pass_log_factors
from rollout.simulate import RecordingMocks, load_stack_file, run_program, set_path
from tests.test_judge import _binomial, _poisson

ERR = ("errors",)


def _thin_minute(rng: random.Random, user_ratio: float, synthetic: int, synthetic_ratio: float, rate: float = 0.005) -> Minute:
    """5 req/s, 10 % to the candidate; ``synthetic`` requests to each colour; stable fails at ``rate`` on both paths."""
    return Minute(270, 30, {"errors": _poisson(rng, 270 * rate)}, {"errors": _poisson(rng, 30 * rate * user_ratio)},
                  synthetic, synthetic, {"errors": _binomial(rng, synthetic, rate)},
                  {"errors": _binomial(rng, synthetic, min(1.0, rate * synthetic_ratio))})


def _ever(rng, cfg, minutes: int, verdict: str, representative: bool, **kw) -> bool:
    ms: list[Minute] = []
    for _ in range(minutes):
        ms.append(_thin_minute(rng, **kw))
        if judge(ms, cfg, kinds=ERR, from_step_start=True, synthetic_representative=representative).verdict == verdict:
            return True
    return False


HEALTHY_SYNTHETIC = dict(stable_requests=270, candidate_requests=30, stable_bad={"errors": 1}, candidate_bad={"errors": 0},
                         stable_synthetic=1000, candidate_synthetic=1000)


# --------------------------------------------------------------------------- the judge


def test_a_thin_service_passes_on_representative_synthetic_evidence_and_says_so():
    minutes = [Minute(**HEALTHY_SYNTHETIC, stable_synthetic_bad={"errors": 5}, candidate_synthetic_bad={"errors": 4})] * 10
    without = judge(minutes, kinds=ERR)
    assert without.verdict == INSUFFICIENT and without.pass_basis is None, without.reason
    j = judge(minutes, kinds=ERR, synthetic_representative=True)
    assert j.verdict == PASS and j.pass_basis == "synthetic", j.reason
    assert "ON SYNTHETIC EVIDENCE" in j.reason and "bluegreen:probe.syntheticRepresentative" in j.reason, j.reason
    d = j.to_dict()
    assert d["passBasis"] == "synthetic" and d["kinds"][0]["syntheticPass"] is True, d
    assert d["candidateRequests"] == 300 and d["candidateSyntheticRequests"] == 10000  # still never pooled


def test_a_pass_the_users_reach_on_their_own_is_not_called_synthetic():
    quiet = dict(stable_requests=27000, candidate_requests=3000, stable_bad={"errors": 135}, candidate_bad={"errors": 15},
                 stable_synthetic=300, candidate_synthetic=300, stable_synthetic_bad={"errors": 2}, candidate_synthetic_bad={"errors": 1})
    j = judge([Minute(**quiet)] * 6, kinds=ERR, synthetic_representative=True)
    assert j.verdict == PASS and j.pass_basis == "user" and "SYNTHETIC EVIDENCE" not in j.reason, j.reason


def test_a_synthetic_pass_needs_users_that_show_no_fail_evidence():
    """The joint evidence would pass; the candidate's users (10 % of the requests) had 5 errors to stable's 10."""
    minutes = [Minute(**HEALTHY_SYNTHETIC | {"candidate_bad": {"errors": c}}, stable_synthetic_bad={"errors": 5},
                      candidate_synthetic_bad={"errors": 4}) for c in [0, 1] * 5]
    j = judge(minutes, kinds=ERR, synthetic_representative=True)
    assert j.kinds[0].log_e_pass_joint >= math.log(20) and j.kinds[0].user_log_e_fail > 0, j.kinds[0]
    assert j.verdict == INSUFFICIENT and "users show fail evidence" in j.reason and j.minutes_needed is None, j.reason


def test_the_opt_in_never_changes_a_fail():
    worse = [Minute(**HEALTHY_SYNTHETIC, stable_synthetic_bad={"errors": 5}, candidate_synthetic_bad={"errors": 25})] * 5
    a, b = judge(worse, kinds=ERR), judge(worse, kinds=ERR, synthetic_representative=True)
    assert a.verdict == b.verdict == FAIL and a.e_value == b.e_value


minute_st = st.builds(
    Minute,
    st.integers(0, 3000), st.integers(0, 400),
    st.fixed_dictionaries({"errors": st.integers(0, 20)}), st.fixed_dictionaries({"errors": st.integers(0, 8)}),
    st.sampled_from([0, 60, 300]), st.sampled_from([0, 60, 300]),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(minute_st, min_size=1, max_size=12))
def test_without_synthetic_events_the_opt_in_changes_nothing(minutes):
    """Until the synthetic stratum's first failure the joint e-process is the users' own: the same verdict, the same
    evidence, so the opt-in gives no second chance to pass (no alpha spent twice)."""
    a = judge(minutes, kinds=ERR, from_step_start=True)
    b = judge(minutes, kinds=ERR, from_step_start=True, synthetic_representative=True)
    assert (a.verdict, a.reason, a.minutes_needed) == (b.verdict, b.reason, b.minutes_needed)
    assert [k.log_e_pass for k in a.kinds] == [k.log_e_pass for k in b.kinds]


def _factor_expectation(log_factors, m_c: int, m_s: int, q_c: float, q_s: float) -> float:
    """E[one minute's likelihood ratio] when each colour's m requests fail independently (Binomial, fixed m): the LR
    is a^X_c b^X_s with a, b read off the judge's own factors for one candidate / one stable event."""
    a, b = math.exp(log_factors(1, 0)), math.exp(log_factors(0, 1))
    return (1 - q_c + q_c * a) ** m_c * (1 - q_s + q_s * b) ** m_s


@pytest.mark.parametrize("m_c, m_s", [(60, 60), (300, 300), (1000, 1000), (30, 270), (1, 1000)])
@pytest.mark.parametrize("q_s", [0.001, 0.005, 0.05, 0.2, 0.45])
def test_every_minute_factor_has_expectation_at_most_one_for_binomial_counts(m_c, m_s, q_s):
    """The synthetic stratum's counts are Binomial (the requests are fixed in advance), not Poisson. Exactly, not by
    simulation: each pass alternative's factor has expectation <= 1 whenever the candidate's rate is >= the pass ratio
    x stable's, and each fail alternative's whenever it is <= the tolerated ratio x stable's ((1+x)^m <= e^(mx))."""
    cfg = JudgeConfig()
    for i in range(len(PASS_GRID)):
        for r in (cfg.pass_ratio, cfg.pass_ratio * 1.5):
            q_c = min(1.0, r * q_s)
            e = _factor_expectation(lambda c, s: pass_log_factors(c, s, m_c, m_s, cfg.pass_ratio)[i], m_c, m_s, q_c, q_s)
            assert e <= 1 + 1e-12, (i, r, e)
    for i in range(len(FAIL_GRID)):
        for r in (cfg.tolerated_ratio, 0.5):
            e = _factor_expectation(lambda c, s: fail_log_factors(c, s, m_c, m_s, cfg.tolerated_ratio)[i], m_c, m_s, r * q_s, q_s)
            assert e <= 1 + 1e-12, (i, r, e)


def test_the_false_pass_bound_holds_when_the_regression_hits_synthetic_requests_too():
    """A candidate exactly at the pass ratio (2x, the hardest case of H0') for users and on the synthetic path, a thin
    service with 300 synthetic requests a minute, a look every minute for 20 min: passed within alpha."""
    cfg = JudgeConfig(alpha=0.1)
    rng = random.Random(11)
    runs = 100
    passed = sum(_ever(rng, cfg, 20, PASS, True, user_ratio=2.0, synthetic=300, synthetic_ratio=2.0) for _ in range(runs))
    bound = cfg.alpha + 3 * math.sqrt(cfg.alpha * (1 - cfg.alpha) / runs)
    assert passed / runs <= bound, f"{passed}/{runs} passed > {bound:.3f}"


def test_the_opt_in_earns_a_healthy_thin_service_a_pass_it_would_not_get_otherwise():
    cfg = JudgeConfig(alpha=0.05)
    rng = random.Random(7)
    kw = dict(user_ratio=1.0, synthetic=1000, synthetic_ratio=1.0)
    with_opt_in = sum(_ever(rng, cfg, 20, PASS, True, **kw) for _ in range(30))
    without = sum(_ever(rng, cfg, 20, PASS, False, **kw) for _ in range(30))
    assert with_opt_in >= 20 and without <= 10, (with_opt_in, without)


def test_the_estimate_counts_the_synthetic_evidence_when_it_may_carry_the_pass():
    minutes = [Minute(**HEALTHY_SYNTHETIC, stable_synthetic_bad={"errors": 5}, candidate_synthetic_bad={"errors": 4})] * 3
    user_only, joint = judge(minutes, kinds=ERR), judge(minutes, kinds=ERR, synthetic_representative=True)
    assert user_only.verdict == joint.verdict == INSUFFICIENT
    assert joint.minutes_needed is not None and (user_only.minutes_needed is None or joint.minutes_needed < user_only.minutes_needed)


# --------------------------------------------------------------------------- the config key


def _cfg(**probe):
    cfg = load_stack_file("production")
    for k, v in probe.items():
        cfg = set_path(cfg, f"bluegreen:probe.{k}", v)
    return cfg


@pytest.mark.parametrize("probe, words", [
    ({"syntheticRepresentative": True}, "syntheticPerMinute is 0"),
    ({"syntheticRepresentative": True, "syntheticPerMinute": 300}, "syntheticPath is unset (the health path)"),
    ({"syntheticRepresentative": True, "syntheticPerMinute": 300, "syntheticPath": "/healthz"}, "is the health path /healthz"),
    ({"syntheticRepresentative": True, "syntheticPerMinute": 300, "syntheticPath": "/healthz/?deep=1"}, "is the health path"),
    ({"syntheticRepresentative": "yes", "syntheticPerMinute": 300, "syntheticPath": "/api/ping"}, "must be true | false"),
])
def test_a_meaningless_opt_in_is_one_line_naming_the_key_before_any_resource(probe, words):
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program("production", _cfg(**probe), mocks=mocks)
    line = next(li for li in str(err.value).splitlines() if "bluegreen:probe.syntheticRepresentative:" in li)
    assert words in line and "Traceback" not in str(err.value), str(err.value)
    assert [(a.typ, a.name) for a, _ in mocks.records] == [], "resources registered before the error"


def _env(s) -> dict:
    return s.one("aws:lambda/function:Function", "-probe-fn").inputs["environment"]["variables"]


def test_the_program_hands_the_declaration_to_the_probe_function_and_nothing_else_moves():
    on = run_program("production", _cfg(syntheticRepresentative=True, syntheticPerMinute=300, syntheticPath="/api/ping"))
    off = run_program("production", _cfg(syntheticPerMinute=300, syntheticPath="/api/ping"))
    assert _env(on)["BLUEGREEN_SYNTHETIC_REPRESENTATIVE"] == "true" and "BLUEGREEN_SYNTHETIC_REPRESENTATIVE" not in _env(off)
    assert sorted((r.type, r.name) for r in on.resources) == sorted((r.type, r.name) for r in off.resources)
    step = run_program("production", set_path(_cfg(syntheticRepresentative=True, syntheticPerMinute=300, syntheticPath="/api/ping"),
                                              "bluegreen:rollout.step", 2))
    assert _env(step) == _env(on)  # a traffic step never touches the declaration


def test_the_function_reads_the_declaration_and_names_a_bad_value():
    from rollout.probe_runner import ProbeSettings, ProbeSetupError

    on = ProbeSettings(stack="p", load_balancer_arn="arn:x", synthetic_per_minute=300, synthetic_path="/api/ping", synthetic_representative=True)
    assert ProbeSettings.from_env(on.to_env()) == on
    with pytest.raises(ProbeSetupError, match="BLUEGREEN_SYNTHETIC_REPRESENTATIVE must be true or false"):
        ProbeSettings.from_env({**on.to_env(), "BLUEGREEN_SYNTHETIC_REPRESENTATIVE": "yes"})


# --------------------------------------------------------------------------- the gate reads it from live AWS


def _publish(aws, alb, minutes: range, *, declared: range = range(0)) -> None:
    """The probe function's synthetic rounds (1,000 requests a colour, 5 and 4 failed); ``declared``: the minutes it ran
    with the declaration in its environment."""
    from rollout.synthetic_load import SyntheticColour, SyntheticRound, publish_synthetic

    now = datetime.now(timezone.utc).replace(second=30, microsecond=0)
    for ago in minutes:
        publish_synthetic(aws.client("cloudwatch"), SyntheticRound("production", now - timedelta(minutes=ago), (
            SyntheticColour("blue", alb.target_groups["blue"], 1000, 5),
            SyntheticColour("green", alb.target_groups["green"], 1000, 4),
        ), representative=ago in declared))


def _gate(aws, alb):
    """What `python -m rollout gate` and the pack run: the judge over the step (it began 12 minutes ago), the in-VPC
    probe stack's synthetic load read from CloudWatch."""
    from rollout.desired import TAG_SINCE, format_since
    from rollout.gate import GateTarget, GateThresholds, run_gate

    elbv2 = aws.client("elbv2")
    since = format_since(datetime.now(timezone.utc).timestamp() - 12 * 60, {"blue": 90, "green": 10})
    elbv2.add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": TAG_SINCE, "Value": since}])
    target = GateTarget("green", target_group_arn=alb.target_groups["green"], load_balancer_arn=alb.load_balancer, probe_stack="production")
    return run_gate(target, GateThresholds(), elbv2=elbv2, cloudwatch=aws.client("cloudwatch"), checks=("judge",))


@pytest.mark.parametrize("declared, passes", [
    (range(0), False),  # never declared
    (range(2, 6), False),  # declared mid-step (say, by the update being judged): the earlier load is not covered
    (range(2, 12), True),  # every minute of synthetic load was sent under the declaration
])
def test_the_gate_passes_on_synthetic_evidence_only_for_load_published_under_the_declaration(aws, declared, passes):
    alb = aws.build_alb()
    aws.put_minutes(alb, stable=(270, 1), candidate=(30, 0), ago=range(2, 12))
    _publish(aws, alb, range(2, 12), declared=declared)
    v = _gate(aws, alb)
    if not passes:
        assert v.pending and v.judge["verdict"] == "insufficient" and v.judge["passBasis"] is None, v.to_dict()
        return
    assert v.passed and v.judge["passBasis"] == "synthetic", v.to_dict()
    assert "ON SYNTHETIC EVIDENCE" in v.message(), v.message()
    from rollout.cli import _judge_line

    assert "PASS ON SYNTHETIC EVIDENCE" in _judge_line(v)


def test_the_pull_request_comment_says_when_a_pass_may_rest_on_synthetic_evidence(tmp_path):
    from tests.test_cli import invoke, make_project

    on = make_project(tmp_path / "on", step=1, probe={"syntheticPerMinute": 300, "syntheticPath": "/api/ping", "syntheticRepresentative": True})
    r = invoke("--project-dir", str(on), "plan", "--stack", "production", "--format", "markdown", "--no-policy")
    assert r.exit_code == 0, r.output
    assert "`/api/ping` representative of user" in r.output and "PASS ON SYNTHETIC EVIDENCE" in r.output, r.output
    off = make_project(tmp_path / "off", step=1, probe={"syntheticPerMinute": 300, "syntheticPath": "/api/ping"})
    r = invoke("--project-dir", str(off), "plan", "--stack", "production", "--format", "markdown", "--no-policy")
    assert r.exit_code == 0 and "Synthetic evidence" not in r.output, r.output


def test_the_function_publishes_the_declaration_with_its_synthetic_counts(aws):
    from rollout.metrics import read_minutes
    from rollout.synthetic_load import SyntheticColour, SyntheticRound, publish_synthetic

    alb = aws.build_alb()
    now = datetime.now(timezone.utc).replace(second=30, microsecond=0)
    cw = aws.client("cloudwatch")
    for ago, declared in ((3, False), (2, True)):
        n = publish_synthetic(cw, SyntheticRound("production", now - timedelta(minutes=ago), (
            SyntheticColour("blue", alb.target_groups["blue"], 10, 0), SyntheticColour("green", alb.target_groups["green"], 10, 1)),
            representative=declared))
        assert n == (6 if declared else 4)
    series = read_minutes(cw, load_balancer_arn=alb.load_balancer, stable_target_group_arn=alb.target_groups["blue"],
                          candidate_target_group_arn=alb.target_groups["green"], start=now - timedelta(minutes=3),
                          end=now - timedelta(minutes=1), synthetic_stack="production")
    assert series.declared == (False, True) and not series.synthetic_representative
    later = read_minutes(cw, load_balancer_arn=alb.load_balancer, stable_target_group_arn=alb.target_groups["blue"],
                         candidate_target_group_arn=alb.target_groups["green"], start=now - timedelta(minutes=2),
                         end=now - timedelta(minutes=1), synthetic_stack="production")
    assert later.declared == (True,) and later.synthetic_representative
