"""Step footprint: resources an update changes per traffic step, rollback and finish.

Floor = 1 (one listener update = one ModifyListener call). Prints actual/floor per transition kind
(min/max) and total, for staging and production, on ecs and kubernetes.
Run: .venv/bin/python bench/step_footprint.py
"""

from __future__ import annotations

import importlib.util

import _common  # noqa: F401  (sys.path)
from _common import record

from rollout.simulate import diff_resources, load_stack_file, run_program

STACKS = ("staging", "production")
# Pods register by IP, so on Kubernetes the ALB must be in the cluster's (existing) VPC, never a new one.
K8S = {
    "bluegreen:platform": "kubernetes",
    "bluegreen:kubernetes": {"namespace": "web", "context": "prod"},
    "bluegreen:network": {"vpcId": "vpc-0fedcba9876543210", "publicSubnetIds": ["subnet-0aaa0000000000001", "subnet-0aaa0000000000002"]},
}
PLATFORMS = {"ecs": {}, "kubernetes": K8S}


def _n(d: dict) -> int:
    return sum(len(v) for v in d.values())


def footprint(stack: str, base_overrides: dict) -> dict[str, list[tuple[str, int, list[str]]]]:
    steps = load_stack_file(stack)["bluegreen:rollout"]["steps"]
    sims = {k: run_program(stack, overrides={**base_overrides, "bluegreen:rollout.step": k}) for k in range(len(steps) + 1)}
    stable = load_stack_file(stack)["bluegreen:rollout"].get("stable", "blue")
    fin = run_program(stack, overrides={**base_overrides, "bluegreen:rollout.step": 0,
                                        "bluegreen:rollout.stable": "green" if stable == "blue" else "blue"})
    out: dict[str, list] = {"step": [], "rollback": [], "finish": []}
    for k in range(1, len(steps) + 1):
        d = diff_resources(sims[k - 1], sims[k])
        out["step"].append((f"{k-1}->{k}", _n(d), [u.split("::")[-1] for v in d.values() for u in v]))
        for j in range(k):
            d = diff_resources(sims[k], sims[j])
            out["rollback"].append((f"{k}->{j}", _n(d), [u.split("::")[-1] for v in d.values() for u in v]))
    d = diff_resources(sims[len(steps)], fin)
    out["finish"].append((f"{len(steps)}->finish", _n(d), [u.split("::")[-1] for v in d.values() for u in v]))
    return out


def main() -> list[str]:
    lines = ["Floor 1 resource per transition. actual/floor, min/max per kind (target: 1.0 everywhere).", "",
             "| stack | platform | step min/max | rollback min/max | finish | total changed / transitions | worst |",
             "|---|---|---|---|---|---|---|"]
    for platform, ov in PLATFORMS.items():
        for stack in STACKS:
            if platform == "kubernetes" and importlib.util.find_spec("components.kubernetes") is None:
                lines.append(f"| {stack} | kubernetes | not available (components/kubernetes.py missing) | | | | |")
                continue
            try:
                fp = footprint(stack, ov)
            except Exception as e:  # noqa: BLE001
                lines.append(f"| {stack} | {platform} | error: {type(e).__name__}: {str(e)[:120]} | | | | |")
                continue
            cells = []
            for kind in ("step", "rollback", "finish"):
                ns = [n for _, n, _ in fp[kind]]
                cells.append(f"{min(ns)}/{max(ns)}" if kind != "finish" else f"{ns[0]}")
            allt = [t for kind in fp.values() for t in kind]
            total = sum(n for _, n, _ in allt)
            worst = max(allt, key=lambda t: t[1])
            lines.append(f"| {stack} | {platform} | {cells[0]} | {cells[1]} | {cells[2]} | {total}/{len(allt)} = {total/len(allt):.2f} | "
                         f"{worst[0]}: {', '.join(worst[2]) or '-'} |")
    return lines


if __name__ == "__main__":
    record("step footprint", main())
