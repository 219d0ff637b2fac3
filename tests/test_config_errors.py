"""Bad stack config is refused with the key named, BEFORE the program registers any resource.

Each case runs the real `__main__.py` under the mock runtime with the real staging or production
stack file plus one bad edit, and asserts on the mock's record of registrations: it must be empty.
"""

import pulumi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.config import parse_stack_config
from rollout.errors import ConfigError
from rollout.simulate import RecordingMocks, load_stack_file, run_program, set_path

class _Delete:
    """The case removes the key. A fixed repr keeps test ids the same in every process (pytest-xdist)."""

    def __repr__(self) -> str:
        return "<deleted>"


DELETE = _Delete()

# (stack, config path, bad value, key named in the error, words the error must contain)
CASES = [
    ("production", "bluegreen:rollout.step", 6, "bluegreen:rollout.step", "between 0"),
    ("production", "bluegreen:rollout.step", -1, "bluegreen:rollout.step", "between 0"),
    ("production", "bluegreen:rollout.step", "two", "bluegreen:rollout.step", "must be an integer"),
    ("production", "bluegreen:rollout.step", 1.5, "bluegreen:rollout.step", "must be an integer"),
    ("production", "bluegreen:rollout.steps", [50, 25, 100], "bluegreen:rollout.steps", "strictly increasing"),
    ("production", "bluegreen:rollout.steps", [0, 50, 100], "bluegreen:rollout.steps", "between 1 and 100"),
    ("production", "bluegreen:rollout.steps", [10, 150], "bluegreen:rollout.steps", "between 1 and 100"),
    ("production", "bluegreen:rollout.steps", [10, 50, 90], "bluegreen:rollout.steps", "end at 100"),
    ("production", "bluegreen:rollout.stable", "purple", "bluegreen:rollout.stable", "blue | green"),
    ("production", "bluegreen:rollout", DELETE, "bluegreen:rollout", "required"),
    ("production", "bluegreen:platform", "lambda", "bluegreen:platform", "ecs | kubernetes"),
    ("production", "bluegreen:platform", "kubernets", "bluegreen:platform", "did you mean 'kubernetes'"),
    ("production", "bluegreen:colors.green.image", DELETE, "bluegreen:colors.green.image", "required"),
    ("production", "bluegreen:colors.blue", DELETE, "bluegreen:colors.blue", "required"),
    ("production", "bluegreen:colors.green.image", "web 1.2", "bluegreen:colors.green.image", "no spaces"),
    ("production", "bluegreen:colors.green.imgae", "web:1.2", "bluegreen:colors.green.imgae", "did you mean 'image'"),
    ("production", "bluegreen:service.port", 70000, "bluegreen:service.port", "between 1 and 65535"),
    ("production", "bluegreen:service.port", "8080", "bluegreen:service.port", "must be an integer"),
    ("production", "bluegreen:service.healthPath", "healthz", "bluegreen:service.healthPath", "absolute URL path"),
    ("production", "bluegreen:service.cpu", 300, "bluegreen:service.cpu", "Fargate CPU size"),
    ("production", "bluegreen:service.memory", 256, "bluegreen:service.memory", "Fargate's sizes"),
    ("production", "bluegreen:service.desiredCount", 0, "bluegreen:service.desiredCount", "between 1 and 1000"),
    ("production", "bluegreen:service.healthMatcher", "OK", "bluegreen:service.healthMatcher", "HTTP codes"),
    ("production", "bluegreen:service.name", "Web_App", "bluegreen:service.name", "lowercase"),
    ("production", "bluegreen:servce", {"port": 80}, "bluegreen:servce", "did you mean 'service'"),
    ("production", "bluegreen:network.vpcId", DELETE, "bluegreen:network.vpcId", "is required unless"),
    ("production", "bluegreen:network.vpcId", "vpc0123", "bluegreen:network.vpcId", "a VPC id"),
    ("production", "bluegreen:network.publicSubnetIds", ["subnet-0a"], "bluegreen:network.publicSubnetIds", "at least 2"),
    ("production", "bluegreen:network.create", True, "bluegreen:network.create", "either create a VPC or use an existing one"),
    ("production", "bluegreen:network.ingressCidrs", ["0.0.0.0/33"], "bluegreen:network.ingressCidrs", "CIDR block"),
    ("production", "bluegreen:traffic.testPort", 443, "bluegreen:traffic.testPort", "must not be 80 or 443"),
    ("production", "bluegreen:traffic.certificateArn", "my-cert", "bluegreen:traffic.certificateArn", "an ARN"),
    ("production", "bluegreen:traffic.sslPolicy", "ELBSecurityPolicy-2016-08", "bluegreen:traffic.sslPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06"),
    ("production", "bluegreen:traffic.deletionProtection", "yes", "bluegreen:traffic.deletionProtection", "true | false"),
    ("production", "bluegreen:traffic.stickynessSeconds", 60, "bluegreen:traffic.stickynessSeconds", "did you mean 'stickinessSeconds'"),
    ("production", "bluegreen:service.environment", {"DB_PASSWORD": "hunter2-very-secret"}, "bluegreen:service.environment.DB_PASSWORD", "looks like a secret"),
    ("production", "bluegreen:service.environment", {"AWS_KEY_ID": "AKIAABCDEFGHIJKLMNOP"}, "bluegreen:service.environment.AWS_KEY_ID", "Secrets Manager"),
    ("production", "bluegreen:service.environment", {"PORT": 8080}, "bluegreen:service.environment", "string values"),
    ("staging", "bluegreen:idle.policy", "sleep", "bluegreen:idle.policy", "warm | scale | zero"),
    ("staging", "bluegreen:idle.replicas", 0, "bluegreen:idle.replicas", "between 1 and 1000"),
    ("staging", "bluegreen:kubernetes", {"namespace": "web"}, "bluegreen:kubernetes", "platform is ecs"),
    ("staging", "bluegreen:platform", "kubernetes", "bluegreen:kubernetes", "needs a cluster"),
    ("production", "bluegreen:probe.syntheticPerMinute", 5000, "bluegreen:probe.syntheticPerMinute", "between 0 and 1000"),
    ("staging", "bluegreen:probe.syntheticPerMinute", 300, "bluegreen:probe.syntheticPerMinute", "bluegreen:probe.enabled is false"),
]


