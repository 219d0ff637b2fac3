"""Every `bluegreen:*` stack config key: parsed, validated, defaulted. Pure: no Pulumi import.

`parse_stack_config(raw)` takes the stack's `bluegreen:` keys (namespace stripped, values as decoded
from the stack file) and returns a `StackConfig` or raises `ConfigError` naming the key, the value
found and what is allowed. The program calls it before it registers any resource.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import ConfigError
from .rules import COLORS, RolloutConfig, describe_value, parse_rollout
from .workload import BREAK_GLASS_RE, SECRET_ARN_RE, SECRET_NAME_RE, SecretRef, looks_secret

__all__ = [
    "NAMESPACE",
    "PLATFORMS",
    "IDLE_POLICIES",
    "ServiceConfig",
    "ColorConfig",
    "NetworkConfig",
    "TrafficConfig",
    "IdleConfig",
    "KubernetesConfig",
    "ProbeConfig",
    "ReflexConfig",
    "AutopilotConfig",
    "StackConfig",
    "parse_stack_config",
    "decode_raw",
    "TOP_LEVEL_KEYS",
    "check_secrets_are_secret",
]

NAMESPACE = "bluegreen"
PLATFORMS = ("ecs", "kubernetes")
IDLE_POLICIES = ("warm", "scale", "zero")
_FARGATE_CPU_MEMORY = {  # CPU units -> allowed memory (MiB)
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$")
_K8S_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,40}$")
_DNS_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ARN_RE = re.compile(r"^arn:aws[a-z-]*:")
DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Stands for a kubeconfig encrypted in the stack file when the CLI reads it without Pulumi: content, not a path.
ENCRYPTED_KUBECONFIG = "apiVersion: v1\nkind: Config\n# encrypted in the stack file (secure:)\n"
# Policies that allow nothing older than TLS 1.2.
TLS12_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
)


def _k(*parts: str) -> str:
    return f"{NAMESPACE}:" + ".".join(parts)


def _hint(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Section:
    """Reads one object-valued key, tracking which fields were used so unknown ones are rejected."""

    def __init__(self, key: str, raw: Any, fields: tuple[str, ...]):
        self.key = key
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(key, f"must be an object with fields {', '.join(fields)}; got {describe_value(raw)}")
        unknown = [f for f in raw if f not in fields]
        if unknown:
            u = unknown[0]
            raise ConfigError(f"{key}.{u}", f"is not a known setting{_hint(u, list(fields))}; allowed: {', '.join(fields)}")
        self.raw = raw

    def sub(self, name: str) -> str:
        return f"{self.key}.{name}"

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def int(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
        v = self.raw.get(name, default)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(self.sub(name), f"must be an integer {lo}..{hi}; got {describe_value(v)}")
        if not lo <= v <= hi:
            raise ConfigError(self.sub(name), f"must be between {lo} and {hi}; got {v}")
        return v

    def bool(self, name: str, default: bool) -> bool:
        v = self.raw.get(name, default)
        if not isinstance(v, bool):
            raise ConfigError(self.sub(name), f"must be true | false; got {describe_value(v)}")
        return v

    def str(self, name: str, default: str | None, check: Callable[[str], str | None] | None = None) -> str | None:
        v = self.raw.get(name, default)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(self.sub(name), f"must be a non-empty string; got {describe_value(v)}")
        if check:
            problem = check(v)
            if problem:
                raise ConfigError(self.sub(name), f"{problem}; got {v!r}")
        return v

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        v = self.raw.get(name, default)
        if v not in allowed:
            hint = _hint(v, list(allowed)) if isinstance(v, str) else ""
            raise ConfigError(self.sub(name), f"must be {' | '.join(allowed)}; got {describe_value(v)}{hint}")
        return v

    def str_list(self, name: str, default: list[str] | None, check: Callable[[str], str | None] | None = None) -> tuple[str, ...] | None:
        v = self.raw.get(name, default)
        if v is None:
            return None
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
            raise ConfigError(self.sub(name), f"must be a list of non-empty strings; got {describe_value(v)}")
        if check:
            for x in v:
                problem = check(x)
                if problem:
                    raise ConfigError(self.sub(name), f"{problem}; got {x!r} in {list(v)}")
        return tuple(v)


def _check_cidr(v: str) -> str | None:
    try:
        ipaddress.ip_network(v, strict=True)
    except ValueError:
        return "must be a CIDR block such as 10.0.0.0/16 or 0.0.0.0/0"
    return None


def _check_prefix(prefix: str, what: str) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        return None if v.startswith(prefix) else f"must be {what} (starting with {prefix!r})"

    return check


def _check_arn(v: str) -> str | None:
    return None if _ARN_RE.match(v) else "must be an ARN (arn:aws:...)"


def _check_path(v: str) -> str | None:
    return None if v.startswith("/") and " " not in v else "must be an absolute URL path such as /healthz"


def _check_image(v: str) -> str | None:
    if any(ch.isspace() for ch in v):
        return "must be a container image reference such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2, with no spaces"
    return None


# Headers every client (browser, SDK, proxy) sends or the ALB itself sets: routing on one of them
# sends ordinary traffic to the candidate, outside the weighted, gated steps.
_STANDARD_REQUEST_HEADERS = frozenset(
    h.lower()
    for h in (
        "Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
        "Connection", "Content-Encoding", "Content-Length", "Content-Type", "Cookie", "Date", "DNT", "Expect",
        "Forwarded", "From", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range",
        "If-Unmodified-Since", "Keep-Alive", "Max-Forwards", "Origin", "Pragma", "Priority", "Proxy-Authorization",
        "Range", "Referer", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Upgrade-Insecure-Requests",
        "User-Agent", "Via", "Warning", "X-Amzn-Trace-Id", "X-Forwarded-For", "X-Forwarded-Host",
        "X-Forwarded-Port", "X-Forwarded-Proto", "X-Real-IP", "X-Requested-With",
    )
)
_STANDARD_HEADER_PREFIXES = ("sec-", "x-amz", "x-amzn-", "proxy-")


def _check_route_header(v: str) -> str | None:
    """The header route's name: a custom header a client sends on purpose (`X-Canary`)."""
    allowed = "a custom header name of letters, digits and dashes (at most 40), e.g. X-Canary; not a standard request header"
    if not _HEADER_RE.match(v):
        return f"must be {allowed}"
    low = v.lower()
    if low in _STANDARD_REQUEST_HEADERS or low.startswith(_STANDARD_HEADER_PREFIXES):
        return f"must be {allowed} such as Host, User-Agent, Cookie or X-Forwarded-For (every client sends those)"
    return None


