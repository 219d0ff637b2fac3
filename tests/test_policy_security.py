"""The ALB security baseline, over gRPC, on the resources the real program registers.

Production config (`policy/production.json`) makes the baseline mandatory, staging config
(`policy/staging.json`) advisory. Happy path first (the production stack is clean under the
production config), then one property changed per test.
"""

from __future__ import annotations

import copy

import pytest

from rollout.simulate import run_program
from tests.policy_harness import POLICY_DIR, AnalyzeResult, PolicyPackClient, policy_pack_env

LISTENER = "aws:lb/listener:Listener"
LB = "aws:lb/loadBalancer:LoadBalancer"
SECURITY = (
    "alb-https-only",
    "alb-tls-policy",
    "alb-deletion-protection",
    "alb-drop-invalid-header-fields",
    "alb-access-logs",
)


@pytest.fixture(scope="module")
def pack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory):
    env = policy_pack_env(moto_endpoint, tmp_path_factory.mktemp("pack-aws"))
    with PolicyPackClient(POLICY_DIR, env=env) as client:
        yield _Pack(client)


class _Pack:
    """The module's pack, configured from a config file with the health probes aimed at a closed
    loopback port, so that no check here can ever try the (non-loopback) ALB DNS name."""

    def __init__(self, client: PolicyPackClient):
        self.client = client

    def configure_file(self, path, overrides=None):
        extra = {"healthy-promotion": {"probeBaseUrl": "http://127.0.0.1:9"}, **(overrides or {})}
        return self.client.configure_file(path, extra)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture(scope="module")
def programs():
    """The real program's resources for each stack file."""
    return {stack: run_program(stack) for stack in ("production", "staging")}


def resource(programs, stack: str, type_: str, suffix: str):
    r = programs[stack].one(type_, suffix)
    return copy.deepcopy(dict(r.inputs)), r.name, r.urn


def security(result: AnalyzeResult) -> list:
    return [v for v in result.violations if v.policy in SECURITY]


def expect(result: AnalyzeResult, policy: str, substring: str, level: str = "mandatory") -> None:
    found = [v for v in result.find(policy, substring) if v.level == level]
    assert found, f"expected a {level} {policy} violation containing {substring!r}; got {result}"


def analyze_all(pack: PolicyPackClient, sim) -> AnalyzeResult:
    out = AnalyzeResult()
    for r in sim.resources:
        if r.custom:
            got = pack.analyze(r.type, dict(r.inputs), name=r.name, urn=r.urn)
            out.violations.extend(got.violations)
    return out


def test_production_stack_is_clean_under_production_config(pack, programs):
    pack.configure_file(POLICY_DIR / "production.json")
    result = analyze_all(pack, programs["production"])
    assert not security(result), f"the production stack must meet the baseline; got {result}"


def test_staging_stack_under_staging_config_is_advisory_only(pack, programs):
    pack.configure_file(POLICY_DIR / "staging.json")
    result = analyze_all(pack, programs["staging"])
    assert not [v for v in security(result) if v.level != "advisory"], result
    expect(result, "alb-https-only", "the production listener must use HTTPS", level="advisory")
    expect(result, "alb-deletion-protection", "web-traffic-alb has false", level="advisory")
    expect(result, "alb-access-logs", "accessLogs unset", level="advisory")


def test_http_production_listener_is_refused_in_production(pack, programs):
    pack.configure_file(POLICY_DIR / "production.json")
    props, name, urn = resource(programs, "staging", LISTENER, "-production")  # HTTP :80, forward
    result = pack.analyze(LISTENER, props, name=name, urn=urn)
    expect(result, "alb-https-only", "the production listener must use HTTPS")
    expect(result, "alb-https-only", "is HTTP with default action(s): forward")


def test_http_production_listener_is_advisory_in_staging(pack, programs):
    pack.configure_file(POLICY_DIR / "staging.json")
    props, name, urn = resource(programs, "staging", LISTENER, "-production")
    result = pack.analyze(LISTENER, props, name=name, urn=urn)
    expect(result, "alb-https-only", "the production listener must use HTTPS", level="advisory")
    assert not [v for v in security(result) if v.level == "mandatory"], result


