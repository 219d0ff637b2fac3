"""The stateful adversarial test (issue 9): arbitrary edits, faults and clock moves against the real
pack over gRPC, a moto_server ALB and loopback health servers; every passed update is applied to moto.

After every step: no unhealthy target group gained a share of any route except traffic returning to
the live-recorded stable target group (or the one documented trade-off: a listener forwarding 100%
to one target group while AWS is unreadable for the pack); every rollback proposed passed; the pack
answered within its bound (the gRPC deadline of the client: a late answer is a failed call).

CI runs a short profile; `pytest -m explore tests/test_policy_stateful.py` runs a long one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from rollout.live import read_live_state
from tests.policy_harness import POLICY_DIR, PolicyPackClient, policy_pack_env
from tests.test_policy_traffic import LISTENER, proposed

RULE = "aws:lb/listenerRule:ListenerRule"
COLOURS = ("blue", "green")
LADDERS = ([10, 25, 50, 75, 100], [10, 100], [50, 100])
# The pack's bound: one bounded live read (5 s) plus at most three gates (3 s deadline each) and slack.
ANSWER_BOUND_S = 20.0
TAMPERS = (None, "drop-listener-tag", "stable-tg-other", "no-stable-tg", "ladder-tag", "stale-stamp", "weights-raw")
CONDITIONS = (
    ("http-header", {"httpHeader": {"httpHeaderName": "User-Agent", "values": ["*"]}},
     {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "User-Agent", "Values": ["*"]}}),
    ("path", {"pathPattern": {"values": ["/*"]}}, {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}),
    ("host", {"hostHeader": {"values": ["*.example.com"]}}, {"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}}),
    ("query", {"queryStrings": [{"key": "canary", "value": "1"}]},
     {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "canary", "Value": "1"}]}}),
)


class _Health(BaseHTTPRequestHandler):
    """GET /<colour>-healthz: 200 while that colour is healthy in the model, else 503."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        colour = self.path.strip("/").split("-")[0]
        ok = self.server.healthy.get(colour, False)  # type: ignore[attr-defined]
        body = b"ok" if ok else b"down"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def health_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.daemon_threads = True
    server.healthy = {"blue": True, "green": True}  # type: ignore[attr-defined]
    from tests.fixtures.servers import serving

    with serving(server):
        yield server


@pytest.fixture(scope="module")
def packs(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory):
    """Two pack processes: one reading moto, one whose AWS endpoint is a closed loopback port."""
    from tests.fixtures.servers import free_port

    ok_env = policy_pack_env(moto_endpoint, tmp_path_factory.mktemp("pack-ok"))
    dead_env = policy_pack_env(f"http://127.0.0.1:{free_port()}", tmp_path_factory.mktemp("pack-dead"))
    with PolicyPackClient(POLICY_DIR, env=ok_env, rpc_timeout=ANSWER_BOUND_S) as ok, PolicyPackClient(
        POLICY_DIR, env=dead_env, rpc_timeout=ANSWER_BOUND_S
    ) as dead:
        yield ok, dead


def _stamp(weights: dict[str, int], minutes_ago: float) -> str:
    when = datetime.fromtimestamp(int(time.time() - minutes_ago * 60), timezone.utc)
    return f"{when.strftime('%Y-%m-%dT%H:%M:%SZ')} blue={weights.get('blue', 0)} green={weights.get('green', 0)}"


@dataclass
class World:
    aws: Any
    packs: tuple
    health: ThreadingHTTPServer
    log: list = field(default_factory=list)


