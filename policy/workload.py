"""Invariant 4: a colour carrying production traffic keeps its workload.

Two policies, one per way the promise could break:

* `workload-frozen-while-live` (on `aws:ecs/service:Service`): an update that changes what a service
  runs -- a new task definition (image, size, environment), a task-definition swap, a desired count
  lowered below the floor, other target groups, a new service -- passes only if none of the target
  groups the service serves (its proposed AND its live `loadBalancers`) carries production traffic
  now. Facts come from AWS: the live service (ECS DescribeServices / DescribeTaskDefinition) and the
  target groups' weights on the live production listener (`live_traffic`). When they cannot be read,
  the change is refused (fail closed); a service the update does not change is never judged.
* `workload-steady-during-shift` (on the production listener): an update that moves weights must not
  also change a colour's workload. The program records what each colour runs on the listener
  (`bluegreen:workload`, fingerprints from `rollout.workload`), so the listener alone shows both
  halves of the update; it is compared with the live listener's record. Rollbacks are never judged.

Why both. In `pulumi up` the engine analyses a resource just before it changes it, after its
dependencies: the service depends on the listeners, so by the time a service is judged, the
listener of the same update is live, and an image change on a colour that just gained traffic is
refused by the first policy from AWS facts alone. In a preview nothing is applied yet; the second
policy is what makes the preview (and GitOps plan comments) refuse "new image + next step" instead
of passing it and failing half way through the update.

Break-glass: `bluegreen:breakGlass.reason` (10..200 characters) makes the program tag the changed
service and the production listener with `bluegreen:break-glass`; both policies then let the change
through, `workload-break-glass` reports it (advisory, so every preview and update shows it) and the
pack posts it to the webhook in `BLUEGREEN_WEBHOOK_URL` (rollout/notify.py), once per change.

Kubernetes: the pack cannot, in general, reach the cluster, so a Deployment's live spec is not a
fact it can read. `workload-frozen-while-live` also judges `kubernetes:apps/v1:Deployment`: it
fingerprints the pod template and replicas it is about to apply (`rollout.workload.deployment_fingerprint`,
the function the program records with) and compares them with the live listener's pod record for the
live colour of the target group the Deployment names. The route from a target group to its pods is
judged the same way: a TargetGroupBinding on a carrying colour's target group keeps the recorded
serviceRef, the Service the record identifies keeps its recorded spec, no other object makes pods
labelled with a carrying colour, and no EndpointSlice or Endpoints object feeds its Service. docs/workload.md states what it cannot see.

A record (or a carrying target group's colour tag) that is there but unreadable is not "no record": the listener's
update is refused unless it is a rollback, and so is every object of a carrying colour unless this run's update of
the recorded listener was judged a rollback (`rollback_verdicts`, the listener being judged first).
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity
from pulumi_policy.deserialize import serialize_properties
from pulumi_policy.proxy import UnknownValueError

import abort_run
import pack_config
from clients import aws_client, region_of
from guard import resource_policy
from offline import offline_section
from props import LISTENER_TYPES, as_weight, is_seq, tags_of
import rollback_verdicts
from routes import RouteView, route_view
from rollout.analyzer import OFFLINE_TOKEN_ENV
from rollout.errors import LiveStateError
from rollout.desired import TAG_STACK
from rollout.live import STABLE_TAG, STABLE_TG_TAG, STEPS_TAG, aws_fault_reason, bounded_read, fault_is_environmental, read_live_state
from rollout.rules import COLORS
from rollout.workload import (
    ANNOTATION_BREAK_GLASS,
    ANNOTATION_TARGET_GROUP,
    BREAK_GLASS_RE,
    CONFIG_RECORD,
    POD_RECORD,
    TAG_BREAK_GLASS,
    TAG_WORKLOAD,
    UnreadableRecord,
    WorkloadRecord,
    binding_fingerprint,
    deployment_fingerprint,
    parse_workload_record,
    read_record_tag,
    service_fingerprint,
    service_identity,
)

__all__ = [
    "ECS_SERVICE_TYPES",
    "DEPLOYMENT_TYPES",
    "live_traffic",
    "workload_frozen_while_live",
    "workload_steady_during_shift",
    "workload_break_glass",
]

ECS_SERVICE_TYPES = frozenset({"aws:ecs/service:Service"})
DEPLOYMENT_TYPES = frozenset({"kubernetes:apps/v1:Deployment"})
_RELEASE_HINT = (
    "Release to the idle colour instead (python -m rollout release --image IMAGE), or, in an emergency, "
    "set bluegreen:breakGlass.reason to say why (recorded on the listener and notified)"
)


# --------------------------------------------------------------------------- AWS reads


_client = aws_client  # one client per (service, region) for the pack process (policy/clients.py)
_region = region_of


def _production_listeners(target_group_arns: list[str], region: str | None = None) -> list["_Production"]:
    """The production traffic of the load balancers these target groups are on: every route of the
    live-recorded listener (its default action and its rules), found through the live record
    (`bluegreen:stable-tg`), never through a label the update writes. `region`: read there (a
    Deployment's: the stack's), else in the first ARN's region."""
    elbv2 = _client("elbv2", region or _region(target_group_arns[0]))
    try:
        groups = elbv2.describe_target_groups(TargetGroupArns=list(dict.fromkeys(target_group_arns)))["TargetGroups"]
    except Exception as e:  # noqa: BLE001 - every AWS fault is reported the same way
        raise LiveStateError(f"could not read the target groups: {aws_fault_reason(e, ', '.join(target_group_arns))}") from e
    return _productions(elbv2, sorted({lb for g in groups for lb in g.get("LoadBalancerArns", [])}))


def _productions(elbv2, load_balancer_arns: list[str]) -> list["_Production"]:
    found = []
    for lb_arn in load_balancer_arns:
        live = read_live_state(elbv2, lb_arn, strict=False)
        if live.record is not None:
            listener = live.record.listener_arn
        elif live.production is not None:  # a stack deployed before the record: its tagged listener
            listener = live.production.arn
        elif live.record_problem is not None and any(k in t for t in live.listener_tags.values() for k in _RECORD_KEYS):
            # A listener records a rollout, but it cannot be read (a legacy bluegreen:stable colour that no target group's
            # colour tag matches any more, two listeners that disagree): not "no production listener here".
            raise LiveStateError(f"the production listener of {lb_arn} cannot be identified: {live.record_problem}")
        else:
            continue
        shares: dict[str, float] = {}
        for route in live.routes:
            if route.listener_arn == listener and not opt_in_route(route.conditions if route.rule_arn else None):
                for arn, share in route.shares.items():
                    shares[arn] = max(shares.get(arn, 0.0), share)
        members = frozenset(arn for route in live.routes if route.listener_arn == listener for arn in route.shares)
        default = next((dict(r.shares) for r in live.routes if r.listener_arn == listener and r.rule_arn is None), {})
        found.append(_Production(dict(live.listener_tags.get(listener, {})), shares, dict(live.colors), members, listener, default))
    return found


_RECORD_KEYS = (STABLE_TG_TAG, STABLE_TAG, STEPS_TAG, TAG_WORKLOAD)  # tags only the listener that records a rollout has


