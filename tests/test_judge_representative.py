"""The judge's null-validity properties (tests/test_judge.py) on one fixed traffic and weight sequence each.

The properties draw 8 and 6 sequences (150 and 120 simulated steps each, ~10 s apiece) and run under
`pytest -m explore`; here each runs its own body, unchanged, on one sequence that moves traffic and
weights every minute, so the default run still fails when the judge's false-alarm rate leaves alpha.
"""

from __future__ import annotations

from tests import test_judge as properties

# Traffic swinging between idle and heavy, weights walking the ladder up, back and up again.
TRAFFIC = [0, 120, 2500, 20000, 800, 15000, 3000, 40, 9000, 18000, 600, 12000, 7000, 0, 5000, 19000, 250, 11000, 4000, 16000]
WEIGHTS = [1, 5, 10, 25, 50, 75, 100, 50, 25, 10, 5, 1, 10, 25, 50, 75, 100, 75, 50, 25]


def test_false_alarm_rate_is_within_alpha_on_one_changing_sequence():
    properties.test_false_alarm_rate_is_within_alpha_under_any_traffic_and_weights.hypothesis.inner_test(
        traffic=TRAFFIC, weights=WEIGHTS, rate=0.005,
    )


def test_two_strata_stay_valid_under_the_null_on_one_changing_sequence():
    properties.test_two_strata_stay_valid_under_the_null.hypothesis.inner_test(
        traffic=[min(t, 3000) for t in TRAFFIC[:15]], weights=[min(w, 50) for w in WEIGHTS[:15]],
        user_rate=0.005, synthetic=60, synthetic_rate=0.05,
    )
