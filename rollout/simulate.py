"""Run the real program (`__main__.py` + a real stack file) under Pulumi's mock runtime.

No Pulumi CLI, no cloud account: the SDK's `set_mocks` stands in for the engine, and a recording mock
keeps every resource the program registers with its inputs. `plan`, the tests and the benchmarks all
use this one harness. Each run happens in a fresh `contextvars.Context`, so runs never leak state.
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import desired
from .desired import TAG_SINCE, TAG_STABLE_TG

__all__ = [
    "ROOT",
    "Registered",
    "Simulation",
    "RecordingMocks",
    "load_stack_file",
    "set_path",
    "run_program",
    "diff_resources",
]

ROOT = Path(__file__).resolve().parent.parent
SIM_EPOCH = 1767225600  # 2026-01-01T00:00:00Z: the pinned clock of simulations
_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Registered:
    """One resource the program registered, as the engine would have received it."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    id: str | None
    parent: str | None = None  # the parent's type chain from the URN (the mock runtime does not give its name)


@dataclass
class Simulation:
    """What one run of the program registered, and its stack outputs."""

    stack: str
    config: Mapping[str, Any]
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_suffix: str) -> Registered:
        found = [r for r in self.resources if r.type == type_ and r.name.endswith(name_suffix)]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} named *{name_suffix}, found {[r.name for r in found]}")
        return found[0]

    @property
    def custom(self) -> list[Registered]:
        return [r for r in self.resources if r.custom]


def _fake_id(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:17]


class RecordingMocks:
    """Pulumi mocks that record every registration and return stable, realistic outputs.

    Outputs depend only on the resource's type and name, so two runs of the program differ only where
    the program's inputs differ: that is what makes a per-step diff meaningful.
    """

    def __init__(self, region: str = "us-east-1", previous_outputs: Mapping[str, Any] | None = None):
        self.region = region
        # {"weightsSince": stamp, "aborted": marker}: the live recorded listener's bluegreen:weights-since
        # (and bluegreen:aborted) tag, as the
        # program's aws:resourcegroupstaggingapi/getResources invoke reads it; absent = no listener yet.
        self.previous_outputs = dict(previous_outputs or {})
        self.records: list[tuple[Any, str]] = []

    def new_resource(self, args):  # pulumi.runtime.MockResourceArgs
        name, typ = args.name, args.typ
        rid = args.resource_id or f"{name}-{_fake_id(typ + name)}"
        if typ == "pulumi:pulumi:StackReference":
            self.records.append((args, rid))
            return rid, {"name": rid, "outputs": dict(self.previous_outputs), "secretOutputNames": []}
        out = dict(args.inputs)
        short = _fake_id(name)
        arn_by_type = {
            "aws:lb/loadBalancer:LoadBalancer": f"arn:aws:elasticloadbalancing:{self.region}:{_ACCOUNT}:loadbalancer/app/{name[:20]}/{short}",
            "aws:lb/targetGroup:TargetGroup": f"arn:aws:elasticloadbalancing:{self.region}:{_ACCOUNT}:targetgroup/{name[:20]}/{short}",
            "aws:lb/listener:Listener": f"arn:aws:elasticloadbalancing:{self.region}:{_ACCOUNT}:listener/app/lb/{short}/{_fake_id(name + 'l')}",
            "aws:lb/listenerRule:ListenerRule": f"arn:aws:elasticloadbalancing:{self.region}:{_ACCOUNT}:listener-rule/app/lb/{short}/r",
        }
        out.setdefault("arn", arn_by_type.get(typ, f"arn:aws:mock:{self.region}:{_ACCOUNT}:{typ.split(':')[-1].lower()}/{name}"))
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            out["dnsName"] = f"{name[:20]}-{short[:8]}.{self.region}.elb.amazonaws.com"
            out["arnSuffix"] = out["arn"].split(":loadbalancer/")[-1]
        if typ == "aws:lb/targetGroup:TargetGroup":
            out["arnSuffix"] = out["arn"].split(":")[-1]
        if typ in ("aws:ecs/service:Service", "aws:ecs/cluster:Cluster", "aws:iam/role:Role", "aws:cloudwatch/logGroup:LogGroup",
                   "aws:cloudwatch/eventRule:EventRule", "aws:lambda/function:Function"):
            out.setdefault("name", name)
        if typ == "aws:ec2/vpc:Vpc":
            out.setdefault("cidrBlock", args.inputs.get("cidrBlock"))
        self.records.append((args, rid))
        return rid, out

    def call(self, args):  # pulumi.runtime.MockCallArgs
        if args.token == "aws:resourcegroupstaggingapi/getResources:getResources":
            since = self.previous_outputs.get("weightsSince")
            aborted = self.previous_outputs.get("aborted")  # the reflex's abort marker on the live listener
            lb = f"arn:aws:elasticloadbalancing:{self.region}:{_ACCOUNT}:loadbalancer/app/"
            mappings = []
            for rec, _ in self.records:
                if rec.typ == "aws:lb/loadBalancer:LoadBalancer" and (since or aborted):
                    arn = f"{lb}{rec.name[:20]}/{_fake_id(rec.name)}"
                    tags = {TAG_STABLE_TG: "tg", **({TAG_SINCE: since} if since else {}), **({"bluegreen:aborted": aborted} if aborted else {})}
                    mappings.append({"resourceArn": arn.replace(":loadbalancer/", ":listener/") + "/live", "tags": tags})
            return {"id": self.region, "resourceTagMappingLists": mappings}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region, "description": self.region}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": _ACCOUNT, "arn": f"arn:aws:iam::{_ACCOUNT}:user/mock", "userId": "mock", "id": _ACCOUNT}
        if args.token == "aws:eks/getCluster:getCluster":
            n = args.args.get("name", "cluster")
            return {
                "name": n,
                "endpoint": f"https://{n}.eks.{self.region}.amazonaws.com",
                "certificateAuthorities": [{"data": "bW9jaw=="}],
                "arn": f"arn:aws:eks:{self.region}:{_ACCOUNT}:cluster/{n}",
                "vpcConfig": {"vpcId": "vpc-0mock"},
                "id": n,
            }
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            # Like us-east-1 in many accounts: the first zone letter is not "a" (zone names are per account).
            names = [f"{self.region}{z}" for z in "bcdf"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 5)], "id": self.region, "state": "available"}
        return {}