def _stack_productions(stack: str) -> list["_Production"]:
    """The live production traffic of every load balancer of `stack` (its `bluegreen:stack` tag, written by an
    earlier update, and the live production listener's own) in the pack's region: for a Kubernetes object
    that names no target group (a Service, a bare Pod), the colours whose routes it could touch. Read afresh
    for every object (no cache: a Service judged in `up` must see this update's listener)."""
    elbv2 = _client("elbv2", _stack_region())
    try:
        arns = [lb["LoadBalancerArn"] for page in elbv2.get_paginator("describe_load_balancers").paginate() for lb in page.get("LoadBalancers", [])]
        tags: dict[str, dict[str, str]] = {}
        for i in range(0, len(arns), 20):
            for d in elbv2.describe_tags(ResourceArns=arns[i : i + 20]).get("TagDescriptions", []):
                tags[d["ResourceArn"]] = {t["Key"]: t.get("Value", "") for t in d.get("Tags", [])}
    except Exception as e:  # noqa: BLE001
        raise LiveStateError(f"could not list the load balancers of stack {stack}: {aws_fault_reason(e, stack)}") from e
    mine = [arn for arn in arns if tags.get(arn, {}).get(TAG_STACK) == stack]
    return [p for p in _productions(elbv2, mine) if p.tags.get(TAG_STACK) in (None, stack)]


def opt_in_route(conditions: str | None) -> bool:
    """A rule that only requests carrying an exact header reach (the header route, `X-Canary: always`):
    opt-in test traffic to the candidate, not users' traffic, so it does not freeze the idle colour's
    workload (a release goes there). Any other rule -- a path, host or query condition, or a header
    value with a wildcard -- carries users' traffic. (`rollout.live.condition_key` text.)"""
    if not conditions:
        return False
    parts = conditions.split("|")
    return all(p.startswith("http-header:") and "*" not in p and "?" not in p for p in parts)


@dataclass(frozen=True)
class _Production:
    """The live-recorded production listener: its tags, and each target group's largest share (0..1)
    of any of its routes."""

    tags: Mapping[str, str]
    shares: Mapping[str, float]
    colors: Mapping[str, str] = field(default_factory=dict)  # target group ARN -> live colour tag
    members: frozenset[str] = frozenset()  # every target group a route of the listener forwards to (weight 0 included)
    listener_arn: str = ""
    default_shares: Mapping[str, float] = field(default_factory=dict)  # its default action: target group ARN -> 0..1

    def carrying(self) -> dict[str, int]:
        """Colour (its target group's live colour tag) -> its live share in percent, for colours carrying traffic."""
        out: dict[str, int] = {}
        for arn, share in self.shares.items():
            color = self.colors.get(arn)
            if color in COLORS and share > 0:
                out[color] = max(out.get(color, 0), max(1, round(share * 100)))
        return out

    def unreadable_colour(self, arns: Any = None) -> tuple[str, str] | None:
        """(target group ARN, its live colour tag) of a target group (of `arns`, else any) that carries traffic and whose
        `bluegreen:color` tag is there but names no colour: which colour's objects it serves cannot be told."""
        for arn, raw in sorted(self.colors.items()):
            if raw not in COLORS and self.shares.get(arn, 0.0) > 0 and (arns is None or arn in arns):
                return arn, raw
        return None

    def record(self) -> WorkloadRecord | UnreadableRecord | None:
        """Its `bluegreen:workload` record; `UnreadableRecord` when the tag is there but unreadable, None when absent."""
        return read_record_tag(self.tags)

    def rolling_back(self) -> bool:
        """Whether this run's update of this listener was judged a rollback (`rollback_verdicts`), from live AWS and
        the proposed weights, and the listener is still as that verdict saw it or as the update makes it."""
        return rollback_verdicts.rolling_back(self.listener_arn, self.tags.get(TAG_WORKLOAD), self.default_shares)


def _odd_colour(prod: _Production, found: Any, what: str, arns: Any = None) -> bool:
    """Refuse (True) while a target group (of `arns`, else any) carrying traffic on `prod` has a colour tag that cannot be
    read, unless this run's update of the listener is a rollback: the one-line refusal names the tag and the way out."""
    odd = prod.unreadable_colour(arns)
    if odd is None or prod.rolling_back():
        return False
    arn, raw = odd
    found.problem = (
        f"target group {_tg_name(arn)} carries {max(1, round(prod.shares.get(arn, 0.0) * 100))}% of live production traffic and "
        f"its live bluegreen:color tag is {raw!r}, not blue or green, so which colour {what} may serve cannot be told: only a "
        f"rollback toward the recorded stable colour passes now; restore the tag on the target group (no update may change it)"
    )
    found.glassable, found.hint = False, False
    return True


def _unreadable_problem(found: UnreadableRecord, carries: str, what: str) -> str:
    """The one-line refusal of a carrying colour's object while the live record cannot be read."""
    return (
        f"the live production listener's {TAG_WORKLOAD} tag cannot be read (found {found.shown()}), so {what} cannot be "
        f"shown to be what it records while {carries}: only a rollback toward the recorded stable colour passes now; set "
        f"bluegreen:breakGlass.reason for one update to re-record it"
    )


def live_traffic(target_group_arns: list[str]) -> dict[str, int]:
    """Each target group ARN -> its weight on its load balancer's live production listener (0: not there).

    The one place this module asks AWS who carries traffic (rollout.live's reads). Raises
    LiveStateError when AWS cannot be read or the live state cannot be interpreted.
    """
    out = {arn: 0 for arn in target_group_arns}
    if not target_group_arns:
        return out
    for prod in _production_listeners(target_group_arns):
        for arn, share in prod.shares.items():
            if arn in out:
                out[arn] = max(out[arn], max(1, round(share * 100)) if share > 0 else 0)
    return out


def _live_records(target_group_arns: list[str]) -> list[str | UnreadableRecord | None]:
    """What the live production listener records (its config `bluegreen:workload` entry) for the live colour of
    each of these target groups that has one -- the colour read from AWS, never from the service's own tags;
    `UnreadableRecord` where the record is there but unreadable and this run's listener update is no rollback."""
    entries: list[str | UnreadableRecord | None] = []
    for prod in _production_listeners(target_group_arns):
        record = prod.record()
        if isinstance(record, UnreadableRecord) and prod.rolling_back():
            record = None  # this run returns traffic to the recorded stable target group: as if nothing were recorded
        for arn in target_group_arns:
            color = prod.colors.get(arn)
            if color in COLORS:
                ok = isinstance(record, WorkloadRecord) and record.kind == CONFIG_RECORD  # what an ECS service's own tag records
                entries.append(record.fingerprints.get(color) if ok else record if isinstance(record, UnreadableRecord) else None)
    return entries


@dataclass(frozen=True)
class LiveService:
    """An ECS service as AWS has it now."""

    task_definition: str
    desired_count: int
    target_groups: tuple[str, ...]


def _live_service(cluster: str, name: str, region: str | None) -> LiveService | None:
    # The region comes from the target groups (or the pack's default), never from the cluster input alone:
    # a cluster ARN naming an unreachable region must not turn a workload change into an "unreadable" fault.
    ecs = _client("ecs", region)
    try:
        found = ecs.describe_services(cluster=cluster, services=[name]).get("services", [])
    except Exception as e:  # noqa: BLE001
        raise LiveStateError(f"could not read the live ECS service {name}: {aws_fault_reason(e, name)}") from e
    try:
        for s in found:
            if s.get("status") in ("ACTIVE", "DRAINING"):
                tgs = tuple(lb["targetGroupArn"] for lb in s.get("loadBalancers", []) if lb.get("targetGroupArn"))
                return LiveService(str(s.get("taskDefinition", "")), int(s.get("desiredCount", 0)), tgs)
    except Exception as e:  # noqa: BLE001 - an answer this code cannot interpret is an unreadable service, not a crash
        raise LiveStateError(
            f"could not interpret the live ECS service {name}: {type(e).__name__}: {e}"
        ) from e
    return None