def _check_route_value(v: str) -> str | None:
    """The header route's value: one exact value (the ALB treats `*` and `?` as wildcards)."""
    if "*" in v or "?" in v:
        return "must be one exact value without the wildcards * or ? (e.g. always)"
    if len(v) > 128 or not all(" " < c < "\x7f" for c in v):
        return "must be 1..128 printable ASCII characters without spaces (e.g. always)"
    return None


def _check_matcher(v: str) -> str | None:
    return None if re.fullmatch(r"\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*", v) else "must be HTTP codes such as 200, 200-299 or 200,204"


@dataclass(frozen=True)
class ServiceConfig:
    """`bluegreen:service`: the service both colours run."""

    name: str = "web"  # prefix of every resource name; lowercase letters, digits, dashes, 2..24 chars
    port: int = 8080  # container port the app listens on
    health_path: str = "/healthz"  # path the target group and the gate probe
    health_matcher: str = "200"  # HTTP codes the ALB counts as healthy
    cpu: int = 256  # Fargate CPU units
    memory: int = 512  # Fargate memory, MiB
    desired_count: int = 2  # tasks (or pods) per colour that carries, or may carry, traffic
    environment: Mapping[str, str] = field(default_factory=dict)  # plain env vars (never secrets)
    health_check_grace_seconds: int = 30  # ECS: ignore failing ALB health checks this long after a task starts
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)  # env var name -> secret (see _secrets)


@dataclass(frozen=True)
class ColorConfig:
    """`bluegreen:colors.<colour>`: what one colour runs."""

    image: str
    breaking_migration: bool = False  # this colour's release carries a non-backward-compatible schema change


@dataclass(frozen=True)
class NetworkConfig:
    """`bluegreen:network`: an existing VPC, or a minimal new one."""

    create: bool = False
    cidr: str = "10.0.0.0/16"
    vpc_id: str | None = None
    public_subnet_ids: tuple[str, ...] = ()
    private_subnet_ids: tuple[str, ...] = ()
    availability_zones: tuple[str, ...] = ()
    ingress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)


@dataclass(frozen=True)
class TrafficConfig:
    """`bluegreen:traffic`: the ALB and its listeners."""

    certificate_arn: str | None = None
    ssl_policy: str = DEFAULT_SSL_POLICY
    test_port: int = 8443
    test_cidrs: tuple[str, ...] | None = None  # None: same as network.ingressCidrs
    stickiness_seconds: int = 0  # 0 = off; else sticky sessions during a shift (0 < weight < 100)
    header_route_name: str | None = None  # e.g. X-Canary: requests with it go to the candidate
    header_route_value: str = "always"
    deletion_protection: bool = True
    access_logs_bucket: str | None = None
    access_logs_prefix: str = "alb"
    idle_timeout: int = 60
    deregistration_delay: int = 30
    internal: bool = False
    test_hostname: str | None = None  # a DNS name the certificate covers, resolving to the ALB: probes verify TLS against it

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None


@dataclass(frozen=True)
class IdleConfig:
    """`bluegreen:idle`: what the colour without traffic runs once it is parked."""

    policy: str = "warm"  # warm | scale | zero
    replicas: int = 1  # for policy scale
    parked: bool = False  # true: apply the policy now (set by `rollout park` after the finish delay)
    delay_minutes: int = 60  # how long `rollout park` waits after a finish before it parks


