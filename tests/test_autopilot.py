"""The autopilot: its decision as a pure function (properties over every input), its config keys (one-line
errors naming the key, before any resource), and the command end to end against moto_server and a local
bare git repository: the commit it makes, or does not make, and its message."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.autopilot import Action, decide
from rollout.config import AutopilotConfig
from rollout.rules import RolloutConfig

STEPS = (10, 25, 50, 75, 100)


def _decide(step=2, *, enabled=True, approve_above=50, max_bake=60, live="declared", baked=15.0, min_bake=10.0, verdict="pass",
            gate=True, aborted=False, steps=STEPS):
    declared = RolloutConfig("blue", steps, step)
    live = declared.weights if live == "declared" else live
    return decide("production", declared, AutopilotConfig(enabled, approve_above, max_bake), live_weights=live, baked_minutes=baked,
                  min_bake_minutes=min_bake, verdict=verdict, gate_passed=gate, aborted=aborted)


def test_pass_after_the_bake_advances_one_step():
    d = _decide(step=2)
    assert (d.action, d.to_step) == (Action.ADVANCE, 3) and "advancing to step 3 (50%)" in d.reason, d


@pytest.mark.parametrize("kw, action, words", [
    ({"enabled": False}, Action.NONE, "autopilot is off"),
    ({"step": 0}, Action.NONE, "no rollout in flight"),
    ({"step": 5}, Action.NONE, "finishing is an operator's call"),
    ({"aborted": True}, Action.STOP, "the reflex rolled production back"),
    ({"live": None, "verdict": None, "gate": None}, Action.WAIT, "could not be read"),
    ({"live": {"blue": 90, "green": 10}}, Action.WAIT, "not live yet"),
    ({"baked": None}, Action.WAIT, "no bake clock"),
    ({"baked": 4.0}, Action.WAIT, "baked 4 of 10 min"),
    ({"verdict": "fail", "gate": False}, Action.STOP, "fails its health gate"),
    ({"verdict": "pass", "gate": False}, Action.STOP, "fails its health gate"),
    ({"verdict": "insufficient", "gate": False, "baked": 30.0}, Action.WAIT, "needs more evidence"),
    ({"verdict": "insufficient", "gate": False, "baked": 61.0}, Action.STOP, "maxBakeMinutes 60"),
    ({"verdict": None, "gate": True}, Action.STOP, "no judge verdict"),
    ({"step": 3}, Action.APPROVAL, "step 4 (75%) is above autopilot.approveAbove (50%)"),
])
def test_each_row_of_the_table(kw, action, words):
    d = _decide(**kw)
    assert d.action is action and words in d.reason, d


verdicts = st.sampled_from(["pass", "fail", "insufficient", None])
gates = st.sampled_from([True, False, None])


@st.composite
def rounds(draw):
    steps = tuple(sorted(draw(st.sets(st.integers(1, 99), max_size=5)))) + (100,)
    step = draw(st.integers(0, len(steps)))
    declared = RolloutConfig("blue", steps, step)
    live = draw(st.one_of(st.none(), st.just(declared.weights), st.builds(lambda w: {"blue": 100 - w, "green": w}, st.integers(0, 100))))
    return dict(
        declared=declared,
        config=AutopilotConfig(draw(st.booleans()), draw(st.integers(0, 100)), draw(st.integers(1, 240))),
        live_weights=live,
        baked_minutes=draw(st.one_of(st.none(), st.floats(0, 500))),
        min_bake_minutes=draw(st.floats(0, 60)),
        verdict=draw(verdicts),
        gate_passed=draw(gates),
        aborted=draw(st.booleans()),
    )


@given(rounds())
def test_it_advances_only_one_step_only_on_pass_after_the_bake_with_live_as_declared(r):
    d = decide("production", r["declared"], r["config"], **{k: v for k, v in r.items() if k not in ("declared", "config")})
    declared = r["declared"]
    if d.action in (Action.ADVANCE, Action.APPROVAL):
        assert d.to_step == declared.step + 1 <= declared.last_step
        assert r["config"].enabled and not r["aborted"] and r["verdict"] == "pass" and r["gate_passed"] is True
        assert r["baked_minutes"] is not None and r["baked_minutes"] >= r["min_bake_minutes"]
        assert r["live_weights"] is not None and {c: w for c, w in r["live_weights"].items()} == declared.weights
        above = declared.steps[declared.step] > r["config"].approve_above
        assert (d.action is Action.APPROVAL) == above
    else:
        assert d.to_step is None


@given(rounds())
def test_fail_never_advances_and_insufficient_past_the_cap_stops(r):
    d = decide("production", r["declared"], r["config"], **{k: v for k, v in r.items() if k not in ("declared", "config")})
    if r["verdict"] == "fail":
        assert d.action in (Action.NONE, Action.WAIT, Action.STOP), d
    live_ok = r["live_weights"] is not None and r["live_weights"] == r["declared"].weights
    if (r["config"].enabled and not r["aborted"] and 0 < r["declared"].step < r["declared"].last_step and live_ok
            and r["verdict"] == "insufficient" and r["baked_minutes"] is not None
            and r["baked_minutes"] >= max(r["config"].max_bake_minutes, r["min_bake_minutes"])):
        assert d.action is Action.STOP and "maxBakeMinutes" in d.reason, d


# --------------------------------------------------------------------------- config keys


@pytest.mark.parametrize("value, key, words", [
    ({"enabled": "yes"}, "bluegreen:autopilot.enabled", "true | false"),
    ({"approveAbove": 150}, "bluegreen:autopilot.approveAbove", "between 0 and 100"),
    ({"maxBakeMinutes": 0}, "bluegreen:autopilot.maxBakeMinutes", "between 1 and 1440"),
    ({"minBakeMinutes": 90, "maxBakeMinutes": 60}, "bluegreen:autopilot.minBakeMinutes", "at most maxBakeMinutes (60)"),
    ({"approveabove": 50}, "bluegreen:autopilot.approveabove", "did you mean 'approveAbove'"),
    ("on", "bluegreen:autopilot", "must be an object with fields enabled, approveAbove"),
])
def test_bad_autopilot_config_is_refused_before_any_resource(value, key, words):
    import pulumi

    from rollout.simulate import RecordingMocks, load_stack_file, run_program, set_path

    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program("production", set_path(load_stack_file("production"), "bluegreen:autopilot", value), mocks=mocks)
    message = str(err.value)
    assert f"{key}:" in message and words in message and "\n" not in message, message
    assert mocks.records == [], [a.name for a, _ in mocks.records]


def test_autopilot_defaults_and_a_valid_section():
    from rollout.config import parse_stack_config
    from rollout.simulate import load_stack_file

    raw = {k.split(":", 1)[1]: v for k, v in load_stack_file("production").items() if k.startswith("bluegreen:")}
    assert parse_stack_config(raw).autopilot == AutopilotConfig(False, 50, 60, None)
    raw["autopilot"] = {"enabled": True, "approveAbove": 25, "maxBakeMinutes": 90, "minBakeMinutes": 15}
    assert parse_stack_config(raw).autopilot == AutopilotConfig(True, 25, 90, 15)