def load_stack_file(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The `config:` map of `Pulumi.<stack>.yaml`."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack file {path.name} in {root}; stacks here: {', '.join(stacks) or 'none'}")
    data = yaml.safe_load(path.read_text()) or {}
    return dict(data.get("config") or {})


def set_path(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Like `pulumi config set --path`: `bluegreen:rollout.step` sets `step` inside `bluegreen:rollout`."""
    out = copy.deepcopy(config)
    key, _, rest = path.partition(".")
    if not rest:
        out[key] = value
        return out
    node = out.setdefault(key, {})
    parts = rest.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def _engine_config(config: Mapping[str, Any]) -> dict[str, str]:
    # The engine hands config to the program as strings; objects and lists as JSON.
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def run_program(
    stack: str,
    config: Mapping[str, Any] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    preview: bool = False,
    root: Path = ROOT,
    mocks: RecordingMocks | None = None,
    previous_outputs: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> Simulation:
    """Run `__main__.py` under mocks with the stack file's config (or `config`), plus `--path` overrides.

    Raises whatever the program raises (a `pulumi.RunError` for invalid config) after the runtime has
    settled; the returned Simulation lists every resource registered, in order. Pass `mocks` to keep
    the record of registrations even when the program raises. `previous_outputs["weightsSince"]`
    is the live listener's stamp the program reads through the `getResources` invoke (absent: no
    listener yet); `now` pins the program's clock
    (default: SIM_EPOCH, so that runs are reproducible).
    """
    cfg = dict(config) if config is not None else load_stack_file(stack, root)
    for path, value in (overrides or {}).items():
        cfg = set_path(cfg, path, value)
    ctx = contextvars.Context()
    if mocks is None:
        mocks = RecordingMocks(str(cfg.get("aws:region", "us-east-1")), previous_outputs)
    elif previous_outputs is not None:
        mocks.previous_outputs = dict(previous_outputs)
    saved = desired.SIMULATED_NOW
    desired.SIMULATED_NOW = float(SIM_EPOCH if now is None else now)
    try:
        return ctx.run(_run, stack, cfg, preview, root, mocks)
    finally:
        desired.SIMULATED_NOW = saved


_SIMULATING: contextvars.ContextVar[bool] = contextvars.ContextVar("bluegreen_simulating", default=False)


def _skip_source_positions() -> None:
    """Under mocks, register resources without the SDK's per-resource stack trace.

    The SDK walks and formats the whole Python stack for every resource it registers (the engine's
    source positions); the mock monitor drops them, and it was a fifth of each simulated run. The
    wrapper is installed once and applies only inside `_run` (a context variable), so a real
    program in the same process still sends its source positions.
    """
    from pulumi.runtime import resource as sdk_resource
    from pulumi.runtime.proto import source_pb2

    original = sdk_resource._get_stack_trace
    if getattr(original, "_bluegreen_wrapped", False):
        return

    def stack_trace() -> Any:
        return source_pb2.StackTrace() if _SIMULATING.get() else original()

    stack_trace._bluegreen_wrapped = True  # type: ignore[attr-defined]
    sdk_resource._get_stack_trace = stack_trace


def _run(stack: str, cfg: dict[str, Any], preview: bool, root: Path, mocks: RecordingMocks | None) -> Simulation:
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from pulumi.runtime.mocks import MockMonitor

    _skip_source_positions()
    _SIMULATING.set(True)  # this run's own Context (run_program): unset again when it returns
    monitor = MockMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="bluegreen", stack=stack, preview=preview, monitor=monitor, organization="organization")
    pulumi.runtime.set_all_config(_engine_config(cfg))
    sim = Simulation(stack=stack, config=cfg)
    main = str(root / "__main__.py")

    def program():
        runpy.run_path(main, run_name="__main__")

    _sync_await(run_pulumi_func(program))

    # Registration order from the mock's record; URNs and states from the monitor.
    by_name_type = {(u.split("::")[-1], u.split("::")[-2].split("$")[-1]): (u, r) for u, r in monitor.get_registered_resources().items()}
    for args, rid in mocks.records:
        urn, reg = by_name_type.get((args.name, args.typ), (None, None))
        parent = None
        if urn and "$" in urn.split("::")[-2]:
            parent = urn.split("::")[-2].rsplit("$", 1)[0]
        sim.resources.append(
            Registered(
                urn=urn or f"urn:pulumi:{stack}::bluegreen::{args.typ}::{args.name}",
                type=args.typ,
                name=args.name,
                custom=bool(args.custom),
                inputs=_plain(args.inputs),
                outputs=_plain(reg.state if reg else {}),
                id=rid if args.custom else None,
                parent=parent,
            )
        )
    root_res = pulumi.runtime.settings.get_root_resource()
    outputs = getattr(root_res, "outputs", {}) or {}
    sim.outputs = {k: _resolve(v) for k, v in outputs.items()}
    return sim


def _plain(value: Any) -> Any:
    """Deep-copy mock inputs into plain data (dicts, lists, scalars); unknowns become None."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if type(value).__name__ == "Unknown" and type(value).__module__ == "pulumi.output":
        return None  # a value known only at `pulumi up`
    asset = _asset_content(value)
    return asset if asset is not None else str(value)