@dataclass(frozen=True)
class KubernetesConfig:
    """`bluegreen:kubernetes`: where colours run when `bluegreen:platform` is kubernetes."""

    namespace: str = "default"  # namespace of both colours' Deployment, Service and TargetGroupBinding
    create_namespace: bool = False  # true: the program creates (and owns) the namespace
    kubeconfig: str | None = None  # a kubeconfig path or the file's content
    context: str | None = None  # a context in that kubeconfig (or in $KUBECONFIG / ~/.kube/config)
    eks_cluster_name: str | None = None  # instead of kubeconfig/context: an EKS cluster, reached with `aws eks get-token`
    install_load_balancer_controller: bool = False  # true: install the AWS Load Balancer Controller Helm chart
    controller_chart_version: str = "1.8.1"  # eks-charts aws-load-balancer-controller chart version
    controller_namespace: str = "kube-system"  # namespace of the controller's Helm release
    controller_cluster_name: str | None = None  # the chart's clusterName; default eksClusterName
    controller_service_account_name: str = "aws-load-balancer-controller"  # the controller's service account
    controller_create_service_account: bool = True  # false: the service account exists already (eksctl create iamserviceaccount)
    controller_role_arn: str | None = None  # IRSA: IAM role annotated on the service account the chart creates
    cpu_request: str = "250m"
    memory_request: str = "256Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "512Mi"
    pre_stop_seconds: int = 15  # pods wait this long before stopping, so the ALB stops sending to them first


@dataclass(frozen=True)
class ProbeConfig:
    """`bluegreen:probe`: the in-VPC probe function whose CloudWatch metrics are the gate's HTTP evidence."""

    enabled: bool = False  # default in config: true when bluegreen:traffic.certificateArn is set
    subnet_ids: tuple[str, ...] = ()  # where the function runs; default bluegreen:network.privateSubnetIds
    probes: int = 10  # probes per round (one round a minute)
    timeout_seconds: int = 2  # per probe: connect, TLS, headers and body
    expected_status: int = 200  # the status a healthy colour's health path answers
    synthetic_per_minute: int = 0  # synthetic requests to each colour's targets a minute, judged apart (0: off)
    synthetic_path: str | None = None  # what the synthetic requests GET; None: the health path
    synthetic_representative: bool = False  # the operator declares syntheticPath representative of user requests


@dataclass(frozen=True)
class ReflexConfig:
    """`bluegreen:reflex`: the function that rolls a breaking live candidate back within seconds."""

    enabled: bool = False  # default in config: the value of bluegreen:probe.enabled
    interval_seconds: int = 5  # one check every interval, for ~50 s of each one-minute invocation
    breach_checks: int = 2  # consecutive bad checks of one signal that make a breach
    probes: int = 5  # probes of the candidate per check
    notify_topic_arn: str | None = None  # SNS topic told of every rollback


@dataclass(frozen=True)
class AutopilotConfig:
    """`bluegreen:autopilot`: advance one step on the judge's pass (rollout.autopilot decides)."""

    enabled: bool = False  # opt-in per stack
    approve_above: int = 50  # a next step whose weight is above this % needs a human's approval
    max_bake_minutes: int = 60  # `insufficient` this long at one step stops the autopilot
    min_bake_minutes: int | None = None  # None: the pack's bake-time.minutes (policy/<stack>.json)


@dataclass(frozen=True)
class StackConfig:
    """The whole, validated stack config."""

    rollout: RolloutConfig
    platform: str
    service: ServiceConfig
    colors: Mapping[str, ColorConfig]
    network: NetworkConfig
    traffic: TrafficConfig
    idle: IdleConfig
    kubernetes: KubernetesConfig | None
    region: str | None = None
    probe: ProbeConfig = ProbeConfig()
    break_glass_reason: str | None = None  # bluegreen:breakGlass.reason: a workload may change while live
    reflex: ReflexConfig = ReflexConfig()
    autopilot: AutopilotConfig = AutopilotConfig()
    aborted: str | None = None  # bluegreen:aborted: the reflex's abort marker, committed with step 0; holds the header route on stable

    def replicas(self, color: str) -> int:
        """Tasks or pods for a colour: full size unless it is the parked idle colour."""
        if color == self.rollout.candidate and self.idle.parked:
            return {"warm": self.service.desired_count, "scale": self.idle.replicas, "zero": 0}[self.idle.policy]
        return self.service.desired_count


TOP_LEVEL_KEYS = ("rollout", "platform", "service", "colors", "network", "traffic", "idle", "kubernetes", "probe", "reflex", "autopilot", "breakGlass", "aborted")


def decode_raw(value: Any) -> Any:
    """Config values arrive as strings; objects and lists as JSON text. Decode those, keep plain strings."""
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in ("{", "["):
            try:
                return json.loads(s)
            except json.JSONDecodeError:
                return value
        if s in ("true", "false"):
            return s == "true"
        if re.fullmatch(r"-?\d+", s):
            return int(s)
    return value


