"""`rollout preflight` against a moto_server: the access-logs bucket and private subnets' egress."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from rollout.cli import cli
from rollout.preflight import ELB_LOG_SERVICE

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's


def _policy(bucket: str, principal: dict, resource: str | None = None) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": principal, "Action": "s3:PutObject",
        "Resource": resource or f"arn:aws:s3:::{bucket}/alb/AWSLogs/{ACCOUNT}/*",
    }]})


@pytest.fixture()
def project(tmp_path):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    return tmp_path


def _stack(project: Path, *, bucket: str | None, vpc: str, public: list, private: list) -> None:
    doc = yaml.safe_load((ROOT / "Pulumi.production.yaml").read_text())
    cfg = doc["config"]
    cfg["bluegreen:network"] = {"vpcId": vpc, "publicSubnetIds": public, "privateSubnetIds": private}
    if bucket is None:
        cfg["bluegreen:traffic"].pop("accessLogsBucket", None)
    else:
        cfg["bluegreen:traffic"]["accessLogsBucket"] = bucket
    (project / "Pulumi.production.yaml").write_text(yaml.safe_dump(doc))


def _run(project: Path):
    r = CliRunner().invoke(cli, ["--project-dir", str(project), "preflight", "--stack", "production"])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    return r


def _network(aws, *, nat: bool):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    pub = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    priv = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24")["Subnet"]["SubnetId"] for i in (11, 12)]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for s in priv:
        ec2.associate_route_table(RouteTableId=table, SubnetId=s)
    if nat:
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        natgw = ec2.create_nat_gateway(SubnetId=pub[0], AllocationId=eip)["NatGateway"]["NatGatewayId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=natgw)
    return vpc, pub, priv


def _scenario(aws, project, bucket: str, principal: dict, *, nat: bool):
    """A network (with or without a NAT route), a bucket with `principal` allowed to write, and one preflight."""
    vpc, pub, priv = _network(aws, nat=nat)
    aws.client("s3").create_bucket(Bucket=bucket)
    aws.client("s3").put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, principal))
    _stack(project, bucket=bucket, vpc=vpc, public=pub, private=priv)
    r = _run(project)
    r.private_subnets = priv
    return r


@pytest.mark.parametrize("principal", [{"Service": ELB_LOG_SERVICE}, {"AWS": "arn:aws:iam::127311923021:root"}])
def test_a_bucket_elb_may_write_and_subnets_behind_a_nat_pass(aws, project, principal):
    r = _scenario(aws, project, "logs-ok", principal, nat=True)
    assert r.exit_code == 0 and "preflight ok (access-logs bucket logs-ok, egress of 2 private subnet(s))" in r.output, r.output


def test_problems_are_one_line_each_naming_the_key(aws, project):
    r = _scenario(aws, project, "logs-bad", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, nat=False)  # not ELB
    priv = r.private_subnets
    assert r.exit_code == 1, r.output
    problems = [line for line in r.output.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 3, r.output
    assert "bluegreen:traffic.accessLogsBucket: the policy of bucket 'logs-bad' does not let Elastic Load Balancing write" in problems[0]
    for sid, line in zip(priv, problems[1:]):
        assert line.startswith(f"problem: bluegreen:network.privateSubnetIds: {sid} has no default route to a NAT gateway"), line


def test_a_missing_bucket_is_named(aws, project):
    vpc, pub, priv = _network(aws, nat=True)
    _stack(project, bucket="no-such-logs", vpc=vpc, public=pub, private=priv)
    r = _run(project)
    assert r.exit_code == 1 and "bucket 'no-such-logs' cannot be read (NoSuchBucket)" in r.output, r.output


def test_vpc_endpoints_instead_of_a_nat_pass(aws, project):
    vpc, pub, priv = _network(aws, nat=False)
    ec2 = aws.client("ec2")
    for svc in ("ecr.api", "ecr.dkr", "logs"):
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.us-east-1.{svc}", VpcEndpointType="Interface", SubnetIds=priv)
    r = _run_with(project, vpc, pub, priv)
    assert r.exit_code == 1 and "lacks endpoints for com.amazonaws.us-east-1.s3" in r.output, r.output  # the S3 gateway is missing
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3", VpcEndpointType="Gateway")
    assert _run_with(project, vpc, pub, priv).exit_code == 0


def _run_with(project, vpc, pub, priv):
    _stack(project, bucket=None, vpc=vpc, public=pub, private=priv)
    return _run(project)
