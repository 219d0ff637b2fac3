"""The relative judge (rollout.judge): valid at every look under any traffic and weight sequence,
monotone in evidence, honest about thin data."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.errors import ConfigError
from rollout.judge import FAIL, INSUFFICIENT, PASS, JudgeConfig, Minute, judge, minutes_to_detect


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth for small means, a rounded normal for large ones (good enough for a null simulation)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _null_run(rng: random.Random, traffic: list[int], weights: list[int], rate: float, ratio: float, cfg: JudgeConfig) -> bool:
    """One step looked at every minute; True if the judge ever said fail."""
    minutes: list[Minute] = []
    for total, w in zip(traffic, weights):
        n_c = total * w / 100
        n_s = total - n_c
        burst = rng.choice((0.2, 1.0, 1.0, 4.0))  # a shared burst multiplies both colours' rates
        minutes.append(Minute(n_s, n_c, {"errors": _poisson(rng, n_s * rate * burst)}, {"errors": _poisson(rng, n_c * rate * ratio * burst)}))
        if judge(minutes, cfg, kinds=("errors",)).verdict == FAIL:
            return True
    return False


@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    traffic=st.lists(st.integers(0, 20000), min_size=20, max_size=20),
    weights=st.lists(st.sampled_from([1, 5, 10, 25, 50, 75, 100]), min_size=20, max_size=20),
    rate=st.sampled_from([0.001, 0.005, 0.05]),
)
def test_false_alarm_rate_is_within_alpha_under_any_traffic_and_weights(traffic, weights, rate):
    """H0 (candidate exactly as good as stable), weights and traffic changing every minute, a look every
    minute: the share of runs that ever fail stays within a binomial bound of alpha (fixed seed)."""
    cfg = JudgeConfig(alpha=0.1, max_minutes=60)
    rng = random.Random(1234)
    runs = 150
    alarms = sum(_null_run(rng, traffic, weights, rate, 1.0, cfg) for _ in range(runs))
    bound = cfg.alpha + 3 * math.sqrt(cfg.alpha * (1 - cfg.alpha) / runs)
    assert alarms / runs <= bound, f"{alarms}/{runs} false alarms > {bound:.3f}"


def test_a_regression_is_detected_by_the_same_simulation():
    """The simulation above can fail: a 4x candidate at 10 % of 3000 req/min is caught."""
    cfg = JudgeConfig(alpha=0.1)
    rng = random.Random(7)
    caught = sum(_null_run(rng, [3000] * 20, [10] * 20, 0.005, 4.0, cfg) for _ in range(40))
    assert caught >= 36


def test_no_data_is_insufficient():
    j = judge([])
    assert j.verdict == INSUFFICIENT and "no candidate requests" in j.reason
    j = judge([Minute()] * 30)
    assert j.verdict == INSUFFICIENT and j.e_value == 1.0


def test_only_stable_traffic_is_insufficient():
    j = judge([Minute(5000, 0, {"errors": 20}, {})] * 10)
    assert j.verdict == INSUFFICIENT


def test_thin_traffic_says_how_long_it_needs():
    j = judge([Minute(270, 30, {"errors": 1}, {"errors": 0})] * 6, kinds=("errors",))
    assert j.verdict == INSUFFICIENT
    assert j.minutes_needed is not None and j.minutes_needed > 0
    assert f"~{math.ceil(j.minutes_needed)} more min at current traffic" in j.reason


def test_plenty_of_healthy_traffic_passes():
    j = judge([Minute(27000, 3000, {"errors": 135, "slow": 0}, {"errors": 15, "slow": 0})] * 6)
    assert j.verdict == PASS, j.reason
    assert j.kinds[0].ratio_upper is not None and j.kinds[0].ratio_upper <= 2


def test_pass_needs_the_minimum_minutes():
    j = judge([Minute(27000, 3000, {"errors": 135}, {"errors": 15})] * 3, JudgeConfig(min_minutes=5))
    assert j.verdict == INSUFFICIENT and "at least 5 min of data required, 3 so far" in j.reason


def test_a_kind_stable_never_shows_fails_when_the_candidate_shows_it_repeatedly():
    j = judge([Minute(2700, 300, {"errors": 10, "slow": 0}, {"errors": 1, "slow": 4})] * 3)
    assert j.verdict == FAIL and "12 slow requests from the candidate vs 0 from stable" in j.reason


def test_a_quiet_kind_needs_enough_candidate_requests():
    few = judge([Minute(900, 10, {"slow": 0}, {"slow": 0})] * 6, kinds=("slow",))
    assert few.verdict == INSUFFICIENT and "needs 300" in few.reason
    many = judge([Minute(9000, 100, {"slow": 0}, {"slow": 0})] * 6, kinds=("slow",))
    assert many.verdict == PASS


@settings(max_examples=200, deadline=None)
@given(
    n_s=st.integers(100, 50000), n_c=st.integers(10, 5000), s=st.integers(0, 200), c=st.integers(0, 200),
    extra=st.integers(1, 50), minutes=st.integers(1, 10),
)
def test_monotone_in_evidence(n_s, n_c, s, c, extra, minutes):
    """More candidate bad events never lower the fail e-value; more stable bad events never raise it."""
    def e(cs, ss):
        return judge([Minute(n_s, n_c, {"errors": ss}, {"errors": cs})] * minutes, kinds=("errors",)).e_value

    base = e(c, s)
    assert e(c + extra, s) >= base * (1 - 1e-9)
    assert e(c, s + extra) <= base * (1 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**9), st.none()),) * 4), max_size=8))
def test_any_numbers_give_a_verdict_never_an_exception(rows):
    ms = [Minute(a, b, {"errors": c}, {"errors": d}) for a, b, c, d in rows]
    j = judge(ms)
    assert j.verdict in (FAIL, PASS, INSUFFICIENT)
    assert math.isfinite(j.e_value) or j.e_value == math.inf


def test_changing_weights_mid_step_are_used_per_minute():
    """Evidence is computed with each minute's own weights: errors that follow the traffic shift are not a regression."""
    ms = [Minute(9000, 1000, {"errors": 45}, {"errors": 5})] * 5 + [Minute(5000, 5000, {"errors": 25}, {"errors": 25})] * 5
    assert judge(ms).verdict != FAIL


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"alpha": 0}, "judgeAlpha"), ({"tolerated_ratio": 0.5}, "judgeToleratedRatio"),
     ({"pass_ratio": 1.0}, "judgePassRatio"), ({"min_minutes": 10, "max_minutes": 5}, "judgeMaxMinutes")],
)
def test_bad_config_names_the_key(kwargs, key):
    with pytest.raises(ConfigError) as err:
        JudgeConfig(**kwargs)
    assert err.value.key == key


def test_planner_detects_bigger_regressions_sooner_and_needs_traffic():
    three = minutes_to_detect(3000, 10, 0.005, 3.0)
    two = minutes_to_detect(3000, 10, 0.005, 2.0)
    assert three is not None and two is not None and three < two
    assert minutes_to_detect(30000, 10, 0.005, 3.0) < three
    assert minutes_to_detect(0, 10, 0.005, 3.0) is None
    assert minutes_to_detect(3000, 10, 0.005, 1.0) is None


def test_absurd_counts_give_a_finite_answer():
    j = judge([Minute(3.5e16, 0, {}, {}), Minute(1.0, 1.0, {}, {"errors": 5.3e307})])
    assert j.verdict in (FAIL, INSUFFICIENT) and not math.isnan(j.e_value)
