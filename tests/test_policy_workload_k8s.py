"""Invariant 4 for Kubernetes colours, attacked through the real pack over gRPC: a colour carrying
traffic keeps its pods, whatever the program says about them.

The pack cannot reach the cluster. What it can trust: the Deployment the engine is about to apply
(its pod template and replicas, fingerprinted by the pack itself), the live colour and traffic of
the target group the Deployment names (moto_server), and the `bluegreen:workload` record on the live
production listener, written by an earlier update. Proposed state is what the REAL program registers
(rollout.simulate) with its ARNs pointed at moto. Each attack first, then what must still pass.
"""

from __future__ import annotations

import copy

import pytest

from rollout.workload import (
    ANNOTATION_BREAK_GLASS,
    ANNOTATION_TARGET_GROUP,
    POD_RECORD,
    TAG_WORKLOAD,
    binding_fingerprint,
    deployment_fingerprint,
    fingerprints_tag,
    parse_workload_record,
    service_fingerprint,
    service_identity,
)
from tests.fixtures.aws import AlbArns
from tests.policy_harness import UNKNOWN, AnalyzeResult, PolicyPackClient
from tests.test_policy_traffic import live_alb, proposed
from tests.test_policy_workload import LISTENER, NEW, REASON, _sim, elb_only_pack, hook, pack, passes, refused, workload_tag  # noqa: F401 - fixtures

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
K8S_SERVICE = "kubernetes:core/v1:Service"
TGB = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
K8S = {"bluegreen:platform": "kubernetes", "bluegreen:kubernetes.context": "prod"}
POLICY = "workload-frozen-while-live"


def deployment(alb: AlbArns, color: str, **overrides) -> tuple[dict, str, str]:
    """(props, name, urn) of `color`'s Deployment as the real program registers it, its target group the moto one."""
    sim = _sim({**K8S, **overrides})
    res = sim.one(DEPLOYMENT, f"{color}-deployment")
    props = copy.deepcopy(dict(res.inputs))
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = alb.target_groups[color]
    return props, res.name, res.urn


def k8s_record(**overrides) -> str:
    return workload_tag(**K8S, **overrides)


def live_k8s(aws, step: int, record: str | None = None, **kw) -> AlbArns:
    """A moto ALB of stack `production` (as the program tags it) live at `step` whose production listener records
    the program's pod and route fingerprints."""
    alb = live_alb(aws, step=step, extra_tags={TAG_WORKLOAD: record or k8s_record(), "bluegreen:stack": "production"}, **kw)
    aws.client("elbv2").add_tags(ResourceArns=[alb.load_balancer], Tags=[{"Key": "bluegreen:stack", "Value": "production"}])
    return alb


def route(alb: AlbArns, color: str, kind: str, **overrides) -> tuple[dict, str, str]:
    """(props, name, urn) of `color`'s Service (`kind` K8S_SERVICE) or TargetGroupBinding (TGB) as the real program
    registers it, the binding's target group the moto one."""
    sim = _sim({**K8S, **overrides})
    res = sim.one(kind, f"{color}-service" if kind == K8S_SERVICE else f"{color}-tgb")
    props = copy.deepcopy(dict(res.inputs))
    if kind == TGB:
        props["spec"]["targetGroupARN"] = alb.target_groups[color]
    return props, res.name, res.urn


def judge_as(pack: PolicyPackClient, kind: str, found: tuple[dict, str, str]) -> AnalyzeResult:
    props, name, urn = found
    return pack.analyze(kind, props, name=name, urn=urn)