def _asset_content(value: Any) -> Any:
    """An asset or archive as the engine compares it: by content (a hash of each file), not by identity."""
    import pulumi

    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {name: _asset_content(v) for name, v in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileAsset):
        return {"sha256": hashlib.sha256(Path(value.path).read_bytes()).hexdigest()}
    if isinstance(value, pulumi.StringAsset):
        return {"sha256": hashlib.sha256(value.text.encode()).hexdigest()}
    if isinstance(value, (pulumi.FileArchive, pulumi.RemoteAsset, pulumi.RemoteArchive)):
        return {"path": getattr(value, "path", None) or getattr(value, "uri", None)}
    return None


def _resolve(value: Any) -> Any:
    import pulumi
    from pulumi.runtime.sync_await import _sync_await

    if isinstance(value, pulumi.Output):
        try:
            return _plain(_sync_await(value.future()))
        except Exception:  # an output that cannot resolve under mocks
            return None
    if isinstance(value, Mapping):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve(v) for v in value]
    return _plain(value)


def diff_resources(before: Simulation, after: Simulation) -> dict[str, list[str]]:
    """Which custom resources an update from `before` to `after` would create, change or delete.

    Compared on the program's inputs, per URN, as the engine's diff does.
    """
    a = {r.urn: r for r in before.custom}
    b = {r.urn: r for r in after.custom}
    return {
        "create": sorted(u for u in b if u not in a),
        "delete": sorted(u for u in a if u not in b),
        "update": sorted(u for u in b if u in a and a[u].inputs != b[u].inputs),
    }


def changed_properties(before: Registered, after: Registered) -> list[str]:
    """Top-level input properties that differ between two registrations of one resource."""
    keys = sorted(set(before.inputs) | set(after.inputs))
    return [k for k in keys if before.inputs.get(k) != after.inputs.get(k)]
