"""Reading one SSH channel to the end, our own loop: stdout and stderr drained together, decoded as
they come, lines handed to the caller's callback, woken by the channel's exit instead of polling,
stopped by a deadline (the command's timeout) without helper threads."""

from __future__ import annotations

import codecs
import os
import select
import threading
import time
from typing import Any

import paramiko

from toolkit.transport.connection import OutputCallback


class LineStream:
    """A file-like sink that calls back once per complete line (for `-v` streaming)."""

    def __init__(self, stream: str, callback: OutputCallback) -> None:
        self.stream = stream
        self.callback = callback
        self.buffer = ""

    def write(self, data: str) -> int:
        self.buffer += data
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.callback(self.stream, line)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.buffer:
            self.callback(self.stream, self.buffer)
            self.buffer = ""


class ExitWakeup(threading.Event):
    """A channel's `status_event` that also wakes the read loop's select(). paramiko sets it when
    the exit status arrives (or the channel closes) but wakes select() only for data and EOF, so a
    command whose background child keeps stdout open (no EOF) would be noticed only by polling, and
    polling 64 idle channels during minutes of pings costs real CPU. Our own pipe, never written
    after `close`, so a late set() can never reach a reused descriptor."""

    def __init__(self) -> None:
        super().__init__()
        self.fd, self._w = os.pipe()
        self._lock = threading.Lock()
        self._open = True

    def set(self) -> None:
        super().set()
        with self._lock:
            if self._open:
                os.write(self._w, b"x")  # at most a few bytes per command: never blocks

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                os.close(self.fd)
                os.close(self._w)


class Deadline(Exception):
    def __init__(self, out: str, err: str) -> None:
        self.out, self.err = out, err


EOF_GRACE_S = 2.0


def read_channel(
    chan: paramiko.Channel, deadline: float | None, on_output: OutputCallback | None, exited: ExitWakeup | None = None
) -> tuple[str, str]:
    """Drain stdout and stderr until the command exits (or the channel dies, or the deadline).
    With `exited` (the channel's status_event) it sleeps until something happens; without, it
    looks every 0.5 s."""
    decoders = {name: codecs.getincrementaldecoder("utf-8")(errors="replace") for name in ("stdout", "stderr")}
    chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}
    sinks = {name: LineStream(name, on_output) for name in chunks} if on_output else {}

    def take(name: str, data: bytes) -> None:
        text = decoders[name].decode(data)
        chunks[name].append(text)
        if name in sinks:
            sinks[name].write(text)

    def drain() -> bool:
        """Take whatever is buffered on both streams; True if there was anything."""
        got = False
        while chan.recv_ready():
            take("stdout", chan.recv(65536))
            got = True
        while chan.recv_stderr_ready():
            take("stderr", chan.recv_stderr(65536))
            got = True
        return got

    while True:
        if drain():
            continue
        if chan.exit_status_ready() or chan.closed:
            # sshd may send the exit status before the last output (stdout and stderr are drained
            # separately): read on until the server's EOF, bounded, because a background process
            # that kept the pipes open would withhold EOF forever.
            until = time.monotonic() + EOF_GRACE_S
            while True:
                got = drain()
                if chan.eof_received or chan.closed or time.monotonic() >= until:
                    if not (chan.recv_ready() or chan.recv_stderr_ready()):
                        break
                    continue
                if not got:
                    select.select([chan], [], [], 0.05)
            break
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise Deadline("".join(chunks["stdout"]), "".join(chunks["stderr"]))
        left = None if deadline is None else max(0.0, deadline - now)
        # After EOF the channel stays readable with nothing to read until the exit status comes:
        # waiting on it then would spin (it did: hundreds of empty wake-ups per command).
        watch: list[Any] = [] if chan.eof_received else [chan]
        if exited is not None:
            select.select([*watch, exited.fd], [], [], left)
        else:  # nothing wakes us on the exit status: look again soon (sooner once output ended)
            select.select(watch, [], [], min(0.5 if watch else 0.01, left if left is not None else 0.5))
    for name in chunks:
        tail = decoders[name].decode(b"", final=True)
        if tail:
            chunks[name].append(tail)
            if name in sinks:
                sinks[name].write(tail)
    for sink in sinks.values():
        sink.close()
    return "".join(chunks["stdout"]), "".join(chunks["stderr"])