def workload_of(kind: str, labels: dict, stack: str = "production") -> tuple[dict, str, str]:
    """(props, name, urn) of a pod-creating object of `kind` whose pods carry `labels`, not made by the program."""
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "x", "image": NEW}]}}
    spec: dict = {"selector": {"matchLabels": labels}, "template": pod}
    if kind == "core/v1:Pod":
        props = {"metadata": {"name": "extra", "namespace": "default", "labels": labels}, "spec": pod["spec"]}
    elif kind == "batch/v1:CronJob":
        props = {"metadata": {"name": "extra"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": pod}}}}
    elif kind == "batch/v1:Job":
        props = {"metadata": {"name": "extra"}, "spec": {"template": pod}}
    else:
        props = {"metadata": {"name": "extra"}, "spec": spec}
    type_ = f"kubernetes:{kind}"
    return props, "extra", f"urn:pulumi:{stack}::bluegreen::{type_}::extra"


def judge(pack: PolicyPackClient, found: tuple[dict, str, str]) -> AnalyzeResult:
    props, name, urn = found
    return pack.analyze(DEPLOYMENT, props, name=name, urn=urn)


def listener(pack: PolicyPackClient, alb: AlbArns, step: int, **kw) -> AnalyzeResult:
    """The program's production listener at `step` (Kubernetes), judged against the moto ALB."""
    props, name, urn = proposed(alb, step=step, **K8S, **kw)
    return pack.analyze(LISTENER, props, name=name, urn=urn)


def container(props: dict) -> dict:
    return props["spec"]["template"]["spec"]["containers"][0]


# --------------------------------------------------------------------------- the record is the program's pod template


@pytest.mark.parametrize("overrides", [{}, {"bluegreen:idle.parked": True, "bluegreen:idle.policy": "scale"}, {"bluegreen:service.environment": {"LOG": "debug"}}])
def test_the_listener_records_what_the_pack_computes_from_each_deployment(overrides):
    """One fingerprint function, two callers: the program's record equals the pack's computation on the Deployment."""
    sim = _sim({**K8S, **overrides})
    listener = next(r for r in sim.by_type(LISTENER) if r.inputs["tags"].get("bluegreen:listener") == "production")
    record = parse_workload_record(listener.inputs["tags"][TAG_WORKLOAD])
    assert record is not None and record.kind == POD_RECORD, listener.inputs["tags"][TAG_WORKLOAD]
    for color in ("blue", "green"):
        spec = sim.one(DEPLOYMENT, f"{color}-deployment").inputs["spec"]
        assert deployment_fingerprint(spec["template"], spec["replicas"]) == record.fingerprints[color], (color, record)


@pytest.mark.parametrize("overrides", [{}, {"bluegreen:kubernetes.namespace": "shop", "bluegreen:kubernetes.createNamespace": True}, {"bluegreen:service.port": 9090}])
def test_the_listener_records_the_route_the_pack_computes_from_each_service_and_binding(overrides):
    """The svc/tgb entries are what the pack computes from the proposed Service and TargetGroupBinding: known
    in a preview (plain namespace and name), and within AWS's 256-character tag value."""
    sim = _sim({**K8S, **overrides})
    listener = next(r for r in sim.by_type(LISTENER) if r.inputs["tags"].get("bluegreen:listener") == "production")
    value = listener.inputs["tags"][TAG_WORKLOAD]
    record = parse_workload_record(value)
    assert record is not None and record.services is not None and record.bindings is not None and len(value) <= 256, value
    for color in ("blue", "green"):
        svc = sim.one(K8S_SERVICE, f"{color}-service").inputs
        tgb = sim.one(TGB, f"{color}-tgb").inputs
        assert isinstance(svc["metadata"]["namespace"], str) and isinstance(tgb["spec"]["serviceRef"]["name"], str), (svc, tgb)
        assert service_fingerprint(svc["metadata"]["namespace"], svc["metadata"]["name"], svc["spec"]) == record.services[color]
        assert binding_fingerprint(tgb["metadata"]["namespace"], tgb["spec"]["serviceRef"]) == record.bindings[color]
        assert service_identity(svc["metadata"]["name"]) == record.identities[color]
        assert tgb["spec"]["serviceRef"]["name"] == svc["metadata"]["name"] and svc["spec"]["selector"]["color"] == color
    assert record.services["blue"] != record.services["green"] and record.bindings["blue"] != record.bindings["green"]


def test_the_fingerprint_is_the_same_however_numbers_travel():
    template = {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]}, "metadata": {"labels": {"color": "blue"}}}
    as_sent = copy.deepcopy(template)
    as_sent["spec"]["containers"][0]["ports"][0]["containerPort"] = 8080.0
    as_sent["spec"]["containers"][0]["lifecycle"] = None
    assert deployment_fingerprint(template, 3) == deployment_fingerprint(as_sent, 3.0)
    assert deployment_fingerprint(template, 3) != deployment_fingerprint(template, 2)
    assert deployment_fingerprint(template, None) == deployment_fingerprint(template, 1)
    other = copy.deepcopy(template)
    other["spec"]["containers"][0]["ports"][0]["containerPort"] = 8081
    assert deployment_fingerprint(other, 3) != deployment_fingerprint(template, 3)


# --------------------------------------------------------------------------- attacks (each must be refused)


def test_a_program_edit_to_a_live_colours_pods_is_refused(aws, pack):
    """The gap: a program edit changes blue's pod template; the listener's record (config) stays the same."""
    alb = live_k8s(aws, step=1)  # blue 90 %, green 10 %
    props, name, urn = deployment(alb, "blue")
    container(props)["image"] = NEW  # in the program, not in the config: the record does not move
    refused(judge(pack, (props, name, urn)), POLICY, "blue carries 90% of live production traffic", f"image {NEW}", "rollout release --image")


@pytest.mark.parametrize("edit", ["command", "env", "replicas", "volume"])
def test_any_pod_change_on_the_live_candidate_is_refused(aws, pack, edit):
    alb = live_k8s(aws, step=2)  # blue 75 %, green 25 %
    props, name, urn = deployment(alb, "green")
    if edit == "command":
        container(props)["command"] = ["/bin/sh", "-c", "exec evil"]
    elif edit == "env":
        container(props)["env"].append({"name": "FEATURE_X", "value": "on"})
    elif edit == "replicas":
        props["spec"]["replicas"] = 1  # below any floor
    else:
        props["spec"]["template"]["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": "/"}}]
    refused(judge(pack, (props, name, urn)), POLICY, "green carries 25% of live production traffic")


