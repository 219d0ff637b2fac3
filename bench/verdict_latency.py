"""Verdict latency of the production listener: what `pulumi up` waits for, end to end over gRPC.

The production listener is the one resource whose check reads live AWS and runs the health gate.
Here the real pack (`python policy`, started by rollout.analyzer.PolicyPackClient as the engine
starts it, configured from policy/production.json) judges the listener the real program registers
(rollout.simulate, step overrides), its ARNs pointed at a moto ALB. boto3 in the pack talks to an
`AwsProxy` in front of moto_server that adds 50 ms to every AWS call (or never answers), and counts
the calls; the health endpoint is a loopback server (healthy, 503, or hung).

Scenarios (live step -> proposed step):
  healthy promotion        1 -> 2, /healthz 200                    expected: allowed
  refused promotion        1 -> 2, /healthz 503                    expected: refused by healthy-promotion
  rollback                 3 -> 0                                   expected: allowed
  rollback, AWS hung       3 -> 0, every AWS call hangs             expected: allowed (faults fail open)
  promotion, health hung   1 -> 2, /healthz never answers           expected: refused by healthy-promotion
Targets: rollback <= 1 s at 50 ms per AWS call and <= 6 s when AWS hangs; promotion <= the gate's
deadline + 1 s; one read of live state per Analyze (counted at the proxy as DescribeLoadBalancers,
which rollout.live.read_live_state calls exactly once per read).
Each Analyze carries a distinct bench tag, so no state cached from an earlier verdict can answer it
(the engine starts a fresh pack per `pulumi up`).
Run: .venv/bin/python bench/verdict_latency.py [--reps N] [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sys.path)
from _common import Verdicts, ci_text, med, until_decided

import boto3

from rollout.analyzer import POLICY_DIR, PolicyPackClient, policy_pack_env
from rollout.desired import TAG_LISTENER, TAG_SINCE, TAG_STABLE_TG, TAG_STEPS, format_since
from rollout.gate import GateThresholds
from rollout.simulate import run_program
from servers import AwsProxy, HangingServer
from tests.fixtures.aws import REGION, AwsEnv, moto_server

LISTENER = "aws:lb/listener:Listener"
LADDER = (10, 25, 50, 75, 100)
READ_MARK = "DescribeLoadBalancers"  # one per read_live_state
HUNG_AWS_S = 6.0
ROLLBACK_S = 1.0


def weights(step: int) -> dict[str, int]:
    w = 0 if step == 0 else LADDER[step - 1]
    return {"blue": 100 - w, "green": w}


# name: (live step, proposed step, health status or None = hung, AWS hung, expected refused)
SCENARIOS = {
    "healthy promotion": (1, 2, 200, False, False),
    "refused promotion": (1, 2, 503, False, True),
    "rollback": (3, 0, 200, False, False),
    "rollback, AWS hung": (3, 0, 200, True, False),
    "promotion, health hung": (1, 2, None, False, True),
}


class Bench:
    def __init__(self, scratch: Path, moto: str, delay_s: float):
        self.aws = AwsEnv(moto, boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"))
        self.alb = self.aws.build_alb(candidate_weight=0)
        # What CloudWatch would hold for a healthy step: both colours at the same 0.1 % 5xx rate, so the
        # relative judge can say pass (a promotion needs its pass, not only the probes').
        self.aws.put_minutes(self.alb, stable=(20000, 20), candidate=(2000, 2), ago=range(2, 40))
        self.elbv2 = self.aws.client("elbv2")
        self.proxy = AwsProxy(moto, delay_s)
        self.health = HangingServer()
        self.pack = PolicyPackClient(POLICY_DIR, env=policy_pack_env(self.proxy.url, scratch), rpc_timeout=120).start()
        cfg = json.loads((POLICY_DIR / "production.json").read_text())
        self.sent = self.pack.configure_file(
            POLICY_DIR / "production.json", {"healthy-promotion": {"probeBaseUrl": self.health.url.rsplit("/healthz", 1)[0]}}
        )
        self.deadline_s = GateThresholds.from_mapping(
            {k: v for k, v in self.sent["healthy-promotion"]["properties"].items() if k in GateThresholds.json_schema()}
        ).deadline_s
        self.bake_min = float(cfg.get("bake-time", {}).get("minutes", 10))
        self.serial = itertools.count()
        self.strays = False  # the last verdict left hung calls behind
        self.sims = {s: run_program("production", overrides={"bluegreen:rollout.step": s}) for s in {p for _, p, *_ in SCENARIOS.values()}}

    def close(self):
        self.proxy.release()
        self.health.release()
        self.pack.stop()
        self.proxy.stop()
        self.health.stop()

    def set_live(self, step: int) -> None:
        """The moto ALB's production listener at `step`, baked for twice the bake time."""
        w = weights(step)
        tgs = self.alb.target_groups
        self.elbv2.modify_listener(ListenerArn=self.alb.production_listener, DefaultActions=[{
            "Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tgs[c], "Weight": w[c]} for c in ("blue", "green")]}}])
        tags = {TAG_STEPS: "/".join(map(str, LADDER)), TAG_SINCE: format_since(time.time() - 120 * self.bake_min, w),
                TAG_STABLE_TG: tgs["blue"]}  # the live record: blue is the stable target group
        self.elbv2.add_tags(ResourceArns=[self.alb.production_listener], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def proposed(self, step: int) -> tuple[dict, str, str]:
        sim = self.sims[step]
        listener = next(r for r in sim.by_type(LISTENER) if (r.inputs.get("tags") or {}).get(TAG_LISTENER) == "production")
        colors = {r.outputs["arn"]: r.inputs["tags"]["bluegreen:color"] for r in sim.by_type("aws:lb/targetGroup:TargetGroup")}
        props = json.loads(json.dumps(dict(listener.inputs)))
        props["loadBalancerArn"] = self.alb.load_balancer
        for tg in props["defaultActions"][0]["forward"]["targetGroups"]:
            tg["arn"] = self.alb.target_groups[colors[tg["arn"]]]
        props["tags"][TAG_SINCE] = format_since(time.time(), weights(step))
        # The moto listener stands for the program's: same port, and the record names moto's target group.
        props["port"] = self.elbv2.describe_listeners(ListenerArns=[self.alb.production_listener])["Listeners"][0]["Port"]
        if props["tags"].get(TAG_STABLE_TG) in colors:
            props["tags"][TAG_STABLE_TG] = self.alb.target_groups[colors[props["tags"][TAG_STABLE_TG]]]
        props["tags"]["bluegreen-bench:verdict"] = str(next(self.serial))  # a new resource state: nothing cached answers it
        return props, listener.name, listener.urn

    def settle(self) -> None:
        """Wait until the pack's stray calls (retries of released hung calls) stop, then reset the count."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 1.5:
            time.sleep(0.25)
            if self.proxy.take():
                quiet_since = time.monotonic()

    def verdict(self, scenario: str) -> tuple[float, bool, collections.Counter, object]:
        live, step, status, aws_hung, _ = SCENARIOS[scenario]
        self.set_live(live)
        props, name, urn = self.proposed(step)
        self.health.arm(10**9 if status is None else 0, status or 200)
        if self.strays:
            self.settle()
        self.proxy.take()
        self.strays = aws_hung
        if aws_hung:
            self.proxy.hang()
        t0 = time.perf_counter()
        result = self.pack.analyze(LISTENER, props, name=name, urn=urn)
        wall = time.perf_counter() - t0
        calls = self.proxy.take()
        self.proxy.release()
        self.health.release()
        return wall, bool(result.mandatory), calls, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=6, help="minimum repetitions per scenario (more while a verdict is undecided)")
    ap.add_argument("--max-reps", type=int, default=12)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    a = ap.parse_args(argv)
    walls: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    refused: dict[str, set[bool]] = {s: set() for s in SCENARIOS}
    calls: dict[str, list[collections.Counter]] = {s: [] for s in SCENARIOS}
    messages: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bluegreen-bench-verdict-") as tmp, moto_server(Path(tmp) / "moto.log") as moto:
        bench = Bench(Path(tmp), moto, a.delay_ms / 1000)
        try:
            bench.verdict("rollback")  # warm-up: the pack's first boto3 client, first gRPC call
            targets = {s: target_of(s, bench.deadline_s) for s in SCENARIOS}

            def one_round() -> None:
                for s in SCENARIOS:
                    wall, was_refused, counted, result = bench.verdict(s)
                    walls[s].append(wall)
                    refused[s].add(was_refused)
                    calls[s].append(counted)
                    if was_refused:
                        messages[s] = "; ".join(f"{v.policy}: {v.message.splitlines()[-1][:160]}" for v in result.mandatory)

            def undecided() -> bool:
                return any(_common.at_most(walls[s], targets[s][0]) == _common.UNDECIDED for s in SCENARIOS)

            rounds = until_decided(one_round, undecided, min_rounds=a.reps, max_rounds=a.max_reps)
        finally:
            bench.close()
    lines = [f"The production listener judged over gRPC by `python policy` (production.json; gate deadline {bench.deadline_s:g} s), "
             f"AWS = moto_server behind a proxy adding {a.delay_ms:g} ms per call, {rounds} interleaved rounds. "
             "Wall time per Analyze (every policy of the pack on the one resource), median (95% CI).", "",
             "| scenario | verdict | wall (s) | AWS calls per verdict | live-state reads | calls by operation (last rep) |", "|---|---|---|---|---|---|"]
    v = Verdicts()
    for s, (_, _, _, _, expect_refused) in SCENARIOS.items():
        totals = [sum(c.values()) for c in calls[s]]
        reads = [c[READ_MARK] for c in calls[s]]
        ops = ", ".join(f"{k} {n}" for k, n in sorted(calls[s][-1].items()))
        outcome = "refused" if refused[s] == {True} else "allowed" if refused[s] == {False} else "mixed"
        lines.append(f"| {s} | {outcome} | {ci_text(walls[s])} | {med(totals):g} [{min(totals)}-{max(totals)}] | {max(reads)} | {ops or '-'} |")
        limit, limit_text = targets[s]
        v.timing(f"{s}: verdict latency", walls[s], limit, limit_text, " s")
        v.add(f"{s}: verdict", outcome, "refused" if expect_refused else "allowed", refused[s] == {expect_refused})
        v.add(f"{s}: live-state reads per Analyze", f"max {max(reads)} (calls {med(totals):g})", "<= 1", max(reads) <= 1)
    if messages:
        lines += ["", "Why refused (last rep): " + " | ".join(f"{s}: {m}" for s, m in messages.items())]
    return v.finish("verdict latency", lines)


def target_of(scenario: str, deadline_s: float) -> tuple[float, str]:
    if scenario == "rollback, AWS hung":
        return HUNG_AWS_S, f"<= {HUNG_AWS_S:g} s"
    if scenario == "rollback":
        return ROLLBACK_S, f"<= {ROLLBACK_S:g} s"
    return deadline_s + 1, f"<= gate deadline + 1 = {deadline_s + 1:g} s"


if __name__ == "__main__":
    raise SystemExit(main())