def _image_of(task_definition_arn: str) -> str:
    """The task definition's container images, for messages; '?' when it cannot be read."""
    try:
        ecs = _client("ecs", _region(task_definition_arn))
        td = ecs.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
        return ", ".join(c.get("image", "?") for c in td.get("containerDefinitions", [])) or "?"
    except Exception:  # noqa: BLE001 - only for the message
        return "?"


def _tg_name(arn: str) -> str:
    """`bg-blue` from arn:...:targetgroup/bg-blue/0123abcd."""
    parts = arn.split(":")[-1].split("/")
    return parts[1] if len(parts) == 3 else arn


def _short_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


# --------------------------------------------------------------------------- the assessment


@dataclass
class WorkloadChange:
    """What one ECS service update changes, and whether the colour it serves carries traffic."""

    urn: str
    changes: list[str] = field(default_factory=list)  # what the update changes in the workload
    carrying: dict[str, int] = field(default_factory=dict)  # target group ARN -> live weight > 0
    fault: str | None = None  # why traffic could not be read (fail closed)
    break_glass: str | None = None  # the reason tagged on the service, if valid

    @property
    def at_risk(self) -> bool:
        return bool(self.changes) and (bool(self.carrying) or self.fault is not None)

    def describe(self) -> str:
        what = "; ".join(self.changes)
        if self.carrying:
            on = ", ".join(f"target group {_tg_name(a)} with {w}% of live production traffic" for a, w in sorted(self.carrying.items()))
            return f"the workload of a colour carrying production traffic must not change: the service serves {on}, and this update changes it ({what})"
        return (
            f"the workload of a colour that may carry production traffic must not change while that cannot be "
            f"checked: this update changes it ({what}) and {self.fault}"
        )


_MEMO: dict[str, tuple[float, WorkloadChange | None]] = {}
_MEMO_LOCK = threading.Lock()


def _assess_service(args: ResourceValidationArgs, floor: int) -> WorkloadChange | None:
    """The workload change of an ECS service update, shared by the policies of one Analyze call."""
    if args.resource_type not in ECS_SERVICE_TYPES:
        return None
    offline, _ = offline_section(args)
    if offline is not None or os.environ.get(OFFLINE_TOKEN_ENV):
        return None  # `rollout plan`: steps move the listener only; there is no live service to compare with
    try:
        key = f"{args.urn}\n{floor}\n{json.dumps(serialize_properties(args.props), sort_keys=True, default=repr)}"
    except Exception:  # noqa: BLE001
        key = None
    if key is not None:
        with _MEMO_LOCK:
            now = time.monotonic()
            for k in [k for k, (exp, _) in _MEMO.items() if exp < now]:
                del _MEMO[k]
            if key in _MEMO:
                return _MEMO[key][1]
    found = _assess(args, floor)
    if key is not None:
        with _MEMO_LOCK:
            _MEMO[key] = (time.monotonic() + 2.0, found)
    return found


def _known(read) -> tuple[Any, bool]:
    """(value, known): an unknown value (preview) is reported as not known instead of raising."""
    try:
        return read(), True
    except UnknownValueError:
        return None, False


def _assess(args: ResourceValidationArgs, floor: int) -> WorkloadChange:
    props = args.props
    tags = tags_of(props)
    reason = tags.get(TAG_BREAK_GLASS)
    change = WorkloadChange(urn=args.urn, break_glass=reason if isinstance(reason, str) and BREAK_GLASS_RE.match(reason) else None)

    raw_lbs, _ = _known(lambda: props.get("loadBalancers"))
    lbs = [lb for lb in raw_lbs if isinstance(lb, Mapping)] if is_seq(raw_lbs) else []
    proposed_tgs: list[str] = []
    for lb in lbs:
        arn, known = _known(lambda: lb.get("targetGroupArn"))
        if known and isinstance(arn, str) and arn:
            proposed_tgs.append(arn)
    cluster, cluster_known = _known(lambda: props.get("cluster"))
    name, name_known = _known(lambda: props.get("name"))
    task_def, td_known = _known(lambda: props.get("taskDefinition"))
    desired = as_weight(_known(lambda: props.get("desiredCount"))[0])
    if not td_known and proposed_tgs:
        abort_run.note_pending(proposed_tgs)  # a preview of a new task definition: a release `abort-marker` may let the header route follow

    region = _region(proposed_tgs[0]) if proposed_tgs else None
    try:
        live = (
            bounded_read(lambda: _live_service(cluster, name, region), "the live ECS service")
            if cluster_known and name_known and isinstance(cluster, str) and isinstance(name, str) and cluster and name
            else None
        )
    except LiveStateError as e:
        live = None
        same = _same_as_record(tags, td_known, proposed_tgs)
        if isinstance(same, UnreadableRecord):
            change.changes.append(
                f"what it runs cannot be told: ECS is unreadable ({e}) and so is the live listener's {TAG_WORKLOAD} tag (found "
                f"{same.shown()}); only a rollback passes now, or bluegreen:breakGlass.reason set for one update, which re-records it"
            )
            change.fault = str(e)
        elif same is not False and td_known:
            # The listener's live record says it is unchanged, or nothing can tell: a traffic step or a
            # rollback must not be refused because ECS is unreadable (the preview of a real change has
            # an unknown task definition and is refused below).
            return change
        if not change.changes:
            change.changes.append(
                "a new task definition revision" if not td_known else f"what it runs, by its bluegreen:workload record ({e})"
            )
        change.fault = change.fault or str(e)
    if change.fault is None:
        if live is None:
            change.changes.append("a new service registers tasks")
        else:
            if not td_known:
                change.changes.append(f"a new task definition revision replaces {_short_arn(live.task_definition)} (image {_image_of(live.task_definition)})")
            elif task_def != live.task_definition:
                change.changes.append(
                    f"task definition {_short_arn(live.task_definition)} -> {_short_arn(str(task_def))} "
                    f"(image {_image_of(live.task_definition)} -> {_image_of(str(task_def))})"
                )
            if desired is not None and desired < live.desired_count and desired < floor:
                change.changes.append(f"desired count {live.desired_count} -> {desired}, below the floor of {floor}")
            if set(proposed_tgs) != set(live.target_groups) and proposed_tgs:
                change.changes.append("the target groups it registers tasks in")
    if not change.changes:
        return change

    tgs = sorted(set(proposed_tgs) | set(live.target_groups if live else ()))
    if not tgs and change.fault is None:
        props.get("loadBalancers")  # not known yet (a preview): the SDK's UnknownValueError, an advisory skip
        for lb in lbs:
            lb.get("targetGroupArn")
        return WorkloadChange(urn=args.urn)  # serves no load balancer: no traffic to protect
    if tgs:
        try:
            weights = bounded_read(lambda: live_traffic(tgs), "the live production listener")
            change.carrying = {a: w for a, w in weights.items() if w > 0}
        except LiveStateError as e:
            change.fault = change.fault or str(e)
    return change