def test_relabelling_pods_into_the_live_colour_is_refused(aws, pack):
    """Label forgery: green's Deployment relabelled color=blue joins blue's Service (and blue's target group)."""
    alb = live_k8s(aws, step=0)  # blue 100 %, green idle
    props, name, urn = deployment(alb, "green", **{"bluegreen:colors.green.image": NEW})
    props["spec"]["template"]["metadata"]["labels"]["color"] = "blue"
    refused(judge(pack, (props, name, urn)), POLICY, "its pods say color=blue", "whose live colour is green")


def test_pointing_a_live_deployment_at_the_idle_target_group_is_refused(aws, pack):
    """Dodging the check by naming the idle colour's target group: the pods' label says what they serve."""
    alb = live_k8s(aws, step=0)
    props, name, urn = deployment(alb, "blue")
    container(props)["image"] = NEW
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = alb.target_groups["green"]
    refused(judge(pack, (props, name, urn)), POLICY, "its pods say color=blue", "whose live colour is green")


def test_dropping_the_target_group_annotation_is_refused(aws, pack):
    alb = live_k8s(aws, step=0)
    props, name, urn = deployment(alb, "blue")
    del props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP]
    refused(judge(pack, (props, name, urn)), POLICY, f"no {ANNOTATION_TARGET_GROUP} annotation")


def test_naming_another_stacks_target_group_is_refused(aws, pack):
    alb = live_alb(aws, step=0, extra_tags={TAG_WORKLOAD: k8s_record(), "bluegreen:stack": "staging"})
    props, name, urn = deployment(alb, "blue")
    refused(judge(pack, (props, name, urn)), POLICY, "belongs to stack 'staging', not 'production'")


def test_an_unknown_template_on_a_live_colour_fails_closed_but_the_idle_colour_is_free(aws, pack):
    """Preview: an image not known yet. The colour carrying traffic cannot be shown unchanged; the idle one may change."""
    alb = live_k8s(aws, step=0)
    live, name, urn = deployment(alb, "blue")
    container(live)["image"] = UNKNOWN
    refused(judge(pack, (live, name, urn)), POLICY, "blue carries 100%", "not known yet")
    idle, name, urn = deployment(alb, "green")
    container(idle)["image"] = UNKNOWN
    passes(judge(pack, (idle, name, urn)))


def test_a_change_fails_closed_when_the_target_group_cannot_be_read(aws, pack):
    """An input fault (a target group that does not exist) is not AWS being down: refused, even with a known template."""
    alb = live_k8s(aws, step=0)
    props, name, urn = deployment(alb, "blue")
    props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = alb.target_groups["blue"].replace("/bg-blue/", "/nope/")
    refused(judge(pack, (props, name, urn)), POLICY, "cannot be checked")


# --------------------------------------------------------------------------- attacks on the path from target group to pods


def test_pointing_a_live_binding_at_the_idle_colours_service_is_refused(aws, pack):
    """Blue's TargetGroupBinding names green's Service: blue's target group (100 %) gets the untested idle pods."""
    alb = live_k8s(aws, step=0)
    props, name, urn = route(alb, "blue", TGB)
    green, _, _ = route(alb, "green", TGB)
    props["spec"]["serviceRef"] = green["spec"]["serviceRef"]
    refused(judge_as(pack, TGB, (props, name, urn)), POLICY, "blue carries 100% of live production traffic", "serviceRef")


def test_a_binding_moved_onto_a_live_target_group_is_refused(aws, pack):
    """Green's binding (green's Service, green's pods) pointed at blue's target group, which carries the traffic."""
    alb = live_k8s(aws, step=1)
    props, name, urn = route(alb, "green", TGB)
    props["spec"]["targetGroupARN"] = alb.target_groups["blue"]
    refused(judge_as(pack, TGB, (props, name, urn)), POLICY, "blue carries 90% of live production traffic", "serviceRef")


