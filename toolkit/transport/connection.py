"""Connections to hosts: one per host per run, opened once and reused for every command.

`Connection` is what the executor needs; `LocalConnection` runs on the control machine and
`toolkit.transport.ssh.SSHConnection` (fabric/paramiko) on hosts. The SSH stack is imported only when a
host needs it, so commands that never connect (`plan`, `ask`, `--help`) start fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Protocol

from toolkit.errors import CommandTimeout
from toolkit.config.inventory import ResolvedHost
from toolkit.transport.result import Result

OutputCallback = Callable[[str, str], None]  # (stream name, line)

#: How much longer than the on-host `timeout` the SSH side waits before giving up.
TIMEOUT_GRACE = 10.0


class Connection(Protocol):
    """What the executor needs from a host connection."""

    name: str

    def open(self) -> None: ...

    def run(self, script: str, *, timeout: float | None = None, on_output: OutputCallback | None = None, stdin: str | None = None) -> Result:
        """`stdin` is fed to the command: the way to hand a host a secret (never in argv)."""
        ...

    def hold(self, script: str, *, until: str, timeout: float) -> tuple[Result, Callable[[], None] | None]:
        """Start `script`; return when it prints the line `until` (it keeps running until the
        returned release closes its stdin; it also ends if we die) or when it exits (None)."""
        ...

    def close(self) -> None: ...


def _timed_out(host: str, script_timeout: float | None, command: str, started: float, stdout: str = "", stderr: str = "") -> CommandTimeout:
    result = Result(host, command, 124, stdout, stderr, time.monotonic() - started)
    return CommandTimeout(
        host,
        f"command timed out after {script_timeout:g}s: {command.splitlines()[-1][:120]}",
        hint="raise the stage timeout or command_timeout if the host is just slow",
        result=result,
    )


class LocalConnection:
    """Runs commands on the control machine (inventory `connection: local`)."""

    def __init__(self, host: ResolvedHost) -> None:
        self.name = host.name
        self._procs: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        pass

    def run(self, script: str, *, timeout: float | None = None, on_output: OutputCallback | None = None, stdin: str | None = None) -> Result:
        started = time.monotonic()
        proc = subprocess.Popen(
            ["bash", "-c", script],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        with self._lock:
            self._procs.add(proc)
        try:
            out, err = proc.communicate(input=stdin or None, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise _timed_out(self.name, timeout, script, started, out, err) from None
        finally:
            with self._lock:
                self._procs.discard(proc)
        if on_output is not None:
            for line in out.splitlines():
                on_output("stdout", line)
            for line in err.splitlines():
                on_output("stderr", line)
        return Result(self.name, script, proc.returncode, out, err, time.monotonic() - started)

    def hold(self, script: str, *, until: str, timeout: float) -> tuple[Result, Callable[[], None] | None]:
        started = time.monotonic()
        proc = subprocess.Popen(["bash", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        lines: list[str] = []
        found = threading.Event()

        def reader() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if line.rstrip("\n") == until:
                    found.set()
                    return
            found.set()

        threading.Thread(target=reader, daemon=True).start()
        if not found.wait(timeout):
            os.killpg(proc.pid, signal.SIGKILL)
            raise _timed_out(self.name, timeout, script, started, "".join(lines))
        if lines and lines[-1].rstrip("\n") == until:
            def release() -> None:
                try:
                    assert proc.stdin is not None
                    proc.stdin.close()
                    proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)

            return Result(self.name, script, 0, "".join(lines), "", time.monotonic() - started), release
        out, err = proc.communicate(timeout=timeout)
        return Result(self.name, script, proc.returncode, "".join(lines) + out, err, time.monotonic() - started), None

    def close(self) -> None:
        with self._lock:
            for proc in list(self._procs):
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def connect_factory(
    *, known_hosts: Path | None = None, accept_new_host_keys: bool = False, ssh_config_path: str | None = None
) -> Callable[[ResolvedHost], Connection]:
    """The default way the executor makes connections (tests pass their own factory)."""

    def make(host: ResolvedHost) -> Connection:
        if host.connection == "local":
            return LocalConnection(host)
        from toolkit.transport.ssh import SSHConnection

        return SSHConnection(
            host, known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys, ssh_config_path=ssh_config_path
        )

    return make
