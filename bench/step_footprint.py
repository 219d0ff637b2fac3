"""Step footprint: resources an update changes per traffic step, rollback and finish.

Floor = 1 (one listener update = one ModifyListener call). Prints actual/floor per transition kind
(min/max) and total, for staging and production, on ecs and kubernetes.
Targets (counts, no noise): every step and every rollback (k -> j < k) changes exactly one resource,
the production listener; a finish changes routing only (listeners and listener rules: the test
listener and the header route follow the candidate, which a finish swaps), never a workload or
a target group.
Run: .venv/bin/python bench/step_footprint.py
"""

from __future__ import annotations

import importlib.util

import _common  # noqa: F401  (sys.path)
from _common import Verdicts

from rollout.simulate import diff_resources, load_stack_file, run_program

STACKS = ("staging", "production")
# Pods register by IP, so on Kubernetes the ALB must be in the cluster's (existing) VPC, never a new one.
K8S = {
    "bluegreen:platform": "kubernetes",
    "bluegreen:kubernetes": {"namespace": "web", "context": "prod"},
    # private subnets too: a production stack's probe function runs in them (bluegreen:probe.subnetIds defaults to these)
    "bluegreen:network": {"vpcId": "vpc-0fedcba9876543210", "publicSubnetIds": ["subnet-0aaa0000000000001", "subnet-0aaa0000000000002"],
                          "privateSubnetIds": ["subnet-0bbb0000000000001", "subnet-0bbb0000000000002"]},
}
PLATFORMS = {"ecs": {}, "kubernetes": K8S}


def _n(d: dict) -> int:
    return sum(len(v) for v in d.values())


ROUTING = ("aws:lb/listener:Listener", "aws:lb/listenerRule:ListenerRule")


def footprint(stack: str, base_overrides: dict) -> dict[str, list[tuple[str, int, list[str], list[str]]]]:
    steps = load_stack_file(stack)["bluegreen:rollout"]["steps"]
    sims = {k: run_program(stack, overrides={**base_overrides, "bluegreen:rollout.step": k}) for k in range(len(steps) + 1)}
    stable = load_stack_file(stack)["bluegreen:rollout"].get("stable", "blue")
    fin = run_program(stack, overrides={**base_overrides, "bluegreen:rollout.step": 0,
                                        "bluegreen:rollout.stable": "green" if stable == "blue" else "blue"})
    out: dict[str, list] = {"step": [], "rollback": [], "finish": []}

    def entry(label, a, b):
        d = diff_resources(a, b)
        urns = [u for v in d.values() for u in v]
        return (label, _n(d), [u.split("::")[-1] for u in urns], [u.split("::")[-2].split("$")[-1] for u in urns])

    for k in range(1, len(steps) + 1):
        out["step"].append(entry(f"{k-1}->{k}", sims[k - 1], sims[k]))
        for j in range(k):
            out["rollback"].append(entry(f"{k}->{j}", sims[k], sims[j]))
    out["finish"].append(entry(f"{len(steps)}->finish", sims[len(steps)], fin))
    return out


def main(argv: list[str] | None = None) -> int:
    lines = ["Floor 1 resource per transition. actual/floor, min/max per kind.", "",
             "| stack | platform | step min/max | rollback min/max | finish | total changed / transitions | worst |",
             "|---|---|---|---|---|---|---|"]
    v = Verdicts()
    for platform, ov in PLATFORMS.items():
        for stack in STACKS:
            where = f"{stack}/{platform}"
            if platform == "kubernetes" and importlib.util.find_spec("components.kubernetes") is None:
                lines.append(f"| {stack} | kubernetes | not available (components/kubernetes.py missing) | | | | |")
                v.add(f"{where}: runs", "components/kubernetes.py missing", "the program runs", False)
                continue
            try:
                fp = footprint(stack, ov)
            except Exception as e:  # noqa: BLE001
                lines.append(f"| {stack} | {platform} | error: {type(e).__name__}: {str(e)[:120]} | | | | |")
                v.add(f"{where}: runs", f"{type(e).__name__}", "the program runs", False)
                continue
            cells = []
            for kind in ("step", "rollback", "finish"):
                ns = [n for _, n, *_ in fp[kind]]
                cells.append(f"{min(ns)}/{max(ns)}" if kind != "finish" else f"{ns[0]}")
            allt = [t for kind in fp.values() for t in kind]
            total = sum(n for _, n, *_ in allt)
            worst = max(allt, key=lambda t: t[1])
            lines.append(f"| {stack} | {platform} | {cells[0]} | {cells[1]} | {cells[2]} | {total}/{len(allt)} = {total/len(allt):.2f} | "
                         f"{worst[0]}: {', '.join(worst[2]) or '-'} |")
            moves = fp["step"] + fp["rollback"]
            bad = [f"{label}: {', '.join(names) or 'nothing'}" for label, n, names, _ in moves
                   if n != 1 or not names[0].endswith("-traffic-production")]
            v.add(f"{where}: each step and rollback changes only the production listener",
                  f"{len(moves) - len(bad)}/{len(moves)}" + (f" (not: {'; '.join(bad[:3])})" if bad else ""), "all", not bad)
            label, n, names, types = fp["finish"][0]
            other = [nm for nm, t in zip(names, types) if t not in ROUTING]
            v.add(f"{where}: finish changes routing only", f"{n} ({', '.join(names)})", "listeners and listener rules only", not other)
    return v.finish("step footprint", lines)


if __name__ == "__main__":
    raise SystemExit(main())