@pytest.mark.parametrize("edit", ["selector-idle", "selector-other-pods", "target-port", "drop-selector", "new-port", "no-namespace"])
def test_a_live_colours_service_selecting_other_pods_is_refused(aws, pack, edit):
    alb = live_k8s(aws, step=2)  # blue 75 %, green 25 %
    props, name, urn = route(alb, "green", K8S_SERVICE)
    if edit == "selector-idle":
        props["spec"]["selector"]["color"] = "blue"
    elif edit == "selector-other-pods":
        props["spec"]["selector"] = {"app": "web", "role": "canary"}  # a StatefulSet's pods, no colour label at all
    elif edit == "target-port":
        props["spec"]["ports"][0]["targetPort"] = 9999
    elif edit == "drop-selector":
        del props["spec"]["selector"]  # endpoints managed by hand
    elif edit == "new-port":
        props["spec"]["ports"] = [{"name": "http", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]
        props["spec"]["selector"]["color"] = "blue"
    else:
        del props["metadata"]["namespace"]  # the provider's default namespace, perhaps the colour's
        props["spec"]["selector"]["color"] = "blue"
    refused(judge_as(pack, K8S_SERVICE, (props, name, urn)), POLICY, "green carries 25% of live production traffic", "Service")


@pytest.mark.parametrize("kind", ["core/v1:Pod", "apps/v1:ReplicaSet", "apps/v1:StatefulSet", "apps/v1:DaemonSet", "batch/v1:Job", "batch/v1:CronJob", "core/v1:ReplicationController", "argoproj.io/v1alpha1:Rollout"])
def test_pods_labelled_with_a_live_colour_come_only_from_its_deployment(aws, pack, kind):
    alb = live_k8s(aws, step=0)
    result = judge_as(pack, f"kubernetes:{kind}", workload_of(kind, {"app": "web", "color": "blue"}))
    refused(result, POLICY, "color=blue", "blue carries 100% of live production traffic")
    passes(judge_as(pack, f"kubernetes:{kind}", workload_of(kind, {"app": "web", "color": "green"})))  # the idle colour
    passes(judge_as(pack, f"kubernetes:{kind}", workload_of(kind, {"app": "batch"})))  # no colour label
    assert alb


@pytest.mark.parametrize("kind", ["discovery.k8s.io/v1:EndpointSlice", "core/v1:Endpoints"])
def test_hand_written_endpoints_for_a_live_colours_service_are_refused(aws, pack, kind):
    """The controller registers an EndpointSlice's addresses (whatever they are) when its targetRef names a pod: a
    hand-written one labelled for blue's Service feeds blue's target group other addresses."""
    alb = live_k8s(aws, step=0)
    blue = route(alb, "blue", K8S_SERVICE)[0]["metadata"]["name"]
    green = route(alb, "green", K8S_SERVICE)[0]["metadata"]["name"]
    type_ = f"kubernetes:{kind}"

    def endpoints(service: str) -> tuple[dict, str, str]:
        if kind.endswith("EndpointSlice"):
            props = {
                "metadata": {"name": f"{service}-extra", "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.20.1.99"], "targetRef": {"kind": "Pod", "name": "extra"}}],
                "ports": [{"name": "http", "port": 8080}],
            }
        else:
            props = {"metadata": {"name": service, "namespace": "default"}, "subsets": [{"addresses": [{"ip": "10.20.1.99"}]}]}
        return props, f"{service}-extra", f"urn:pulumi:production::bluegreen::{type_}::{service}-extra"

    refused(judge_as(pack, type_, endpoints(blue)), POLICY, "blue carries 100% of live production traffic", "could feed blue's Service")
    passes(judge_as(pack, type_, endpoints(green)))  # the idle colour's
    passes(judge_as(pack, type_, endpoints("metrics")))  # another Service's


def test_unknowns_in_a_live_colours_route_fail_closed_but_the_idle_colour_is_free(aws, pack):
    alb = live_k8s(aws, step=0)
    svc, name, urn = route(alb, "blue", K8S_SERVICE)
    svc["spec"]["selector"]["color"] = UNKNOWN
    refused(judge_as(pack, K8S_SERVICE, (svc, name, urn)), POLICY, "blue carries 100%", "not known yet")
    tgb, name, urn = route(alb, "blue", TGB)
    tgb["spec"]["serviceRef"]["name"] = UNKNOWN
    refused(judge_as(pack, TGB, (tgb, name, urn)), POLICY, "blue carries 100%", "not known yet")
    pod = workload_of("core/v1:Pod", {"app": "web", "color": UNKNOWN})
    refused(judge_as(pack, "kubernetes:core/v1:Pod", pod), POLICY, "not known yet")
    idle, name, urn = route(alb, "green", K8S_SERVICE)
    idle["spec"]["selector"]["color"] = UNKNOWN
    passes(judge_as(pack, K8S_SERVICE, (idle, name, urn)))
    idle_tgb, name, urn = route(alb, "green", TGB)
    idle_tgb["spec"]["serviceRef"]["name"] = UNKNOWN
    passes(judge_as(pack, TGB, (idle_tgb, name, urn)))


def test_a_listener_update_that_re_records_a_live_route_is_refused(aws, pack):
    """The record itself: an update that writes another svc entry for the colour carrying traffic."""
    alb = live_k8s(aws, step=0)
    props, name, urn = proposed(alb, step=0, **K8S)
    record = parse_workload_record(props["tags"][TAG_WORKLOAD])
    forged = fingerprints_tag(record.fingerprints, POD_RECORD, {**record.services, "blue": record.services["green"]}, record.bindings, record.identities)
    props["tags"][TAG_WORKLOAD] = forged
    refused(pack.analyze(LISTENER, props, name=name, urn=urn), "workload-steady-during-shift", "changes what blue runs")


