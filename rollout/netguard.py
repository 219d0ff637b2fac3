"""Keep a process on this machine: refuse every non-loopback connection and name lookup.

Used by the policy pack when the offline plan runs it, by the test suite for its own process, and by
the test suite's pack processes. Even a DNS lookup would leave the machine, so lookups are refused
too. (gRPC's C core binds and connects on its own and is unaffected; it only ever uses 127.0.0.1 here.)
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Callable

__all__ = ["is_loopback", "install"]


def is_loopback(host: Any) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1 literals; every other name or address is not."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in (None, "", "localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def install(who: str) -> Callable[[], None]:
    """From now on `who` (e.g. "the policy pack") may reach loopback only; returns the undo."""
    real_connect, real_connect_ex, real_gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            raise ConnectionRefusedError(f"{who} may only connect to loopback addresses, not {address[0]}")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if not is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"{who} may not look up non-loopback names: {host!r}")
        return real_gai(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]

    def undo() -> None:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = real_gai  # type: ignore[assignment]

    return undo
