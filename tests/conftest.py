"""Shared fixtures. Servers (loopback HTTP, moto_server) live in tests/fixtures and are started and
stopped by the tests that use them; the Pulumi engine is the only thing mocked (rollout.simulate)."""

import os

import pytest
from hypothesis import HealthCheck, settings

from rollout import netguard

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.aws"]

settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch):
    """No test may reach real AWS: fake credentials, and no profile from the developer's machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def _loopback_only():
    """Every connection and name lookup made in the test process must stay on this machine.

    A test that forgets its local server (moto_server, an HTTP fixture) fails here, loudly, instead of
    reaching a real endpoint. Even a DNS lookup would leave the machine: the resolver is not local.
    """
    undo = netguard.install("tests")
    yield
    undo()
