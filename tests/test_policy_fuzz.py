"""Hypothesis over listener / target-group / load-balancer properties: nothing escapes the pack.

Starting from the real program's resources (ARNs pointed at a live moto ALB, so some examples
reach real classification, live reads and the health gate), hypothesis deletes fields, swaps in
wrong types and drops in the engine's unknown sentinels. Every call must come back as a normal
AnalyzeResponse (a policy that raised would be a gRPC error), and no policy may have hit an
unexpected exception (the guard would have turned it into a "could not finish" violation).
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.simulate import run_program
from tests.policy_harness import (
    POLICY_DIR,
    UNKNOWN,
    UNKNOWN_BOOL,
    UNKNOWN_NUMBER,
    AnalyzeResult,
    PolicyPackClient,
    policy_pack_env,
    secret,
)

LISTENER = "aws:lb/listener:Listener"
TG = "aws:lb/targetGroup:TargetGroup"
LB = "aws:lb/loadBalancer:LoadBalancer"
RULE = "aws:lb/listenerRule:ListenerRule"

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),  # the engine can send these (structpb doubles)
    st.text(max_size=12),
    st.sampled_from([UNKNOWN, UNKNOWN_NUMBER, UNKNOWN_BOOL, "blue", "green", "production", "10/25/50/75/100"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        inner.map(secret),
    ),
    max_leaves=8,
)


_SIG = "4dabf18193072939515e22adb298388d"  # the engine's signature key (secrets, assets)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every mutable path. A secret is a leaf: the SDK unmarshals its signature object before any
    policy runs, and the engine never sends a malformed one."""
    out = [prefix] if prefix else []
    if isinstance(value, dict) and _SIG not in value:
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw, base: dict) -> dict:
    """`base` with 1-3 mutations: delete a field, replace it with any value, or make it unknown."""
    props = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(props)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = props
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "unknown"]))
        if action == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif action == "unknown":
            parent[path[-1]] = UNKNOWN
        else:
            parent[path[-1]] = draw(values)
    return props


@pytest.fixture(scope="module")
def pack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory):
    env = policy_pack_env(moto_endpoint, tmp_path_factory.mktemp("pack-aws"))
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        # probes never leave loopback, even for a fuzzed promotion before `live` configures a server
        client.configure_file(POLICY_DIR / "production.json", {"healthy-promotion": {"probeBaseUrl": "http://127.0.0.1:9"}})
        yield client


@pytest.fixture(scope="module")
def sim():
    return run_program("production", overrides={"bluegreen:rollout.step": 2})


@pytest.fixture
def live(aws, pack, http_server, sim):
    """A live moto ALB at step 1 (baked), probes aimed at a healthy loopback server; returns the
    program's resources with their ARNs pointed at it."""
    base = http_server("healthy").rsplit("/healthz", 1)[0]
    pack.configure_file(
        POLICY_DIR / "production.json",
        {"healthy-promotion": {"probeBaseUrl": base, "probes": 2, "deadlineSeconds": 3, "probeTimeoutSeconds": 1}},
    )
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    when = datetime.fromtimestamp(int(time.time() - 3600), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    aws.client("elbv2").add_tags(
        ResourceArns=[alb.production_listener],
        Tags=[
            {"Key": "bluegreen:steps", "Value": "10/25/50/75/100"},
            {"Key": "bluegreen:weights-since", "Value": f"{when} blue=90 green=10"},
        ],
    )
    program_arns = {r.outputs["arn"]: r.inputs["tags"]["bluegreen:color"] for r in sim.by_type(TG)}

    def point(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: point(v) for k, v in value.items()}
        if isinstance(value, list):
            return [point(v) for v in value]
        if isinstance(value, str):
            if value in program_arns:
                return alb.target_groups[program_arns[value]]
            if ":loadbalancer/" in value:
                return alb.load_balancer
        return value

    return {(r.type, r.name): point(dict(r.inputs)) for r in sim.custom}


def check(result: AnalyzeResult) -> None:
    crashed = [v for v in result.violations if "could not finish its check" in v.message]
    assert not crashed, f"a policy hit an unexpected exception:\n{result}"
    for v in result.violations:
        assert v.message.strip() and v.policy, result


def _one(resources: dict, type_: str, suffix: str) -> tuple[str, dict]:
    (t, name), props = next(((k, v) for k, v in resources.items() if k[0] == type_ and k[1].endswith(suffix)))
    return name, props


@FUZZ
@given(data=st.data())
def test_production_listener_never_raises(pack, live, data):
    name, base = _one(live, LISTENER, "-production")
    props = data.draw(mutated(base))
    check(pack.analyze(LISTENER, props, name=name))


@FUZZ
@given(data=st.data(), suffix=st.sampled_from(["-test", "-http-redirect"]))
def test_other_listeners_never_raise(pack, live, data, suffix):
    name, base = _one(live, LISTENER, suffix)
    check(pack.analyze(LISTENER, data.draw(mutated(base)), name=name))


@FUZZ
@given(data=st.data(), kind=st.sampled_from([(TG, "-tg-green"), (LB, "-alb"), (RULE, "-header-route")]))
def test_target_groups_load_balancers_and_rules_never_raise(pack, live, data, kind):
    type_, suffix = kind
    name, base = _one(live, type_, suffix)
    check(pack.analyze(type_, data.draw(mutated(base)), name=name))


_KEYS = [
    "tags", "defaultActions", "protocol", "port", "loadBalancerArn", "sslPolicy", "accessLogs",
    "listenerArn", "priority", "conditions", "actions", "name", "resourceArn", "key", "value",
]


@FUZZ
@given(props=st.dictionaries(st.sampled_from(_KEYS), values, max_size=6))
def test_arbitrary_properties_never_raise(pack, props):
    for type_ in (LISTENER, LB, RULE, TG, "aws:lb/tag:Tag"):
        check(pack.analyze(type_, props, name="fuzzed"))
        check(pack.analyze_stack([{"type": type_, "props": props, "name": "fuzzed"}]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_weights_are_refused_not_crashed(pack, live, bad):
    name, props = _one(live, LISTENER, "-production")
    props = copy.deepcopy(props)
    props["defaultActions"][0]["forward"]["targetGroups"][1]["weight"] = bad
    result = pack.analyze(LISTENER, props, name=name)
    check(result)
    assert [v for v in result.mandatory if v.policy == "valid-weights"], result
