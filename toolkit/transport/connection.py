"""The connection interface: one per host per run, opened once and reused for every command.

`Connection` is what the executor needs; `toolkit.transport.local.LocalConnection` runs on the
control machine and `toolkit.transport.ssh.SSHConnection` (fabric/paramiko) on hosts;
`toolkit.transport.factory.connect_factory` picks one per host.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

from toolkit.errors import CommandTimeout
from toolkit.transport.result import Result

OutputCallback = Callable[[str, str], None]  # (stream name, line)

#: How much longer than the on-host `timeout` the SSH side waits before giving up.
TIMEOUT_GRACE = 10.0


class Connection(Protocol):
    """What the executor needs from a host connection."""

    name: str

    def open(self) -> None: ...

    def run(
        self,
        script: str,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        stdin: str | None = None,
    ) -> Result:
        """`stdin` is fed to the command: the way to hand a host a secret (never in argv)."""
        ...

    def hold(self, script: str, *, until: str, timeout: float) -> tuple[Result, Callable[[], None] | None]:
        """Start `script`; return when it prints the line `until` (it keeps running until the
        returned release closes its stdin; it also ends if we die) or when it exits (None)."""
        ...

    def close(self) -> None: ...


def timed_out(
    host: str, script_timeout: float | None, command: str, started: float, stdout: str = "", stderr: str = ""
) -> CommandTimeout:
    result = Result(host, command, 124, stdout, stderr, time.monotonic() - started)
    return CommandTimeout(
        host,
        f"command timed out after {script_timeout:g}s: {command.splitlines()[-1][:120]}",
        hint="raise the stage timeout or command_timeout if the host is just slow",
        result=result,
    )
