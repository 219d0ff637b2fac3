"""The offline plan: run the real program under mocks for each step and say what changes.

No Pulumi CLI and no cloud credentials: every row is the real `__main__.py` with the real stack file,
its rollout step set as `pulumi config set --path 'bluegreen:rollout.step' N` would set it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import secrets
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .config import parse_stack_config
from .errors import ConfigError
from .rules import RolloutConfig, classify
from .simulate import Registered, Simulation, changed_properties, diff_resources, load_stack_file, run_program

_NOT_EVALUATED_OFFLINE = "not evaluated offline"  # rollout.analyzer.NOT_EVALUATED_OFFLINE (tests/test_operator_cli.py keeps them equal)

__all__ = ["Change", "PlanRow", "Plan", "build_plan", "check_policy", "offline_section", "start_offline_pack", "OfflinePack", "LIVE_ONLY_POLICIES"]

# Policies that need live AWS (health probes, CloudWatch, the live clock): offline they only say so,
# at advisory level, and run for real at `pulumi preview` / `pulumi up`.
LIVE_ONLY_POLICIES = ("healthy-promotion", "bake-time")


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
    policy_seconds: float | None = field(default=None, compare=False)  # None: the pack did not run

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "stable": self.rollout.stable,
            "candidate": self.rollout.candidate,
            "currentStep": self.rollout.step,
            "steps": list(self.rollout.steps),
            "policyChecked": bool(self.verdicts),
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
                    # kind "note": a policy that was not evaluated offline (it needs live AWS), not a violation.
                    "policy": [
                        {**v, "kind": "note" if str(v.get("message", "")).startswith(_NOT_EVALUATED_OFFLINE) else "violation"}
                        for v in self.verdicts.get(i, [])
                    ],
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


def build_plan(
    stack: str,
    *,
    to_step: int | None = None,
    include_finish: bool = True,
    config: Mapping[str, Any] | None = None,
    root: Path | None = None,
    on_row: Callable[[int, PlanRow], None] | None = None,
) -> Plan:
    """Simulate the current step, then every later step (or up to `to_step`), then the finish.

    Validates the stack config first; raises ConfigError naming the key. `on_row(index, row)` is
    called as each row is ready (e.g. `OfflinePack.submit`, to judge it while the next one runs).
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

    where = {"root": root} if root is not None else {}  # the project holding __main__.py (default: this checkout)
    with _old_objects_left_alone() as first_run_done:
        base = run_program(stack, cfg, **where)
        first_run_done()
        return _rows(stack, cfg, current, base, targets, include_finish, where, on_row)


@contextlib.contextmanager
def _old_objects_left_alone() -> Iterator[Callable[[], None]]:
    """No cyclic garbage collection while the first run imports the program's ~190,000 long-lived
    objects (pulumi, pulumi_aws), then those frozen so that later collections never walk them again.

    A full collection walks every tracked object (~0.12 s here): the first run triggers several as
    the imports grow the heap, later runs one every few. Memory: the first run's own garbage stays
    (a few MiB) until the block ends. The caller's collector state is restored on the way out.
    """
    was_enabled, was_frozen = gc.isenabled(), gc.get_freeze_count() > 0
    froze = False

    def first_run_done() -> None:
        nonlocal froze
        if not was_frozen:
            gc.freeze()
            froze = True
        if was_enabled:
            gc.enable()

    gc.disable()
    try:
        yield first_run_done
    finally:
        if froze:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def _rows(
    stack: str,
    cfg: Mapping[str, Any],
    current: RolloutConfig,
    base: Simulation,
    targets: Sequence[int],
    include_finish: bool,
    where: Mapping[str, Any],
    on_row: Callable[[int, PlanRow], None] | None,
) -> Plan:
    rows: list[PlanRow] = []

    def add(row: PlanRow) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(len(rows) - 1, row)

    add(PlanRow(current.step, f"step {current.step} (current)", current.weights, "current state", "current", (), base))
    prev_sim, prev_cfg = base, current
    for step in targets:
        nxt = RolloutConfig(current.stable, current.steps, step)
        sim = run_program(stack, cfg, overrides={"bluegreen:rollout.step": step}, **where)
        t = classify(prev_cfg, nxt)
        label = f"step {step}" if step > prev_cfg.step else f"rollback to {step}"
        add(PlanRow(step, label, nxt.weights, t.describe(), t.kind.value, _changes(prev_sim, sim), sim))
        prev_sim, prev_cfg = sim, nxt
    if include_finish and prev_cfg.step == prev_cfg.last_step:
        fin = RolloutConfig(prev_cfg.candidate, prev_cfg.steps, 0)
        sim = run_program(stack, cfg, overrides={"bluegreen:rollout.step": 0, "bluegreen:rollout.stable": fin.stable}, **where)
        t = classify(prev_cfg, fin)
        add(PlanRow(0, f"finish ({fin.stable} stable)", fin.weights, t.describe(), t.kind.value, _changes(prev_sim, sim), sim))
    return Plan(stack=stack, rollout=current, rows=tuple(rows))


