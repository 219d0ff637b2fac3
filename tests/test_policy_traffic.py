"""The traffic policies, with the pack started as the engine starts it and driven over gRPC.

Proposed state = the production listener the REAL program registers (rollout.simulate, the stack
file plus `--path` overrides), with its ARNs pointed at a moto ALB. Live state = that moto ALB
(moto_server on 127.0.0.1). Health = real loopback HTTP servers. Happy path first, then one
property changed per test; every assertion prints every violation.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone

import pytest

from rollout.simulate import run_program
from tests.fixtures.aws import AlbArns, AwsEnv
from tests.policy_harness import POLICY_DIR, UNKNOWN, AnalyzeResult, PolicyPackClient, policy_pack_env

LISTENER = "aws:lb/listener:Listener"
TG = "aws:lb/targetGroup:TargetGroup"
LADDER = [10, 25, 50, 75, 100]
SINCE = "bluegreen:weights-since"


def stamp(weights: dict[str, int], minutes_ago: float = 0.0) -> str:
    when = datetime.fromtimestamp(int(time.time() - minutes_ago * 60), timezone.utc)
    return f"{when.strftime('%Y-%m-%dT%H:%M:%SZ')} blue={weights['blue']} green={weights['green']}"


def weights_at(step: int, stable: str = "blue") -> dict[str, int]:
    w = 0 if step == 0 else LADDER[step - 1]
    cand = "green" if stable == "blue" else "blue"
    return {stable: 100 - w, cand: w}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory):
    """One pack process for the module, its boto3 aimed at the session's moto_server."""
    env = policy_pack_env(moto_endpoint, tmp_path_factory.mktemp("pack-aws"))
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        yield client


_SIMS: dict[tuple, object] = {}


def program_listener(step: int, **overrides) -> dict:
    """The production listener's inputs as the real program registers them at `step`."""
    key = (step, repr(sorted(overrides.items())))
    if key not in _SIMS:
        _SIMS[key] = run_program("production", overrides={"bluegreen:rollout.step": step, **overrides})
    sim = _SIMS[key]
    listener = next(r for r in sim.by_type(LISTENER) if r.inputs.get("tags", {}).get("bluegreen:listener") == "production")
    colors = {r.outputs["arn"]: r.inputs["tags"]["bluegreen:color"] for r in sim.by_type(TG)}
    return {"inputs": copy.deepcopy(dict(listener.inputs)), "colors": colors, "name": listener.name, "urn": listener.urn}


def proposed(alb: AlbArns, step: int, *, since: str | None | bool = True, **overrides) -> tuple[dict, str, str]:
    """(props, name, urn): the program's listener at `step`, ARNs pointed at the moto ALB.

    since=True stamps bluegreen:weights-since with now and the new weights (the program's job);
    a string sets it verbatim; None leaves it out.
    """
    got = program_listener(step, **overrides)
    props = got["inputs"]
    props["loadBalancerArn"] = alb.load_balancer
    props["port"] = 80  # the moto ALB's production listener (its identity: load balancer + port)
    if "bluegreen:stable-tg" in props["tags"]:
        props["tags"]["bluegreen:stable-tg"] = alb.target_groups[got["colors"][props["tags"]["bluegreen:stable-tg"]]]
    weights = {}
    for tg in props["defaultActions"][0]["forward"]["targetGroups"]:
        color = got["colors"][tg["arn"]]
        tg["arn"] = alb.target_groups[color]
        weights[color] = int(tg["weight"])
    if since is True:
        props["tags"][SINCE] = stamp(weights)
    elif isinstance(since, str):
        props["tags"][SINCE] = since
    elif since is None:
        props["tags"].pop(SINCE, None)
    return props, got["name"], got["urn"]


