"""Commands on the control machine itself (inventory `connection: local`)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Iterable

from toolkit.config.inventory import ResolvedHost
from toolkit.transport.connection import OutputCallback, Stdin, timed_out
from toolkit.transport.result import Result


class LocalConnection:
    """Runs commands on the control machine (inventory `connection: local`)."""

    def __init__(self, host: ResolvedHost) -> None:
        self.name = host.name
        self._procs: set[subprocess.Popen[Any]] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        pass

    def run(
        self,
        script: str,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        stdin: Stdin = None,
    ) -> Result:
        started = time.monotonic()
        if stdin is not None and not isinstance(stdin, str):
            return self._streamed(script, stdin, timeout, started)
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
            raise timed_out(self.name, timeout, script, started, out, err) from None
        finally:
            with self._lock:
                self._procs.discard(proc)
        if on_output is not None:
            for line in out.splitlines():
                on_output("stdout", line)
            for line in err.splitlines():
                on_output("stderr", line)
        return Result(self.name, script, proc.returncode, out, err, time.monotonic() - started)

    def _streamed(self, script: str, chunks: Iterable[bytes], timeout: float | None, started: float) -> Result:
        """`script` reading `chunks` on its stdin as they come (a large file, never held whole)."""
        proc = subprocess.Popen(
            ["bash", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdin is not None
        with self._lock:
            self._procs.add(proc)
        try:
            try:
                for chunk in chunks:
                    proc.stdin.write(chunk)
            except BrokenPipeError:
                pass  # the command ended early: its exit status says why
            out, err = proc.communicate(timeout=timeout)  # closes stdin: the command sees the end
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise timed_out(
                self.name, timeout, script, started, out.decode(errors="replace"), err.decode(errors="replace")
            ) from None
        finally:
            with self._lock:
                self._procs.discard(proc)
        return Result(
            self.name,
            script,
            proc.returncode,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            time.monotonic() - started,
        )

    def hold(self, script: str, *, until: str, timeout: float) -> tuple[Result, Callable[[], None] | None]:
        started = time.monotonic()
        proc = subprocess.Popen(
            ["bash", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
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
            raise timed_out(self.name, timeout, script, started, "".join(lines))
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