# --------------------------------------------------------------------------- policy verdicts (offline)


def _tags(r: Registered) -> Mapping[str, Any]:
    tags = r.inputs.get("tags")
    return tags if isinstance(tags, Mapping) else {}


def _listener_state(r: Registered, colors: Mapping[str, str]) -> dict[str, Any]:
    """A simulated listener as `rollout.live.LiveListener` would read it from AWS."""
    weights: dict[str, int] = {}
    groups: dict[str, str] = {}
    for action in r.inputs.get("defaultActions") or []:
        if not isinstance(action, Mapping) or action.get("type") != "forward":
            continue
        fwd = action.get("forward")
        pairs = []
        if isinstance(fwd, Mapping) and isinstance(fwd.get("targetGroups"), list):
            pairs = [(g.get("arn"), g.get("weight", 1)) for g in fwd["targetGroups"] if isinstance(g, Mapping)]
        elif action.get("targetGroupArn"):
            pairs = [(action["targetGroupArn"], 1)]
        for arn, weight in pairs:
            c = colors.get(arn) if isinstance(arn, str) else None
            if c is not None:
                groups[c] = arn
                weights[c] = int(weight or 0)
        break
    return {
        "arn": r.outputs.get("arn") or r.urn,
        "port": r.inputs.get("port") or 0,
        "protocol": r.inputs.get("protocol") or "HTTP",
        "weights": weights,
        "targetGroups": groups,
        "tags": {k: v for k, v in _tags(r).items() if isinstance(v, str)},
    }


def _rule_state(r: Registered) -> dict[str, Any]:
    """A simulated listener rule as the pack's offline live state reads it (its conditions in the program's spelling)."""
    targets: dict[str, float] = {}
    for action in r.inputs.get("actions") or []:
        if isinstance(action, Mapping) and action.get("type") == "forward" and isinstance(action.get("targetGroupArn"), str):
            targets[action["targetGroupArn"]] = 1.0
            break
    return {
        "listenerArn": r.inputs.get("listenerArn"),
        "priority": r.inputs.get("priority"),
        "conditions": r.inputs.get("conditions") or [],
        "shares": targets,
    }


def offline_section(token: str, live: Simulation | None) -> dict[str, Any]:
    """The pack's `offline` config: `live` (the previous simulated step) stands for what AWS has.

    `live=None`: nothing deployed yet (no live listener; a first deployment).
    """
    section: dict[str, Any] = {"token": token, "colors": {}, "production": None, "test": None, "healthPaths": {}}
    if live is None:
        return section
    colors: dict[str, str] = {}
    for tg in live.by_type("aws:lb/targetGroup:TargetGroup"):
        c, arn = _tags(tg).get("bluegreen:color"), tg.outputs.get("arn")
        if isinstance(c, str) and isinstance(arn, str):
            colors[arn] = c
            path = (tg.inputs.get("healthCheck") or {}).get("path")
            if isinstance(path, str):
                section["healthPaths"][c] = path
    section["colors"] = colors
    section["rules"] = [_rule_state(r) for r in live.by_type("aws:lb/listenerRule:ListenerRule")]
    for r in live.by_type("aws:lb/listener:Listener"):
        role = _tags(r).get("bluegreen:listener")
        if role in ("production", "test") and section[role] is None:
            section[role] = _listener_state(r, colors)
            lb = r.inputs.get("loadBalancerArn")
            if role == "production" and isinstance(lb, str):
                section["loadBalancerArn"] = lb
                for alb in live.by_type("aws:lb/loadBalancer:LoadBalancer"):
                    if alb.outputs.get("arn") == lb and alb.outputs.get("dnsName"):
                        section["dnsName"] = alb.outputs["dnsName"]
    return section


