"""What ECS runs behind a target group, read from AWS: the containers of the task definition of every ECS service
registered on it. Found by listing the region's clusters and services -- never through a name or tag the update
writes -- and compared as containers (image, command, environment, secrets, ...), so a new revision of the same
containers reads the same.

Needs `ecs:ListClusters`, `ecs:ListServices`, `ecs:DescribeServices` and `ecs:DescribeTaskDefinition`.
"""

from __future__ import annotations

import json
from typing import Any

from clients import aws_client, region_of
from rollout.errors import LiveStateError
from rollout.live import aws_fault_reason, bounded_read

__all__ = ["containers_behind"]

_MAX_SERVICES = 500  # a region with more ECS services than this is not read: "cannot tell"


def containers_behind(target_group_arn: str) -> frozenset[str]:
    """One key per distinct container set run by an active ECS service on `target_group_arn` (empty: none runs there).
    LiveStateError when ECS cannot be read or answers what this code cannot interpret."""
    return bounded_read(lambda: _read(target_group_arn), "the ECS services behind a target group")


def _read(target_group_arn: str) -> frozenset[str]:
    ecs = aws_client("ecs", region_of(target_group_arn))
    try:
        task_definitions: set[str] = set()
        seen = 0
        for page in ecs.get_paginator("list_clusters").paginate():
            for cluster in page.get("clusterArns", []):
                arns = [a for p in ecs.get_paginator("list_services").paginate(cluster=cluster) for a in p.get("serviceArns", [])]
                seen += len(arns)
                if seen > _MAX_SERVICES:
                    raise LiveStateError(f"more than {_MAX_SERVICES} ECS services in the region: not read")
                for i in range(0, len(arns), 10):
                    for s in ecs.describe_services(cluster=cluster, services=arns[i : i + 10]).get("services", []):
                        on = any(lb.get("targetGroupArn") == target_group_arn for lb in s.get("loadBalancers", []))
                        if on and s.get("status") in ("ACTIVE", "DRAINING") and s.get("taskDefinition"):
                            task_definitions.add(str(s["taskDefinition"]))
        return frozenset(_containers(ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]) for td in sorted(task_definitions))
    except LiveStateError:
        raise
    except Exception as e:  # noqa: BLE001 - every fault is "cannot tell"
        raise LiveStateError(f"could not read the ECS services on {target_group_arn}: {aws_fault_reason(e, target_group_arn)}") from e


def _containers(task_definition: dict[str, Any]) -> str:
    """The containers a task definition runs and their size, without what changes with every revision."""
    doc = {
        "containers": sorted(
            (json.dumps(c, sort_keys=True, default=str) for c in task_definition.get("containerDefinitions", [])),
        ),
        "cpu": task_definition.get("cpu"),
        "memory": task_definition.get("memory"),
    }
    return json.dumps(doc, sort_keys=True)
