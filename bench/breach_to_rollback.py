"""Breach -> traffic on stable: the reflex's real Lambda handler at its real cadence against moto_server.

Topology (all on 127.0.0.1): a `moto_server` process holds the ALB (production listener blue 75 / green
25, the test listener on the candidate's port, the load balancer's network interface at 127.0.0.1); the
candidate is a real HTTP server (tests/fixtures/candidate.py). An EventBridge stand-in invokes
`rollout.reflex_lambda.handler` every 60 s (a context with 60 s to live), exactly as deployed: checks
every 5 s for 50 s, 2 consecutive bad checks make a breach, 5 probes of 2 s each per check.

Trials: at `t0` (a chosen phase of the minute, counted from an invocation's start) the candidate starts
failing -- dead (connection refused), 5xx (503), slow (answers after 3 s > the 2 s probe timeout).
Measured: t0 -> the listener's forward action is 100 % on stable (polled every 0.1 s). The phase
after the invocation's last check (47 s) is the worst case: the breach waits for the next invocation.
Then a long healthy run: never a rollback of a healthy candidate.

Goals: <= 30 s for a dead or unhealthy (5xx, slow) candidate at every phase; 0 rollbacks in the healthy
run. Prints a verdict per goal; exit 1 on a miss.

Statistical regression (`--part statistical`): the judge signal. 50 req/s in total, split by the step's
weights (Poisson per minute, numpy); stable's error rate 1 %; at t0 the candidate's becomes 5x while it
carries its step's weight. Each simulated minute's counts go into moto's CloudWatch as the ALB publishes
them (put_metric_data into AWS/ApplicationELB, RequestCount and HTTPCode_Target_5XX_Count, dimensions
TargetGroup + LoadBalancer, one datum per minute, published when the minute ends; a zero count is not
published, as the ALB does not). The reflex runs at its real cadence -- an invocation per minute, a
check every 5 s for 50 s, the judge read at an invocation's first check -- on a SCALED clock: the
reflex's own `run` (what the Lambda handler calls, with the same settings and clients) gets a virtual
clock and a sleep that advances it, so an hour of reflex time takes seconds; every AWS call is real
(moto_server), probes are off (no interface addresses: only the judge can breach). The reflex judges
errors only (no slow-request threshold), so moto's lack of the trimmed-count statistic TC(x:) does not
arise. Measured: t0 -> the virtual time modify_listener returned; goal <= 3 min. Then a long healthy run
(candidate at stable's rate, steps 10/25/50/75 of 15 min each, repeated): false rollbacks, goal 0.

Run: .venv/bin/python bench/breach_to_rollback.py [--part fast|statistical|all] [--healthy-seconds 180]
     [--healthy-minutes 240] [--record]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import _common  # noqa: F401 - repo on sys.path
from _common import record

import boto3
import requests

from rollout import reflex_lambda
from rollout.desired import TAG_SINCE, format_since
from rollout.judge import Minute
from rollout.reflex import TAG_ABORTED, TAG_STABLE_TG, ReflexSettings, judge_step, run
from tests.fixtures.candidate import CandidateServer
from tests.fixtures.servers import free_port

REGION = "us-east-1"
GOAL_S = 30.0
EXAMPLE_AMI = "ami-12c6146b"  # one of moto's built-in AMIs
TRIALS = (("dead", 10.0), ("dead", 47.0), ("5xx", 20.0), ("slow", 30.0))


# --------------------------------------------------------------------------- moto_server


class Moto:
    """A moto_server process on a free loopback port, and boto3 aimed at it through the environment."""

    def __init__(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        exe = Path(sys.executable).with_name("moto_server")
        self.log = open(os.devnull, "wb")
        self.proc = subprocess.Popen([str(exe) if exe.exists() else "moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.post(f"{self.url}/moto-api/reset", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
        os.environ.update({
            "AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
        })
        self.session = boto3.session.Session(region_name=REGION)

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.url)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def build_alb(moto: Moto, name: str, port: int) -> dict[str, str]:
    """Blue stable (75 %), green candidate (25 %), the test listener on `port`, the ALB's interface at 127.0.0.1."""
    ec2, elbv2 = moto.client("ec2"), moto.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets, Scheme="internet-facing", Type="application")["LoadBalancers"][0]
    tgs = {}
    for i, colour in enumerate(("blue", "green")):
        tgs[colour] = elbv2.create_target_group(
            Name=f"{name}-{colour}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip", HealthCheckPath="/healthz",
            Tags=[{"Key": "bluegreen:color", "Value": colour}],
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=tgs[colour], Targets=[{"Id": f"10.30.1.{10 + 10 * i + n}", "Port": 8080} for n in range(2)])
    prod = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": tgs["blue"], "Weight": 75}, {"TargetGroupArn": tgs["green"], "Weight": 25}]}}],
        Tags=[{"Key": "bluegreen:listener", "Value": "production"}, {"Key": "bluegreen:stable", "Value": "blue"},
              {"Key": TAG_STABLE_TG, "Value": tgs["blue"]}],
    )["Listeners"][0]["ListenerArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs["green"]}], Tags=[{"Key": "bluegreen:listener", "Value": "test"}],
    )
    lb_id = lb["LoadBalancerArn"].split(":loadbalancer/")[1]
    eni = ec2.create_network_interface(SubnetId=subnets[0], PrivateIpAddress="127.0.0.1", Description=f"ELB {lb_id}")
    host = ec2.run_instances(ImageId=EXAMPLE_AMI, MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0]["InstanceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterface"]["NetworkInterfaceId"], InstanceId=host, DeviceIndex=1)
    return {"lb": lb["LoadBalancerArn"], "listener": prod, "blue": tgs["blue"], "green": tgs["green"]}


