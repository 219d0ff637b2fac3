"""The offline plan: run the real program under mocks for each step and say what changes.

No Pulumi CLI and no cloud credentials: every row is the real `__main__.py` with the real stack file,
its rollout step set as `pulumi config set --path 'bluegreen:rollout.step' N` would set it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .config import parse_stack_config
from .errors import ConfigError
from .rules import RolloutConfig, classify
from .simulate import Simulation, changed_properties, diff_resources, load_stack_file, run_program

__all__ = ["Change", "PlanRow", "Plan", "build_plan"]


@dataclass(frozen=True)
class Change:
    """One resource an update changes, and which of its inputs."""

    action: str  # create | update | delete
    urn: str
    type: str
    name: str
    properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanRow:
    """One step: the weights it sets and what moving to it from the previous row changes."""

    step: int
    label: str  # "step 2", "finish", "rollback"
    weights: Mapping[str, int]
    transition: str
    kind: str
    changes: tuple[Change, ...]
    simulation: Simulation | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Plan:
    stack: str
    rollout: RolloutConfig
    rows: tuple[PlanRow, ...]
    verdicts: Mapping[int, Sequence[Mapping[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "stable": self.rollout.stable,
            "candidate": self.rollout.candidate,
            "currentStep": self.rollout.step,
            "steps": list(self.rollout.steps),
            "rows": [
                {
                    "step": r.step,
                    "label": r.label,
                    "weights": dict(r.weights),
                    "kind": r.kind,
                    "transition": r.transition,
                    "changes": [
                        {"action": c.action, "type": c.type, "name": c.name, "urn": c.urn, "properties": list(c.properties)} for c in r.changes
                    ],
                    "policy": list(self.verdicts.get(i, [])),
                }
                for i, r in enumerate(self.rows)
            ],
        }


def _changes(before: Simulation, after: Simulation) -> tuple[Change, ...]:
    d = diff_resources(before, after)
    by_urn_a = {r.urn: r for r in before.custom}
    by_urn_b = {r.urn: r for r in after.custom}
    out = []
    for action in ("create", "update", "delete"):
        for urn in d[action]:
            r = by_urn_b.get(urn) or by_urn_a[urn]
            props = tuple(changed_properties(by_urn_a[urn], by_urn_b[urn])) if action == "update" else ()
            out.append(Change(action, urn, r.type, r.name, props))
    return tuple(out)


def build_plan(stack: str, *, to_step: int | None = None, include_finish: bool = True, config: Mapping[str, Any] | None = None) -> Plan:
    """Simulate the current step, then every later step (or up to `to_step`), then the finish.

    Validates the stack config first; raises ConfigError naming the key.
    """
    cfg = dict(config) if config is not None else load_stack_file(stack)
    raw = {k.split(":", 1)[1]: v for k, v in cfg.items() if k.startswith("bluegreen:")}
    parsed = parse_stack_config(raw, region=cfg.get("aws:region"))
    current = parsed.rollout
    if to_step is not None:
        if not 0 <= to_step <= current.last_step:
            raise ConfigError("--to-step", f"must be between 0 and {current.last_step} (the steps of {list(current.steps)}); got {to_step}")
        targets = [to_step] if to_step != current.step else []
        include_finish = False
    else:
        targets = list(range(current.step + 1, current.last_step + 1))

    base = run_program(stack, cfg)
    rows = [PlanRow(current.step, f"step {current.step} (current)", current.weights, "current state", "current", (), base)]
    prev_sim, prev_cfg = base, current
    for step in targets:
        nxt = RolloutConfig(current.stable, current.steps, step)
        sim = run_program(stack, cfg, overrides={"bluegreen:rollout.step": step})
        t = classify(prev_cfg, nxt)
        label = f"step {step}" if step > prev_cfg.step else f"rollback to {step}"
        rows.append(PlanRow(step, label, nxt.weights, t.describe(), t.kind.value, _changes(prev_sim, sim), sim))
        prev_sim, prev_cfg = sim, nxt
    if include_finish and prev_cfg.step == prev_cfg.last_step:
        fin = RolloutConfig(prev_cfg.candidate, prev_cfg.steps, 0)
        sim = run_program(stack, cfg, overrides={"bluegreen:rollout.step": 0, "bluegreen:rollout.stable": fin.stable})
        t = classify(prev_cfg, fin)
        rows.append(PlanRow(0, f"finish ({fin.stable} stable)", fin.weights, t.describe(), t.kind.value, _changes(prev_sim, sim), sim))
    return Plan(stack=stack, rollout=current, rows=tuple(rows))