def _machine(world: World):
    class Adversary(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            world.aws.reset()
            self.elbv2 = world.aws.client("elbv2")
            self.alb = world.aws.build_alb(stable="blue", candidate_weight=0, health_paths={"blue": "/blue-healthz", "green": "/green-healthz"})
            self.elbv2.add_tags(
                ResourceArns=[self.alb.production_listener],
                Tags=[
                    {"Key": "bluegreen:stable-tg", "Value": self.alb.target_groups["blue"]},
                    {"Key": "bluegreen:steps", "Value": "10/25/50/75/100"},
                    {"Key": "bluegreen:weights-since", "Value": _stamp({"blue": 100, "green": 0}, 60)},
                ],
            )
            world.health.healthy.update(blue=True, green=True)  # type: ignore[attr-defined]
            self.fault = False
            self.priority = 100
            self.ports = [81, 8443, 9000]
            base = f"http://127.0.0.1:{world.health.server_address[1]}"
            for pack in world.packs:
                pack.configure_file(
                    POLICY_DIR / "production.json",
                    {"healthy-promotion": {"probeBaseUrl": base, "probes": 2, "deadlineSeconds": 3, "probeTimeoutSeconds": 1}},
                )

        # -- live facts, read in the test process
        def live(self):
            return read_live_state(self.elbv2, self.alb.load_balancer, strict=False)

        def colour_of(self, arn: str) -> str | None:
            return {v: k for k, v in self.alb.target_groups.items()}.get(arn)

        def stable_colour(self) -> str:
            rec = self.live().record
            return self.colour_of(rec.stable_tg) if rec else "blue"

        # -- judging and applying
        def judge(self, type_: str, props: dict, name: str, *, rollback: bool = False) -> bool:
            pack = world.packs[1] if self.fault else world.packs[0]
            result = pack.analyze(type_, props, name=name)  # a late answer raises (gRPC deadline)
            passed = not result.mandatory
            world.log.append((name, self.fault, passed))
            if rollback:
                assert passed, f"a rollback was refused (fault={self.fault}): {result}"
            return passed

        def check_gain(self, before, after, narrow: bool) -> None:
            """No unhealthy target group gained a share of any route, except a return to the recorded stable."""
            stable = before.record.stable_tg if before.record else None
            old = {(r.listener_arn, r.rule_arn): r.shares for r in before.routes}
            for r in after.routes:
                prior = old.get((r.listener_arn, r.rule_arn), {})
                for arn, share in r.shares.items():
                    colour = self.colour_of(arn)
                    if share > prior.get(arn, 0.0) + 1e-9 and arn != stable and not world.health.healthy.get(colour, False):  # type: ignore[attr-defined]
                        assert self.fault and narrow, (
                            f"unhealthy {colour} gained {prior.get(arn, 0.0):.2f} -> {share:.2f} on {r.listener_arn} {r.rule_arn or 'default'}"
                        )

        def apply_listener(self, props: dict) -> None:
            before = self.live()
            groups = props["defaultActions"][0]["forward"]["targetGroups"]
            self.elbv2.modify_listener(
                ListenerArn=self.alb.production_listener,
                DefaultActions=[{
                    "Type": "forward",
                    "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": g["arn"], "Weight": int(g["weight"])} for g in groups]},
                }],
            )
            live_tags = before.listener_tags.get(self.alb.production_listener, {})
            gone = [k for k in live_tags if k.startswith("bluegreen:") and k not in props["tags"]]
            if gone:
                self.elbv2.remove_tags(ResourceArns=[self.alb.production_listener], TagKeys=gone)
            tags = [{"Key": k, "Value": v} for k, v in props["tags"].items() if isinstance(v, str)]
            self.elbv2.add_tags(ResourceArns=[self.alb.production_listener], Tags=tags)
            narrow = max(g["weight"] for g in groups) == sum(g["weight"] for g in groups)
            self.check_gain(before, self.live(), narrow)

        # -- rules: world and clock
        @rule(colour=st.sampled_from(COLOURS), healthy=st.booleans())
        def set_health(self, colour, healthy):
            world.health.healthy[colour] = healthy  # type: ignore[attr-defined]

        @rule(on=st.booleans())
        def set_fault(self, on):
            self.fault = on

        @rule(minutes=st.sampled_from([2, 11, 60]))
        def time_passes(self, minutes):
            """The clock moves: the live stamp gets older by `minutes` (the pack's clock is the real one)."""
            live = self.live()
            since = live.record.since if live.record else None
            if since:
                when = datetime.strptime(since.split()[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
                older = datetime.fromtimestamp(int(when - minutes * 60), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                self.elbv2.add_tags(
                    ResourceArns=[self.alb.production_listener],
                    Tags=[{"Key": "bluegreen:weights-since", "Value": " ".join([older, *since.split()[1:]])}],
                )

        # -- rules: config edits and program edits, applied when the pack passes them
        @rule(
            stable=st.sampled_from(COLOURS), ladder=st.sampled_from(LADDERS), step=st.integers(0, 5),
            tamper=st.sampled_from(TAMPERS), w=st.integers(0, 100), green_ok=st.booleans(),
        )
        def propose_config(self, stable, ladder, step, tamper, w, green_ok):
            world.health.healthy["green"] = green_ok  # type: ignore[attr-defined]
            step = min(step, len(ladder))
            overrides = {"bluegreen:rollout.stable": stable, "bluegreen:rollout.steps": ladder}
            props, name, urn = proposed(self.alb, step, **overrides)
            tags = props["tags"]
            if tamper == "drop-listener-tag":
                tags.pop("bluegreen:listener", None)
            elif tamper == "stable-tg-other":
                other = "green" if self.colour_of(tags["bluegreen:stable-tg"]) == "blue" else "blue"
                tags["bluegreen:stable-tg"] = self.alb.target_groups[other]
            elif tamper == "no-stable-tg":
                tags.pop("bluegreen:stable-tg", None)
            elif tamper == "ladder-tag":
                tags["bluegreen:steps"] = "10/100"
            elif tamper == "stale-stamp":
                weights = {self.colour_of(g["arn"]): int(g["weight"]) for g in props["defaultActions"][0]["forward"]["targetGroups"]}
                tags["bluegreen:weights-since"] = _stamp(weights, 90)
            elif tamper == "weights-raw":
                groups = props["defaultActions"][0]["forward"]["targetGroups"]
                groups[0]["weight"], groups[1]["weight"] = 100 - w, w
                tags["bluegreen:weights-since"] = _stamp({self.colour_of(g["arn"]): g["weight"] for g in groups}, 0)
            if self.judge(LISTENER, props, name):
                self.apply_listener(props)

        @rule(data=st.data())
        def propose_rollback(self, data):
            """What `rollout rollback` writes: the live stable colour and ladder, a lower step."""
            live = self.live()
            rec = live.record
            if rec is None or live.listener_route(80) is None:
                return
            stable = self.colour_of(rec.stable_tg)
            ladder = [int(x) for x in (rec.steps or "10/25/50/75/100").split("/")]
            candidate_share = round(sum(s for a, s in live.listener_route(80).shares.items() if a != rec.stable_tg) * 100)
            rungs = [0, *ladder]
            if candidate_share not in rungs or candidate_share == 0:
                return
            current = rungs.index(candidate_share)
            to = data.draw(st.integers(0, current - 1)) if not self.fault else 0  # partial rollbacks need a readable listener
            props, name, urn = proposed(self.alb, to, **{"bluegreen:rollout.stable": stable, "bluegreen:rollout.steps": ladder})
            self.judge(LISTENER, props, name, rollback=True)
            self.apply_listener(props)

        @rule(colour=st.sampled_from(COLOURS), cond=st.sampled_from(CONDITIONS), ok=st.booleans())
        def propose_rule(self, colour, cond, ok=True):
            world.health.healthy[colour] = ok  # type: ignore[attr-defined]
            _, pulumi_cond, aws_cond = cond
            self.priority += 1
            arn = self.alb.target_groups[colour]
            props = {
                "listenerArn": self.alb.production_listener,
                "priority": self.priority,
                "conditions": [pulumi_cond],
                "actions": [{"type": "forward", "targetGroupArn": arn}],
            }
            if self.judge(RULE, props, f"rule-{self.priority}"):
                before = self.live()
                self.elbv2.create_rule(
                    ListenerArn=self.alb.production_listener, Priority=self.priority, Conditions=[aws_cond],
                    Actions=[{"Type": "forward", "TargetGroupArn": arn}],
                )
                self.check_gain(before, self.live(), narrow=False)

        @precondition(lambda self: bool(self.ports))
        @rule(colour=st.sampled_from(COLOURS), ok=st.booleans())
        def propose_extra_listener(self, colour, ok):
            world.health.healthy[colour] = ok  # type: ignore[attr-defined]
            port = self.ports[0]
            props = {  # HTTPS as the baseline wants, so only the gate decides (moto gets an HTTP copy of the route)
                "loadBalancerArn": self.alb.load_balancer, "port": port, "protocol": "HTTPS",
                "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/test", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                "defaultActions": [{"type": "forward", "targetGroupArn": self.alb.target_groups[colour]}],
                "tags": {},
            }
            if self.judge(LISTENER, props, f"extra-{port}"):
                before = self.live()
                self.ports.pop(0)
                self.elbv2.create_listener(
                    LoadBalancerArn=self.alb.load_balancer, Protocol="HTTP", Port=port,
                    DefaultActions=[{"Type": "forward", "TargetGroupArn": self.alb.target_groups[colour]}],
                )
                self.check_gain(before, self.live(), narrow=True)

        @invariant()
        def record_points_at_a_colour(self):
            rec = self.live().record
            assert rec is None or self.colour_of(rec.stable_tg) in COLOURS, rec

    return Adversary


def _run(aws, packs, health_server, *, examples: int, steps: int) -> World:
    world = World(aws, packs, health_server)
    run_state_machine_as_test(
        _machine(world),
        settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None,
            suppress_health_check=list(HealthCheck), derandomize=False,
        ),
    )
    return world


def test_adversary_short(aws, packs, health_server):
    world = _run(aws, packs, health_server, examples=6, steps=10)
    assert world.log, "the machine judged nothing"


@pytest.mark.explore
def test_adversary_long(aws, packs, health_server):
    started = time.monotonic()
    world = _run(aws, packs, health_server, examples=40, steps=20)
    passed = sum(1 for _, _, p in world.log if p)
    print(f"\nexplore: {len(world.log)} verdicts ({passed} passed, {sum(1 for _, f, _ in world.log if f)} under fault) "
          f"in {time.monotonic() - started:.0f} s")