def _apply(cfg, path, value):
    if value is not DELETE:
        return set_path(cfg, path, value)
    out = set_path(cfg, path, None)
    key, _, rest = path.partition(".")
    node = out if not rest else out[key]
    parts = rest.split(".") if rest else [key]
    for p in parts[:-1]:
        node = node[p]
    del node[parts[-1]]
    return out


@pytest.mark.parametrize("stack, path, value, key, words", CASES, ids=[f"{c[1]}={c[2]!r}"[:60] for c in CASES])
def test_bad_config_is_refused_before_any_resource(stack, path, value, key, words):
    cfg = _apply(load_stack_file(stack), path, value)
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program(stack, cfg, mocks=mocks)
    message = str(err.value)
    assert f"{key}:" in message, message
    assert words in message, message
    registered = [(a.typ, a.name) for a, _ in mocks.records]
    assert registered == [], f"{key}: resources registered before the error: {registered}"
    if isinstance(value, dict):
        for v in value.values():
            assert str(v) not in message, f"the error echoes a config value that may be a secret: {message}"


def test_parked_idle_colour_cannot_carry_traffic():
    cfg = load_stack_file("staging")
    cfg = set_path(set_path(cfg, "bluegreen:idle.parked", True), "bluegreen:rollout.step", 2)
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=r"bluegreen:idle.parked: can only be true at bluegreen:rollout.step 0"):
        run_program("staging", cfg, mocks=mocks)
    assert mocks.records == []


def test_kubernetes_needs_the_clusters_vpc_not_a_new_one():
    cfg = set_path(load_stack_file("staging"), "bluegreen:platform", "kubernetes")
    cfg = set_path(cfg, "bluegreen:kubernetes", {"namespace": "web", "context": "prod"})
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=r"bluegreen:network.create: is true but bluegreen:platform is kubernetes"):
        run_program("staging", cfg, mocks=mocks)
    assert mocks.records == []


def test_fargate_sizes_are_checked_on_ecs_only():
    cfg = set_path(load_stack_file("production"), "bluegreen:service.cpu", 300)
    raw = lambda c: {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith("bluegreen:")}  # noqa: E731
    with pytest.raises(ConfigError, match="Fargate CPU size"):
        parse_stack_config(raw(cfg))
    cfg = set_path(set_path(cfg, "bluegreen:platform", "kubernetes"), "bluegreen:kubernetes", {"context": "prod"})
    assert parse_stack_config(raw(cfg)).service.cpu == 300


def test_there_are_at_least_twenty_distinct_keys_covered():
    assert len({c[3] for c in CASES}) >= 20


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 70000), st.floats(allow_nan=False), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)


@given(st.sampled_from(sorted({c[1] for c in CASES} | {"bluegreen:traffic.headerRoute", "bluegreen:service.environment"})), VALUES)
def test_any_value_anywhere_is_accepted_or_a_config_error(path, value):
    cfg = set_path(load_stack_file("production"), path, value)
    raw = {k.split(":", 1)[1]: v for k, v in cfg.items() if k.startswith("bluegreen:")}
    try:
        parse_stack_config(raw)
    except ConfigError as e:
        assert e.key.startswith("bluegreen:"), e
