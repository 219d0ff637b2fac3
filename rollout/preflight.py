"""Checks of what a stack file points at in AWS that the program cannot see at preview, so a first
`pulumi up` does not fail halfway (or never become healthy):

* the access-logs bucket exists in the load balancer's region and its policy lets Elastic Load
  Balancing deliver logs (otherwise AWS refuses the load balancer's `access_logs` attribute);
* private task subnets can reach ECR and CloudWatch Logs: a default route to a NAT gateway (or a
  transit gateway / network interface), or VPC endpoints for `ecr.api`, `ecr.dkr`, `logs` and an S3
  gateway endpoint (otherwise tasks cannot pull their image and ECS waits out its timeout).

Reads only (s3 GetBucketLocation/GetBucketPolicy, ec2 DescribeRouteTables/DescribeVpcEndpoints/
DescribeSubnets). Each function takes its boto3 client and returns the problems found, one line each.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any, Sequence

__all__ = ["ELB_LOG_ACCOUNTS", "ELB_LOG_SERVICE", "access_logs_problems", "private_subnet_problems"]

ELB_LOG_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"  # regions from August 2022 on (and all, today)
# Regions available before August 2022 deliver as these accounts (AWS: "Enable access logs for your ALB").
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980", "us-west-2": "797873946194",
    "af-south-1": "098369216593", "ap-east-1": "754344448648", "ap-southeast-3": "589379963580", "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331", "ap-northeast-2": "600734575887", "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266", "ap-northeast-1": "582318560864", "ca-central-1": "985666609251",
    "eu-central-1": "054676820928", "eu-west-1": "156460612806", "eu-west-2": "652711504416", "eu-south-1": "635631232127",
    "eu-west-3": "009996457667", "eu-north-1": "897822967062", "me-south-1": "076674570225", "sa-east-1": "507241528517",
}
_KEY = "bluegreen:traffic.accessLogsBucket"


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else [v]


def _principal_is_elb(principal: Any, region: str) -> bool:
    if not isinstance(principal, dict):
        return False
    services = _as_list(principal.get("Service", []))
    accounts = [str(a) for a in _as_list(principal.get("AWS", []))]
    elb_account = ELB_LOG_ACCOUNTS.get(region)
    return ELB_LOG_SERVICE in services or bool(elb_account and any(a in (elb_account, f"arn:aws:iam::{elb_account}:root") for a in accounts))


def access_logs_problems(s3, bucket: str, prefix: str, region: str, account: str) -> list[str]:
    """Why ELB could not write `bucket/prefix/AWSLogs/account/...` for a load balancer in `region`."""
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except Exception as e:  # noqa: BLE001 - NoSuchBucket, AccessDenied: say which
        return [f"{_KEY}: bucket {bucket!r} cannot be read ({_error_code(e)}); create it in {region} with the ELB log-delivery policy"]
    problems = []
    if location != region:
        problems.append(f"{_KEY}: bucket {bucket!r} is in {location}, the load balancer in {region}: access logs need a bucket in the same region")
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except Exception as e:  # noqa: BLE001
        return problems + [f"{_KEY}: bucket {bucket!r} has no readable policy ({_error_code(e)}); it must allow {ELB_LOG_SERVICE} to s3:PutObject"]
    target = f"arn:aws:s3:::{bucket}/{prefix.strip('/') + '/' if prefix else ''}AWSLogs/{account}/elasticloadbalancing/x.log.gz"
    for st in _as_list(policy.get("Statement", [])):
        if st.get("Effect") != "Allow" or not _principal_is_elb(st.get("Principal"), region):
            continue
        if not any(a in ("s3:PutObject", "s3:*", "*") for a in _as_list(st.get("Action", []))):
            continue
        if any(fnmatch.fnmatchcase(target, r) for r in _as_list(st.get("Resource", []))):
            return problems
    return problems + [
        f"{_KEY}: the policy of bucket {bucket!r} does not let Elastic Load Balancing write {target.rsplit('/', 2)[0]}/…: "
        f"allow {ELB_LOG_SERVICE} (or the ELB account of {region}) s3:PutObject on it"
    ]


def _error_code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code") or type(e).__name__)


def _has_egress_route(table: dict) -> bool:
    for route in table.get("Routes", []):
        if route.get("DestinationCidrBlock") != "0.0.0.0/0" or route.get("State") == "blackhole":
            continue
        if route.get("NatGatewayId") or route.get("TransitGatewayId") or route.get("NetworkInterfaceId") or route.get("InstanceId"):
            return True
    return False


def private_subnet_problems(ec2, vpc_id: str, subnet_ids: Sequence[str], region: str) -> list[str]:
    """Private task subnets that can reach neither a NAT (or similar) route nor the needed VPC endpoints."""
    if not subnet_ids:
        return []
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    by_subnet = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    services = {e.get("ServiceName", "").rsplit(".", 1)[-1] if e.get("VpcEndpointType") == "Gateway" else ".".join(e.get("ServiceName", "").split(".")[3:]) for e in endpoints}
    needed = ("ecr.api", "ecr.dkr", "logs", "s3")
    has_endpoints = all(n in services for n in needed)
    problems = []
    for sid in subnet_ids:
        table = by_subnet.get(sid) or main
        if table is not None and _has_egress_route(table):
            continue
        if has_endpoints:
            continue
        missing = [n for n in needed if n not in services]
        problems.append(
            f"bluegreen:network.privateSubnetIds: {sid} has no default route to a NAT gateway and the VPC lacks endpoints "
            f"for {', '.join(f'com.amazonaws.{region}.{n}' for n in missing)}: tasks there cannot pull images or write logs"
        )
    return problems

