"""Test helpers shipped with the toolkit so plugin and step authors can test without hosts.

`FakeConnection` answers commands from a handler and records what it was asked; `fake_factory`
plugs it into an `Executor`. Integration tests use real sshd instead."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from toolkit.config.inventory import ResolvedHost
from toolkit.errors import HostError
from toolkit.transport.connection import OutputCallback, Stdin
from toolkit.transport.result import Result

Handler = Callable[[str, str], "tuple[int, str, str] | HostError"]  # (host, script) -> (rc, out, err)


@dataclass
class FakeConnection:
    name: str
    handler: Handler
    scripts: list[str] = field(default_factory=list)
    stdins: list[str | None] = field(default_factory=list)
    opened: int = 0
    closed: int = 0
    open_error: HostError | None = None

    def open(self) -> None:
        if self.open_error is not None:
            raise self.open_error
        self.opened += 1

    def run(
        self,
        script: str,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        stdin: Stdin = None,
    ) -> Result:
        self.scripts.append(script)
        self.stdins.append(stdin if stdin is None or isinstance(stdin, str) else b"".join(stdin).decode("latin-1"))
        started = time.monotonic()
        answer = self.handler(self.name, script)
        if isinstance(answer, HostError):
            raise answer
        rc, out, err = answer
        if on_output is not None:
            for line in out.splitlines():
                on_output("stdout", line)
        return Result(self.name, script, rc, out, err, time.monotonic() - started)

    def hold(self, script: str, *, until: str, timeout: float) -> tuple[Result, Callable[[], None] | None]:
        """Answered by the handler like `run`; held (with a no-op release) if `until` is a line of its output."""
        result = self.run(script, timeout=timeout)
        return result, ((lambda: None) if until in result.stdout.splitlines() else None)

    def close(self) -> None:
        self.closed += 1


def fake_factory(
    handler: Handler, open_errors: dict[str, HostError] | None = None
) -> tuple[Callable[[ResolvedHost], FakeConnection], dict[str, FakeConnection]]:
    """A connection factory for `Executor(connect=...)` plus the dict of connections it made."""
    made: dict[str, FakeConnection] = {}

    def make(host: ResolvedHost) -> FakeConnection:
        conn = FakeConnection(host.name, handler, open_error=(open_errors or {}).get(host.name))
        made[host.name] = conn
        return conn

    return make, made