def _service(raw: Any, platform: str = "ecs") -> ServiceConfig:
    s = _Section(
        _k("service"), raw,
        ("name", "port", "healthPath", "healthMatcher", "cpu", "memory", "desiredCount", "environment", "healthCheckGracePeriod", "secrets"),
    )
    name = s.str("name", "web", lambda v: None if _NAME_RE.match(v) else "must be 2..24 lowercase letters, digits or dashes, starting with a letter")
    cpu = s.int("cpu", 256, 256, 4096)
    memory = s.int("memory", 512, 1, 30720)
    if platform == "ecs":  # Fargate sizes; on Kubernetes, bluegreen:kubernetes requests/limits apply
        if cpu not in _FARGATE_CPU_MEMORY:
            raise ConfigError(s.sub("cpu"), f"must be a Fargate CPU size: {' | '.join(map(str, _FARGATE_CPU_MEMORY))}; got {cpu}")
        if memory not in _FARGATE_CPU_MEMORY[cpu]:
            allowed = _FARGATE_CPU_MEMORY[cpu]
            raise ConfigError(
                s.sub("memory"),
                f"must be one of Fargate's sizes for cpu {cpu}: {allowed[0]}..{allowed[-1]} MiB ({', '.join(map(str, allowed[:4]))}{', …' if len(allowed) > 4 else ''}); got {memory}",
            )
    env = s.raw.get("environment", {})
    if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ConfigError(s.sub("environment"), f"must be an object of string names to string values; got {describe_value(env)}")
    for var, value in env.items():
        # Never echo the value: it may be the secret.
        if looks_secret(var, value):
            raise ConfigError(
                f"{s.sub('environment')}.{var}",
                "looks like a secret in plain stack config; keep secrets in AWS Secrets Manager or SSM Parameter Store "
                "and reference them from the task, not in bluegreen:service.environment",
            )
    return ServiceConfig(
        name=name,
        port=s.int("port", 8080, 1, 65535),
        health_path=s.str("healthPath", "/healthz", _check_path),
        health_matcher=s.str("healthMatcher", "200", _check_matcher),
        cpu=cpu,
        memory=memory,
        desired_count=s.int("desiredCount", 2, 1, 1000),
        environment=dict(env),
        health_check_grace_seconds=s.int("healthCheckGracePeriod", 30, 0, 2147483647),  # ECS's allowed range
        secrets=_secrets(s, env, platform),
    )


def _is_encrypted(value: Any) -> bool:
    """A `secure:` value as the stack file holds it (`{secure: v1:...}`), read without the Pulumi CLI."""
    return isinstance(value, Mapping) and set(value) == {"secure"} and isinstance(value["secure"], str)


def _secrets(s: _Section, env: Mapping[str, str], platform: str) -> dict[str, SecretRef]:
    """`bluegreen:service.secrets`: NAME -> a value set with `pulumi config set --secret --path
    'bluegreen:service.secrets.NAME'` (the program stores it in an SSM SecureString), or NAME -> the
    ARN of an existing SSM parameter / Secrets Manager secret (ECS only). Values are never echoed."""
    raw = s.raw.get("secrets", {})
    key = s.sub("secrets")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "must be an object of environment variable names to secret values or ARNs")
    out: dict[str, SecretRef] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not SECRET_NAME_RE.match(name):
            raise ConfigError(f"{key}.{name}", "must be an environment variable name: a letter or _, then letters, digits, _ (at most 128)")
        if name in env or name == "BLUEGREEN_COLOR":
            raise ConfigError(f"{key}.{name}", f"is also a plain variable (bluegreen:service.environment or BLUEGREEN_COLOR); a name is one or the other")
        if _is_encrypted(value):
            out[name] = SecretRef(name, encrypted=True)
        elif isinstance(value, str) and value.startswith("arn:"):
            if not SECRET_ARN_RE.match(value):
                raise ConfigError(f"{key}.{name}", f"must be an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>) or a Secrets Manager secret ARN; got {value!r}")
            if platform != "ecs":
                raise ConfigError(f"{key}.{name}", "is an ARN, which only ECS can read at task start; on kubernetes set the value itself with `pulumi config set --secret`")
            out[name] = SecretRef(name, arn=value)
        elif isinstance(value, str) and value:
            if len(value.encode()) > 4096:
                raise ConfigError(f"{key}.{name}", "is longer than 4096 bytes, the most an SSM SecureString holds (the value is not shown)")
            out[name] = SecretRef(name, value=value)
        else:
            raise ConfigError(f"{key}.{name}", "must be a non-empty secret value (set it with `pulumi config set --secret`) or an ARN (the value is not shown)")
    return out


def check_secrets_are_secret(cfg: "StackConfig", secret_keys: Any) -> None:
    """Under the Pulumi engine (which says which keys are secret): a `bluegreen:service.secrets` value
    must come from `pulumi config set --secret`, else it sits in plain text in the stack file."""
    if f"{NAMESPACE}:service" in set(secret_keys):
        return
    for name, ref in cfg.service.secrets.items():
        if ref.value is not None:
            raise ConfigError(
                _k("service", "secrets", name),
                f"is in plain text in the stack config; set it with: pulumi config set --secret --path '{_k('service', 'secrets', name)}' <value>",
            )


def _break_glass(raw: Any) -> str | None:
    s = _Section(_k("breakGlass"), raw, ("reason",))
    if not s.has("reason"):
        return None
    return s.str(
        "reason",
        None,
        lambda v: None if BREAK_GLASS_RE.match(v) else "must be 10..200 characters of letters, digits, spaces and + - = . _ : / @ (it is recorded in AWS tags)",
    )


_ABORTED_RE = re.compile(r"^[A-Za-z0-9 +=.:/@_-]{1,256}$")  # what an ELBv2 tag value allows (the marker it copies)


def is_abort_marker(text: str) -> bool:
    """Whether `text` can be committed as `bluegreen:aborted` (what `_aborted` accepts at step 0)."""
    return bool(_ABORTED_RE.match(text.strip()))


