"""The pod template a Kubernetes colour runs, as data. Pure: no Pulumi, no AWS.

One copy, used twice: `components/kubernetes.py` hands `pod_template(...)` to the colour's Deployment,
and `rollout.workload.stack_fingerprints` hashes the same dict (with the replica count) into the
production listener's `bluegreen:workload` record, which the policy pack compares with the
Deployment it is about to apply (docs/workload.md). Keys are the Kubernetes API's (camelCase), the
form the engine hands the provider and the pack.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = [
    "CONTAINER_NAME",
    "PORT_NAME",
    "app_name",
    "container_env",
    "object_name",
    "pod_labels",
    "pod_template",
    "pod_template_for",
    "pre_stop",
    "probes",
    "resource_requirements",
    "secret_object_name",
    "selector_labels",
    "service_spec",
    "service_ref",
    "routing_for",
]

CONTAINER_NAME = "app"
PORT_NAME = "http"
_SERVICE_TAG = "bluegreen:service"


def app_name(component_name: str, color: str, tags: Mapping[str, str] | None = None) -> str:
    """The `app` label: the service name (`web`), from the `bluegreen:service` tag or the component name `web-blue`."""
    if tags and tags.get(_SERVICE_TAG):
        return tags[_SERVICE_TAG]
    suffix = f"-{color}"
    return component_name[: -len(suffix)] if component_name.endswith(suffix) else component_name


def object_name(component_name: str) -> str:
    """The Kubernetes name of a colour's Deployment, Service and TargetGroupBinding: the component name (`web-blue`).

    Fixed forever, like the Pulumi names: the TargetGroupBinding refers to the Service by this name.
    """
    if not component_name or len(component_name) > 63 or not component_name[0].isalpha():
        raise ValueError(f"{component_name!r} cannot name a Kubernetes Service (a letter first, at most 63 characters)")
    return component_name


def selector_labels(app: str, color: str) -> dict[str, str]:
    """What the Deployment's selector and the Service's selector match: one colour of one app, nothing else."""
    return {"app": app, "color": color}


def service_spec(app: str, color: str, port: int) -> dict[str, Any]:
    """The colour's Service `spec`: a ClusterIP selecting exactly that colour's pods (`selector_labels`), its
    `port` forwarded to the pods' named container port. The very dict the program hands the Service and
    `rollout.workload.service_fingerprint` hashes into the listener's record."""
    return {
        "type": "ClusterIP",
        "selector": selector_labels(app, color),
        "ports": [{"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}],
    }


def service_ref(component_name: str, port: int) -> dict[str, Any]:
    """The TargetGroupBinding's `spec.serviceRef`: the colour's Service (same namespace) and its port."""
    return {"name": object_name(component_name), "port": port}


def pod_labels(app: str, color: str) -> dict[str, str]:
    """Labels on every object of a colour: the selector labels plus the recommended `app.kubernetes.io/*` ones."""
    return {
        **selector_labels(app, color),
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": f"{app}-{color}",
        "app.kubernetes.io/part-of": "bluegreen",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def probes(health_path: str, port: int) -> dict[str, dict[str, Any]]:
    """Readiness and liveness probes on the same path as the ALB's health check.

    Readiness is quick to act (the pod leaves the Service after 3 failed probes, 15 s); liveness is slow
    to act (restart after 6 failures, a minute), so a brief dependency outage does not restart pods.
    """
    http = {"path": health_path, "port": port, "scheme": "HTTP"}
    return {
        "readinessProbe": {"httpGet": dict(http), "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 2, "successThreshold": 1, "failureThreshold": 3},
        "livenessProbe": {"httpGet": dict(http), "initialDelaySeconds": 15, "periodSeconds": 10, "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 6},
    }


def pre_stop(seconds: int) -> dict[str, Any] | None:
    """A preStop sleep: a terminating pod keeps serving while the controller deregisters it from the
    target group and the ALB drains it; without it every rolling update or scale-in answers 502s.

    Uses the kubelet's own sleep action (`lifecycle.preStop.sleep`, Kubernetes 1.30+; no `sleep` binary
    needed in the image). The grace period (`seconds` + 45) leaves the app time to shut down after.
    """
    return {"preStop": {"sleep": {"seconds": seconds}}} if seconds else None


def resource_requirements(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> dict[str, dict[str, str]]:
    """The container's requests and limits (Kubernetes quantities, validated by rollout.config)."""
    return {"requests": {"cpu": cpu_request, "memory": memory_request}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


def container_env(environment: Mapping[str, str], color: str, secret_names: Sequence[str] = (), secret_object: str = "") -> list[dict[str, Any]]:
    """Plain env vars, sorted so the spec is stable, plus BLUEGREEN_COLOR (the ECS task sees its colour in its log stream),
    then each secret as `valueFrom.secretKeyRef` into the colour's Secret `secret_object` (never a value in the spec)."""
    env = {**environment, "BLUEGREEN_COLOR": color}
    plain: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    refs = [{"name": n, "valueFrom": {"secretKeyRef": {"name": secret_object, "key": n}}} for n in sorted(secret_names)]
    return plain + refs


def secret_object_name(component_name: str) -> str:
    """The colour's Secret: `web-blue-secrets` (a Kubernetes name: at most 63 characters)."""
    return object_name(component_name)[:55] + "-secrets"


def pod_template(
    *,
    app: str,
    color: str,
    image: str,
    port: int,
    health_path: str,
    environment: Mapping[str, str],
    secret_names: Sequence[str] = (),
    secret_object: str = "",
    cpu_request: str = "250m",
    memory_request: str = "256Mi",
    cpu_limit: str = "500m",
    memory_limit: str = "512Mi",
    pre_stop_seconds: int = 15,
) -> dict[str, Any]:
    """The Deployment's `spec.template` for one colour: its labels (what the colour's Service selects)
    and one container running `image`, probed on `health_path`, its secrets by reference only."""
    health = probes(health_path, port)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "ports": [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}],
        "env": container_env(environment, color, sorted(secret_names), secret_object),
        "resources": resource_requirements(cpu_request, memory_request, cpu_limit, memory_limit),
        "readinessProbe": health["readinessProbe"],
        "livenessProbe": health["livenessProbe"],
    }
    lifecycle = pre_stop(pre_stop_seconds)
    if lifecycle is not None:
        container["lifecycle"] = lifecycle
    return {
        "metadata": {"labels": pod_labels(app, color)},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": pre_stop_seconds + 45},
    }


def pod_template_for(cfg: Any, color: str) -> dict[str, Any]:
    """`pod_template` of `color` from a validated `rollout.config.StackConfig` (platform kubernetes), exactly
    as `__main__.py` declares it: component `<service>-<colour>`, app label the service name."""
    s, k = cfg.service, cfg.kubernetes
    component = f"{s.name}-{color}"
    secret_names = sorted(s.secrets or {})
    return pod_template(
        app=s.name,
        color=color,
        image=cfg.colors[color].image,
        port=s.port,
        health_path=s.health_path,
        environment=s.environment,
        secret_names=secret_names,
        secret_object=secret_object_name(component) if secret_names else "",
        cpu_request=k.cpu_request,
        memory_request=k.memory_request,
        cpu_limit=k.cpu_limit,
        memory_limit=k.memory_limit,
        pre_stop_seconds=k.pre_stop_seconds,
    )


def routing_for(cfg: Any, color: str) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(namespace, Service name, Service spec, TargetGroupBinding serviceRef) of `color` from a validated
    `rollout.config.StackConfig`, exactly as `components/kubernetes.py` declares them for `__main__.py`'s
    component `<service>-<colour>`: the path from the colour's target group to its pods."""
    s = cfg.service
    component = f"{s.name}-{color}"
    return cfg.kubernetes.namespace, object_name(component), service_spec(s.name, color, s.port), service_ref(component, s.port)
