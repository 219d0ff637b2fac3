"""The pure rollout rules: the `bluegreen:rollout` contract, weights, and the meaning of a change."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rollout.errors import ConfigError, TransitionError
from rollout.rules import (
    COLORS,
    ChangeKind,
    RolloutConfig,
    TrafficState,
    advance,
    classify,
    classify_traffic,
    finish,
    other,
    parse_rollout,
    rollback,
    weights_for,
)

LADDER = (10, 25, 50, 75, 100)


@st.composite
def ladders(draw):
    """Valid steps: strictly increasing integers in 1..100 ending at 100."""
    inner = draw(st.lists(st.integers(1, 99), unique=True, max_size=12))
    return tuple(sorted(inner)) + (100,)


@st.composite
def configs(draw):
    steps = draw(ladders())
    return RolloutConfig(draw(st.sampled_from(COLORS)), steps, draw(st.integers(0, len(steps))))


# --- parsing -------------------------------------------------------------------------------------

def test_parses_the_contract_example():
    r = parse_rollout({"stable": "blue", "steps": [10, 25, 50, 75, 100], "step": 2})
    assert (r.stable, r.candidate, r.steps, r.step) == ("blue", "green", LADDER, 2)
    assert r.weights == {"blue": 75, "green": 25}


@pytest.mark.parametrize(
    "raw, key, fragment",
    [
        ({"stable": "red", "steps": [100], "step": 0}, "bluegreen:rollout.stable", "blue | green"),
        ({"stable": "blue", "steps": [50, 25, 100], "step": 0}, "bluegreen:rollout.steps", "strictly increasing"),
        ({"stable": "blue", "steps": [10, 10, 100], "step": 0}, "bluegreen:rollout.steps", "strictly increasing"),
        ({"stable": "blue", "steps": [0, 50, 100], "step": 0}, "bluegreen:rollout.steps", "between 1 and 100"),
        ({"stable": "blue", "steps": [10, 50, 120], "step": 0}, "bluegreen:rollout.steps", "between 1 and 100"),
        ({"stable": "blue", "steps": [10, 50, 90], "step": 0}, "bluegreen:rollout.steps", "end at 100"),
        ({"stable": "blue", "steps": [], "step": 0}, "bluegreen:rollout.steps", "list of integer"),
        ({"stable": "blue", "steps": [10.5, 100], "step": 0}, "bluegreen:rollout.steps", "a float"),
        ({"stable": "blue", "steps": LADDER, "step": 6}, "bluegreen:rollout.step", "between 0"),
        ({"stable": "blue", "steps": LADDER, "step": -1}, "bluegreen:rollout.step", "between 0"),
        ({"stable": "blue", "steps": LADDER, "step": "2"}, "bluegreen:rollout.step", "a string"),
        ({"stable": "blue", "steps": LADDER, "step": True}, "bluegreen:rollout.step", "a boolean"),
        ({"stable": "blue", "steps": LADDER, "step": 1.0}, "bluegreen:rollout.step", "a float"),
        ({"stable": "blue", "steps": LADDER}, "bluegreen:rollout.step", "required"),
        ({"stable": "blue", "steps": LADDER, "step": 0, "stpe": 1}, "bluegreen:rollout.stpe", "not a rollout setting"),
        ("blue", "bluegreen:rollout", "must be an object"),
    ],
)
def test_rejects_bad_rollout_naming_the_key(raw, key, fragment):
    with pytest.raises(ConfigError) as err:
        parse_rollout(raw)
    assert err.value.key == key, str(err.value)
    assert fragment in str(err.value)


@given(ladders(), st.sampled_from(COLORS), st.data())
def test_every_valid_config_parses_and_weights_are_integers_summing_to_100(steps, stable, data):
    step = data.draw(st.integers(0, len(steps)))
    r = parse_rollout({"stable": stable, "steps": list(steps), "step": step})
    w = r.weights
    assert set(w) == set(COLORS)
    assert all(type(v) is int for v in w.values())
    assert sum(w.values()) == 100
    assert w[r.candidate] == (0 if step == 0 else steps[step - 1])
    assert w[stable] == 100 - w[r.candidate]


@given(st.lists(st.integers(-5, 120), max_size=8), st.one_of(st.integers(-3, 10), st.text(max_size=3), st.floats(), st.none()))
def test_invalid_input_is_a_config_error_never_anything_else(steps, step):
    raw = {"stable": "green", "steps": steps, "step": step}
    try:
        r = parse_rollout(raw)
    except ConfigError as e:
        assert e.key.startswith("bluegreen:rollout")
        return
    # accepted: then it really is valid
    assert list(r.steps) == sorted(set(steps)) == steps and steps[-1] == 100 and 0 <= r.step <= len(steps)


def test_other_colour():
    assert other("blue") == "green" and other("green") == "blue"
    with pytest.raises(ValueError):
        other("red")


# --- transitions ----------------------------------------------------------------------------------

def cfg(step, stable="blue", steps=LADDER):
    return RolloutConfig(stable, steps, step)


@pytest.mark.parametrize(
    "before, after, kind, skipped",
    [
        (None, cfg(0), ChangeKind.INITIAL, 0),
        (cfg(0), cfg(0), ChangeKind.NONE, 0),
        (cfg(0), cfg(1), ChangeKind.PROMOTE, 0),
        (cfg(2), cfg(3), ChangeKind.PROMOTE, 0),
        (cfg(4), cfg(5), ChangeKind.PROMOTE, 0),
        (cfg(1), cfg(3), ChangeKind.SKIP_AHEAD, 1),
        (cfg(0), cfg(5), ChangeKind.SKIP_AHEAD, 4),
        (cfg(3), cfg(1), ChangeKind.PARTIAL_ROLLBACK, 0),
        (cfg(5), cfg(4), ChangeKind.PARTIAL_ROLLBACK, 0),
        (cfg(3), cfg(0), ChangeKind.FULL_ROLLBACK, 0),
        (cfg(5), cfg(0), ChangeKind.FULL_ROLLBACK, 0),
        (cfg(5), cfg(0, stable="green"), ChangeKind.FINISH, 0),
        # stable flipped while traffic moves: a promotion of the colour gaining traffic, never a rollback
        (cfg(3), cfg(0, stable="green"), ChangeKind.SKIP_AHEAD, 1),
        (cfg(0), cfg(0, stable="green"), ChangeKind.SKIP_AHEAD, 4),
    ],
)
def test_classify_table(before, after, kind, skipped):
    t = classify(before, after)
    assert t.kind is kind, t
    assert t.skipped == skipped


def test_rollback_needs_the_live_stable_to_match():
    # Proposed says "blue is stable and gets 100%" but live says green was stable: not a rollback.
    live = TrafficState({"blue": 0, "green": 100}, stable="green")
    proposed = TrafficState({"blue": 100, "green": 0}, stable="blue")
    t = classify_traffic(live, proposed, LADDER)
    assert t.kind.is_promotion and t.gaining == "blue"


def test_off_ladder_weights_are_not_a_plain_promotion():
    live = TrafficState({"blue": 90, "green": 10}, stable="blue")
    t = classify_traffic(live, TrafficState({"blue": 67, "green": 33}, stable="blue"), LADDER)
    assert t.kind is ChangeKind.OFF_LADDER and t.gaining == "green" and (t.from_weight, t.to_weight) == (10, 33)


@given(configs(), st.data())
def test_every_transition_within_one_ladder_is_classified_consistently(before, data):
    after = RolloutConfig(before.stable, before.steps, data.draw(st.integers(0, len(before.steps))))
    t = classify(before, after)
    if after.step == before.step:
        assert t.kind is ChangeKind.NONE
    elif after.step == before.step + 1:
        assert t.kind is ChangeKind.PROMOTE and t.gaining == before.candidate
    elif after.step > before.step:
        assert t.kind is ChangeKind.SKIP_AHEAD and t.skipped == after.step - before.step - 1
    elif after.step == 0:
        assert t.kind is ChangeKind.FULL_ROLLBACK and t.gaining == before.stable
    else:
        assert t.kind is ChangeKind.PARTIAL_ROLLBACK and t.gaining == before.stable


@given(configs())
def test_advance_rollback_finish(c):
    if c.step < c.last_step:
        assert advance(c).step == c.step + 1
        assert classify(c, advance(c)).kind is ChangeKind.PROMOTE
        with pytest.raises(TransitionError, match="finish needs the candidate at 100%"):
            finish(c)
    else:
        with pytest.raises(TransitionError, match="run finish"):
            advance(c)
        f = finish(c)
        assert (f.stable, f.step) == (c.candidate, 0)
        assert f.weights == c.weights  # a finish moves no traffic
        assert classify(c, f).kind is ChangeKind.FINISH
    if c.step > 0:
        assert rollback(c).step == 0 and classify(c, rollback(c)).kind is ChangeKind.FULL_ROLLBACK
    else:
        with pytest.raises(TransitionError, match="nothing to roll back"):
            rollback(c)


def test_weights_for_matches_contract():
    assert weights_for("green", LADDER, 0) == {"green": 100, "blue": 0}
    assert weights_for("green", LADDER, 3) == {"green": 50, "blue": 50}
    assert weights_for("blue", LADDER, 5) == {"blue": 0, "green": 100}
