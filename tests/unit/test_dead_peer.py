"""A connection whose peer stops answering (a pulled cable: nothing refused) is lost after a bound:
the SSH sessions and the weight relay's sockets carry the same keepalive and TCP_USER_TIMEOUT
settings. (For real: tests/e2e/test_weights_e2e.py cuts a host's network mid-chain with the
simulator's `isolated` fault and the run ends within the bound.)"""

from __future__ import annotations

import socket

import pytest

from toolkit.launch import relay_program
from toolkit.transport import ssh

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("bound", [ssh.dead_peer_bound, relay_program.dead_peer_bound], ids=["ssh", "relay"])
def test_a_socket_gets_keepalive_probes_and_a_user_timeout(bound: object) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as sock:
        bound(sock)  # type: ignore[operator]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        for name, value in ssh.KEEPALIVE:
            assert sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)) == value
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == ssh.DEAD_PEER_S * 1000


def test_the_relay_and_the_ssh_sessions_share_one_bound() -> None:
    assert relay_program.DEAD_PEER_S == ssh.DEAD_PEER_S
    idle, interval, count = (v for _, v in ssh.KEEPALIVE)
    assert idle + interval * count <= ssh.DEAD_PEER_S  # the probes give up within the user timeout


def test_a_relay_waits_for_a_live_child_as_long_as_a_child_waits_for_its_parent() -> None:
    """The child socket's send timeout is the run's idle limit (a child re-hashing a long part file
    reads nothing meanwhile), not the 30 s of the connect: a dead child is the dead-peer bound's."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        host, port = listener.getsockname()
        sock = relay_program.connect(host, port, b"t" * 32, 5.0, 300.0)
        with sock, listener.accept()[0] as peer:
            assert peer.recv(64) == b"ADR1 " + b"t" * 32 + b"\n"
            assert sock.gettimeout() == 300.0
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == ssh.DEAD_PEER_S * 1000
