"""Rendering for the CLI: live progress, summary tables, errors. The only module that prints
(besides cli.py); library code hands it reports and events."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolkit.errors import ToolkitError
from toolkit.executor import Event
from toolkit.runner import RunReport

out = Console(soft_wrap=False, highlight=False)
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


def print_json(data: Any) -> None:
    """One JSON document on stdout (no rich markup, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


def render_error(exc: ToolkitError, *, as_json: bool) -> None:
    if as_json:
        print_json({"ok": False, "error": exc.to_dict()})
    lines = exc.lines()
    err.print(Text("error: ", style="bold red") + Text(lines[0]))
    for line in lines[1:]:
        err.print(Text(line, style="dim" if line.lstrip().startswith("hint") else ""))


class Progress:
    """Event sink: a live table (stage, host, state, elapsed) on a terminal; with -v, remote
    output lines prefixed by host. Called from worker threads."""

    def __init__(self, *, verbose: bool, enabled: bool) -> None:
        self.verbose = verbose
        self.enabled = enabled and err.is_terminal
        self.rows: dict[tuple[str, str], list[Any]] = {}
        self.lock = threading.Lock()
        self.live: Live | None = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            self.live = Live(self._table(), console=err, refresh_per_second=8, transient=True, get_renderable=self._table)
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
            table.add_row(stage, host, Text(state, style=STATUS_STYLE.get(state, "")), f"{elapsed:5.1f}s", escape(last[:60]))
        return table

    def __call__(self, event: Event) -> None:
        key = (event.stage or "-", event.host)
        with self.lock:
            if event.kind == "start":
                self.rows[key] = ["running", time.monotonic(), None, ""]
            elif event.kind in ("done", "failed") and key in self.rows:
                self.rows[key][0] = "ok" if event.kind == "done" else "failed"
                self.rows[key][2] = time.monotonic()
                if event.detail:
                    self.rows[key][3] = event.detail
            elif event.kind in ("command", "retry") and key in self.rows:
                self.rows[key][3] = event.detail.splitlines()[0] if event.detail else ""
        if self.verbose:
            if event.kind == "output":
                style = "red" if event.stream == "stderr" else ""
                err.print(Text(f"[{event.host}] ", style="bold") + Text(event.detail, style=style))
            elif event.kind in ("command", "failed", "retry"):
                err.print(Text(f"[{event.host}] {event.stage or ''} {event.kind}: ", style="dim") + Text(event.detail.splitlines()[0] if event.detail else ""))


def render_report(report: RunReport) -> None:
    table = Table(title=f"playbook {report.playbook}" + (" (check: nothing was changed)" if report.check else ""), title_justify="left")
    for col in ("stage", "host", "status", "ops", "time", "detail"):
        table.add_column(col, justify="right" if col in ("ops", "time") else "left")
    for stage in report.stages:
        if stage.skipped_reason:
            table.add_row(stage.name, "-", Text("skipped", style="dim"), "", "", stage.skipped_reason)
            continue
        for host in stage.hosts.values():
            detail = host.error.message if host.error else ""
            if host.error and host.error.hint:
                detail += f" (hint: {host.error.hint})"
            table.add_row(
                stage.name,
                host.host,
                Text(host.status, style=STATUS_STYLE.get(host.status, "")),
                str(len(host.ops)),
                f"{host.duration:.2f}s",
                escape(detail),
            )
    out.print(table)
    if report.check:
        for stage in report.stages:
            for host in stage.hosts.values():
                for op in host.ops:
                    out.print(Text(f"[{host.host}] {stage.name}: would run: ", style="cyan") + Text(op.description))
                    out.print(Text("    " + op.command, style="dim"))
    verdict = "ok" if report.ok else f"failed at stage '{report.failed_stage}'"
    out.print(Text(f"{verdict} in {report.duration:.1f}s", style="green" if report.ok else "bold red"))


def _versions(facts: dict[str, Any]) -> str:
    pkgs = facts.get("packages") or {}
    parts = [f"{k} {v}" for k, v in pkgs.items() if v]
    return ", ".join(parts) or "-"


def render_facts(report: RunReport) -> None:
    table = Table(title="host facts", title_justify="left", show_lines=True)
    for col in ("host", "hostname", "os / kernel", "cpu / memory", "nics", "python / packages", "driver / CANN", "NPUs"):
        table.add_column(col)
    stage = report.stages[0] if report.stages else None
    for name, host in (stage.hosts.items() if stage else []):
        if host.error:
            table.add_row(name, Text(f"unreachable: {host.error.message}", style="red"), "", "", "", "", "", "")
            continue
        f = host.data.get("facts", {})
        nics = "\n".join(f"{n['name']} {n['state']} {' '.join(a for a in n['addresses'] if ':' not in a)}".strip() for n in f.get("nics", []) if n["name"] != "lo")
        table.add_row(
            name,
            str(f.get("hostname") or "-"),
            f"{f.get('os') or '-'}\n{f.get('kernel') or '-'} {f.get('arch') or ''}",
            f"{f.get('cpus') or '-'} x {f.get('cpu_model') or '?'}\n{(f.get('memory_mib') or 0) // 1024} GiB",
            escape(nics or "-"),
            f"Python {f.get('python') or '-'}\n{_versions(f)}",
            f"{f.get('driver') or '-'}\n{f.get('cann') or '-'}",
            str(f.get("npu_count") if f.get("npu_count") is not None else "-"),
        )
    out.print(table)


def render_vars(host: str, rows: list[tuple[str, Any, str]], cluster_rows: list[tuple[str, Any, str]]) -> None:
    for title, data in ((f"host {host}", rows), ("cluster", cluster_rows)):
        table = Table(title=title, title_justify="left")
        table.add_column("key")
        table.add_column("value")
        table.add_column("from")
        for key, value, origin in data:
            table.add_row(key, escape(json.dumps(value) if not isinstance(value, str) else value), Text(origin, style="dim" if origin == "default" else "bold"))
        out.print(table)