# --------------------------------------------------------------------------- what must still pass


@pytest.mark.parametrize("step", [0, 1, 3, 5])
def test_unchanged_deployments_pass_at_every_step(aws, pack, step):
    alb = live_k8s(aws, step=step, record=k8s_record(**{"bluegreen:rollout.step": step}))
    for color in ("blue", "green"):
        passes(judge(pack, deployment(alb, color, **{"bluegreen:rollout.step": step})))


@pytest.mark.parametrize("step", [0, 1, 3, 5])
def test_unchanged_services_and_bindings_pass_at_every_step(aws, pack, step):
    alb = live_k8s(aws, step=step, record=k8s_record(**{"bluegreen:rollout.step": step}))
    for color in ("blue", "green"):
        for kind in (K8S_SERVICE, TGB):
            passes(judge_as(pack, kind, route(alb, color, kind, **{"bluegreen:rollout.step": step})))
    nxt = listener(pack, alb, min(step + 1, 5))  # the next traffic step (or the finish), the program unchanged
    assert nxt.of("workload-steady-during-shift") == [], nxt


def test_every_kubernetes_object_of_the_program_passes_a_traffic_step(aws, pack):
    """No false alarm: the namespace, every object the real program registers passes while both colours carry
    traffic (each one, its target groups the moto ones)."""
    extra = {"bluegreen:kubernetes.namespace": "shop", "bluegreen:kubernetes.createNamespace": True}
    alb = live_k8s(aws, step=1, record=k8s_record(**extra))
    sim = _sim({**K8S, **extra})
    judged = 0
    for res in sim.resources:
        if not res.type.startswith("kubernetes:"):
            continue
        props = copy.deepcopy(dict(res.inputs))
        color = "blue" if "blue" in res.name else "green"
        if res.type == DEPLOYMENT:
            props["metadata"]["annotations"][ANNOTATION_TARGET_GROUP] = alb.target_groups[color]
        if res.type == TGB:
            props["spec"]["targetGroupARN"] = alb.target_groups[color]
        passes(pack.analyze(res.type, props, name=res.name, urn=res.urn))
        judged += 1
    assert judged >= 6, [r.type for r in sim.resources]


def test_the_idle_colours_route_is_free_and_a_rollback_passes(aws, pack):
    alb = live_k8s(aws, step=0)
    props, name, urn = route(alb, "green", K8S_SERVICE)
    props["spec"]["ports"][0]["targetPort"] = 9999
    passes(judge_as(pack, K8S_SERVICE, (props, name, urn)))
    for kind in (K8S_SERVICE, TGB):  # a release to the idle colour leaves both routes as recorded
        passes(judge_as(pack, kind, route(alb, "green", kind, **{"bluegreen:colors.green.image": NEW})))
    back = live_k8s(aws, step=3, since_minutes=1, name="bg-back")
    for color in ("blue", "green"):
        for kind in (K8S_SERVICE, TGB):
            passes(judge_as(pack, kind, route(back, color, kind, **{"bluegreen:rollout.step": 0})))


def test_unchanged_routes_pass_while_aws_is_unreadable(aws, pack):
    alb = live_k8s(aws, step=3)
    found = [(kind, route(alb, c, kind, **{"bluegreen:rollout.step": 0})) for c in ("blue", "green") for kind in (K8S_SERVICE, TGB)]
    with aws.enforce_iam():
        results = [judge_as(pack, kind, f) for kind, f in found]
    for r in results:
        passes(r)


def test_break_glass_lets_a_live_route_change_through_reported(aws, pack, hook):
    alb = live_k8s(aws, step=0)
    props, name, urn = route(alb, "blue", K8S_SERVICE, **{"bluegreen:breakGlass.reason": REASON})
    props["spec"]["ports"][0]["targetPort"] = 9090
    result = judge_as(pack, K8S_SERVICE, (props, name, urn))
    passes(result)
    notes = result.of("workload-break-glass")
    assert notes and REASON in notes[0].message and "blue carries 100%" in notes[0].message, result


def test_a_release_to_the_idle_colour_passes(aws, pack):
    alb = live_k8s(aws, step=0)
    passes(judge(pack, deployment(alb, "green", **{"bluegreen:colors.green.image": NEW})))
    props, name, urn = deployment(alb, "green")
    props["spec"]["replicas"] = 0  # parking the idle colour
    passes(judge(pack, (props, name, urn)))


def test_a_rollback_passes_every_workload_check(aws, pack):
    """Step 3 -> 0: the listener returns traffic to the recorded stable group; both Deployments are unchanged."""
    alb = live_k8s(aws, step=3, since_minutes=1)
    for color in ("blue", "green"):
        passes(judge(pack, deployment(alb, color, **{"bluegreen:rollout.step": 0})))
    result = listener(pack, alb, 0)
    assert result.of("workload-steady-during-shift") == [], result


