"""The connection interface: one per host per run, opened once and reused for every command.

`Connection` is what the executor needs; `toolkit.transport.local.LocalConnection` runs on the
control machine and `toolkit.transport.ssh.SSHConnection` (fabric/paramiko) on hosts;
`toolkit.transport.factory.connect_factory` picks one per host.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Protocol, Union

from toolkit.errors import CommandTimeout
from toolkit.transport.result import Result

OutputCallback = Callable[[str, str], None]  # (stream name, line)
#: what a command reads: a string (a secret, a small file), or chunks of bytes streamed as they come
#: (an image tarball: never held in memory whole)
Stdin = Union[str, Iterable[bytes], None]

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
        stdin: Stdin = None,
    ) -> Result:
        """`stdin` is fed to the command: the way to hand a host a secret (never in argv), or a large
        file streamed in chunks over the same connection."""
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