def live_alb(
    aws: AwsEnv, step: int, *, stable: str = "blue", since_minutes: float | None = 30, extra_tags: dict | None = None, **kw
) -> AlbArns:
    """A moto ALB whose production listener is live at `step`, stamped `since_minutes` ago, with ten minutes of
    healthy per-minute CloudWatch traffic for both colours when the candidate carries some."""
    w = weights_at(step, stable)
    cand = "green" if stable == "blue" else "blue"
    alb = aws.build_alb(stable=stable, candidate_weight=w[cand], **kw)
    if w[cand]:  # healthy CloudWatch evidence, so the relative judge can say pass (rollout.judge)
        aws.put_minutes(alb, stable=(20000, 100), candidate=(2000, 10), ago=range(2, 12), stable_color=stable)
    tags = {"bluegreen:steps": "10/25/50/75/100"}
    if since_minutes is not None:
        tags[SINCE] = stamp(w, since_minutes)
    tags.update(extra_tags or {})
    aws.client("elbv2").add_tags(ResourceArns=[alb.production_listener], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return alb


@pytest.fixture
def configure(pack: PolicyPackClient, http_server):
    """Configure the pack from production.json with probes aimed at a loopback server."""

    def go(behaviour: str = "healthy", **policy_overrides) -> str:
        url = http_server(behaviour)
        base = url.rsplit("/healthz", 1)[0]
        gate = {"probeBaseUrl": base, "probes": 4, "deadlineSeconds": 5, "probeTimeoutSeconds": 2}
        overrides = {"healthy-promotion": {**gate, **policy_overrides.pop("healthy_promotion", {})}}
        overrides.update({k.replace("_", "-"): v for k, v in policy_overrides.items()})
        pack.configure_file(POLICY_DIR / "production.json", overrides)
        return base

    return go


def analyze(pack: PolicyPackClient, props: dict, name: str, urn: str) -> AnalyzeResult:
    return pack.analyze(LISTENER, props, name=name, urn=urn)


def expect(result: AnalyzeResult, policy: str, substring: str, level: str = "mandatory") -> None:
    found = [v for v in result.find(policy, substring) if v.level == level]
    assert found, f"expected a {level} {policy} violation containing {substring!r}; got {result}"


def expect_clean(result: AnalyzeResult) -> None:
    assert not result.violations, f"expected no violations; got {result}"


# --------------------------------------------------------------------------- happy path


def test_happy_path_one_step_healthy_and_baked_passes(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=2)
    expect_clean(analyze(pack, props, name, urn))


def test_no_traffic_change_passes_without_any_gate(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=2)
    props, name, urn = proposed(alb, step=2, since=None)
    expect_clean(analyze(pack, props, name, urn))


# --------------------------------------------------------------------------- valid-weights


def test_weights_not_summing_to_100_are_refused(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=1)
    props["defaultActions"][0]["forward"]["targetGroups"][0]["weight"] = 95  # blue 95, green 10
    expect(analyze(pack, props, name, urn), "valid-weights", "weights summing to 100: found 95 + 10 = 105")


def test_six_target_groups_are_refused(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=1)
    groups = props["defaultActions"][0]["forward"]["targetGroups"]
    groups.extend(copy.deepcopy(groups[0]) | {"weight": 0} for _ in range(4))
    result = analyze(pack, props, name, urn)
    expect(result, "valid-weights", "at most 5 target groups: forward action #1 lists 6")


def test_float_weight_is_refused(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=1)
    props["defaultActions"][0]["forward"]["targetGroups"][1]["weight"] = 10.5
    expect(analyze(pack, props, name, urn), "valid-weights", "has weight 10.5 (not an integer)")


# --------------------------------------------------------------------------- one-step-at-a-time


def test_skipping_a_step_is_refused(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=3)  # 10 -> 50
    expect(analyze(pack, props, name, urn), "one-step-at-a-time", "green 10% -> 50% skips 1 step(s) (25%)")


def test_allow_skip_lets_a_skip_through(aws, pack, configure):
    configure("healthy", one_step_at_a_time={"allowSkip": True})
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=3)
    expect_clean(analyze(pack, props, name, urn))


# --------------------------------------------------------------------------- bake-time


def test_bake_time_not_elapsed_is_refused(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1, since_minutes=2)
    props, name, urn = proposed(alb, step=2)
    result = analyze(pack, props, name, urn)
    expect(result, "bake-time", "blue 90% / green 10% must hold for 10 min before the next promotion: it has held 2.")  # 2.0 or 2.1 on a loaded machine


def test_bake_time_is_configurable(aws, pack, configure):
    # A 2-minute-old step has too little CloudWatch evidence for the relative judge to say pass; it is
    # advisory here so that this test is about bake-time alone.
    configure("healthy", bake_time={"minutes": 1}, healthy_promotion={"judge": "advisory"})
    alb = live_alb(aws, step=1, since_minutes=2)
    props, name, urn = proposed(alb, step=2)
    expect_clean(analyze(pack, props, name, urn))


def test_unknown_age_fails_closed(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1, since_minutes=None)
    props, name, urn = proposed(alb, step=2)
    result = analyze(pack, props, name, urn)
    expect(result, "bake-time", "how long it has held is unknown: the live listener's bluegreen:weights-since tag is unset")


