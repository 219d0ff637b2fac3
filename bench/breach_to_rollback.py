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

Run: .venv/bin/python bench/breach_to_rollback.py [--healthy-seconds 180] [--record]
"""

from __future__ import annotations

import argparse
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
from rollout.reflex import TAG_ABORTED, TAG_STABLE_TG, ReflexSettings
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--healthy-seconds", type=float, default=180.0, help="length of the healthy run (default 180)")
    ap.add_argument("--record", action="store_true", help="append the result to bench/RESULTS.md")
    args = ap.parse_args(argv)
    moto = Moto()
    lines: list[str] = []
    ok = True
    try:
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
