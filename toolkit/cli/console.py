"""The terminal: the two consoles (tables on stdout, errors on stderr), errors, live progress, and
the small pieces every table uses (status marks, notes, sizes, uptimes)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolkit.engine.executor import Event, EventKind
from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    pass

from toolkit.cli.jsonout import print_json


def terminal_width() -> int | None:
    """A terminal's own width; when piped (CI logs, `make demo`), wide enough for the tables."""
    if sys.stdout.isatty():
        return None
    try:
        return max(80, int(os.environ.get("COLUMNS", "160")))
    except ValueError:
        return 160


out = Console(soft_wrap=False, highlight=False, width=terminal_width())
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATUS_STYLE = {
    "unchanged": "green",
    "ok": "green",
    "changed": "yellow",
    "would-change": "cyan",
    "failed": "bold red",
    "skipped": "dim",
    "running": "blue",
}


def render_error(exc: ToolkitError, *, as_json: bool) -> None:
    if as_json:
        print_json({"ok": False, "error": exc.to_dict()})
    lines = exc.lines()
    err.print(Text("error: ", style="bold red") + Text(lines[0]))
    for line in lines[1:]:
        err.print(Text(line, style="dim" if line.lstrip().startswith("hint") else ""))


PROGRESS_EVERY_S = 10.0


class Progress:
    """Event sink: a live table (stage, host, state, elapsed) on a terminal; with -v, remote
    output lines prefixed by host. Called from worker threads."""

    def __init__(self, *, verbose: bool, enabled: bool) -> None:
        self.verbose = verbose
        self.requested = enabled
        self.enabled = enabled and err.is_terminal
        self.rows: dict[tuple[str, str], list[Any]] = {}
        self.lock = threading.Lock()
        self.live: Live | None = None
        self.last_line: dict[tuple[str, str], float] = {}
        #: actions were printed as they happened (a log, not a terminal): the summary omits them
        self.logged_actions = False

    def __enter__(self) -> "Progress":
        if self.enabled:
            self.live = Live(
                self._table(), console=err, refresh_per_second=8, transient=True, get_renderable=self._table
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def _table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("stage")
        table.add_column("host")
        table.add_column("state")
        table.add_column("elapsed", justify="right")
        table.add_column("last")
        now = time.monotonic()
        with self.lock:
            rows = list(self.rows.items())
        for (stage, host), (state, started, ended, last) in rows[-40:]:
            elapsed = (ended or now) - started
            table.add_row(
                stage, host, Text(state, style=STATUS_STYLE.get(state, "")), f"{elapsed:5.1f}s", escape(last[:60])
            )
        return table

    def __call__(self, event: Event) -> None:
        key = (event.stage or "-", event.host)
        with self.lock:
            if event.kind == EventKind.START:
                self.rows[key] = ["running", time.monotonic(), None, ""]
            elif event.kind in (EventKind.DONE, EventKind.FAILED) and key in self.rows:
                self.rows[key][0] = "ok" if event.kind == EventKind.DONE else "failed"
                self.rows[key][2] = time.monotonic()
                if event.detail:
                    self.rows[key][3] = event.detail
            elif event.kind in (EventKind.ACTION, EventKind.RETRY, EventKind.PROGRESS) and key in self.rows:
                # words, never the raw shell of EventKind.COMMAND
                self.rows[key][3] = event.detail.splitlines()[0] if event.detail else ""
        logging = self.requested and not self.enabled
        if event.kind == EventKind.ACTION and (logging or self.verbose):  # in the order things happen
            self.logged_actions = True
            err.print(Text(f"[{event.host}] {event.stage or ''}: ", style="dim") + Text(event.detail))
        if event.kind == EventKind.PROGRESS and logging and not self.verbose:
            now = time.monotonic()
            if now - self.last_line.get(key, 0.0) >= PROGRESS_EVERY_S:  # a log, not a live table: one line now and then
                self.last_line[key] = now
                err.print(
                    Text(f"[{event.host}] {event.stage or ''}: ", style="dim")
                    + Text(event.detail.splitlines()[0] if event.detail else "")
                )
        if self.verbose and event.kind == EventKind.PROGRESS:
            err.print(
                Text(f"[{event.host}] {event.stage or ''}: ", style="dim")
                + Text(event.detail.splitlines()[0] if event.detail else "")
            )
        if self.verbose:
            if event.kind == EventKind.OUTPUT:
                style = "red" if event.stream == "stderr" else ""
                err.print(Text(f"[{event.host}] ", style="bold") + Text(event.detail, style=style))
            elif event.kind in (EventKind.COMMAND, EventKind.FAILED, EventKind.RETRY):
                err.print(
                    Text(f"[{event.host}] {event.stage or ''} {event.kind}: ", style="dim")
                    + Text(event.detail.splitlines()[0] if event.detail else "")
                )


def mark(ok: bool | None, text: str = "") -> Text:
    if ok is None:
        return Text(text or "-", style="dim")
    return Text(("✓ " if ok else "✗ ") + text, style="green" if ok else "bold red")


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def stage_table(rows: list[tuple[str, float, str]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("time", justify="right")
    for name, seconds, status in rows:
        table.add_row(name, Text(status, style=STATUS_STYLE.get(status, "")), f"{seconds:.1f}s")
    return table


def notes_block(notes: list[str]) -> None:
    for note in notes:
        err.print(Text("note: ", style="yellow") + Text(note))


def uptime(seconds: Any) -> str:
    if not isinstance(seconds, int):
        return "-"
    h, rem = divmod(seconds, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"
