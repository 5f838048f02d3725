"""Kernel-kept socket timeouts over loopback: a silent peer times out as under Python's own timeout (TimeoutError,
also through the file object http.client reads from), data flows as usual, and a changed timeout is applied."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from app import socket_timeouts
from app.socket_timeouts import KernelTimedSocket

pytestmark = pytest.mark.skipif(not socket_timeouts.AVAILABLE, reason="kernel timeouts are used on Linux only")


@pytest.fixture
def pair():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)  # as urllib3 connects: under a timeout
    server, _ = listener.accept()
    timed = KernelTimedSocket(client)
    yield timed, server
    for sock in (timed, server, listener):
        sock.close()


def kernel_receive_timeout(sock: socket.socket) -> float:
    seconds, micros = struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16))
    return seconds + micros / 1_000_000


def test_the_socket_blocks_and_keeps_the_timeout_it_had(pair):
    timed, _ = pair
    assert os.get_blocking(timed.fileno())
    assert timed.gettimeout() == 5


def test_data_flows_both_ways(pair):
    timed, server = pair
    timed.sendall(b"ping\n")
    assert server.recv(16) == b"ping\n"
    server.sendall(b"pong\n")
    assert timed.makefile("rb").readline() == b"pong\n"


@pytest.mark.parametrize("through_file", [False, True], ids=["recv", "file object"])
def test_a_silent_peer_times_out_with_timeout_error(pair, through_file):
    timed, _ = pair
    timed.settimeout(0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        if through_file:
            timed.makefile("rb").read(1)
        else:
            timed.recv(1)
    assert 0.15 <= time.monotonic() - started < 3


def test_a_changed_timeout_reaches_the_kernel_at_the_next_call(pair):
    timed, server = pair
    timed.settimeout(300)
    server.sendall(b"a")
    assert timed.recv(1) == b"a"
    assert kernel_receive_timeout(timed) == 300
    timed.settimeout(None)  # no timeout: the kernel's zero
    server.sendall(b"b")
    assert timed.recv(1) == b"b"
    assert kernel_receive_timeout(timed) == 0
