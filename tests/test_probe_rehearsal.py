"""The production gate, rehearsed: in-VPC probes with TLS verified against a hostname, read back
from CloudWatch by the gate with read credentials only.

Topology (all on this machine): an HTTPS server on 127.0.0.1 with a certificate the test creates
for ``canary.bluegreen.test`` stands in for the ALB's test listener; ``moto_server`` holds the ALB
(its certificate imported into ACM, an HTTPS test listener on the server's port tagged
``bluegreen:probe=in-vpc``, the load balancer's network interface at 127.0.0.1) and CloudWatch.
The probe runner reads the route from AWS, connects to 127.0.0.1 with SNI and verification for the
hostname, and publishes; ``run_gate`` and ``python -m rollout gate`` read the metrics back.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from rollout.gate import GateTarget, GateThresholds, run_gate
from rollout.probe_evidence import MIN_ROUNDS, probe_stack_from_tags
from rollout.probe_runner import NAMESPACE, ProbeSettings, probe_round, publish_round
from tests.fixtures.aws import EXAMPLE_AMI
from tests.fixtures.tls import https_server, pki  # noqa: F401 - fixtures

HOST = "canary.bluegreen.test"  # on the certificate; never resolved
STACK = "production"


class Topology:
    """The production ALB in moto, its test listener on `port` (HTTPS, the test CA's certificate)."""

    def __init__(self, aws, pki, port: int, *, candidate: str = "green", probe_tag: bool = True):
        self.aws = aws
        ec2, elbv2, acm = aws.client("ec2"), aws.client("elbv2"), aws.client("acm")
        issued = pki.issue(HOST)
        cert_arn = acm.import_certificate(Certificate=issued.cert_pem, PrivateKey=issued.key_pem, CertificateChain=pki.ca_pem)[
            "CertificateArn"
        ]
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
            for i, z in ((1, "a"), (2, "b"))
        ]
        lb = elbv2.create_load_balancer(Name="web-prod", Subnets=subnets, Scheme="internet-facing", Type="application")["LoadBalancers"][0]
        self.lb_arn = lb["LoadBalancerArn"]
        self.tgs = {}
        for color in ("blue", "green"):
            self.tgs[color] = elbv2.create_target_group(
                Name=f"web-prod-{color}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip", HealthCheckPath="/healthz",
                Tags=[{"Key": "bluegreen:color", "Value": color}],
            )["TargetGroups"][0]["TargetGroupArn"]
        stable = "blue" if candidate == "green" else "green"
        elbv2.create_listener(
            LoadBalancerArn=self.lb_arn, Protocol="HTTPS", Port=443, Certificates=[{"CertificateArn": cert_arn}],
            DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": self.tgs[stable], "Weight": 90}, {"TargetGroupArn": self.tgs[candidate], "Weight": 10}]}}],
            Tags=[{"Key": "bluegreen:listener", "Value": "production"}, {"Key": "bluegreen:stable", "Value": stable}],
        )
        tags = [{"Key": "bluegreen:listener", "Value": "test"}, {"Key": "bluegreen:stack", "Value": STACK}]
        if probe_tag:
            tags.append({"Key": "bluegreen:probe", "Value": "in-vpc"})
        self.test_listener = elbv2.create_listener(
            LoadBalancerArn=self.lb_arn, Protocol="HTTPS", Port=port, Certificates=[{"CertificateArn": cert_arn}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": self.tgs[candidate]}], Tags=tags,
        )["Listeners"][0]["ListenerArn"]
        lb_id = self.lb_arn.split(":loadbalancer/")[1]
        # The ALB node's network interface, as AWS describes it; its private address is the loopback server's.
        eni = ec2.create_network_interface(SubnetId=subnets[0], PrivateIpAddress="127.0.0.1", Description=f"ELB {lb_id}")
        host = ec2.run_instances(ImageId=EXAMPLE_AMI, MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0]["InstanceId"]
        ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterface"]["NetworkInterfaceId"], InstanceId=host, DeviceIndex=1)
        # A detached interface with the same description (an ALB node going away) is not probed.
        ec2.create_network_interface(SubnetId=subnets[1], PrivateIpAddress="127.0.0.2", Description=f"ELB {lb_id}")

    def rounds(self, pki, n: int = MIN_ROUNDS, *, hostname: str = HOST, probes: int = 5, timeout_s: float = 2) -> list:
        """n probe rounds one minute apart (ending now), each published to CloudWatch."""
        settings = ProbeSettings(stack=STACK, load_balancer_arn=self.lb_arn, hostname=hostname, probes=probes, timeout_s=timeout_s)
        now = datetime.now(timezone.utc)
        out = []
        for i in range(n):
            at = now - timedelta(minutes=n - 1 - i)
            r = probe_round(settings, elbv2=self.aws.client("elbv2"), ec2=self.aws.client("ec2"), context=pki.client_context(), clock=lambda: at)
            publish_round(self.aws.client("cloudwatch"), r)
            out.append(r)
        return out

    def gate(self, color: str = "green", **th):
        return run_gate(
            GateTarget(color, target_group_arn=self.tgs[color], load_balancer_arn=self.lb_arn, probe_stack=STACK),
            GateThresholds(**th),
            cloudwatch=self.aws.client("cloudwatch"),
            checks=("http-probes",),
        )


def test_healthy_candidate_passes_from_metrics_alone(aws, pki, https_server):
    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    rounds = topo.rounds(pki)
    assert all(r.problem is None and r.colours[0].color == "green" and r.colours[0].failed == 0 for r in rounds), [r.to_dict() for r in rounds]
    assert {o.address for r in rounds for o in r.colours[0].outcomes} == {"127.0.0.1"}
    assert rounds[0].colours[0].where == f"https://{HOST}:{https_server.running and list(https_server.running)[0]}/healthz"
    verdict = topo.gate()
    assert verdict.passed, verdict.to_dict()
    (check,) = verdict.checks
    assert check.data["source"] == "in-vpc" and check.data["rounds"] == MIN_ROUNDS and check.data["probes"] == 2 * 5, check.data
    assert "10/10 in-VPC probes of green passed" in check.reason


@pytest.mark.parametrize(
    "behaviour, cert_for, reason, why",
    [
        ("unhealthy", HOST, "status", "unexpected HTTP status 10"),
        ("healthy", "other.bluegreen.test", "tls", "TLS verification failed 10"),
        ("not_http", HOST, "protocol", "no valid HTTP response 10"),
    ],
)
def test_broken_candidate_fails_with_the_reason(aws, pki, https_server, behaviour, cert_for, reason, why):
    topo = Topology(aws, pki, https_server.start(behaviour, cert_for=cert_for))
    rounds = topo.rounds(pki)
    assert all(set(r.colours[0].failures) == {reason} for r in rounds), [r.to_dict() for r in rounds]
    verdict = topo.gate()
    assert not verdict.passed
    (check,) = verdict.checks
    assert check.data["failures"] == {reason: 10}, check.data
    assert "10/10 in-VPC probes of green failed in the last 3 min" in check.reason and why in check.reason, check.reason


def test_wrong_hostname_fails_tls_even_with_a_valid_certificate(aws, pki, https_server):
    """The certificate is valid and trusted, but for HOST: probing as another name must not pass."""
    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    rounds = topo.rounds(pki, hostname="web-prod-123.us-east-1.elb.amazonaws.com")
    outcome = rounds[0].colours[0].outcomes[0]
    assert outcome.reason == "tls" and "hostname" in outcome.detail.lower(), outcome
    assert not topo.gate().passed


def test_dead_candidate_fails(aws, pki, https_server):
    port = https_server.start("healthy", cert_for=HOST)
    topo = Topology(aws, pki, port)
    https_server.stop(port)
    topo.rounds(pki)
    verdict = topo.gate()
    assert not verdict.passed and verdict.checks[0].data["failures"] == {"connect": 10}, verdict.to_dict()


def test_no_fresh_rounds_fail_closed(aws, pki, https_server):
    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    verdict = topo.gate()
    assert not verdict.passed and "0 rounds of results for green" in verdict.message(), verdict.message()
    topo.rounds(pki, n=1)
    verdict = topo.gate()
    assert not verdict.passed and "1 round of results" in verdict.message(), verdict.message()


def test_rounds_older_than_the_window_are_not_evidence(aws, pki, https_server):
    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    settings = ProbeSettings(stack=STACK, load_balancer_arn=topo.lb_arn, hostname=HOST, probes=3)
    for minutes_ago in (10, 9, 8):
        at = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
        publish_round(aws.client("cloudwatch"), probe_round(settings, elbv2=aws.client("elbv2"), ec2=aws.client("ec2"), context=pki.client_context(), clock=lambda: at))
    assert not topo.gate().passed


def test_a_colour_the_probes_never_reached_fails_closed(aws, pki, https_server):
    """The test listener forwards to green: green's evidence never speaks for blue."""
    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    topo.rounds(pki)
    assert topo.gate("green").passed
    verdict = topo.gate("blue")
    assert not verdict.passed and "0 rounds of results for blue" in verdict.message()


@pytest.mark.parametrize("behaviour", ["hung", "drip"])
def test_a_candidate_that_never_finishes_answering_times_out(aws, pki, https_server, behaviour):
    topo = Topology(aws, pki, https_server.start(behaviour, cert_for=HOST))
    rounds = topo.rounds(pki, probes=2, timeout_s=0.5)
    assert all(o.reason == "timeout" for r in rounds for o in r.colours[0].outcomes), [r.to_dict() for r in rounds]
    verdict = topo.gate()
    assert not verdict.passed and "timed out 4" in verdict.message(), verdict.message()


def test_slow_rounds_fail_on_latency(aws, pki, https_server):
    topo = Topology(aws, pki, https_server.start("slow", cert_for=HOST, delay_ms=300))
    topo.rounds(pki, probes=2)
    verdict = topo.gate(max_p95_ms=100)
    assert not verdict.passed and "in-VPC probe p95 reached" in verdict.message(), verdict.message()


def test_round_that_cannot_probe_is_reported(aws, pki, https_server):
    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    aws.client("elbv2").delete_listener(ListenerArn=topo.test_listener)
    rounds = topo.rounds(pki)
    assert all(r.problem and "test" in r.problem for r in rounds), [r.problem for r in rounds]
    verdict = topo.gate()
    assert not verdict.passed and "could not probe in 2 rounds" in verdict.message(), verdict.message()


def test_handler_probes_and_publishes_from_its_environment(aws, pki, https_server, monkeypatch):
    """The Lambda entry point end to end: settings from env, clients from env, the CA from SSL_CERT_FILE."""
    from rollout import probe_lambda

    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    env = ProbeSettings(stack=STACK, load_balancer_arn=topo.lb_arn, hostname=HOST, probes=4).to_env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    result = probe_lambda.handler({}, None)
    assert result["problem"] is None and result["colours"][0]["sent"] == 4 and result["colours"][0]["failed"] == 0, result
    metrics = aws.client("cloudwatch").list_metrics(Namespace=NAMESPACE)["Metrics"]
    names = {m["MetricName"] for m in metrics}
    assert {"ProbesSent", "ProbesFailed", "ProbeLatencyP95"} <= names, names
    dims = {d["Name"]: d["Value"] for d in metrics[0]["Dimensions"]}
    assert dims["Stack"] == STACK and dims["Colour"] == "green" and dims["TargetGroup"].startswith("targetgroup/web-prod-green/")


def test_live_test_listener_tags_choose_the_source():
    assert probe_stack_from_tags({"bluegreen:probe": "in-vpc", "bluegreen:stack": "production"}) == "production"
    assert probe_stack_from_tags({"bluegreen:listener": "test", "bluegreen:stack": "production"}) is None
    assert probe_stack_from_tags({"bluegreen:probe": "in-vpc"}) is None  # no stack: nothing to read
    assert probe_stack_from_tags(None) is None


@pytest.mark.parametrize("behaviour, code", [("healthy", 0), ("unhealthy", 1)])
def test_cli_gate_reaches_the_verdict_from_outside_the_vpc(aws, pki, https_server, behaviour, code):
    """`python -m rollout gate` with read credentials: the live test listener says in-vpc, so the
    probe evidence comes from CloudWatch and nothing is probed from here."""
    from rollout.cli import cli

    topo = Topology(aws, pki, https_server.start(behaviour, cert_for=HOST))
    topo.rounds(pki)
    hits_before = {p: s.hits for p, (s, _) in https_server.running.items()}
    result = CliRunner().invoke(
        cli, ["gate", "--stack", STACK, "--color", "green", "--load-balancer-arn", topo.lb_arn, "--check", "http-probes", "--format", "json"]
    )
    assert result.exit_code == code, result.output
    body = json.loads(result.output[: result.output.rindex("}") + 1])
    (check,) = body["checks"]
    assert check["data"]["source"] == "in-vpc", check
    assert {p: s.hits for p, (s, _) in https_server.running.items()} == hits_before, "the CLI must not probe from outside"


# --------------------------------------------------------------------------- least privilege, enforced by moto's IAM


def _user_with_policy(aws, name: str, document: str) -> tuple[str, str]:
    iam = aws.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_the_functions_policy_is_enough_to_read_and_probe(aws, pki, https_server):
    """The exact policy the program gives the function's role lets a round read the listener and the
    ALB's interfaces, and nothing that changes traffic. (Publishing is not checked here: moto
    authorises CloudWatch as `monitoring:*` and cannot evaluate the `cloudwatch:namespace` condition.)"""
    from components.probe import probe_policy

    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    key, secret = _user_with_policy(aws, "probe-fn", probe_policy("arn:aws:logs:us-east-1:123456789012:log-group:probe"))
    settings = ProbeSettings(stack=STACK, load_balancer_arn=topo.lb_arn, hostname=HOST, probes=3)
    as_fn = dict(aws_access_key_id=key, aws_secret_access_key=secret)
    with aws.enforce_iam():
        r = probe_round(settings, elbv2=aws.client("elbv2", **as_fn), ec2=aws.client("ec2", **as_fn), context=pki.client_context())
        assert r.problem is None and r.colours[0].failed == 0, r.to_dict()
        with pytest.raises(Exception, match="AccessDenied|not authorized"):
            aws.client("elbv2", **as_fn).modify_listener(ListenerArn=topo.test_listener, Port=1)
        with pytest.raises(Exception, match="AccessDenied|not authorized"):
            aws.client("elbv2", **as_fn).describe_target_health(TargetGroupArn=topo.tgs["green"])


def test_the_gate_needs_only_metric_reads(aws, pki, https_server):
    """Credentials that allow GetMetricData and nothing else reach the in-VPC verdict.
    (`monitoring:` is how moto names CloudWatch actions; real IAM names them `cloudwatch:`.)"""
    topo = Topology(aws, pki, https_server.start("healthy", cert_for=HOST))
    topo.rounds(pki)
    key, secret = aws.iam_user("gate-reader", ["monitoring:GetMetricData"])
    nobody = aws.iam_user("nobody", ["ec2:DescribeVpcs"])
    target = GateTarget("green", target_group_arn=topo.tgs["green"], load_balancer_arn=topo.lb_arn, probe_stack=STACK)
    with aws.enforce_iam():
        cloudwatch = aws.client("cloudwatch", aws_access_key_id=key, aws_secret_access_key=secret)
        verdict = run_gate(target, cloudwatch=cloudwatch, checks=("http-probes",))
        assert verdict.passed, verdict.to_dict()
        denied = run_gate(target, cloudwatch=aws.client("cloudwatch", aws_access_key_id=nobody[0], aws_secret_access_key=nobody[1]), checks=("http-probes",))
    assert not denied.passed and "AccessDenied" in denied.message(), denied.message()