def _aborted(raw: Any, rollout: RolloutConfig) -> str | None:
    """`bluegreen:aborted`: the reflex's abort marker, committed with step 0 by the watcher or `rollout rollback`.
    While set, the header route stays on the stable colour and the stack stays at step 0; `rollout release`
    (a new image on the idle colour) clears it. Unset or "" = no hold."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not is_abort_marker(raw):
        raise ConfigError(_k("aborted"), "must be the reflex's abort marker text (1..256 letters, digits, spaces and + = . : / @ _ -), "
                          f"e.g. 2026-11-23T16:05:03Z probes-failed green=25, or empty; got {describe_value(raw)}")
    if rollout.step != 0:
        raise ConfigError(
            _k("aborted"),
            f"is set ({raw.strip()}): {rollout.candidate} was aborted, so the stack stays at {_k('rollout')}.step 0 until a new release "
            f"goes to the idle colour (python -m rollout release --image IMAGE clears it); to retry the same release, remove it "
            f"(pulumi config rm {_k('aborted')}); got step {rollout.step}",
        )
    return raw.strip()


def _colors(raw: Any) -> dict[str, ColorConfig]:
    key = _k("colors")
    if raw is None:
        raise ConfigError(key, "is required: an image per colour, e.g. {blue: {image: web:1.4.1}, green: {image: web:1.4.2}}")
    top = _Section(key, raw, COLORS)
    out = {}
    for color in COLORS:
        if color not in top.raw:
            raise ConfigError(f"{key}.{color}", "is required: {image: <container image>}")
        c = _Section(f"{key}.{color}", top.raw[color], ("image", "breakingMigration"))
        if not c.has("image"):
            raise ConfigError(f"{key}.{color}.image", "is required: the container image this colour runs")
        out[color] = ColorConfig(image=c.str("image", None, _check_image), breaking_migration=c.bool("breakingMigration", False))
    return out


def _network(raw: Any) -> NetworkConfig:
    s = _Section(_k("network"), raw, ("create", "cidr", "vpcId", "publicSubnetIds", "privateSubnetIds", "availabilityZones", "ingressCidrs"))
    create = s.bool("create", False)
    vpc_id = s.str("vpcId", None, _check_prefix("vpc-", "a VPC id"))
    public = s.str_list("publicSubnetIds", [], _check_prefix("subnet-", "a subnet id")) or ()
    private = s.str_list("privateSubnetIds", [], _check_prefix("subnet-", "a subnet id")) or ()
    if create and (vpc_id or public or private):
        raise ConfigError(s.sub("create"), "is true, so vpcId and subnet ids must not be set: either create a VPC or use an existing one")
    if not create:
        if not vpc_id:
            raise ConfigError(s.sub("vpcId"), "is required unless bluegreen:network.create is true (an existing VPC, e.g. vpc-0123456789abcdef0)")
        if len(public) < 2:
            raise ConfigError(s.sub("publicSubnetIds"), f"needs at least 2 subnets in different availability zones (an ALB requires 2); got {list(public)}")
    azs = s.str_list("availabilityZones", [], None) or ()
    if azs and len(azs) < 2:
        raise ConfigError(s.sub("availabilityZones"), f"needs at least 2 zones; got {list(azs)}")
    return NetworkConfig(
        create=create,
        cidr=s.str("cidr", "10.0.0.0/16", _check_cidr),
        vpc_id=vpc_id,
        public_subnet_ids=public,
        private_subnet_ids=private,
        availability_zones=azs,
        ingress_cidrs=s.str_list("ingressCidrs", ["0.0.0.0/0"], _check_cidr),
    )


def _traffic(raw: Any, service: ServiceConfig) -> TrafficConfig:
    s = _Section(
        _k("traffic"),
        raw,
        (
            "certificateArn", "sslPolicy", "testPort", "testCidrs", "stickinessSeconds", "headerRoute",
            "deletionProtection", "accessLogsBucket", "accessLogsPrefix", "idleTimeout", "deregistrationDelay", "internal",
            "testHostname",
        ),
    )
    cert = s.str("certificateArn", None, _check_arn)
    ssl_policy = s.choice("sslPolicy", DEFAULT_SSL_POLICY, TLS12_POLICIES)
    test_port = s.int("testPort", 8443, 1, 65535)
    if test_port in (80, 443):
        raise ConfigError(s.sub("testPort"), f"must not be 80 or 443, which serve production traffic; got {test_port}")
    header = s.raw.get("headerRoute")
    header_name, header_value = None, "always"
    if header is not None:
        h = _Section(s.sub("headerRoute"), header, ("name", "value"))
        header_name = h.str("name", "X-Canary", _check_route_header)
        header_value = h.str("value", "always", _check_route_value)
    return TrafficConfig(
        certificate_arn=cert,
        ssl_policy=ssl_policy,
        test_port=test_port,
        test_cidrs=s.str_list("testCidrs", None, _check_cidr),
        stickiness_seconds=s.int("stickinessSeconds", 0, 0, 604800),
        header_route_name=header_name,
        header_route_value=header_value,
        deletion_protection=s.bool("deletionProtection", True),
        access_logs_bucket=s.str("accessLogsBucket", None),
        access_logs_prefix=s.str("accessLogsPrefix", "alb"),
        idle_timeout=s.int("idleTimeout", 60, 1, 4000),
        deregistration_delay=s.int("deregistrationDelay", 30, 0, 3600),
        internal=s.bool("internal", False),
        test_hostname=s.str("testHostname", None, _check_hostname),
    )


def _check_hostname(v: str) -> str | None:
    """A DNS name: lowercase labels of letters, digits and dashes, at least two, no wildcard."""
    labels = v.split(".")
    if len(v) > 253 or len(labels) < 2 or not all(_DNS_LABEL_RE.match(label) for label in labels):
        return "must be a DNS name on the listener's certificate such as canary.example.com (lowercase, no wildcard)"
    return None


def _check_synthetic_path(v: str) -> str | None:
    from .probe_path import synthetic_path_problem

    return synthetic_path_problem(v)


def _probe(raw: Any, network: NetworkConfig, traffic: TrafficConfig, health_path: str = "/healthz") -> ProbeConfig:
    s = _Section(_k("probe"), raw, ("enabled", "subnetIds", "probes", "timeoutSeconds", "expectedStatus", "syntheticPerMinute",
                                    "syntheticPath", "syntheticRepresentative"))
    enabled = s.bool("enabled", traffic.https)
    subnets = s.str_list("subnetIds", None, _check_prefix("subnet-", "a subnet id"))
    probe = ProbeConfig(
        enabled=enabled,
        subnet_ids=tuple(subnets) if subnets is not None else network.private_subnet_ids,
        probes=s.int("probes", 10, 1, 50),
        timeout_seconds=s.int("timeoutSeconds", 2, 1, 10),
        expected_status=s.int("expectedStatus", 200, 100, 599),
        synthetic_per_minute=s.int("syntheticPerMinute", 0, 0, 1000),
        synthetic_path=s.str("syntheticPath", None, _check_synthetic_path),
        synthetic_representative=s.bool("syntheticRepresentative", False),
    )
    _check_synthetic_representative(s, probe, health_path)
    if probe.synthetic_per_minute and not enabled:
        raise ConfigError(
            s.sub("syntheticPerMinute"),
            f"is {probe.synthetic_per_minute} but {_k('probe', 'enabled')} is false: the probe function sends the synthetic load; "
            "turn it on or set syntheticPerMinute: 0",
        )
    if not enabled:
        return probe
    if traffic.https and not traffic.test_hostname:
        raise ConfigError(
            _k("traffic", "testHostname"),
            f"is required while {_k('probe', 'enabled')} is true and the listeners are HTTPS: a DNS name the certificate covers "
            "(e.g. canary.example.com), which the probes verify TLS against; or set probe.enabled: false",
        )
    if not probe.subnet_ids:
        raise ConfigError(
            s.sub("subnetIds"),
            f"is empty and so is {_k('network', 'privateSubnetIds')}: the probe function needs private subnets with a NAT gateway "
            "or VPC endpoints for elasticloadbalancing, ec2 and monitoring; or set probe.enabled: false",
        )
    return probe


def _check_synthetic_representative(s: _Section, probe: ProbeConfig, health_path: str) -> None:
    """`syntheticRepresentative: true` lets a pass rest on the synthetic requests: only with synthetic load on and a
    path of its own (the health check earns nothing: it passes whatever the users' requests do)."""
    if not probe.synthetic_representative:
        return
    key, allowed = s.sub("syntheticRepresentative"), "allowed: false, or true with syntheticPerMinute > 0 and a syntheticPath"
    if not probe.synthetic_per_minute:
        raise ConfigError(key, f"is true but {_k('probe', 'syntheticPerMinute')} is 0: there is no synthetic load to rest a pass on; "
                               f"{allowed} that is not the health check")
    from .probe_path import same_endpoint

    if probe.synthetic_path is None or same_endpoint(probe.synthetic_path, health_path):
        what = "is unset (the health path)" if probe.synthetic_path is None else f"is the health path {health_path}"
        raise ConfigError(key, f"is true but {_k('probe', 'syntheticPath')} {what}: a health ping is not representative of user "
                               f"requests; {allowed} that runs the code users run (e.g. /api/ping)")


def _autopilot(raw: Any) -> AutopilotConfig:
    s = _Section(_k("autopilot"), raw, ("enabled", "approveAbove", "maxBakeMinutes", "minBakeMinutes"))
    autopilot = AutopilotConfig(
        enabled=s.bool("enabled", False),
        approve_above=s.int("approveAbove", 50, 0, 100),
        max_bake_minutes=s.int("maxBakeMinutes", 60, 1, 1440),
        min_bake_minutes=s.int("minBakeMinutes", None, 0, 1440),
    )
    if autopilot.min_bake_minutes is not None and autopilot.min_bake_minutes > autopilot.max_bake_minutes:
        raise ConfigError(s.sub("minBakeMinutes"), f"must be at most maxBakeMinutes ({autopilot.max_bake_minutes}); "
                                                   f"got {autopilot.min_bake_minutes}")
    return autopilot


def _reflex(raw: Any, probe: ProbeConfig) -> ReflexConfig:
    s = _Section(_k("reflex"), raw, ("enabled", "intervalSeconds", "breachChecks", "probes", "notifyTopicArn"))
    reflex = ReflexConfig(
        enabled=s.bool("enabled", probe.enabled),
        interval_seconds=s.int("intervalSeconds", 5, 2, 30),
        breach_checks=s.int("breachChecks", 2, 1, 10),
        probes=s.int("probes", 5, 1, 20),
        notify_topic_arn=s.str("notifyTopicArn", None, _check_prefix("arn:aws:sns:", "an SNS topic ARN")),
    )
    if reflex.enabled and not probe.enabled:
        raise ConfigError(
            s.sub("enabled"),
            f"is true but {_k('probe', 'enabled')} is false: the reflex runs where the probe function runs (its subnets and "
            "security group, admitted by the test listener); turn the probe function on or set reflex.enabled: false",
        )
    return reflex


def _idle(raw: Any, rollout: RolloutConfig) -> IdleConfig:
    s = _Section(_k("idle"), raw, ("policy", "replicas", "parked", "delayMinutes"))
    idle = IdleConfig(
        policy=s.choice("policy", "warm", IDLE_POLICIES),
        replicas=s.int("replicas", 1, 1, 1000),
        parked=s.bool("parked", False),
        delay_minutes=s.int("delayMinutes", 60, 0, 10080),
    )
    if idle.parked and rollout.step != 0:
        raise ConfigError(
            s.sub("parked"),
            f"can only be true at {_k('rollout')}.step 0: {rollout.candidate} carries {rollout.candidate_weight}% of traffic at step {rollout.step}; set parked: false first",
        )
    return idle


def _kubernetes(raw: Any) -> KubernetesConfig:
    if isinstance(raw, Mapping):
        raw = {k: v for k, v in raw.items() if v is not None}  # `key: null` means unset: the default applies
        if _is_encrypted(raw.get("kubeconfig")):  # `secure:` read without the Pulumi CLI (offline plan)
            raw["kubeconfig"] = ENCRYPTED_KUBECONFIG
        for q in ("cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit"):  # `cpuLimit: 1` is a quantity too
            if isinstance(raw.get(q), (int, float)) and not isinstance(raw[q], bool) and raw[q] >= 0:
                raw[q] = format(raw[q], "g") if isinstance(raw[q], float) else str(raw[q])
    s = _Section(
        _k("kubernetes"),
        raw,
        (
            "namespace", "createNamespace", "kubeconfig", "context", "eksClusterName", "installLoadBalancerController",
            "controllerChartVersion", "controllerNamespace", "controllerClusterName", "controllerServiceAccountName",
            "controllerCreateServiceAccount", "controllerRoleArn", "controllerPodIdentity", "cpuRequest", "memoryRequest", "cpuLimit",
            "memoryLimit", "preStopSeconds",
        ),
    )
    system_namespaces = ("default", "kube-system", "kube-public", "kube-node-lease")
    eks_name_re = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
    semver_re = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
    quantity_re = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
    units = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}

    def _check_quantity(v: str) -> str | None:
        return None if quantity_re.match(v) else "must be a Kubernetes quantity such as 250m or 512Mi"

    def _quantity_value(v: str) -> float:
        number, unit = quantity_re.match(v).groups()
        return float(number) * units[unit]

    if not any(s.has(k) for k in ("kubeconfig", "context", "eksClusterName")):
        raise ConfigError(
            s.key, "needs a cluster to deploy to: set kubeconfig (a path or the file's content), context, or eksClusterName"
        )
    if s.has("eksClusterName") and (s.has("kubeconfig") or s.has("context")):
        raise ConfigError(s.sub("eksClusterName"), "is set, so kubeconfig and context must not be: choose one way to reach the cluster")
    k8s_name = lambda v: None if _K8S_NAME_RE.match(v) else "must be a Kubernetes name (lowercase letters, digits, dashes, at most 63)"  # noqa: E731
    namespace = s.str("namespace", "default", k8s_name)
    create_namespace = s.bool("createNamespace", False)
    if create_namespace and namespace in system_namespaces:
        raise ConfigError(s.sub("createNamespace"), f"is true but namespace {namespace!r} always exists; set createNamespace: false or choose another namespace")
    eks = s.str("eksClusterName", None, lambda v: None if eks_name_re.match(v) else "must be an EKS cluster name (letters, digits, dashes, underscores, at most 100)")
    install = s.bool("installLoadBalancerController", False)
    controller_keys = (
        "controllerChartVersion", "controllerNamespace", "controllerClusterName", "controllerServiceAccountName",
        "controllerCreateServiceAccount", "controllerRoleArn", "controllerPodIdentity",
    )
    if not install:
        for key in controller_keys:
            if s.has(key):
                raise ConfigError(s.sub(key), "is set but installLoadBalancerController is false; set installLoadBalancerController: true or remove it")
    controller_cluster = s.str("controllerClusterName", None, lambda v: None if eks_name_re.match(v) else "must be an EKS cluster name")
    if install and not (controller_cluster or eks):
        raise ConfigError(s.sub("controllerClusterName"), "is required when installLoadBalancerController is true and eksClusterName is not set: the EKS cluster the controller manages")
    create_sa = s.bool("controllerCreateServiceAccount", True)
    role_arn = s.str("controllerRoleArn", None, _check_prefix("arn:aws", "an IAM role ARN such as arn:aws:iam::123456789012:role/aws-load-balancer-controller"))
    if role_arn and ":role/" not in role_arn:
        raise ConfigError(s.sub("controllerRoleArn"), f"must be an IAM role ARN such as arn:aws:iam::123456789012:role/aws-load-balancer-controller; got {role_arn!r}")
    pod_identity = s.bool("controllerPodIdentity", False)
    if install and create_sa and not role_arn and not pod_identity:
        raise ConfigError(
            s.sub("controllerRoleArn"),
            "is required when installLoadBalancerController is true: the controller calls AWS and needs an IAM identity. "
            "Set an IRSA role ARN (arn:aws:iam::123456789012:role/aws-load-balancer-controller), or controllerPodIdentity: true "
            "after associating a role with EKS Pod Identity, or controllerCreateServiceAccount: false for an existing annotated service account",
        )
    if role_arn and not create_sa:
        raise ConfigError(s.sub("controllerRoleArn"), "is set but controllerCreateServiceAccount is false: annotate the existing service account instead, or let the chart create it")
    cpu_request = s.str("cpuRequest", "250m", _check_quantity)
    cpu_limit = s.str("cpuLimit", "500m", _check_quantity)
    memory_request = s.str("memoryRequest", "256Mi", _check_quantity)
    memory_limit = s.str("memoryLimit", "512Mi", _check_quantity)
    for what, request, limit in (("cpu", cpu_request, cpu_limit), ("memory", memory_request, memory_limit)):
        if _quantity_value(request) > _quantity_value(limit):
            raise ConfigError(s.sub(f"{what}Request"), f"must not exceed {what}Limit ({limit}); got {request!r}")
    return KubernetesConfig(
        namespace=namespace,
        create_namespace=create_namespace,
        kubeconfig=s.str("kubeconfig", None),
        context=s.str("context", None),
        eks_cluster_name=eks,
        install_load_balancer_controller=install,
        controller_chart_version=s.str("controllerChartVersion", "1.8.1", lambda v: None if semver_re.match(v) else "must be a chart version such as 1.8.1"),
        controller_namespace=s.str("controllerNamespace", "kube-system", k8s_name),
        controller_cluster_name=controller_cluster or (eks if install else None),
        controller_service_account_name=s.str("controllerServiceAccountName", "aws-load-balancer-controller", k8s_name),
        controller_create_service_account=create_sa,
        controller_role_arn=role_arn,
        cpu_request=cpu_request,
        memory_request=memory_request,
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
        pre_stop_seconds=s.int("preStopSeconds", 15, 0, 300),
    )


