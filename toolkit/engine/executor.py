"""Fan-out of work over hosts: a bounded pool, one reused connection per host, events.

The executor knows nothing about playbooks or rendering: it runs a function per host with a
`Session` (host + connection), collects a `GroupResult` that keeps partial success, and emits
events that a renderer may show.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable, TypeVar

from toolkit.config.inventory import ResolvedHost
from toolkit.errors import Cancelled, CommandFailed, HostError, Interrupted
from toolkit.transport.connection import Connection, Stdin
from toolkit.transport.factory import connect_factory
from toolkit.transport.result import GroupResult, HostOutcome, Result
from toolkit.transport.shell import SETUP_FAILED, compose

T = TypeVar("T")

MAX_FORKS = 64


class Label(str, Enum):
    """A string enum that prints as its value (in f-strings, JSON and tables alike)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class EventKind(Label):
    START = "start"  # a host began a stage
    DONE = "done"
    FAILED = "failed"
    RETRY = "retry"
    PROGRESS = "progress"  # a long wait's state, in words
    OUTPUT = "output"  # a line of remote output (-v)
    COMMAND = "command"  # the raw shell about to run (-v)
    ACTION = "action"  # what a step's operation does, in words


@dataclass(frozen=True)
class Event:
    """Something a renderer may show (see `EventKind`)."""

    kind: EventKind
    host: str
    stage: str | None = None
    detail: str = ""
    elapsed: float = 0.0
    stream: str | None = None


EventSink = Callable[[Event], None]


def no_events(event: Event) -> None:
    pass


@dataclass
class Session:
    """One host inside one run: its resolved settings and its (lazily opened) connection."""

    host: ResolvedHost
    conn: Connection
    emit: EventSink = no_events
    stage: str | None = None
    stream_output: bool = False
    default_timeout: float | None = None
    commands: int = field(default=0)
    #: set when the run is interrupted (see `Cancelled`)
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.host.name

    def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        check: bool = True,
        setup: bool = True,
        env: dict[str, str] | None = None,
        stdin: Stdin = None,
        on_output: Callable[[str, str], None] | None = None,
    ) -> Result:
        """Run one command with the host's environment and setup lines.

        `check=True` turns a non-zero exit into `CommandFailed` carrying the result."""
        if self.cancelled.is_set():
            raise Cancelled(self.name, self.stage)
        merged_env = {**self.host.env, **(env or {})} if setup else dict(env or {})
        script = compose(command, env=merged_env, setup=self.host.setup if setup else ())
        limit = timeout if timeout is not None else (self.default_timeout or self.host.command_timeout)
        self.emit(Event(EventKind.COMMAND, self.name, self.stage, command))

        def streamed(stream: str, line: str) -> None:
            self.emit(Event(EventKind.OUTPUT, self.name, self.stage, line, stream=stream))
            if on_output is not None:
                on_output(stream, line)

        callback = streamed if self.stream_output else on_output
        self.commands += 1
        raw = self.conn.run(script, timeout=limit, on_output=callback, stdin=stdin)
        result = Result(raw.host, command, raw.exit_code, raw.stdout, raw.stderr, raw.duration)
        if result.exit_code == SETUP_FAILED and "ascend-deploy: setup line" in result.stderr:
            line = next(ln for ln in result.stderr.splitlines() if "ascend-deploy: setup line" in ln)
            raise CommandFailed(
                self.name,
                line.replace("ascend-deploy: ", ""),
                hint="fix the host's `setup` lines in the inventory (does the file exist on that host?)",
                stage=self.stage,
                result=result,
            )
        if check and not result.ok:
            short = command.strip().splitlines()[0][:100] if command.strip() else command
            tail = result.tail(3)
            raise CommandFailed(
                self.name,
                f"`{short}` exited {result.exit_code}" + (f": {tail}" if tail else ""),
                stage=self.stage,
                result=result,
            )
        return result