def _same_as_record(tags: Mapping[str, str], td_known: bool, tgs: list[str]) -> bool | UnreadableRecord | None:
    """When ECS cannot be read: is the service's own record of what it runs (`bluegreen:workload`, its
    colour's fingerprint) the same as the live production listener's record for the live colour of every
    target group it serves (the colour from AWS: its `bluegreen:color` tag is the update's label)?
    None when that cannot be told either; the `UnreadableRecord` when the listener's record is there but
    unreadable (and this run's listener update is no rollback): a change cannot be ruled out.

    Only for telling an unchanged service (every traffic step, every rollback) from a changed one while
    ECS is unreadable; a new task definition revision (unknown in a preview) is always a change.
    """
    if not td_known or not tgs:
        return None
    mine = tags.get(TAG_WORKLOAD)
    if not mine:
        return None
    try:
        live = bounded_read(lambda: _live_records(tgs), "the live production listener")
    except LiveStateError:
        return None
    unreadable = next((entry for entry in live if isinstance(entry, UnreadableRecord)), None)
    if unreadable is not None:
        return unreadable  # there but unreadable: not "nothing can tell" (fails closed unless this run rolls back)
    if not live or any(entry is None for entry in live):
        return None
    return all(entry == mine for entry in live)


# --------------------------------------------------------------------------- Kubernetes Deployments


class _Unknown:
    """Where the Deployment's inputs hold a value not known yet (a preview)."""


def _materialise(read: Any) -> tuple[Any, bool]:
    """A plain copy of the policy-SDK value `read()` returns, unknown leaves replaced by `_Unknown`;
    (copy, every leaf known)."""
    known = True

    def walk(v: Any) -> Any:
        nonlocal known
        if isinstance(v, Mapping):
            out = {}
            for k in list(v.keys()):
                try:
                    out[k] = walk(v[k])
                except UnknownValueError:
                    known, out[k] = False, _Unknown()
            return out
        if is_seq(v):
            items = []
            for i in range(len(v)):
                try:
                    items.append(walk(v[i]))
                except UnknownValueError:
                    known = False
                    items.append(_Unknown())
            return items
        return v

    try:
        return walk(read()), known
    except UnknownValueError:
        return _Unknown(), False


