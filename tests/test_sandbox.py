"""The suite's own safety net: nothing in a test process reaches beyond this machine."""

import socket

import pytest


def test_connecting_off_the_machine_is_refused_before_any_packet():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(ConnectionRefusedError, match="only connect to loopback"):
            s.connect(("192.0.2.1", 443))  # TEST-NET-1: the guard refuses before the kernel sees it
        assert s.connect_ex(("127.0.0.1", 9)) != 0  # loopback is allowed (nothing listens on :9)
    finally:
        s.close()


def test_name_lookups_off_the_machine_are_refused():
    with pytest.raises(socket.gaierror, match="may not look up"):
        socket.getaddrinfo("elasticloadbalancing.us-east-1.amazonaws.com", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_the_guard_can_be_lifted():
    from rollout import netguard

    undo = netguard.install("a nested guard")
    try:
        with pytest.raises(socket.gaierror, match="a nested guard may not look up"):
            socket.getaddrinfo("example.com", 80)
    finally:
        undo()
    # the suite's own guard is still in force after the nested one is lifted
    with pytest.raises(socket.gaierror, match="tests may not look up"):
        socket.getaddrinfo("example.com", 80)