def test_a_rollback_that_also_changes_the_stable_colours_pods_is_refused(aws, pack):
    """The attack: step 3 -> 0 with a new image for blue, the colour the rollback returns all traffic to. In
    `up --skip-preview` the listener is applied first and writes the new record, and the Deployment would then be
    compared with that record: the listener itself must not vet a change to a colour that carries traffic after it."""
    alb = live_k8s(aws, step=3, since_minutes=1)
    rollback = {"bluegreen:rollout.step": 0, "bluegreen:colors.blue.image": NEW}
    refused(listener(pack, alb, 0, **{"bluegreen:colors.blue.image": NEW}), "workload-steady-during-shift",
            "a rollback must not change what blue runs", "Roll back first")
    refused(judge(pack, deployment(alb, "blue", **rollback)), POLICY, f"image {NEW}")


def test_a_rollback_may_change_the_colour_it_takes_all_traffic_from(aws, pack):
    """Green goes to 0 % in the rollback: what it runs next is the idle colour's business (a release)."""
    alb = live_k8s(aws, step=3, since_minutes=1)
    result = listener(pack, alb, 0, **{"bluegreen:colors.green.image": NEW})
    assert result.of("workload-steady-during-shift") == [], result


def test_break_glass_lets_a_rollback_re_record_the_stable_colour(aws, pack):
    alb = live_k8s(aws, step=3, since_minutes=1)
    result = listener(pack, alb, 0, **{"bluegreen:colors.blue.image": NEW, "bluegreen:breakGlass.reason": REASON})
    assert result.of("workload-steady-during-shift") == [], result


def test_unchanged_deployments_pass_while_aws_is_unreadable(aws, pack):
    """AWS down for the pack (its credentials rejected): a known template passes, as a rollback must."""
    alb = live_k8s(aws, step=3)
    found = [deployment(alb, c, **{"bluegreen:rollout.step": 0}) for c in ("blue", "green")]
    with aws.enforce_iam():
        results = [judge(pack, f) for f in found]
    for r in results:
        passes(r)


def test_break_glass_lets_a_live_pod_change_through_reported_and_notified(aws, pack, hook):
    alb = live_k8s(aws, step=0)
    props, name, urn = deployment(alb, "blue", **{"bluegreen:colors.blue.image": NEW, "bluegreen:breakGlass.reason": REASON})
    assert props["metadata"]["annotations"][ANNOTATION_BREAK_GLASS] == REASON, props["metadata"]
    before = len(hook.received)
    result = judge(pack, (props, name, urn))
    passes(result)
    notes = result.of("workload-break-glass")
    assert notes and REASON in notes[0].message and "blue carries 100%" in notes[0].message, result
    assert len(hook.received) == before + 1 and REASON in hook.received[-1]["text"], hook.received[before:]


def test_break_glass_does_not_excuse_a_forged_colour(aws, pack):
    alb = live_k8s(aws, step=0)
    props, name, urn = deployment(alb, "green", **{"bluegreen:breakGlass.reason": REASON})
    props["spec"]["template"]["metadata"]["labels"]["color"] = "blue"
    refused(judge(pack, (props, name, urn)), POLICY, "its pods say color=blue")


# --------------------------------------------------------------------------- migration from a config record


def _old_record_migrates(pack, alb, old_kind: str) -> None:
    """Against a live record of an older shape: a weight-only rollback passes; re-recording while a colour carries
    traffic is refused (naming the old kind) until break-glass is set, once."""
    rollback = listener(pack, alb, 0)
    assert rollback.of("workload-steady-during-shift") == [], rollback
    rerecord = listener(pack, alb, 3, since=None)
    refused(rerecord, "workload-steady-during-shift", old_kind, "bluegreen:breakGlass.reason")
    glass = listener(pack, alb, 3, since=None, **{"bluegreen:breakGlass.reason": REASON})
    assert glass.of("workload-steady-during-shift") == [], glass


def test_an_old_config_record_does_not_brick_the_stack(aws, pack):
    """A Kubernetes stack deployed before pod fingerprints: its live record is a config fingerprint.

    Deployments cannot be compared with it (they pass: the listener decides); a weight-only rollback
    passes; re-recording while a colour carries traffic needs break-glass once; the idle colour is free.
    """
    old = fingerprints_tag({"blue": "4102016c14b2", "green": "4102016c14b2"})  # the pre-pod definition
    alb = live_alb(aws, step=3, since_minutes=1, extra_tags={TAG_WORKLOAD: old, "bluegreen:stack": "production"})
    passes(judge(pack, deployment(alb, "blue", **{"bluegreen:rollout.step": 0})))
    _old_record_migrates(pack, alb, "config fingerprint")


