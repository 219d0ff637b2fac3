"""The network: an existing VPC and subnets from config, or a minimal new VPC (two public subnets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

__all__ = ["Network", "NetworkArgs"]


@dataclass
class NetworkArgs:
    """Where the ALB and the tasks live."""

    create: bool = False  # True: create a VPC with two public subnets (staging); False: use vpc_id and subnets
    cidr: str = "10.0.0.0/16"  # CIDR of a created VPC
    vpc_id: Optional[str] = None  # existing VPC (required when create is False)
    public_subnet_ids: Sequence[str] = field(default_factory=tuple)  # ALB subnets (>= 2 AZs)
    private_subnet_ids: Sequence[str] = field(default_factory=tuple)  # task subnets; empty = public subnets with public IPs
    availability_zones: Sequence[str] = field(default_factory=tuple)  # for a created VPC; default: the first two zones AWS reports available
    region: str = "us-east-1"


def _subnet_cidrs(cidr: str, count: int) -> list[str]:
    import ipaddress

    net = ipaddress.ip_network(cidr)
    new_prefix = min(net.prefixlen + 4, 28)
    return [str(s) for s, _ in zip(net.subnets(new_prefix=new_prefix), range(count))]


def _default_zones(opts: pulumi.ResourceOptions, count: int = 2) -> list:
    zones = aws.get_availability_zones_output(
        state="available",
        filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
        opts=pulumi.InvokeOptions(parent=opts.parent),
    )

    def pick(names, i):
        if len(names) < count:
            raise pulumi.RunError(f"bluegreen:network.create needs {count} available zones in the region; AWS reports {names}")
        return sorted(names)[i]

    return [zones.names.apply(lambda names, i=i: pick(names, i)) for i in range(count)]


class Network(pulumi.ComponentResource):
    """An existing VPC passed through, or a minimal public one."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list]
    task_subnet_ids: pulumi.Output[list]
    assign_public_ip: bool

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bluegreen:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if not args.create:
            self.vpc_id = pulumi.Output.from_input(args.vpc_id)
            self.public_subnet_ids = pulumi.Output.from_input(list(args.public_subnet_ids))
            tasks = list(args.private_subnet_ids) or list(args.public_subnet_ids)
            self.task_subnet_ids = pulumi.Output.from_input(tasks)
            self.assign_public_ip = not args.private_subnet_ids
        else:
            # Zone names are not "<region>a/b" everywhere (some accounts have no "a"; Local Zones need an
            # opt-in): ask AWS for the available, opt-in-free zones of the region.
            azs = list(args.availability_zones) or _default_zones(child)
            vpc = aws.ec2.Vpc(
                f"{name}-vpc",
                cidr_block=args.cidr,
                enable_dns_hostnames=True,
                enable_dns_support=True,
                tags={"Name": f"{name}-vpc"},
                opts=child,
            )
            igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
            table = aws.ec2.RouteTable(
                f"{name}-public",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
                opts=child,
            )
            subnets = []
            for i, (az, cidr) in enumerate(zip(azs, _subnet_cidrs(args.cidr, len(azs)))):
                subnet = aws.ec2.Subnet(
                    f"{name}-public-{i}",
                    vpc_id=vpc.id,
                    cidr_block=cidr,
                    availability_zone=az,
                    map_public_ip_on_launch=True,
                    tags={"Name": pulumi.Output.concat(f"{name}-public-", az)},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=subnet.id, route_table_id=table.id, opts=child)
                subnets.append(subnet)
            self.vpc_id = vpc.id
            self.public_subnet_ids = pulumi.Output.all(*[s.id for s in subnets]).apply(list)
            self.task_subnet_ids = self.public_subnet_ids
            self.assign_public_ip = True
        self.register_outputs({"vpc_id": self.vpc_id, "public_subnet_ids": self.public_subnet_ids})