def _at(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


@dataclass
class DeploymentCheck:
    """What the pack found about one Kubernetes Deployment: a problem (refuse), and a break-glass reason."""

    problem: str | None = None
    break_glass: str | None = None  # a valid reason in the Deployment's annotation
    glassable: bool = True  # identity problems (which colour it serves) are never let through
    hint: bool = True  # the refusal ends with the release hint (not when the problem names its own way out)

    def unreadable(self, record: UnreadableRecord, carries: str, what: str) -> "DeploymentCheck":
        """Refuse: the live record cannot be read while a colour carries traffic (break-glass re-records it)."""
        self.problem, self.hint = _unreadable_problem(record, carries, what), False
        return self


def _reach(value: Any, *path: str) -> Any:
    """Like `_at`, but a value not known yet on the way is the answer (`_Unknown`), not None."""
    for key in path:
        if isinstance(value, _Unknown):
            return value
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _urn_stack(urn: str) -> str | None:
    head = urn.split("::", 1)[0]
    return head.rsplit(":", 1)[-1] if head.startswith("urn:pulumi:") else None


def _target_group_productions(
    args: ResourceValidationArgs, tg: str, kind: str, known: bool, found: DeploymentCheck
) -> list[_Production] | None:
    """The live production listeners of the target group a Kubernetes object names (a Deployment's annotation, a
    TargetGroupBinding's spec), or None when `found` holds the answer: a refusal (an ARN that is none, another stack's
    target group, a fault while the object is not known) or a pass (AWS unreadable for the pack, the object known)."""
    if _region(tg) is None or not tg.startswith("arn:aws") or ":elasticloadbalancing:" not in tg:
        found.problem = f"the {kind}'s target group {tg!r} is not a target group ARN, so its traffic cannot be checked"
        found.glassable = False
        return None
    region = _stack_region()  # where the stack's listener is: never the region of an ARN this update writes
    if region != _region(tg):
        found.problem = (
            f"the {kind} names a target group in region {_region(tg)!r}, but the stack is in {region!r} (aws:region): "
            f"a {kind} may only name its colour's target group on the stack's production listener"
        )
        found.glassable = False
        return None
    try:
        prods = bounded_read(lambda: _production_listeners([tg], region), "the live production listener")
    except Exception as e:  # noqa: BLE001 - a LiveStateError, or an answer this code cannot interpret
        # The region is the stack's, so a fault here is AWS being unreadable for the pack itself (credentials,
        # throttling, network, an answer that cannot be interpreted) only in a region AWS has; an AWS error about
        # this update's input (a target group that does not exist) is not environmental and fails closed.
        environmental = _pack_cannot_read_aws(e, region)
        if environmental and known:
            return None  # AWS unreadable for the pack itself: the documented trade-off (docs/workload.md)
        what = f"this {kind} is not known yet and " if not known else ""
        fault = str(e) if isinstance(e, LiveStateError) else f"could not read the live production listener in region {region!r}: {type(e).__name__}: {e}"
        found.problem = f"whether this {kind}'s colour carries traffic cannot be checked: {what}{fault}"
        return None
    stack = _urn_stack(args.urn)
    for prod in prods:
        owner = prod.tags.get(TAG_STACK)
        if stack and owner and owner != stack:
            found.problem = (
                f"the {kind} names target group {_tg_name(tg)}, whose live production listener belongs to stack {owner!r}, "
                f"not {stack!r}: a {kind} may only name its own colour's target group"
            )
            found.glassable = False
            return None
    return prods


def _assess_deployment(args: ResourceValidationArgs) -> DeploymentCheck | None:
    """Invariant 4 for a Kubernetes colour, from the Deployment the engine is about to apply and AWS.

    The colour is the pods' `color` label (what that colour's Service selects), which must be the live
    colour tag of the target group the Deployment names (annotation `bluegreen/target-group-arn`, written
    by this update: it only points at the stack's listener, which must forward to that target group, in
    the stack's region); whether the colour carries traffic (any of its target groups, on any route) and
    what it may run come from the live production listener (its routes and its `bluegreen:workload`
    record, written by an earlier update). The
    fingerprint is computed here, from the Deployment's own pod template and replicas
    (`rollout.workload.deployment_fingerprint`), never read from a label.
    """
    if args.resource_type not in DEPLOYMENT_TYPES:
        return None
    offline, _ = offline_section(args)
    if offline is not None or os.environ.get(OFFLINE_TOKEN_ENV):
        return None  # `rollout plan`: steps move the listener only
    props = args.props
    metadata, _ = _materialise(lambda: props.get("metadata"))
    spec, spec_known = _materialise(lambda: props.get("spec"))
    annotations = _at(metadata, "annotations")
    reason = _valid_reason(_at(annotations, ANNOTATION_BREAK_GLASS))
    found = DeploymentCheck(break_glass=reason)
    template = _at(spec, "template")
    label = _at(template, "metadata", "labels", "color")
    label = label if label in COLORS else None
    fingerprint: str | None = None
    if spec_known:
        try:
            fingerprint = deployment_fingerprint(template, _at(spec, "replicas"))
        except ValueError:
            fingerprint = None
    tg = _at(annotations, ANNOTATION_TARGET_GROUP)
    if isinstance(tg, _Unknown):
        props.get("metadata").get("annotations").get(ANNOTATION_TARGET_GROUP)  # the SDK's UnknownValueError: a first deploy's preview
    if not isinstance(tg, str) or not tg:
        if label is None:
            return None  # not a colour's workload: no colour's Service selects its pods
        found.problem = (
            f"which target group a Deployment labelled color={label} serves cannot be told: it has no "
            f"{ANNOTATION_TARGET_GROUP} annotation (found {tg!r}), so whether its colour carries traffic cannot be checked"
        )
        found.glassable = False
        return found
    prods = _target_group_productions(args, tg, "Deployment", fingerprint is not None, found)
    if prods is None:
        return found
    mine = [prod for prod in prods if tg in prod.members]
    if not mine and label is not None:
        found.problem = (
            f"a Deployment's pods labelled color={label} must name their colour's target group on the stack's production "
            f"listener, where whether {label} carries traffic is read: its {ANNOTATION_TARGET_GROUP} names target group "
            f"{_tg_name(tg)}, to which no route of the stack's production listener forwards"
        )
        found.glassable = False
        return found
    checks: list[tuple[_Production, str | None]] = []
    for prod in mine:
        if _odd_colour(prod, found, "this Deployment"):
            return found
        color = prod.colors.get(tg)
        if color is not None and color not in COLORS and prod.rolling_back():
            continue  # its colour tag is there but unreadable, and this run's listener update is a rollback
        color = color if color in COLORS else None
        if label != color:
            found.problem = (
                f"a Deployment's pods must be labelled with the colour of the target group they serve: its pods say "
                f"color={label} (what that colour's Service selects) but it names target group {_tg_name(tg)}, whose live "
                f"colour is {color}"
            )
            found.glassable = False
            return found
        checks.append((prod, color))
    stack = _urn_stack(args.urn)
    if label in COLORS and stack:
        # The stack's other production listeners (its load balancers' bluegreen:stack tag): the annotation cannot
        # choose which listener the pods' colour is judged on (a second load balancer the program adds for the stack).
        try:
            others = bounded_read(lambda: _stack_productions(stack), "the stack's load balancers")
        except Exception as e:  # noqa: BLE001 - as for the named target group's listener above
            if not (_pack_cannot_read_aws(e, _stack_region()) and fingerprint is not None):
                found.problem = f"whether this Deployment's colour carries traffic cannot be checked: {e}"
                return found
            others = []
        checks += [(p, label) for p in others if all(p != q for q, _ in checks)]
    for prod, color in checks:
        if _odd_colour(prod, found, "this Deployment"):
            return found
        # The colour's traffic: every target group of that live colour on the listener, whichever the annotation names.
        share = max((s for arn, s in prod.shares.items() if prod.colors.get(arn) == color), default=0.0)
        if share <= 0 or color is None:
            continue  # idle: a release goes here
        record = prod.record()
        carries = f"{color} carries {max(1, round(share * 100))}% of live production traffic"
        if isinstance(record, UnreadableRecord):
            if prod.rolling_back():
                continue  # this run's listener update returns traffic to the recorded stable target group
            return found.unreadable(record, carries, f"this Deployment of {color}")
        if record is None or record.kind != POD_RECORD:
            continue  # nothing comparable recorded yet (a record from before pod fingerprints): the listener's check decides
        if fingerprint is None:
            found.problem = (
                f"the workload of a colour carrying production traffic must not change: {carries}, and this Deployment's pod "
                f"template or replicas are not known yet (preview), so it cannot be shown to be what the live listener records"
            )
        elif fingerprint != record.fingerprints.get(color):
            found.problem = (
                f"the workload of a colour carrying production traffic must not change: {carries}, and this Deployment's pod "
                f"template or replicas (fingerprint {fingerprint}: {_pod_summary(template, _at(spec, 'replicas'))}) differ from what "
                f"the live production listener's {TAG_WORKLOAD} records for {color} ({record.fingerprints.get(color)})"
            )
        if found.problem:
            return found
    return found


def _stack_region() -> str | None:
    """The stack's region: its `aws:region` (the engine starts a policy pack with the stack's configuration in
    PULUMI_CONFIG), else the pack's environment (AWS_REGION, the profile), as the AWS provider would use."""
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        config = {}
    region = config.get("aws:region") if isinstance(config, dict) else None
    return region if isinstance(region, str) and region else _environment_region()


@functools.lru_cache(maxsize=1)
def _environment_region() -> str | None:
    """The pack process's default region (its environment does not change; a boto3 session costs ~30 ms)."""
    import boto3  # not at import: an offline pack never reaches this

    return boto3.session.Session().region_name


@functools.lru_cache(maxsize=16)
def _pack_cannot_read_aws(e: Exception, region: str | None) -> bool:
    """A read fault that is AWS being unreadable for the pack itself (credentials, throttling, network, an answer
    that cannot be interpreted) in the stack's region, which AWS has: not something this update's input caused."""
    return _known_region(region) and (fault_is_environmental(e) or not isinstance(e, LiveStateError))


def _known_region(region: str | None) -> bool:
    """Whether Elastic Load Balancing has `region` in some partition (botocore's endpoint data): an unreachable
    endpoint there is AWS being down; one in a made-up region is the input's fault."""
    import boto3

    session = boto3.session.Session()
    return any(region in session.get_available_regions("elbv2", partition_name=p) for p in session.get_available_partitions())


def _pod_summary(template: Any, replicas: Any) -> str:
    containers = _at(template, "spec", "containers")
    images = [str(c.get("image")) for c in containers if isinstance(c, Mapping)] if isinstance(containers, list) else []
    return f"image {', '.join(images) or '?'}, replicas {as_weight(replicas) if replicas is not None else 1}"


# --------------------------------------------------------------------------- Kubernetes routes: Services, bindings, other pods


SERVICE_TYPES = frozenset({"kubernetes:core/v1:Service"})
# Kinds that make pods from a template of their own (the pods' labels at this path), besides the colour's Deployment.
_POD_LABELS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("metadata", "labels"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "metadata", "labels"),
    **{k: ("spec", "template", "metadata", "labels") for k in ("ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController")},
}