def test_http_redirect_listener_passes(pack, programs):
    pack.configure_file(POLICY_DIR / "production.json")
    props, name, urn = resource(programs, "production", LISTENER, "-http-redirect")
    assert not security(pack.analyze(LISTENER, props, name=name, urn=urn))


def test_redirect_to_http_is_refused(pack, programs):
    pack.configure_file(POLICY_DIR / "production.json")
    props, name, urn = resource(programs, "production", LISTENER, "-http-redirect")
    props["defaultActions"][0]["redirect"]["protocol"] = "HTTP"
    expect(pack.analyze(LISTENER, props, name=name, urn=urn), "alb-https-only", "may only redirect to HTTPS")


def test_tls_1_0_policy_is_refused(pack, programs):
    pack.configure_file(POLICY_DIR / "production.json")
    props, name, urn = resource(programs, "production", LISTENER, "-test")
    props["sslPolicy"] = "ELBSecurityPolicy-2016-08"
    expect(pack.analyze(LISTENER, props, name=name, urn=urn), "alb-tls-policy", "uses ELBSecurityPolicy-2016-08, which accepts TLS 1.0")


def test_missing_tls_policy_is_refused(pack, programs):
    pack.configure_file(POLICY_DIR / "production.json")
    props, name, urn = resource(programs, "production", LISTENER, "-test")
    del props["sslPolicy"]
    expect(pack.analyze(LISTENER, props, name=name, urn=urn), "alb-tls-policy", "rather than rely on AWS's default")


def test_min_tls_version_is_configurable(pack, programs):
    pack.configure_file(POLICY_DIR / "production.json", {"alb-tls-policy": {"minTlsVersion": "1.3"}})
    props, name, urn = resource(programs, "production", LISTENER, "-test")
    result = pack.analyze(LISTENER, props, name=name, urn=urn)
    expect(result, "alb-tls-policy", "ELBSecurityPolicy-TLS13-1-2-2021-06, which accepts TLS 1.2")
    props["sslPolicy"] = "ELBSecurityPolicy-TLS13-1-3-2021-06"
    assert not security(pack.analyze(LISTENER, props, name=name, urn=urn))


@pytest.mark.parametrize(
    ("key", "value", "policy", "substring"),
    [
        ("enableDeletionProtection", False, "alb-deletion-protection", "enableDeletionProtection: true): web-traffic-alb has false"),
        ("dropInvalidHeaderFields", False, "alb-drop-invalid-header-fields", "dropInvalidHeaderFields: true): web-traffic-alb has false"),
        ("accessLogs", {"bucket": "logs", "enabled": False}, "alb-access-logs", "accessLogs.enabled is false"),
        ("accessLogs", None, "alb-access-logs", "accessLogs unset"),
    ],
)
def test_load_balancer_baseline(pack, programs, key, value, policy, substring):
    pack.configure_file(POLICY_DIR / "production.json")
    props, name, urn = resource(programs, "production", LB, "-alb")
    assert not security(pack.analyze(LB, props, name=name, urn=urn))
    if value is None:
        del props[key]
    else:
        props[key] = value
    expect(pack.analyze(LB, props, name=name, urn=urn), policy, substring)


def test_network_load_balancers_are_out_of_scope(pack):
    pack.configure_file(POLICY_DIR / "production.json")
    result = pack.analyze(LB, {"loadBalancerType": "network"}, name="nlb")
    assert not security(result), result


def test_analyze_stack_after_the_update_reports_nothing(pack, programs):
    """The engine calls AnalyzeStack after `pulumi up`; this pack has only resource policies."""
    pack.configure_file(POLICY_DIR / "production.json")
    sim = programs["production"]
    result = pack.analyze_stack(
        {"type": r.type, "props": dict(r.outputs or r.inputs), "name": r.name, "urn": r.urn} for r in sim.custom
    )
    assert not result.violations, result