def test_weights_changed_outside_a_checked_update_fail_closed(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1, extra_tags={SINCE: stamp(weights_at(2), 60)})  # stamp says 75/25, live is 90/10
    props, name, urn = proposed(alb, step=2)
    expect(analyze(pack, props, name, urn), "bake-time", "changed outside a checked update")


def test_promotion_must_stamp_the_new_weights(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1)
    props, name, urn = proposed(alb, step=2, since=None)
    expect(analyze(pack, props, name, urn), "bake-time", "must stamp the listener tag bluegreen:weights-since")
    props, name, urn = proposed(alb, step=2, since=stamp(weights_at(2), 90))  # backdated
    expect(analyze(pack, props, name, urn), "bake-time", "must be within 5 min of now")


# --------------------------------------------------------------------------- healthy-promotion


def test_unhealthy_candidate_is_refused(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=1, target_type="instance")
    ec2 = aws.client("ec2")
    ec2.stop_instances(InstanceIds=alb.targets["green"])  # moto: stopped targets are not healthy
    props, name, urn = proposed(alb, step=2)
    result = analyze(pack, props, name, urn)
    expect(result, "healthy-promotion", "green must pass its health gate before it gets more traffic: 8/8 probes of /healthz: HTTP 503")
    expect(result, "healthy-promotion", "0 healthy < 1 required")
    expect(result, "healthy-promotion", "10% -> 25% on the listener on port 80]")


def test_full_rollback_passes_even_with_an_unhealthy_candidate(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=3, since_minutes=1)
    props, name, urn = proposed(alb, step=0)
    expect_clean(analyze(pack, props, name, urn))


def test_partial_rollback_passes(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=3, since_minutes=1)
    props, name, urn = proposed(alb, step=1)
    expect_clean(analyze(pack, props, name, urn))


def test_rollback_claimed_by_the_program_alone_is_a_promotion(aws, pack, configure):
    """The program flips its stable tag to the colour it sends more traffic to: live still says
    blue is stable, so this is a promotion of green and the gate decides."""
    configure("unhealthy")
    alb = live_alb(aws, step=2)
    props, name, urn = proposed(alb, step=3)  # green 25 -> 50
    props["tags"]["bluegreen:stable"] = "green"
    expect(analyze(pack, props, name, urn), "healthy-promotion", "green must pass its health gate")


def test_live_state_unreadable_blocks_a_promotion_and_lets_a_rollback_through(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=2)
    promote, name, urn = proposed(alb, step=3)
    rollback, _, _ = proposed(alb, step=0)
    with aws.enforce_iam():  # moto now rejects the pack's credentials
        blocked = analyze(pack, promote, name, urn)
        allowed = analyze(pack, rollback, name, urn)
    expect(blocked, "healthy-promotion", "cannot be told apart from a promotion: could not read the live load balancer state")
    expect(blocked, "healthy-promotion", "credentials rejected")
    expect(blocked, "bake-time", "how long they have held cannot be told")
    assert not allowed.mandatory, f"a full rollback must pass when live state is unreadable; got {allowed}"
    expect(allowed, "live-state-readable", "forwards 100% to one target group, so it is let through without live verification", level="advisory")


# --------------------------------------------------------------------------- migration-guard


def test_migration_marker_warns_but_never_refuses_a_rollback(aws, pack, configure):
    """Changed deliberately: a rollback is never refused (invariant 5), so migration-guard is advisory."""
    configure("healthy")
    alb = live_alb(aws, step=3)
    props, name, urn = proposed(alb, step=0, **{"bluegreen:colors.green.breakingMigration": True})
    assert props["tags"].get("bluegreen:breaking-migration") == "green", props["tags"]
    result = analyze(pack, props, name, urn)
    expect(result, "migration-guard", "green 50% -> 0% sends requests to blue running against the migrated schema", level="advisory")
    assert result.mandatory == [], result


def test_removing_the_migration_marker_overrides_the_guard(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=3, extra_tags={"bluegreen:breaking-migration": "green"})
    props, name, urn = proposed(alb, step=0)  # the program no longer sets the marker
    expect_clean(analyze(pack, props, name, urn))


def test_migration_marker_does_not_hold_back_a_promotion(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=1, extra_tags={"bluegreen:breaking-migration": "green"})
    props, name, urn = proposed(alb, step=2, **{"bluegreen:colors.green.breakingMigration": True})
    expect_clean(analyze(pack, props, name, urn))


# --------------------------------------------------------------------------- first deploy