def _is_binding(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:elbv2.k8s.aws/") and resource_type.endswith(":TargetGroupBinding")


def _pod_kind(resource_type: str) -> str | None:
    """The kind of a Kubernetes object that may make pods: a known kind, or any other object (a custom resource such
    as an Argo Rollout) whose spec holds a pod template; None for what is not a Kubernetes object."""
    kind = resource_type.rsplit(":", 1)[-1]
    return kind if resource_type.startswith("kubernetes:") and "/" in resource_type else None


def _pod_colors(kind: str, props: Any) -> list[Any]:
    """The `color` labels of the pods `props` would make: at the known path of a known kind, else of every pod
    template (a mapping under a `template` key with metadata.labels) anywhere in its spec."""
    if kind in _POD_LABELS:
        labels = _reach(props, *_POD_LABELS[kind])
        return [labels.get("color") if isinstance(labels, Mapping) else labels]
    found: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key == "template":
                    labels = _reach(item, "metadata", "labels")
                    found.append(labels.get("color") if isinstance(labels, Mapping) else labels)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(_at(props, "spec"))
    return found


def _fingerprint_or_none(compute: Any) -> str | None:
    try:
        return compute()
    except ValueError:  # a value not known yet (_Unknown) or not JSON-like: cannot tell
        return None


def _assess_route(args: ResourceValidationArgs) -> DeploymentCheck | None:
    """Invariant 4 for the path from a colour's target group to its pods (a TargetGroupBinding, a Service, any
    other object that makes pods); None when `args` is none of them."""
    kind = (
        "binding" if _is_binding(args.resource_type)
        else "service" if args.resource_type in SERVICE_TYPES
        else "endpoints" if args.resource_type in ENDPOINT_TYPES
        else _pod_kind(args.resource_type)
    )
    if kind is None:
        return None
    offline, _ = offline_section(args)
    if offline is not None or os.environ.get(OFFLINE_TOKEN_ENV):
        return None
    props = args.props
    metadata, meta_known = _materialise(lambda: props.get("metadata"))
    spec, spec_known = _materialise(lambda: props.get("spec"))
    found = DeploymentCheck(break_glass=_valid_reason(_at(metadata, "annotations", ANNOTATION_BREAK_GLASS)))
    if kind == "binding":
        return _assess_binding(args, metadata, spec, found)
    if kind == "service":
        return _assess_k8s_service(args, metadata, spec, meta_known and spec_known, found)
    if kind == "endpoints":
        return _assess_endpoints(args, metadata, found)
    return _assess_other_pods(args, kind, {"metadata": metadata, "spec": spec}, found)


def _route_records(prod: _Production) -> Any:
    """The live record, when it holds routes (a pod record from before routes were recorded: nothing to compare);
    `UnreadableRecord` when it cannot be read, unless this run's update of the listener is a rollback."""
    record = prod.record()
    if isinstance(record, UnreadableRecord):
        return None if prod.rolling_back() else record
    return record if record is not None and record.identities is not None else None


def _assess_binding(args: ResourceValidationArgs, metadata: Any, spec: Any, found: DeploymentCheck) -> DeploymentCheck | None:
    """A TargetGroupBinding registers the pods of `serviceRef` in the target group it names: while that group's
    live colour carries traffic, the binding's namespace and serviceRef must be the recorded ones."""
    tg = _at(spec, "targetGroupARN")
    if isinstance(tg, _Unknown):
        args.props.get("spec").get("targetGroupARN")  # the SDK's UnknownValueError: a new target group's preview
    if not isinstance(tg, str) or not tg:
        return None  # names no target group: registers nothing
    namespace, ref = _at(metadata, "namespace"), _at(spec, "serviceRef")
    fingerprint = _fingerprint_or_none(lambda: binding_fingerprint(namespace, ref))
    prods = _target_group_productions(args, tg, "TargetGroupBinding", fingerprint is not None, found)
    for prod in prods or []:
        if _odd_colour(prod, found, "this TargetGroupBinding", [tg]):
            return found
        color, record = prod.colors.get(tg), _route_records(prod)
        share = prod.carrying().get(color) if color in COLORS else None
        if not share or record is None:
            continue  # idle (a release goes there), or no route recorded yet (the listener's check decides)
        if isinstance(record, UnreadableRecord):
            return found.unreadable(record, f"{color} carries {share}% of live production traffic", f"this TargetGroupBinding of {color}")
        found.problem = _route_problem(
            f"{color} carries {share}% of live production traffic", fingerprint, record.bindings[color],
            "this TargetGroupBinding's namespace or serviceRef is",
            f"this TargetGroupBinding registers serviceRef {_brief(ref)} of namespace {namespace!r} in its target group {_tg_name(tg)}",
        )
        if found.problem:
            return found
    return found


def _route_problem(carries: str, fingerprint: str | None, recorded: str, unknown: str, changed: str) -> str | None:
    """The refusal for a carrying colour's route object whose fingerprint is not known or not the recorded one."""
    head = f"the pods behind a colour carrying production traffic must not change: {carries}, and"
    if fingerprint is None:
        return f"{head} {unknown} not known yet (preview), so it cannot be shown to be the recorded one"
    if fingerprint != recorded:
        return f"{head} {changed} (fingerprint {fingerprint}), not what the live production listener's {TAG_WORKLOAD} records ({recorded})"
    return None


def _brief(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=lambda v: "(unknown)")


def _stack_carrying(args: ResourceValidationArgs, known: bool, kind: str, found: DeploymentCheck) -> list[tuple[Any, dict[str, int]]] | None:
    """(route record, carrying colours -> %) of each live production listener of the object's stack, or None when
    `found` holds the answer (AWS unreadable: a known Service passes, as in a rollback; anything else is refused)."""
    stack = _urn_stack(args.urn)
    if not stack:
        return None
    try:
        prods = bounded_read(lambda: _stack_productions(stack), "the live production listeners of the stack")
    except Exception as e:  # noqa: BLE001 - a LiveStateError, or an answer this code cannot interpret
        if known and kind == "Service" and _pack_cannot_read_aws(e, _stack_region()):
            return None  # AWS unreadable for the pack itself: the documented trade-off (docs/workload.md)
        found.problem = f"whether this {kind} could reach a colour carrying production traffic cannot be checked: {e}"
        found.glassable = kind == "Service"
        return None
    for prod in prods:
        if _odd_colour(prod, found, f"this {kind}"):
            return None
    return [(_route_records(p), p.carrying()) for p in prods]


def _assess_k8s_service(args: ResourceValidationArgs, metadata: Any, spec: Any, known: bool, found: DeploymentCheck) -> DeploymentCheck | None:
    """A Service is a carrying colour's recorded Service when its name gives the colour's recorded `id` (identified by
    the record, never by a label; any namespace, so one left to the provider's default is judged too): then its
    namespace, name and spec must give the recorded `svc` fingerprint."""
    lives = _stack_carrying(args, known, "Service", found)
    namespace, name = _at(metadata, "namespace"), _at(metadata, "name")
    if _unreadable_route(lives, f"this Service {name if isinstance(name, str) else '(name not known yet)'}", found):
        return found
    fingerprint = _fingerprint_or_none(lambda: service_fingerprint(namespace, name, spec))
    for record, color, carries in _carrying_routes(lives):
        if isinstance(name, _Unknown):
            found.problem = (
                f"the pods behind a colour carrying production traffic must not change: {carries}, and this Service's "
                f"name is not known yet (preview), so whether it is {color}'s Service cannot be told"
            )
        elif service_identity(name) == record.identities[color]:
            found.problem = _route_problem(
                carries, fingerprint, record.services[color], f"the spec of its Service {namespace}/{name} is",
                f"this update changes its Service {namespace}/{name} (selector {_brief(_at(spec, 'selector'))}, ports {_brief(_at(spec, 'ports'))})",
            )
        if found.problem:
            return found
    return found


def _carrying_routes(lives: list[tuple[Any, dict[str, int]]] | None) -> list[tuple[Any, str, str]]:
    """(route record, colour, 'blue carries N% ...') for each colour carrying traffic under a record with routes."""
    return [
        (record, color, f"{color} carries {share}% of live production traffic")
        for record, carrying in lives or []
        if isinstance(record, WorkloadRecord)
        for color, share in sorted(carrying.items())
    ]


def _unreadable_route(lives: list[tuple[Any, dict[str, int]]] | None, what: str, found: DeploymentCheck) -> bool:
    """Refuse (True) when a live production listener of the stack has a record that cannot be read while a colour carries
    traffic: which colour's Service this object may touch cannot be told from it."""
    for record, carrying in lives or []:
        if isinstance(record, UnreadableRecord) and carrying:
            found.unreadable(record, ", ".join(f"{c} carries {w}% of live production traffic" for c, w in sorted(carrying.items())), what)
            found.glassable = True
            return True
    return False


ENDPOINT_TYPES = frozenset({"kubernetes:discovery.k8s.io/v1:EndpointSlice", "kubernetes:discovery.k8s.io/v1beta1:EndpointSlice", "kubernetes:core/v1:Endpoints"})
_SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # which Service an EndpointSlice feeds


def _assess_endpoints(args: ResourceValidationArgs, metadata: Any, found: DeploymentCheck) -> DeploymentCheck | None:
    """Endpoints written by hand join a Service's endpoints (the controller registers an EndpointSlice's addresses,
    whatever they are, when its targetRef names a pod): none may feed a carrying colour's Service."""
    slice_ = args.resource_type.endswith(":EndpointSlice")
    name = _reach(metadata, "labels", _SERVICE_NAME_LABEL) if slice_ else _reach(metadata, "name")
    if name is None:
        return None  # an EndpointSlice of no Service
    found.glassable = False
    what = f"{'EndpointSlice for Service' if slice_ else 'Endpoints object'} {name if isinstance(name, str) else '(not known yet)'}"
    lives = _stack_carrying(args, False, what, found)
    if _unreadable_route(lives, f"this {what}", found):
        return found
    for record, color, carries in _carrying_routes(lives):
        if isinstance(name, _Unknown) or service_identity(name) == record.identities[color]:
            found.problem = (
                f"the pods behind a colour carrying production traffic come only from its Service's selector: {carries}, and "
                f"this {what} could feed {color}'s Service its own addresses"
            )
            return found
    return found


def _assess_other_pods(args: ResourceValidationArgs, kind: str, props: Any, found: DeploymentCheck) -> DeploymentCheck | None:
    """Pods a colour's Service may select come only from that colour's Deployment (checked above): any other object
    whose pods carry the colour label with a colour that carries traffic is refused, whatever else it says."""
    colors = _pod_colors(kind, props)
    unknown = any(isinstance(c, _Unknown) for c in colors)
    labelled = sorted({c for c in colors if isinstance(c, str) and c in COLORS})
    if not unknown and not labelled:
        return None  # no colour's Service selects its pods
    found.glassable = False
    lives = _stack_carrying(args, False, kind, found)
    for record, carrying in lives or []:
        if unknown and carrying:
            found.problem = (
                f"pods of a colour carrying production traffic come only from its Deployment: this {kind}'s pod labels are "
                f"not known yet (preview) while {', '.join(f'{c} carries {w}%' for c, w in sorted(carrying.items()))} of live traffic"
            )
        for color in (c for c in labelled if c in carrying and not found.problem):
            found.problem = (
                f"pods of a colour carrying production traffic come only from its Deployment: this {kind}'s pods are labelled "
                f"color={color}, which its Service selects, and {color} carries {carrying[color]}% of live production traffic"
            )
        if found.problem:
            return found
    return found


# --------------------------------------------------------------------------- the policies


def _floor(args: ResourceValidationArgs) -> int:
    cfg = pack_config.settings("workload-frozen-while-live", args.get_config())
    value = as_weight(cfg.get("minDesiredCount"))
    return value if value is not None and value >= 1 else 2


def _kubernetes_check(args: ResourceValidationArgs) -> DeploymentCheck | None:
    found = _assess_deployment(args)
    return found if found is not None else _assess_route(args)


def _check_frozen(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    _note_rollback(args)
    pods = _kubernetes_check(args)
    if pods is not None:
        if pods.problem and not (pods.glassable and pods.break_glass):
            report_violation(f"{pods.problem}. {_RELEASE_HINT}." if pods.hint else f"{pods.problem}.")
        return
    change = _assess_service(args, _floor(args))
    if change is None or not change.at_risk or change.break_glass:
        return
    report_violation(f"{change.describe()}. {_RELEASE_HINT}.")


@dataclass
class ListenerWorkload:
    """A production-listener update, read for what it says about the colours' workloads."""

    tags: Mapping[str, str]  # the proposed listener tags
    live_weights: Mapping[str, int]  # colour -> live weight on the recorded listener
    weights: Mapping[str, int]  # colour -> proposed weight
    changing: list[str]  # colours whose recorded workload differs from the live listener's record
    moves_weights: bool
    record_dropped: bool  # the live listener has a record, the proposed one has none: cannot tell
    migrating: str | None = None  # the live record's kind, when the proposed one is of another kind: cannot compare
    unreadable: UnreadableRecord | None = None  # the live record is there but cannot be read: cannot compare
    rollback: bool = False  # a rollback whose record changes a colour that carries traffic after it

    def moves(self) -> str:
        return " / ".join(f"{c} {self.live_weights.get(c, 0)}% -> {self.weights.get(c, 0)}%" for c in COLORS)

    def live_carrying(self) -> list[str]:
        return [c for c in self.changing if self.live_weights.get(c, 0) > 0]

    def problem(self) -> str | None:
        """The violation, or None: the rule of `workload-steady-during-shift`."""
        if self.rollback:
            shares = ", ".join(f"{c} {self.weights.get(c, 0)}%" for c in self.changing)
            return (
                f"a rollback must not change what {' and '.join(self.changing)} runs: this update moves {self.moves()} and "
                f"writes another {TAG_WORKLOAD} entry for the colour that keeps {shares} of live traffic. Roll back first "
                f"(`python -m rollout rollback` changes only the step), then change it through a release to the idle colour"
            )
        if self.unreadable is not None and (self.moves_weights or any(w > 0 for w in self.live_weights.values())):
            return _unreadable_problem(self.unreadable, f"traffic goes {self.moves()}", "what this update makes each colour run")
        if self.record_dropped and (self.moves_weights or self.live_carrying()):
            return (
                f"whether a workload changes cannot be told: the proposed production listener has no valid {TAG_WORKLOAD} "
                f"tag (found {self.tags.get(TAG_WORKLOAD)!r}) while the live one has it ({self.moves()})"
            )
        if self.migrating and (self.moves_weights or self.live_carrying()):
            return (
                f"whether a workload changes cannot be told: the live production listener's {TAG_WORKLOAD} record is a "
                f"{self.migrating} fingerprint (written before this stack recorded what it records now) and this update writes "
                f"another kind ({self.moves()}). Re-record in an update that moves no weights, with bluegreen:breakGlass.reason "
                f"set once while a colour carries traffic"
            )
        if self.changing and self.moves_weights:
            return (
                f"weights must not move in the same update as a workload change: this update moves {self.moves()} and changes "
                f"what {' and '.join(self.changing)} runs ({TAG_WORKLOAD} differs from the live listener), so the health gate "
                f"would judge the old workload. Apply the workload change first (to the idle colour) and move traffic in a later update"
            )
        carrying = self.live_carrying()
        if carrying:
            shares = ", ".join(f"{c} {self.live_weights.get(c, 0)}%" for c in carrying)
            return (
                f"the workload of a colour carrying production traffic must not change: this update changes what "
                f"{' and '.join(carrying)} runs ({TAG_WORKLOAD} differs from the live listener) while it carries {shares} of live traffic"
            )
        return None


def _listener_workload(args: ResourceValidationArgs) -> ListenerWorkload | None:
    """The workload reading of an update of the live-recorded production listener that is comparable
    with live and not a rollback; None when there is nothing to judge."""
    view: RouteView | None = route_view(args)
    if view is None or view.kind != "listener" or view.offline or view.problem is not None or view.live is None:
        return None  # a fault, a rule, a plan: the traffic policies and the service policy decide
    route = view.ladder_route  # the recorded listener (or its replacement carrying the same record)
    if view.passes_unconditionally():
        return _rollback_workload(view, route)  # the rollback passes; a change to what keeps traffic does not ride on it
    if route is None:
        return None  # a first deploy or another listener: the traffic policies decide
    live = read_record_tag(view.live.listener_tags.get(route.listener_arn, {}))
    if isinstance(live, UnreadableRecord):
        # There but unreadable (damaged out of band): not "no record yet". Nothing can be compared with it, so every
        # colour counts as changing; only a rollback (returned above) or break-glass passes, and re-records it.
        weights = view.weights_by_color()
        if weights is None:
            return None  # a target group without a live colour: colour-identity refuses it
        live_weights = view.live_weights_by_color()
        return ListenerWorkload(view.tags, live_weights, weights, list(COLORS), weights != live_weights, False, unreadable=live)
    if live is None:
        # Deployed before the record existed: nothing to compare with. Not refused (that would hold every
        # stack's next promotion); the service policy still refuses a live colour's change in `pulumi up`.
        return None
    proposed_weights = view.weights_by_color()
    if proposed_weights is None:
        return None  # a target group without a live colour: colour-identity refuses it
    live_weights = view.live_weights_by_color()
    proposed = parse_workload_record(view.tags.get(TAG_WORKLOAD))
    moves = proposed_weights != live_weights
    if proposed is None:
        return ListenerWorkload(view.tags, live_weights, proposed_weights, list(COLORS), moves, record_dropped=True)
    if proposed.shape != live.shape:
        # A record of another kind (a Kubernetes stack's first pod-fingerprint record over a config one): what the
        # colours run now cannot be compared with it, so every colour counts as changing -- a colour carrying
        # traffic needs break-glass for this one update; an idle colour and a rollback do not.
        return ListenerWorkload(view.tags, live_weights, proposed_weights, list(COLORS), moves, record_dropped=False, migrating=live.kind)
    changing = [c for c in COLORS if _entries(proposed, c) != _entries(live, c)]
    return ListenerWorkload(view.tags, live_weights, proposed_weights, changing, moves, record_dropped=False)


def _rollback_workload(view: RouteView, route: Any) -> ListenerWorkload | None:
    """A rollback's listener is never refused for its weights, but it must not vet a new workload for a colour that
    still carries traffic after it: in `up` the listener is applied first, and the Deployments are then compared with
    the record it wrote. Judged only where both records can be read and compared; otherwise the rollback passes (an
    unreadable or old-shape record is the case the object checks and `rollback_verdicts` handle)."""
    if route is None:
        return None
    live = read_record_tag(view.live.listener_tags.get(route.listener_arn, {}))
    proposed = parse_workload_record(view.tags.get(TAG_WORKLOAD))
    weights = view.weights_by_color()
    if not isinstance(live, WorkloadRecord) or proposed is None or proposed.shape != live.shape or weights is None:
        return None
    keeps = [c for c in COLORS if weights.get(c, 0) > 0 and _entries(proposed, c) != _entries(live, c)]
    if not keeps:
        return None
    return ListenerWorkload(view.tags, view.live_weights_by_color(), weights, keeps, True, False, rollback=True)


def _entries(record: Any, color: str) -> tuple[str | None, ...]:
    """What a record says about one colour: what it runs and, on Kubernetes, the route to its pods."""
    routes = (record.services, record.bindings, record.identities)
    return (record.fingerprints[color], *((group or {}).get(color) for group in routes))


def _note_rollback(args: ResourceValidationArgs) -> None:
    """Keep this run's verdict on the recorded production listener for the Kubernetes objects judged after it."""
    if args.resource_type in LISTENER_TYPES:
        rollback_verdicts.note(route_view(args))


def _check_steady(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    _note_rollback(args)
    found = _listener_workload(args)
    problem = found.problem() if found is not None else None
    if problem and not _valid_reason(found.tags.get(TAG_BREAK_GLASS)):
        report_violation(f"{problem}." if found.unreadable or found.rollback else f"{problem}. {_RELEASE_HINT}.")


def _valid_reason(value: Any) -> str | None:
    return value if isinstance(value, str) and BREAK_GLASS_RE.match(value) else None


_NOTIFIED: set[tuple[str, str, str]] = set()
_NOTIFIED_LOCK = threading.Lock()


def _notify_break_glass(urn: str, reason: str, what: str) -> None:
    """Post the break-glass to the webhook (BLUEGREEN_WEBHOOK_URL), once per change per pack process."""
    from rollout.notify import format_message, send, webhook_url

    with _NOTIFIED_LOCK:
        if (urn, reason, what) in _NOTIFIED:
            return
        _NOTIFIED.add((urn, reason, what))
    url = webhook_url()
    if url:
        stack = urn.split("::", 1)[0].rsplit(":", 1)[-1] if urn.startswith("urn:pulumi:") else "?"
        send(url, format_message("break-glass", stack, f"{what}. Reason: {reason}"))


def _check_break_glass(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pods = _kubernetes_check(args)
    if pods is not None:
        if pods.problem and pods.glassable and pods.break_glass:
            what = f"break-glass: {pods.problem}"
            _notify_break_glass(args.urn, pods.break_glass, what)
            report_violation(f"{what}; let through because {ANNOTATION_BREAK_GLASS} says: {pods.break_glass}")
        return
    change = _assess_service(args, _floor(args))
    if change is not None and change.at_risk and change.break_glass:
        what = f"break-glass: {_short_arn(args.urn.rsplit('::', 1)[-1])} changes while it may carry traffic ({'; '.join(change.changes)})"
        _notify_break_glass(args.urn, change.break_glass, what)
        report_violation(f"{what}; let through because {TAG_BREAK_GLASS} says: {change.break_glass}")
        return
    found = _listener_workload(args) if args.resource_type not in ECS_SERVICE_TYPES else None
    problem = found.problem() if found is not None else None
    reason = _valid_reason(found.tags.get(TAG_BREAK_GLASS)) if problem else None
    if problem and reason:
        what = f"break-glass: {problem}"
        _notify_break_glass(args.urn, reason, what)
        report_violation(f"{what}; let through because {TAG_BREAK_GLASS} says: {reason}")


def workload_frozen_while_live() -> ResourceValidationPolicy:
    return resource_policy(
        "workload-frozen-while-live",
        "Checks whether an update changes the workload (task definition, image, desired count below the floor, target "
        "groups) of an ECS service, or the pod template or replicas of a Kubernetes Deployment, the serviceRef of its "
        "TargetGroupBinding or the selector and ports of its Service (fingerprinted by the pack, against the live "
        "listener's record), whose target group carries production traffic on the live listener, or makes other pods "
        "labelled with such a colour or endpoints for its Service; fails closed when that cannot be read (a live record or "
        "colour tag that is there but unreadable included, unless this run's listener update is a rollback). A break-glass "
        "reason lets a change through.",
        _check_frozen,
        Severity.CRITICAL,
    )


def workload_steady_during_shift() -> ResourceValidationPolicy:
    return resource_policy(
        "workload-steady-during-shift",
        "Checks whether a production-listener update (other than a rollback) changes what a colour runs while it carries "
        "live traffic or while weights move, comparing the listener's bluegreen:workload record with the live listener's, "
        "and refuses it while the live record is there but unreadable. A break-glass reason lets it through.",
        _check_steady,
        Severity.HIGH,
    )


def workload_break_glass() -> ResourceValidationPolicy:
    return resource_policy(
        "workload-break-glass",
        "Checks whether a workload change was let through by bluegreen:breakGlass.reason, reports it and notifies the webhook.",
        _check_break_glass,
        Severity.LOW,
    )