def parse_stack_config(raw: Mapping[str, Any], region: str | None = None) -> StackConfig:
    """Validate every `bluegreen:` key (namespace stripped). Raises ConfigError on the first problem."""
    for name in raw:
        if name not in TOP_LEVEL_KEYS:
            raise ConfigError(_k(name), f"is not a bluegreen setting{_hint(name, list(TOP_LEVEL_KEYS))}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    values = {k: decode_raw(v) for k, v in raw.items()}
    for name, value in values.items():
        if _is_encrypted(value) and name != "service":
            raise ConfigError(_k(name), "is encrypted (secure:) in the stack file, but only bluegreen:service.secrets.<NAME> values may be secret; set the secret with --path")
    if _is_encrypted(values.get("service")):
        raise ConfigError(_k("service"), "is encrypted as a whole (secure:); set secrets one by one: pulumi config set --secret --path 'bluegreen:service.secrets.<NAME>' <value>")
    if "rollout" not in values:
        raise ConfigError(_k("rollout"), "is required: {stable: blue, steps: [10, 25, 50, 75, 100], step: 0}")
    try:
        rollout = parse_rollout(values["rollout"], _k("rollout"))
    except ConfigError as e:  # a mistyped colour gets a "did you mean"
        stable = values["rollout"].get("stable") if isinstance(values["rollout"], Mapping) else None
        if e.key == _k("rollout", "stable") and isinstance(stable, str) and _hint(stable, list(COLORS)):
            raise ConfigError(e.key, f"{str(e).split(': ', 1)[1]}{_hint(stable, list(COLORS))}") from None
        raise
    platform = values.get("platform", "ecs")
    if platform not in PLATFORMS:
        hint = _hint(platform, list(PLATFORMS)) if isinstance(platform, str) else ""
        raise ConfigError(_k("platform"), f"must be ecs | kubernetes; got {describe_value(platform)}{hint}")
    service = _service(values.get("service"), platform)
    colors = _colors(values.get("colors"))
    network = _network(values.get("network"))
    traffic = _traffic(values.get("traffic"), service)
    idle = _idle(values.get("idle"), rollout)
    probe = _probe(values.get("probe"), network, traffic, service.health_path)
    reflex = _reflex(values.get("reflex"), probe)
    kubernetes = None
    if platform == "kubernetes":
        kubernetes = _kubernetes(values.get("kubernetes"))
        if network.create:
            raise ConfigError(
                _k("network", "create"),
                "is true but bluegreen:platform is kubernetes: pods are registered by IP, so the target groups must be in the "
                "cluster's VPC; set bluegreen:network.vpcId and publicSubnetIds to the cluster's VPC instead",
            )
    elif values.get("kubernetes") is not None:
        raise ConfigError(_k("kubernetes"), "is set but bluegreen:platform is ecs; set platform: kubernetes or remove it")
    return StackConfig(
        rollout=rollout,
        platform=platform,
        service=service,
        colors=colors,
        network=network,
        traffic=traffic,
        idle=idle,
        kubernetes=kubernetes,
        region=region,
        probe=probe,
        break_glass_reason=_break_glass(values.get("breakGlass")),
        reflex=reflex,
        autopilot=_autopilot(values.get("autopilot")),
        aborted=_aborted(values.get("aborted"), rollout),
    )
