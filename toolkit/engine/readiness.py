"""Waiting for the vLLM server: an initial delay, a probe every few seconds, a timeout, and an
immediate stop when the process exits (no point waiting 30 minutes on a dead server).

Pure loop: the probe, clock and sleep are passed in, so tests drive it with a fake clock."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Probe:
    alive: bool  # the server process exists
    health: int | None  # HTTP status of /health, None when nothing answered
    last_line: str = ""  # the newest line of the server's log

    @property
    def healthy(self) -> bool:
        return self.alive and self.health == 200


@dataclass
class Rendezvous:
    """What the hosts of one readiness stage tell each other while each waits on its own
    process: the head sets `ready` once the API answers; whichever host sees its process exit
    sets `failed` (and its name), so every other host stops waiting at its next probe."""

    ready: threading.Event = field(default_factory=threading.Event)
    failed: threading.Event = field(default_factory=threading.Event)
    failed_host: str | None = None

    def fail(self, host: str) -> None:
        if not self.failed.is_set():
            self.failed_host = host
            self.failed.set()


@dataclass(frozen=True)
class Outcome:
    state: str  # ready | exited | timeout | cancelled
    elapsed: float
    probe: Probe | None
    probes: int


def wait_ready(
    probe: Callable[[], Probe],
    *,
    timeout: float,
    initial_delay: float = 0.0,
    interval: float = 2.0,
    on_probe: Callable[[float, Probe], None] = lambda elapsed, p: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    cancelled: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Probe until healthy, exited, `timeout` or `cancelled()` (another host gave up)."""
    start = clock()
    if initial_delay > 0:
        sleep(min(initial_delay, timeout))
    count = 0
    last: Probe | None = None
    while True:
        last = probe()
        count += 1
        elapsed = clock() - start
        on_probe(elapsed, last)
        if last.healthy:
            return Outcome("ready", elapsed, last, count)
        if not last.alive:
            return Outcome("exited", elapsed, last, count)
        if elapsed >= timeout:
            return Outcome("timeout", elapsed, last, count)
        if cancelled():
            return Outcome("cancelled", elapsed, last, count)
        sleep(min(interval, max(0.0, timeout - elapsed)))
