"""The reachability probe, run for real by bash against a listener on loopback that is slow to
answer (its accept queue full, so the kernel drops new connection attempts until it catches up): the
first try times out, the second one connects, and the path is reachable; a listener that never
catches up times out twice and says so."""

from __future__ import annotations

import select
import socket
import subprocess
import threading
import time
from typing import Any

from toolkit.facts import Raw
from toolkit.facts.net import parse_probes, probe_command


def stalled_listener(accept_after: float | None) -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full (backlog 0 and one connection waiting); with
    `accept_after` seconds it then accepts everything, so connections succeed again."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(2):  # more than the queue holds: the next SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(server.getsockname())
        fillers.append(c)
    # the queue is full once the first filler's handshake completed (it is writable) and the second's
    # SYN is dropped (it stays unwritable): a bounded wait for the first, then the probe can start
    _, writable, _ = select.select([], fillers[:1], [], 5)
    assert writable, "the first filler never connected"
    if accept_after is not None:

        def drain() -> None:
            time.sleep(accept_after)
            server.settimeout(0.2)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    fillers.append(server.accept()[0])
                except (TimeoutError, OSError):
                    continue

        threading.Thread(target=drain, daemon=True).start()
    return server, fillers


def probe(port: int) -> tuple[dict, float]:
    started = time.monotonic()
    out = subprocess.run(
        ["bash", "-c", probe_command([("127.0.0.1", port)], timeout=1, retry=6)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return parse_probes(Raw(out.stdout, out.returncode)), time.monotonic() - started


def probed(accept_after: float | None) -> tuple[Any, float]:
    """The one probe's answer against a stalled listener (see `stalled_listener`), and how long it took."""
    server, fillers = stalled_listener(accept_after)
    try:
        probes, took = probe(server.getsockname()[1])
    finally:
        server.close()
        for c in fillers:
            c.close()
    [p] = probes.values()
    return p, took


def test_a_slow_answer_is_retried_and_reachable() -> None:
    p, took = probed(accept_after=1.5)
    assert p.state == "open" and p.retried and p.reachable, (p, took)


def test_no_answer_times_out_twice() -> None:
    p, took = probed(accept_after=None)
    assert p.state == "timeout" and p.retried and not p.reachable and took >= 6.5, (p, took)