def test_preview_of_a_first_deploy_is_skipped_with_an_advisory(aws, pack, configure):
    configure("healthy")
    alb = live_alb(aws, step=0)
    props, name, urn = proposed(alb, step=0)
    props["loadBalancerArn"] = UNKNOWN
    for tg in props["defaultActions"][0]["forward"]["targetGroups"]:
        tg["arn"] = UNKNOWN
    result = analyze(pack, props, name, urn)
    assert not result.mandatory, f"a preview with unknown ARNs must never block; got {result}"
    expect(result, "healthy-promotion", "during preview", level="advisory")
    expect(result, "healthy-promotion", "skipped, not failed", level="advisory")


def test_first_production_listener_at_step_0_passes(aws, pack, configure):
    configure("unhealthy")
    alb = live_alb(aws, step=0)
    aws.client("elbv2").delete_listener(ListenerArn=alb.production_listener)  # LB exists, listener not yet
    props, name, urn = proposed(alb, step=0)
    result = analyze(pack, props, name, urn)
    assert result.mandatory == [], result


# --------------------------------------------------------------------------- probing through the test listener


def test_no_test_listener_fails_closed_without_probing(aws, pack, configure):
    configure("healthy", healthy_promotion={"probeBaseUrl": "", "probeSource": "direct"})  # probe through the live test listener
    alb = live_alb(aws, step=1, test_listener=False)
    props, name, urn = proposed(alb, step=2)
    result = analyze(pack, props, name, urn)
    expect(result, "healthy-promotion", "green must pass its health gate before it gets more traffic, but it cannot be probed: the load balancer has no test listener")


def test_traffic_back_to_the_recorded_stable_passes_whatever_the_labels_say(aws, pack, configure):
    """Changed deliberately: blue is the live-recorded stable target group, so blue gaining is a
    rollback, whatever stable colour label the program writes (it used to be judged as a promotion)."""
    configure("unhealthy", healthy_promotion={"probeBaseUrl": ""})
    alb = live_alb(aws, step=2)
    props, name, urn = proposed(alb, step=1)  # blue gains 75 -> 90 ...
    props["tags"]["bluegreen:stable"] = "green"  # ... and the program's label claims green is stable
    assert analyze(pack, props, name, urn).mandatory == []


def test_the_programs_own_stamp_satisfies_bake_time(aws, pack, configure):
    """No stamp injected by the test: the real program stamps the listener, the pack accepts it."""
    import time as _time

    configure("healthy")
    alb = live_alb(aws, step=1, since_minutes=30)
    live_stamp = stamp(weights_at(1), 30)
    sim = run_program(
        "production", overrides={"bluegreen:rollout.step": 2}, previous_outputs={"weightsSince": live_stamp}, now=_time.time()
    )
    listener = sim.one(LISTENER, "-production")
    props = copy.deepcopy(dict(listener.inputs))
    colors = {r.outputs["arn"]: r.inputs["tags"]["bluegreen:color"] for r in sim.by_type(TG)}
    props["loadBalancerArn"] = alb.load_balancer
    props["port"] = 80
    props["tags"]["bluegreen:stable-tg"] = alb.target_groups[colors[props["tags"]["bluegreen:stable-tg"]]]
    for tg in props["defaultActions"][0]["forward"]["targetGroups"]:
        tg["arn"] = alb.target_groups[colors[tg["arn"]]]
    assert props["tags"][SINCE].endswith("blue=75 green=25") and props["tags"][SINCE] != live_stamp
    result = analyze(pack, props, listener.name, listener.urn)
    assert result.of("bake-time") == [], result.violations
    assert result.mandatory == [], result.violations


@pytest.mark.parametrize("step", [0, 1, 3])
def test_preview_of_a_first_deploy_never_blocks(pack, configure, step):
    """First `pulumi preview`: the ALB and target groups don't exist, so their ARNs are unknown.

    The pack cannot judge traffic yet; it must say so (the SDK's advisory skip) and never block.
    """
    configure("healthy")
    got = program_listener(step)
    props = got["inputs"]
    props["loadBalancerArn"] = UNKNOWN
    for tg in props["defaultActions"][0]["forward"]["targetGroups"]:
        tg["arn"] = UNKNOWN
    result = analyze(pack, props, got["name"], got["urn"])
    assert result.mandatory == [], f"a first-deploy preview was blocked: {result}"
    for policy in ("healthy-promotion", "bake-time", "one-step-at-a-time"):
        expect(result, policy, "not known yet (a first deploy)", level="advisory")