def test_a_pod_record_without_routes_does_not_brick_the_stack(aws, pack):
    """A Kubernetes stack deployed before routes were recorded: its live record is 'pod blue=.. green=..'.

    Services and bindings cannot be compared with it (they pass); a rollback passes; recording the routes while a
    colour carries traffic needs break-glass once; at step 0 a Deployment is still compared with the pod entries."""
    record = parse_workload_record(k8s_record(**{"bluegreen:rollout.step": 3}))
    old = fingerprints_tag(record.fingerprints, POD_RECORD)
    alb = live_k8s(aws, step=3, since_minutes=1, record=old)
    for kind in (K8S_SERVICE, TGB):
        passes(judge_as(pack, kind, route(alb, "blue", kind, **{"bluegreen:rollout.step": 0})))
    passes(judge(pack, deployment(alb, "blue", **{"bluegreen:rollout.step": 0})))
    _old_record_migrates(pack, alb, "pod fingerprint")


# --------------------------------------------------------------------------- the same class of defect on ECS


def test_with_ecs_unreadable_a_forged_colour_tag_does_not_pass_a_swap(aws, elb_only_pack):
    """ECS unreadable, the service's own record is the fallback: its colour must be the target group's live
    colour, not the bluegreen:color tag the same update writes. Blue's service takes green's task definition
    (the release) and claims to be green, whose record that is."""
    from tests.test_policy_workload import LiveEcs, service_props

    alb = live_alb(aws, step=0, extra_tags={TAG_WORKLOAD: workload_tag(**{"bluegreen:colors.green.image": NEW})})
    live = LiveEcs(aws, alb, images={"blue": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.1", "green": NEW})
    green_props, _, _ = service_props(live, "green", **{"bluegreen:colors.green.image": NEW})
    props, name, urn = service_props(live, "blue", task_definition=live.task_definitions["green"], **{"bluegreen:colors.green.image": NEW})
    props["tags"] = {**props["tags"], "bluegreen:color": "green", TAG_WORKLOAD: green_props["tags"][TAG_WORKLOAD]}
    with aws.enforce_iam():
        result = elb_only_pack.analyze("aws:ecs/service:Service", props, name=name, urn=urn)
    refused(result, POLICY, "what it runs, by its bluegreen:workload record", "AccessDenied")


# --------------------------------------------------------------------------- a record that is there but unreadable


UNREADABLE = "pod blue=NOT-A-DIGEST green=??"  # damaged out of band: neither "no record yet" nor a record


def _record_state(value):
    from rollout.workload import read_record_tag

    return read_record_tag({TAG_WORKLOAD: value})


def test_an_unreadable_record_is_told_from_no_record():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from rollout.workload import UnreadableRecord, WorkloadRecord, read_record_tag

    assert read_record_tag({}) is None  # never recorded: ECS stacks' old listeners, stacks from before the record
    for value in ("", "   ", UNREADABLE, "pod", "blue=0123456789ab", "pod blue=0123456789ab green=0123456789ab id blue=0123456789ab green=0123456789ab"):
        found = _record_state(value)
        assert isinstance(found, UnreadableRecord) and found.why and "\n" not in found.shown(), (value, found)
    for value in (k8s_record(), workload_tag(), k8s_record(**{"bluegreen:rollout.step": 3})):
        assert isinstance(_record_state(value), WorkloadRecord), value

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet="bluegrenpodsvctbid=0123456789abcdef ?", max_size=80))
    def same_verdict_as_the_parser(value):
        found = _record_state(value)
        assert isinstance(found, WorkloadRecord) == (parse_workload_record(value) is not None), value
        if isinstance(found, UnreadableRecord):
            assert found.why and len(found.shown()) < 200 and "\n" not in found.shown(), found

    same_verdict_as_the_parser()


def _unreadable_alb(aws, step: int, value: str = UNREADABLE, **kw) -> AlbArns:
    return live_k8s(aws, step=step, since_minutes=1, record=value, **kw) if value else live_alb(
        aws, step=step, since_minutes=1, extra_tags={TAG_WORKLOAD: value, "bluegreen:stack": "production"}, **kw
    )


def _retire(aws, alb: AlbArns) -> None:
    """Take a load balancer out of stack `production` (a colour's objects are judged on every one of the stack's)."""
    aws.client("elbv2").remove_tags(ResourceArns=[alb.load_balancer], TagKeys=["bluegreen:stack"])


def test_with_no_record_at_all_the_migration_path_is_unchanged_but_an_empty_one_fails_closed(aws, pack):
    """No tag: a stack from before the record (the documented migration: nothing to compare, the listener records it).
    The same tag with an empty value is there but unreadable: a new image on the carrying colour is refused."""
    edit = {"bluegreen:rollout.step": 3, "bluegreen:colors.blue.image": NEW}
    never = live_alb(aws, step=3, since_minutes=1, extra_tags={"bluegreen:stack": "production"}, name="bg-never")
    passes(judge(pack, deployment(never, "blue", **{"bluegreen:rollout.step": 3})))
    assert listener(pack, never, 3, since=None).of("workload-steady-during-shift") == []
    _retire(aws, never)
    empty = _unreadable_alb(aws, 3, "", name="bg-empty")
    refused(judge(pack, deployment(empty, "blue", **edit)), POLICY, "bluegreen:workload tag cannot be read", "it is empty")
    refused(listener(pack, empty, 3, since=None, **{"bluegreen:colors.blue.image": NEW}), "workload-steady-during-shift", "it is empty")


