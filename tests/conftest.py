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


# Files with the longest total time, longest first (measured with --durations and junit per-file totals).
# Under `--dist loadfile` a worker takes a whole file; a long file started last leaves the other worker idle
# for its whole length, so they go out first and the short files fill the end.
LONG_FILES_FIRST = (
    "test_policy_workload_k8s.py", "test_policy_workload.py", "test_hardening.py", "test_policy_traffic.py",
    "test_policy_attacks.py", "test_gate.py", "test_cli.py", "test_policy_workload_k8s_attacks.py", "test_reflex.py",
    "test_reflex_judge.py", "test_reflex_rules.py", "test_attacks_late.py", "test_probe_pack.py", "test_policy_guard.py",
    "test_policy_stateful.py", "test_operator_cli.py", "test_secrets.py", "test_autopilot.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long files first (LONG_FILES_FIRST), then the rest in collection order; the order is the same in every
    worker, as pytest-xdist requires."""
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


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
