"""Shared fixtures. Servers (loopback HTTP, moto_server) live in tests/fixtures and are started and
stopped by the tests that use them; the Pulumi engine is the only thing mocked (rollout.simulate)."""

import os

import pytest
from hypothesis import HealthCheck, settings

from rollout import netguard

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.aws"]

def pytest_configure(config: pytest.Config) -> None:
    """With `-n` and no `--dist` given, send each test file to one worker (`--dist loadfile`).

    A file's module-scoped fixtures (a started policy pack, simulations) then start once instead of
    once on every worker that runs some of its tests (11 % less CPU on the policy files). Set here,
    not in addopts, so that `-p no:xdist` still works; pytest-xdist reads the mode when it makes its
    scheduler, after this hook.
    """
    given = any(a == "--dist" or a.startswith("--dist=") for a in config.invocation_params.args)
    if getattr(config.option, "dist", "no") == "load" and not given:
        config.option.dist = "loadfile"


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