class Executor:
    """Runs per-host work on a bounded pool, reusing one connection per host for the whole run."""

    def __init__(
        self,
        hosts: Iterable[ResolvedHost],
        *,
        forks: int | None = None,
        connect: Callable[[ResolvedHost], Connection] | None = None,
        emit: EventSink = no_events,
        stream_output: bool = False,
    ) -> None:
        self.hosts = list(hosts)
        self.forks = max(1, forks) if forks else min(len(self.hosts) or 1, MAX_FORKS)
        self._connect = connect or connect_factory()
        self.emit = emit
        self.stream_output = stream_output
        self._conns: dict[str, Connection] = {}
        self._broken: dict[str, HostError] = {}
        self._lock = threading.Lock()
        self.running: dict[str, str] = {}
        self._cut_short: dict[str, str] = {}  # hosts whose work Ctrl-C interrupted in this thread
        self.cancelled = threading.Event()

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session(self, host: ResolvedHost, stage: str | None = None, timeout: float | None = None) -> Session:
        """A session for `host`, opening its connection on first use and reusing it after."""
        if self.cancelled.is_set():
            raise Cancelled(host.name, stage)
        with self._lock:
            if host.name in self._broken:
                raise self._broken[host.name]
            conn = self._conns.get(host.name)
            if conn is None:
                conn = self._connect(host)
                self._conns[host.name] = conn
        try:
            conn.open()
        except HostError as exc:
            exc.stage = exc.stage or stage
            with self._lock:
                self._broken[host.name] = exc
            raise
        return Session(host, conn, self.emit, stage, self.stream_output, timeout, cancelled=self.cancelled)

    def map(
        self,
        fn: Callable[[Session], T],
        hosts: Iterable[ResolvedHost] | None = None,
        *,
        stage: str | None = None,
        parallel: bool = True,
        timeout: float | None = None,
    ) -> GroupResult[T]:
        """Run `fn` once per host; failures are kept per host, never raised (except Ctrl-C)."""
        targets = list(self.hosts if hosts is None else hosts)
        group: GroupResult[T] = GroupResult({h.name: HostOutcome(h.name) for h in targets})

        def one(host: ResolvedHost) -> None:
            started = time.monotonic()
            self.emit(Event(EventKind.START, host.name, stage))
            with self._lock:
                self.running[host.name] = stage or "running"
            outcome = group.outcomes[host.name]
            try:
                outcome.value = fn(self.session(host, stage, timeout))
            except KeyboardInterrupt:
                with self._lock:
                    self._cut_short[host.name] = stage or "running"
                raise
            except HostError as exc:
                exc.stage = exc.stage or stage
                outcome.error = exc
            except Exception as exc:  # a bug in a step must not take the other hosts down
                outcome.error = HostError(host.name, f"internal error: {type(exc).__name__}: {exc}", stage=stage)
            finally:
                outcome.duration = time.monotonic() - started
                with self._lock:
                    self.running.pop(host.name, None)
            if outcome.error is not None:
                self.emit(Event(EventKind.FAILED, host.name, stage, outcome.error.message, outcome.duration))
            else:
                self.emit(Event(EventKind.DONE, host.name, stage, "", outcome.duration))

        if not parallel or self.forks == 1:
            for host in targets:
                try:
                    one(host)
                except KeyboardInterrupt:
                    raise self._interrupted() from None
            return group
        pool = cf.ThreadPoolExecutor(max_workers=min(self.forks, len(targets) or 1), thread_name_prefix="host")
        try:
            futures = [pool.submit(one, h) for h in targets]
            for fut in cf.as_completed(futures):
                fut.result()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise self._interrupted() from None
        pool.shutdown(wait=True)
        return group

    def _interrupted(self) -> Interrupted:
        running = {**self.running, **self._cut_short}
        self.cancelled.set()  # before closing: a looping step must not reopen its connection
        self.close()
        where = ", ".join(f"{h} ({s})" for h, s in sorted(running.items())) or "nothing"
        return Interrupted(
            f"interrupted; was running on: {where}", hint="run `ascend-deploy down` to clean up anything left running"
        )

    def run(self, command: str, hosts: Iterable[ResolvedHost] | None = None, **kwargs: object) -> GroupResult[Result]:
        """Convenience: one command on every host (non-zero exit counts as failure)."""
        return self.map(lambda s: s.run(command), hosts, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
        for conn in conns:
            conn.close()
