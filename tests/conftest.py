"""Shared fixtures. Servers (loopback HTTP, moto_server) live in tests/fixtures and are started and
stopped by the tests that use them; the Pulumi engine is the only thing mocked (rollout.simulate)."""

import ipaddress
import os
import socket

import pytest
from hypothesis import HealthCheck, settings

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


def _is_loopback(host) -> bool:
    if host in (None, "", "localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Every connection and name lookup made in the test process must stay on this machine.

    A test that forgets its local server (moto_server, an HTTP fixture) fails here, loudly, instead of
    reaching a real endpoint. Even a DNS lookup would leave the machine: the resolver is not local.
    """
    real_connect, real_connect_ex, real_gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise ConnectionRefusedError(f"tests may only connect to loopback addresses, not {address[0]}")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if not _is_loopback(name):
            raise socket.gaierror(socket.EAI_NONAME, f"tests may not look up non-loopback names: {name}")
        return real_gai(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