def _pack_config(base: Mapping[str, Any], policies: Sequence[str], section: Mapping[str, Any]) -> dict[str, Any]:
    """`base` (the stack's --policy-pack-config) with the offline section in every policy's config."""
    out: dict[str, Any] = {}
    for name in policies:
        given = base.get(name, {})
        entry = {"enforcementLevel": given} if isinstance(given, str) else dict(given)
        if name in LIVE_ONLY_POLICIES:
            entry["enforcementLevel"] = "advisory"  # offline they can only say they did not run
        entry["offline"] = dict(section)
        out[name] = entry
    if "all" in base:
        out["all"] = base["all"]
    return out


_LEVEL_ORDER = {"mandatory": 0, "remediate": 1, "advisory": 2}


def _verdict(v: Any, names: Mapping[str, str], descriptions: Mapping[str, str]) -> dict[str, Any]:
    message = v.message
    desc = descriptions.get(v.policy)
    if desc and message.startswith(desc + "\n"):  # the SDK prefixes each message with the description
        message = message[len(desc) + 1 :]
    return {
        "policyName": v.policy,
        "enforcementLevel": v.level,
        "message": message,
        "urn": v.urn,
        "resource": names.get(v.urn, ""),
    }


class OfflinePack:
    """The policy pack judging plan rows offline, in the background.

    Made before the plan is built (`start_offline_pack`): the pack's interpreter starts (~1 s of
    imports) on another core while this process runs the program simulations, and each row handed
    to `submit` as `build_plan` produces it is judged on a worker thread (the pack does the work in
    its own process) while the next step is simulated. `verdicts()` waits for them; `close()` stops
    the pack, whether or not it was used. The pack config (`--policy-pack-config` file) is
    reconciled and validated against the policies' schemas once; rows differ only in the offline
    section, which is built here.
    """

    def __init__(
        self,
        stack: str,
        *,
        pack_dir: Path | str | None = None,
        pack_config: Path | str | None = None,
        aws_endpoint: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        from .analyzer import OFFLINE_AWS_ENDPOINT, POLICY_DIR, PolicyPackClient, offline_pack_env

        self.token = secrets.token_hex(16)
        self.started = time.monotonic()
        self._pack_config = pack_config
        env = offline_pack_env(self.token, aws_endpoint=aws_endpoint or OFFLINE_AWS_ENDPOINT, region=region)
        self._client = PolicyPackClient(pack_dir or POLICY_DIR, env=env, stack=stack)
        self._error: BaseException | None = None
        self._rows: queue.Queue[tuple[int, PlanRow, Simulation | None] | None] = queue.Queue()
        self._submitted: dict[int, PlanRow] = {}
        self._verdicts: dict[int, list[dict[str, Any]]] = {}
        self._unchanged: dict[str, Any] = {}  # verdicts of resources that read nothing of the previous row (`_judge`)
        self._worker = threading.Thread(target=self._work, name="bluegreen-plan-pack", daemon=True)
        self._worker.start()

    def submit(self, index: int, row: PlanRow) -> None:
        """Judge plan row `index` (as the update from the row submitted before it)."""
        live = self._submitted[index - 1].simulation if index > 0 else row.simulation
        self._submitted[index] = row
        self._rows.put((index, row, live))

    def verdicts(self, plan: Plan) -> dict[int, list[dict[str, Any]]]:
        """The verdicts of every row of `plan` (submitting those not submitted yet); raises what the pack raised."""
        for i, row in enumerate(plan.rows):
            if i not in self._submitted:
                self.submit(i, row)
        self._rows.put(None)
        self._worker.join()
        if self._error is not None:
            raise self._error
        return self._verdicts

    def close(self) -> None:
        self._rows.put(None)
        self._worker.join()
        self._client.stop()

    def _work(self) -> None:
        try:
            base: Mapping[str, Any] = json.loads(Path(self._pack_config).read_text()) if self._pack_config else {}
            self._client.start()
            info = self._client.policies()
        except BaseException as e:  # noqa: BLE001 - handed to whoever asks for the verdicts
            self._error = e
            return
        policies = list(info)
        descriptions = {name: p["description"] for name, p in info.items()}
        reconciled: dict[str, dict[str, Any]] | None = None
        while (item := self._rows.get()) is not None:
            if self._error is not None:
                continue
            i, row, live = item
            if row.simulation is None:
                continue
            try:
                section = offline_section(self.token, live)
                if reconciled is None:
                    reconciled = self._client.reconcile(_pack_config(base, policies, section))
                for name in policies:
                    reconciled[name]["properties"]["offline"] = section
                self._client.send_config(reconciled)
                self._verdicts[i] = _judge(self._client, row.simulation, descriptions, self._unchanged)
            except BaseException as e:  # noqa: BLE001
                self._error = e


# Only these read the offline section's content (the previous row standing in for live AWS, `policy/routes.py`);
# every other resource's verdict offline is a function of its type, URN, name and inputs alone.
_READS_PREVIOUS_ROW = ("aws:lb/listener:Listener", "aws:alb/listener:Listener", "aws:lb/listenerRule:ListenerRule",
                       "aws:alb/listenerRule:ListenerRule")


def _judge(client: Any, sim: Simulation, descriptions: Mapping[str, str], unchanged: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row: each custom resource through `Analyze` (as the engine does during preview), then all
    of them through `AnalyzeStack`; violations deduplicated and sorted. `unchanged` (kept across the rows of one
    plan): a resource that reads nothing of the previous row and has the same inputs as in an earlier row is not
    sent again; its verdict is that row's."""
    names = {r.urn: r.name for r in sim.custom}
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()

    def analyze(r: Any) -> Any:
        if unchanged is None or r.type in _READS_PREVIOUS_ROW:
            return client.analyze(r.type, r.inputs, urn=r.urn, name=r.name)
        key = json.dumps([r.type, r.urn, r.name, r.inputs], sort_keys=True, default=repr)
        if key not in unchanged:
            unchanged[key] = client.analyze(r.type, r.inputs, urn=r.urn, name=r.name)
        return unchanged[key]

    results = [(r.urn, analyze(r)) for r in sim.custom]
    results.append(("", client.analyze_stack({"type": r.type, "props": r.inputs, "name": r.name, "urn": r.urn} for r in sim.custom)))
    for urn, result in results:
        for v in result.violations:
            if not v.urn and urn:  # a resource policy's diagnostic is about the resource analyzed
                v = dataclasses.replace(v, urn=urn)
            key = (v.policy, v.urn, v.message)
            if key not in seen:
                seen.add(key)
                found.append(_verdict(v, names, descriptions))
    found.sort(key=lambda d: (_LEVEL_ORDER.get(d["enforcementLevel"], 9), d["policyName"], d["resource"], d["message"]))
    return found


def start_offline_pack(stack: str, **kwargs: Any) -> OfflinePack:
    """Start the pack now, so that it starts, and judges rows, while the plan is built:
    `build_plan(..., on_row=pack.submit)`, then `check_policy(plan, pack=pack)`."""
    return OfflinePack(stack, **kwargs)


def check_policy(
    plan: Plan,
    *,
    pack: OfflinePack | None = None,
    pack_dir: Path | str | None = None,
    pack_config: Path | str | None = None,
    aws_endpoint: str | None = None,
) -> Plan:
    """The plan with `verdicts`: the real policy pack, started once, judging every row offline.

    Row i is judged as the update from row i-1 (the current row: as a no-op update of itself), with
    row i-1's simulated listener standing in for live AWS. `pack_config` is a `--policy-pack-config`
    file (e.g. policy/production.json), never written. `pack`: one started earlier with
    `start_offline_pack` (its own pack_config applies; the caller closes it); without it one is
    started and stopped here.
    """
    own = pack is None
    if own:
        region = str(plan.rows[0].simulation.config.get("aws:region", "us-east-1")) if plan.rows and plan.rows[0].simulation else "us-east-1"
        pack = OfflinePack(plan.stack, pack_dir=pack_dir, pack_config=pack_config, aws_endpoint=aws_endpoint, region=region)
    try:
        verdicts = pack.verdicts(plan)
    finally:
        if own:
            pack.close()
    return dataclasses.replace(plan, verdicts=dict(verdicts), policy_seconds=time.monotonic() - pack.started)
