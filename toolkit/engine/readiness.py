"""Waiting for the vLLM server: an initial delay, a probe every few seconds, a timeout, and an
immediate stop when the process exits (no point waiting 30 minutes on a dead server).

Pure loop: the probe, clock and sleep are passed in, so tests drive it with a fake clock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Probe:
    alive: bool  # the server process exists
    health: int | None  # HTTP status of /health, None when nothing answered
    last_line: str = ""  # the newest line of the server's log

    @property
    def healthy(self) -> bool:
        return self.alive and self.health == 200


@dataclass(frozen=True)
class Outcome:
    state: str  # ready | exited | timeout
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
) -> Outcome:
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
        sleep(min(interval, max(0.0, timeout - elapsed)))