# --------------------------------------------------------------------------- EventBridge stand-in


class _Context:
    """What Lambda hands the handler: the time left before the function's timeout (60 s)."""

    def __init__(self, timeout_s: float = 60.0):
        self.deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.deadline - time.monotonic()) * 1000)


class Schedule:
    """Invokes the real handler every `period_s`, each invocation on its own thread (as Lambda may overlap)."""

    def __init__(self, period_s: float = 60.0):
        self.period_s = period_s
        self.stop_event = threading.Event()
        self.results: list[dict] = []
        self.started = 0.0
        self.invoked = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def _invoke(self) -> None:
        try:
            self.results.append(reflex_lambda.handler({}, _Context()))
        except Exception as exc:  # noqa: BLE001 - a crash is a result too
            self.results.append({"error": repr(exc)})

    def _loop(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            threading.Thread(target=self._invoke, daemon=True).start()
            n += 1
            self.invoked = n
            self.stop_event.wait(max(0.0, self.started + n * self.period_s - time.monotonic()))

    def stop(self) -> None:
        self.stop_event.set()

    def wait_for_invocations(self, timeout_s: float = 70.0) -> None:
        """Until every started invocation has returned (they run up to a minute)."""
        deadline = time.monotonic() + timeout_s
        while len(self.results) < self.invoked and time.monotonic() < deadline:
            time.sleep(0.2)


def set_env(alb: dict[str, str]) -> None:
    settings = ReflexSettings(stack="bench", load_balancer_arn=alb["lb"], listener_arn=alb["listener"],
                              probes=5, timeout_s=2.0, interval_s=5.0, budget_s=50.0, breach_checks=2)
    for key in ReflexSettings.ENV.values():
        os.environ.pop(key, None)
    os.environ.update(settings.to_env())


def on_stable(elbv2, alb: dict[str, str]) -> bool:
    (ls,) = elbv2.describe_listeners(ListenerArns=[alb["listener"]])["Listeners"]
    groups = {g["TargetGroupArn"]: g["Weight"] for g in ls["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}
    return groups.get(alb["blue"]) == 100 and groups.get(alb["green"], 0) == 0


def trial(moto: Moto, n: int, fault: str, phase_s: float) -> float | None:
    """Seconds from the candidate's breach to the listener on stable; None if not within 120 s."""
    server = CandidateServer()
    alb = build_alb(moto, f"bench{n}", server.port)
    set_env(alb)
    elbv2 = moto.client("elbv2")
    sched = Schedule()
    sched.start()
    try:
        time.sleep(max(0.0, sched.started + phase_s - time.monotonic()))
        t0 = time.monotonic()
        server.fail(fault, delay_s=3.0)
        while time.monotonic() - t0 < 120:
            if on_stable(elbv2, alb):
                return time.monotonic() - t0
            time.sleep(0.1)
        return None
    finally:
        sched.stop()
        server.stop()


def healthy_run(moto: Moto, seconds: float) -> tuple[int, bool, int, int]:
    """(rollbacks the handler reported, listener moved or marked, checks, invocations) over `seconds`
    of a healthy candidate carrying 25 %."""
    server = CandidateServer()
    alb = build_alb(moto, "benchhealthy", server.port)
    set_env(alb)
    sched = Schedule()
    sched.start()
    try:
        time.sleep(seconds)
        sched.stop()
        sched.wait_for_invocations()
    finally:
        sched.stop()
        server.stop()
    elbv2 = moto.client("elbv2")
    (tags,) = elbv2.describe_tags(ResourceArns=[alb["listener"]])["TagDescriptions"]
    touched = on_stable(elbv2, alb) or any(t["Key"] == TAG_ABORTED for t in tags["Tags"])
    errors = [r["error"] for r in sched.results if "error" in r]
    if errors:
        print("handler errors:", errors[:3], flush=True)
    rollbacks = sum(1 for r in sched.results if r.get("rollback"))
    return rollbacks, touched, sum(r.get("checks", 0) for r in sched.results), len(sched.results)


# --------------------------------------------------------------------------- statistical regression, scaled clock

RPS = 50.0  # total production requests per second
BASE_ERROR = 0.01  # stable's error rate (target 5xx per request)
REGRESSION = 5.0  # the candidate's error rate after t0, as a multiple of stable's
STAT_GOAL_S = 180.0
# (candidate weight %, healthy minutes of the step before t0, t0's second within its minute)
STAT_TRIALS = ((25, 0, 0), (25, 20, 40), (10, 0, 20), (10, 20, 50), (50, 5, 10), (25, 45, 30))
INVOKE_OFFSET_S = 3.0  # EventBridge fires a few seconds into the minute


class VirtualClock:
    """The reflex's clock and wall clock on a virtual time line; its sleep advances it at once."""

    def __init__(self, start: float):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


class Traffic:
    """The ALB's per-minute CloudWatch counts of both target groups, published as each minute ends."""

    def __init__(self, moto: Moto, alb: dict[str, str], seed: int):
        import numpy as np

        self.cw = moto.client("cloudwatch")
        self.alb = alb
        self.rng = np.random.default_rng(seed)
        self.weight = 0  # candidate %
        self.t0: float | None = None  # when the candidate's error rate becomes REGRESSION x stable's
        self.published_to = 0.0  # minutes before this are published

    def _dims(self, colour: str) -> list[dict[str, str]]:
        return [{"Name": "TargetGroup", "Value": self.alb[colour].split(":")[-1]},
                {"Name": "LoadBalancer", "Value": self.alb["lb"].split(":loadbalancer/")[-1]}]

    def publish_until(self, now: float) -> None:
        """Every whole minute that has ended by `now` and is not published yet."""
        minute = self.published_to
        while minute + 60 <= now:
            self._publish(minute)
            minute += 60
        self.published_to = minute

    def _publish(self, minute: float) -> None:
        from datetime import datetime, timezone

        rate = RPS * 60
        n_c = int(self.rng.poisson(rate * self.weight / 100))
        n_s = int(self.rng.poisson(rate * (100 - self.weight) / 100))
        bad_share = 0.0 if self.t0 is None else min(1.0, max(0.0, (minute + 60 - self.t0) / 60))
        after = int(self.rng.binomial(n_c, bad_share))
        counts = {
            "blue": (n_s, int(self.rng.binomial(n_s, BASE_ERROR))),
            "green": (n_c, int(self.rng.binomial(n_c - after, BASE_ERROR)) + int(self.rng.binomial(after, BASE_ERROR * REGRESSION))),
        }
        at = datetime.fromtimestamp(minute + 30, timezone.utc)
        data = []
        for colour, (requests_n, errors) in counts.items():
            for metric, value in (("RequestCount", requests_n), ("HTTPCode_Target_5XX_Count", errors)):
                if value:
                    data.append({"MetricName": metric, "Dimensions": self._dims(colour), "Timestamp": at, "Value": float(value), "Unit": "Count"})
        if data:
            self.cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data)


def set_step(elbv2, alb: dict[str, str], weight: int, at: float) -> None:
    """The step's weights on the production listener and its bake clock, as a `pulumi up` of the step leaves them."""
    elbv2.modify_listener(ListenerArn=alb["listener"], DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": alb["blue"], "Weight": 100 - weight}, {"TargetGroupArn": alb["green"], "Weight": weight}]}}])
    elbv2.remove_tags(ResourceArns=[alb["listener"]], TagKeys=[TAG_ABORTED])
    elbv2.add_tags(ResourceArns=[alb["listener"]], Tags=[{"Key": TAG_SINCE, "Value": format_since(at, {"blue": 100 - weight, "green": weight})}])


def _settings(alb: dict[str, str]) -> ReflexSettings:
    return ReflexSettings(stack="bench", load_balancer_arn=alb["lb"], listener_arn=alb["listener"],
                          probes=5, timeout_s=2.0, interval_s=5.0, budget_s=50.0, breach_checks=2)


def _invoke(moto: Moto, alb: dict[str, str], clock: VirtualClock, clients: dict):
    return run(_settings(alb), elbv2=clients["elbv2"], ec2=clients["ec2"], cloudwatch=clients["cloudwatch"], addresses=lambda: [],
               notify=lambda text: "", clock=clock, wall=clock, sleep=clock.sleep)


def _virtual_start() -> float:
    """A minute boundary well in the past: every virtual minute's datapoints are history to CloudWatch."""
    return math.floor((time.time() - 2 * 24 * 3600) / 60) * 60


def stat_trial(moto: Moto, n: int, weight: int, healthy_min: int, phase_s: float) -> tuple[float | None, str]:
    """Virtual seconds from t0 to the listener on stable (None: not within 15 min), and the marker."""
    alb = build_alb(moto, f"stat{n}", 8080)
    clients = {k: moto.client(k) for k in ("elbv2", "ec2", "cloudwatch")}
    start = _virtual_start()
    set_step(clients["elbv2"], alb, weight, start)
    traffic = Traffic(moto, alb, seed=1000 + n)
    traffic.weight, traffic.published_to = weight, start
    t0 = start + 60 * healthy_min + phase_s
    traffic.t0 = t0
    k = 0
    while True:
        at = start + 60 * k + INVOKE_OFFSET_S
        if at > t0 + 900:
            return None, ""
        traffic.publish_until(at)
        clock = VirtualClock(at)
        report = _invoke(moto, alb, clock, clients)
        if report.moved_at is not None:
            took = report.moved_at - t0
            if took < 0:
                return took, f"rolled back before the breach: {report.to_dict()}"
            return took, report.rollback.marker if report.rollback else ""
        k += 1


def stat_healthy(moto: Moto, minutes: int, step_minutes: int = 15) -> tuple[int, int, int, dict[str, int]]:
    """(false rollbacks, of which by the change detector, steps, verdict counts) over `minutes` virtual minutes of a healthy candidate."""
    alb = build_alb(moto, "stathealthy", 8080)
    clients = {k: moto.client(k) for k in ("elbv2", "ec2", "cloudwatch")}
    start = _virtual_start() - 60 * minutes  # further back, so the trials' minutes never overlap it
    traffic = Traffic(moto, alb, seed=7)
    traffic.published_to = start
    weights = (10, 25, 50, 75)
    false, changes, steps, verdicts = 0, 0, 0, {}
    for m in range(minutes):
        at = start + 60 * m
        if m % step_minutes == 0:
            traffic.publish_until(at)
            traffic.weight = weights[(m // step_minutes) % len(weights)]
            set_step(clients["elbv2"], alb, traffic.weight, at)
            steps += 1
        traffic.publish_until(at + INVOKE_OFFSET_S)
        report = _invoke(moto, alb, VirtualClock(at + INVOKE_OFFSET_S), clients)
        verdict = report.judge.verdict if report.judge is not None else "not read"
        verdicts[str(verdict)] = verdicts.get(str(verdict), 0) + 1
        if report.rollback is not None:
            false += 1
            changes += "a change" in (report.breach.detail if report.breach else "")
            print(f"FALSE ROLLBACK at minute {m}: {report.breach.detail if report.breach else report.to_dict()}", flush=True)
            set_step(clients["elbv2"], alb, traffic.weight, at + 60)  # a human re-deploys the step
    return false, changes, steps, verdicts


def decisions_healthy(minutes: int, step_minutes: int = 15, seed: int = 11) -> tuple[dict[str, int], int]:
    """({"step": false fails of the step's verdict, "change": of the change detector}, steps): the reflex's judge decision (`judge_step`, the code `look_at_judge` runs on
    what it read) once a minute over `minutes` simulated healthy minutes, without AWS: many more
    minutes than the end-to-end run can afford."""
    import numpy as np

    rng = np.random.default_rng(seed)
    settings = ReflexSettings("bench", "lb", "l")
    weights = (10, 25, 50, 75)
    false = {"step": 0, "change": 0}
    steps = 0
    window: list[Minute] = []
    for m in range(minutes):
        if m % step_minutes == 0:
            window, steps = [], steps + 1
        w = weights[(m // step_minutes) % len(weights)]
        n_c, n_s = (int(x) for x in rng.poisson([RPS * 60 * w / 100, RPS * 60 * (100 - w) / 100]))
        window.append(Minute(n_s, n_c, {"errors": int(rng.binomial(n_s, BASE_ERROR))}, {"errors": int(rng.binomial(n_c, BASE_ERROR))}))
        verdict, _, reason = judge_step(settings, window[:-1], ("errors",))  # the newest minute is not read yet (ALB lag)
        if verdict == "fail":
            false["change" if "a change" in reason else "step"] += 1
            window = []
    return false, steps


def statistical(moto: Moto, healthy_minutes: int, decision_minutes: int = 20000) -> tuple[list[str], bool]:
    lines = [f"Scaled clock: the reflex's `run` with a virtual clock (an invocation a virtual minute, checks every 5 virtual s for 50 s); "
             f"{RPS:g} req/s in total, stable error rate {BASE_ERROR:.0%}, candidate {REGRESSION:g}x from t0; counts put into moto's CloudWatch per minute.",
             "", "| candidate weight | healthy minutes of the step before t0 | t0 (s into its minute) | t0 -> on stable (virtual s) | marker | goal | verdict |",
             "|---|---|---|---|---|---|---|"]
    ok = True
    for n, (weight, healthy_min, phase) in enumerate(STAT_TRIALS):
        t_real = time.monotonic()
        took, marker = stat_trial(moto, n, weight, healthy_min, phase)
        good = took is not None and 0 <= took <= STAT_GOAL_S
        ok &= good
        shown = "no rollback in 15 min" if took is None else f"{took:.0f}"
        lines.append(f"| {weight} % | {healthy_min} | {phase:.0f} | {shown} | `{marker}` | <= {STAT_GOAL_S:.0f} s | {'PASS' if good else 'MISS'} |")
        print(lines[-1], f"({time.monotonic() - t_real:.0f} s real)", flush=True)
    t_real = time.monotonic()
    false, changes, steps, verdicts = stat_healthy(moto, healthy_minutes)
    good = changes == 0
    ok &= good
    lines += ["", f"healthy candidate (its error rate = stable's) for {healthy_minutes} virtual minutes, {steps} steps of 15 min "
                  f"(10/25/50/75 %), one invocation a minute, end to end: {false} false rollbacks, {changes} of them by the change "
                  f"detector (goal: 0), {false - changes} by the step's verdict (bounded by judgeAlpha per step, below): "
                  f"{'PASS' if good else 'MISS'}; "
                  f"judge verdicts at the invocations: {', '.join(f'{k} {v}' for k, v in sorted(verdicts.items()))} "
                  f"({time.monotonic() - t_real:.0f} s real)"]
    print(lines[-1], flush=True)
    t_real = time.monotonic()
    false_d, steps = decisions_healthy(decision_minutes)
    alpha = ReflexSettings("b", "l", "l").judge_alpha
    good_change, good_step = false_d["change"] == 0, false_d["step"] <= alpha * steps
    ok &= good_change and good_step
    lines.append(f"the same decision (`judge_step`) on {decision_minutes} simulated healthy minutes ({steps} steps of 15 min), no AWS: "
                 f"change detector {false_d['change']} false fails (goal: 0): {'PASS' if good_change else 'MISS'}; "
                 f"the step's verdict (the gate's and the watcher's own, judgeAlpha {alpha:g} per step) {false_d['step']} false fails "
                 f"= {false_d['step'] / steps:.2%} of steps (the judge's bound: <= {alpha:.0%}): {'PASS' if good_step else 'MISS'} "
                 f"({time.monotonic() - t_real:.0f} s real)")
    print(lines[-1], flush=True)
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("fast", "statistical", "all"), default="all",
                    help="fast: dead/5xx/slow at real time; statistical: the judge on a scaled clock; all (default)")
    ap.add_argument("--healthy-seconds", type=float, default=180.0, help="length of the real-time healthy run (default 180)")
    ap.add_argument("--healthy-minutes", type=int, default=240, help="virtual minutes of the end-to-end statistical healthy run (default 240; ~10 min real)")
    ap.add_argument("--record", action="store_true", help="append the result to bench/RESULTS.md")
    args = ap.parse_args(argv)
    moto = Moto()
    lines: list[str] = []
    ok = True
    try:
        if args.part in ("statistical", "all"):
            stat_lines, stat_ok = statistical(moto, args.healthy_minutes)
            ok &= stat_ok
            if args.record:
                record("breach_to_rollback, statistical regression: the judge signal on a scaled clock (moto_server CloudWatch)", stat_lines)
        if args.part == "statistical":
            print("verdict:", "all goals met" if ok else "a goal was missed")
            return 0 if ok else 1
        lines += ["| fault | breach at (s into the minute) | breach -> on stable (s) | goal | verdict |", "|---|---|---|---|---|"]
        for n, (fault, phase) in enumerate(TRIALS):
            took = trial(moto, n, fault, phase)
            good = took is not None and took <= GOAL_S
            ok &= good
            shown = "no rollback in 120 s" if took is None else f"{took:.1f}"
            lines.append(f"| {fault} | {phase:.0f} | {shown} | <= {GOAL_S:.0f} s | {'PASS' if good else 'MISS'} |")
            print(lines[-1], flush=True)
        rollbacks, touched, checks, invocations = healthy_run(moto, args.healthy_seconds)
        good = rollbacks == 0 and not touched and checks > 0
        ok &= good
        lines.append("")
        lines.append(f"healthy candidate for {args.healthy_seconds:.0f} s: {invocations} invocations, {checks} checks, "
                     f"{rollbacks} rollbacks, listener {'CHANGED' if touched else 'untouched'} (goal: 0, untouched): "
                     f"{'PASS' if good else 'MISS'}")
        print(lines[-1], flush=True)
    finally:
        moto.stop()
    if args.record:
        record("breach_to_rollback: the reflex's handler at its real cadence (moto_server, loopback candidate)", lines)
    print("verdict:", "all goals met" if ok else "a goal was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