def test_an_unreadable_record_holds_every_carrying_colours_objects_but_the_idle_colour_is_free(aws, pack):
    """A hold (nothing moves, nothing changes) cannot be told from a change: every object of a colour carrying traffic
    is refused, unchanged ones too; the idle colour's release is free."""
    alb = _unreadable_alb(aws, 3)
    at = {"bluegreen:rollout.step": 3}
    for color in ("blue", "green"):
        refused(judge(pack, deployment(alb, color, **at)), POLICY, "cannot be read", f"{color} carries 50%", "breakGlass")
        for kind in (K8S_SERVICE, TGB):
            refused(judge_as(pack, kind, route(alb, color, kind, **at)), POLICY, "cannot be read", "carries 50%")
    refused(listener(pack, alb, 3, since=None), "workload-steady-during-shift", "cannot be read", "blue 50% -> 50%")
    _retire(aws, alb)
    idle = _unreadable_alb(aws, 0, name="bg-idle")
    passes(judge(pack, deployment(idle, "green", **{"bluegreen:colors.green.image": NEW})))
    refused(judge(pack, deployment(idle, "blue")), POLICY, "blue carries 100%")


def test_an_unreadable_record_passes_this_runs_rollback_and_only_it(aws, pack):
    """The objects of a rollback pass once the pack has judged this run's listener update a rollback (the engine
    analyses the listener first: the objects depend on it); without that verdict, on another load balancer, after a
    later verdict that is no rollback, or once the live weights are no longer those it judged, they are refused."""
    alb = _unreadable_alb(aws, 3)
    back = {"bluegreen:rollout.step": 0}
    refused(judge(pack, deployment(alb, "blue", **back)), POLICY, "cannot be read")  # no verdict yet: fails closed
    passes(listener(pack, alb, 0))  # the rollback: the pack's own verdict, from live and proposed weights
    for color in ("blue", "green"):
        passes(judge(pack, deployment(alb, color, **back)))
        for kind in (K8S_SERVICE, TGB):
            passes(judge_as(pack, kind, route(alb, color, kind, **back)))
    other = _unreadable_alb(aws, 3, name="bg-other")  # the stack's second load balancer: a Deployment is judged on both
    refused(judge(pack, deployment(alb, "blue", **back)), POLICY, "cannot be read")  # its listener has no verdict
    refused(judge(pack, deployment(other, "blue", **back)), POLICY, "cannot be read")
    _retire(aws, other)
    elbv2 = aws.client("elbv2")
    action = elbv2.describe_listeners(ListenerArns=[alb.production_listener])["Listeners"][0]["DefaultActions"]
    for g in action[0]["ForwardConfig"]["TargetGroups"]:
        g["Weight"] = 60 if g["TargetGroupArn"] == alb.target_groups["blue"] else 40
    elbv2.modify_listener(ListenerArn=alb.production_listener, DefaultActions=action)
    refused(judge(pack, deployment(alb, "blue", **back)), POLICY, "cannot be read")  # live moved since the verdict
    _retire(aws, alb)
    hold = _unreadable_alb(aws, 3, name="bg-hold")
    passes(listener(pack, hold, 0))
    refused(listener(pack, hold, 3, since=None), "workload-steady-during-shift", "cannot be read")  # a later verdict
    refused(judge(pack, deployment(hold, "blue", **{"bluegreen:rollout.step": 3})), POLICY, "cannot be read")


def test_break_glass_re_records_an_unreadable_record(aws, pack, hook):
    """The way out at step 0, where nothing can be rolled back: one update with a reason, reported and notified."""
    alb = _unreadable_alb(aws, 0)
    glass = {"bluegreen:breakGlass.reason": REASON}
    shift = listener(pack, alb, 0, since=None, **glass)
    assert shift.of("workload-steady-during-shift") == [], shift
    notes = shift.of("workload-break-glass")
    assert notes and "cannot be read" in notes[0].message and REASON in notes[0].message, shift
    before = len(hook.received)
    for found in (deployment(alb, "blue", **glass), route(alb, "blue", K8S_SERVICE, **glass), route(alb, "blue", TGB, **glass)):
        kind = DEPLOYMENT if found[1].endswith("-deployment") else K8S_SERVICE if found[1].endswith("-service") else TGB
        result = judge_as(pack, kind, found)
        passes(result)
        assert result.of("workload-break-glass"), result
    assert len(hook.received) > before and REASON in hook.received[-1]["text"], hook.received[before:]
