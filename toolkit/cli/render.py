"""Rendering for the CLI: live progress, summary tables, errors. The only module that prints
(besides cli.py); library code hands it reports and events."""

from __future__ import annotations

import json
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

from toolkit.cli.jsonout import print_json  # noqa: F401  (the CLI's JSON output; kept importable from here)
from toolkit.engine.executor import Event, EventKind
from toolkit.engine.runner import RunReport
from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from toolkit.api.reports import DownReport, GenerateReport, LogsReport, StatusReport, UpReport
    from toolkit.checks.report import CheckNetReport
    from toolkit.client.ask import AskReport
    from toolkit.planner.plan import Plan


def _width() -> int | None:
    """A terminal's own width; when piped (CI logs, `make demo`), wide enough for the tables."""
    if sys.stdout.isatty():
        return None
    try:
        return max(80, int(os.environ.get("COLUMNS", "160")))
    except ValueError:
        return 160


out = Console(soft_wrap=False, highlight=False, width=_width())
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


def render_report(report: RunReport) -> None:
    table = Table(
        title=f"playbook {report.playbook}" + (" (check: nothing was changed)" if report.check else ""),
        title_justify="left",
    )
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
    for col in (
        "host",
        "hostname",
        "os / kernel",
        "cpu / memory",
        "nics",
        "python / packages",
        "driver / CANN",
        "NPUs",
    ):
        table.add_column(col)
    stage = report.stages[0] if report.stages else None
    for name, host in stage.hosts.items() if stage else []:
        if host.error:
            table.add_row(name, Text(f"unreachable: {host.error.message}", style="red"), "", "", "", "", "", "")
            continue
        f = host.data.get("facts", {})
        nics = "\n".join(
            f"{n['name']} {n['state']} {' '.join(a for a in n['addresses'] if ':' not in a)}".strip()
            for n in f.get("nics", [])
            if n["name"] != "lo"
        )
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
            table.add_row(
                key,
                escape(json.dumps(value) if not isinstance(value, str) else value),
                Text(origin, style="dim" if origin == "default" else "bold"),
            )
        out.print(table)


def _mark(ok: bool | None, text: str = "") -> Text:
    if ok is None:
        return Text(text or "-", style="dim")
    return Text(("✓ " if ok else "✗ ") + text, style="green" if ok else "bold red")


def render_check_net(report: CheckNetReport, *, matrix_limit: int = 8) -> None:
    """Per-host device tables, the ping matrix (small clusters) or failing pairs, then the problems."""
    problem_hosts = {p.host for p in report.problems}
    show_all = len(report.views) <= matrix_limit
    for view in report.views:
        if view.data is None:
            out.print(Text(f"{view.host.name} ({view.host.address}): unreachable", style="bold red"))
            continue
        if not show_all and view.host.name not in problem_hosts:
            continue
        by_dev: dict[int, list[Any]] = {}
        for p in view.pings:
            by_dev.setdefault(p.device, []).append(p)
        flagged = {(p.device, p.check) for p in report.problems if p.host == view.host.name}
        table = Table(title=f"{view.host.name} ({view.host.address})", title_justify="left")
        for col in ("NPU", "ip", "link", "health", "optical", "tls", "lldp", "pings"):
            table.add_column(col)
        for d in view.host.devices:
            dev = view.devices.get(d)
            if dev is None:
                continue
            pl = by_dev.get(d, [])
            good = sum(1 for p in pl if p.ok)
            table.add_row(
                str(d),
                _mark(("ip" not in dev.errors and bool(dev.ip)), dev.ip or dev.errors.get("ip", "")[:30]),
                _mark(dev.link == "UP", dev.link or "?"),
                _mark(dev.health == "Success" if dev.link == "UP" else None, dev.health or ""),
                _mark(dev.optical == "present" if dev.link == "UP" else None, dev.optical or ""),
                _mark((d, "tls") not in flagged, str(dev.tls_switch)),
                Text(dev.lldp_port or "-", style="dim"),
                _mark(good == len(pl) if pl else None, f"{good}/{len(pl)}" if pl else ""),
            )
        out.print(table)
    reachable = [v for v in report.views if v.data is not None]
    if 1 < len(reachable) <= matrix_limit and report.pings:
        table = Table(title=f"ping matrix ({report.mode}): cards answering / cards pinged", title_justify="left")
        table.add_column("from \\ to")
        for v in reachable:
            table.add_column(v.host.name)
        for src in reachable:
            cells = []
            for dst in reachable:
                pl = [p for p in src.pings if p.peer_host == dst.host.name]
                cells.append(
                    _mark(all(p.ok for p in pl), f"{sum(p.ok for p in pl)}/{len(pl)}") if pl else Text("-", style="dim")
                )
            table.add_row(src.host.name, *cells)
        out.print(table)
    elif report.pings:
        bad = [p for p in report.pings if not p.ok]
        out.print(
            f"pings ({report.mode}): {len(report.pings) - len(bad)}/{len(report.pings)} answered"
            + (f"; failing pairs: {len(bad)}" if bad else "")
        )
        for p in bad[:40]:
            out.print(
                Text(
                    f"  {p.host} NPU {p.device} -> {p.peer_host} NPU {p.peer_device} ({p.peer_ip}): {p.loss_pct:g}% "
                    f"loss {p.error or ''}",
                    style="red",
                )
            )
    if report.problems:
        table = Table(title=f"{len(report.problems)} problem(s)", title_justify="left", show_lines=True)
        for col in ("host", "NPU", "check", "observed", "expected", "what to do"):
            table.add_column(col, overflow="fold")
        for problem in report.problems:
            table.add_row(
                problem.host,
                "-" if problem.device is None else str(problem.device),
                problem.check,
                escape(problem.observed),
                escape(problem.expected),
                escape(problem.hint),
            )
        out.print(table)
        out.print(
            Text(
                f"check-net: {len(report.problems)} problem(s) on {len({p.host for p in report.problems})} host(s) in "
                f"{report.duration:.1f}s",
                style="bold red",
            )
        )
    else:
        devices = sum(len(v.devices) for v in reachable)
        out.print(
            Text(
                f"check-net: all checks passed ({len(reachable)} hosts, {devices} NPUs, {len(report.pings)} pings, "
                f"mode {report.mode}) in {report.duration:.1f}s",
                style="bold green",
            )
        )


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def render_plan(plan: Plan, inventory_path: str) -> None:
    """The plan as a reader checks it: what runs where, and why each value is what it is."""
    rt = plan.runtime
    out.print(Text(f"Plan for cluster {plan.cluster}", style="bold") + Text(f"  ({inventory_path})", style="dim"))
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_column(style="dim")
    summary.add_row("model", f"{plan.model_path} as '{plan.served_name.value}'", plan.served_name.origin)
    summary.add_row("family", f"{plan.family} (plugin {plan.plugin})", plan.plugin_source)
    summary.add_row("config.json", plan.config_source or "not available", "")
    summary.add_row("weights", str(plan.quantization.value or "16-bit (not quantized)"), plan.quantization.origin)
    from toolkit.planner.serialize import pick_with

    for alt in plan.alternatives:
        summary.add_row(
            "also published",
            f"{alt.layout()}, max-model-len {alt.max_model_len}"
            + (f", launcher {alt.launcher}" if alt.launcher else ""),
            f"{alt.source or alt.note}; pick it: {pick_with(alt)}",
        )
    from toolkit.config.hardware import HBM_GIB

    summary.add_row(
        "hardware",
        f"{plan.hardware.value} ({plan.device_class}, {HBM_GIB[plan.device_class]} GiB per device)",
        plan.hardware.origin,
    )
    versions = ", ".join(
        f"{k} {v}"
        for k, v in (("vLLM", rt.vllm), ("vllm-ascend", rt.vllm_ascend), ("CANN", rt.cann), ("torch_npu", rt.torch_npu))
        if v
    )
    summary.add_row("runtime", f"{rt.name} ({versions})", plan.runtime_origin)
    summary.add_row("launcher", str(plan.launcher.value), plan.launcher.origin)
    summary.add_row("processes run", f"on the {plan.placement.value}", plan.placement.origin)
    summary.add_row(
        "parallel",
        f"TP {plan.tp.value} x PP {plan.pp.value} x DP {plan.dp.value} = {plan.devices} devices on {len(plan.hosts)} "
        f"host(s), backend {plan.backend.value}",
        f"TP: {plan.tp.origin}; PP: {plan.pp.origin}",
    )
    if plan.memory is not None:
        est = plan.memory.per_device
        summary.add_row(
            "memory",
            f"{_gib(est.total)} of {_gib(est.available)} per device (weights {_gib(est.weights)}, KV cache "
            f"{_gib(est.kv_cache)}, reserve {_gib(est.reserve)})",
            f"fewest devices: {plan.memory.min_devices}; longest max-model-len here: {plan.memory.max_len_fits}",
        )
    summary.add_row("endpoint", plan.endpoint, f"API key: {plan.api_key}" if plan.api_key else "no API key")
    out.print(summary)
    if plan.container is not None:
        _container(out, plan)

    for h in plan.hosts:
        out.print()
        out.print(
            Text(f"{h.name}", style="bold")
            + Text(f"  {h.role}, {h.address}, devices {','.join(map(str, h.devices))}, NIC {h.nic or 'auto'}", style="")
        )
        env = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        env.add_column("variable")
        env.add_column("value")
        env.add_column("from", style="dim")
        for key, value in h.env.items():
            env.add_row(key, escape(str(value.value)), value.origin)
        out.print(env)
        if h.ray_argv:
            out.print(Text("  $ ", style="dim") + Text(h.ray_command))
        if h.rank_args:
            ranks = ", ".join(map(str, h.ranks))
            out.print(Text(f"  DP rank(s) {ranks}: ", style="dim") + Text(_args_line(h.rank_args)))
        if h.server_argv and h.role != "head":
            out.print(Text("  $ ", style="dim") + Text(h.server_command))

    out.print()
    out.print(Text(f"vLLM on {plan.head.name}", style="bold"))
    args = Table(box=None, pad_edge=False, header_style="dim")
    args.add_column("flag")
    args.add_column("value")
    args.add_column("from", style="dim")
    for a in plan.vllm_args:
        shown = "on" if a.value is True or a.value is None else "off" if a.value is False else str(a.value)
        args.add_row(a.flag, escape(shown), a.origin)
    out.print(args)
    env_note = f"VLLM_API_KEY=<{plan.api_key}> " if plan.api_key else ""
    out.print(Text("  $ ", style="dim") + Text(env_note + plan.vllm_command))
    for note in plan.notes:
        out.print(Text("note: ", style="yellow") + Text(note))


def _args_line(args: Any) -> str:
    return "; ".join(
        f"{a.flag} {a.value} ({a.origin})" if a.value is not None else f"{a.flag} ({a.origin})" for a in args
    )


def render_plugins(infos: list[Any]) -> None:
    table = Table(title="plugins (asked last-listed first; the generic fallback last)", title_justify="left")
    table.add_column("plugin", style="bold")
    table.add_column("source")
    table.add_column("claims / provides")
    for info in infos:
        what = list(info.claims) + [f"runtime {r}" for r in info.runtimes]
        table.add_row(info.name, f"{info.source}\n[dim]{escape(info.location)}[/dim]", escape("\n".join(what) or "-"))
    out.print(table)


def _stage_table(rows: list[tuple[str, float, str]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("time", justify="right")
    for name, seconds, status in rows:
        table.add_row(name, Text(status, style=STATUS_STYLE.get(status, "")), f"{seconds:.1f}s")
    return table


def _notes(notes: list[str]) -> None:
    for note in notes:
        err.print(Text("note: ", style="yellow") + Text(note))


def render_up(report: UpReport, *, actions_logged: bool = False) -> None:
    """`actions_logged`: the progress log already printed each operation as it ran."""
    _notes(report.lock.notes if report.lock else [])
    if report.preflight is not None and not report.preflight.ok:
        render_check_net(report.preflight)
        err.print(
            Text("up stopped at preflight: ", style="bold red")
            + Text("fix the problems above, or re-run with --skip-preflight")
        )
        return
    if report.run is not None and not actions_logged:
        for stage in report.run.stages:
            for name, h in stage.hosts.items():
                for op in h.ops:
                    mark = "would " if not op.ran else ""
                    out.print(
                        Text(f"{name} ", style="bold")
                        + Text(f"[{stage.name}] ", style="dim")
                        + Text(f"{mark}{op.description}")
                    )
    out.print(_stage_table(report.stage_times()))
    if not report.ok:
        for stage in report.run.stages if report.run else []:
            for h in stage.hosts.values():
                if h.error is not None:
                    render_error(h.error, as_json=False)
        return
    if report.check:
        out.print(Text("--check: nothing was changed", style="cyan"))
        return
    if not report.changed:
        out.print(Text("nothing changed: the cluster already runs this plan", style="green"))
    if not report.serving:
        out.print(
            Text("done; vLLM was left out by --tags/--skip-tags", style="yellow")
            + Text(f" (Ray: {report.plan.ray_address})", style="dim")
        )
        return
    answers = report.answers
    out.print(
        Text("ready: ", style="bold green")
        + Text(
            f"{report.plan.endpoint}  model '{report.plan.served_name.value}'  "
            f"(launcher {report.plan.launcher.value}: TP {report.plan.tp.value} x PP {report.plan.pp.value} x DP "
            f"{report.plan.dp.value} on {len(report.plan.hosts)} host(s), {report.duration:.0f}s)"
        )
    )
    if answers.get("chat") is not None:
        out.print(Text("test chat answer: ", style="dim") + Text(repr(answers["chat"])[:160]))
    ex = report.examples
    out.print(Text("\ncurl:", style="bold"))
    out.print(ex["curl"], soft_wrap=True)
    out.print(Text("\nPython (pip install openai):", style="bold"))
    out.print(ex["python"], soft_wrap=True)


def render_down(report: DownReport) -> None:
    _notes(report.notes + (report.lock.notes if report.lock else []))
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("host")
    table.add_column("stopped")
    table.add_column("clean")
    table.add_column("error")
    for name, row in report.hosts.items():
        clean = row["clean"]
        table.add_row(
            name,
            ", ".join(row["stopped"]) or "-",
            Text("yes" if clean else "no" if clean is False else "?", style="green" if clean else "red"),
            escape(row["error"] or ""),
        )
    out.print(table)
    out.print(
        Text(
            "down: every host clean" if report.ok else "down: some hosts are not clean (see errors)",
            style="green" if report.ok else "bold red",
        )
    )


def _uptime(seconds: Any) -> str:
    if not isinstance(seconds, int):
        return "-"
    h, rem = divmod(seconds, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def render_status(report: StatusReport) -> None:
    _notes(report.notes)
    d = report.deployed
    if d is not None:
        same = _mark(
            d.matches_inventory, "matches the inventory" if d.matches_inventory else "differs from the inventory"
        )
        out.print(
            Text(f"deployed {d.deployed_at} by {d.tool}: plan {d.plan_sha256[:12]}, launcher {d.launcher}, ")
            + Text(f"placement {d.placement}; ")
            + same
            + Text(f" ({d.history} earlier kept)" if d.history else "")
        )
    table = Table(box=None, pad_edge=False, header_style="dim")
    for col in ("host", "role", "address", "reachable", "node", "NPU", "vLLM pid", "uptime", "health", "models"):
        table.add_column(col)
    for r in report.hosts:
        rank = r.get("runs") == "vllm"
        if rank:
            ranks = ",".join(map(str, r.get("ranks") or [])) or "0"
            node = _mark(r.get("vllm_pid") is not None, f"rank {ranks} " + ("up" if r.get("vllm_pid") else "down"))
            npu = f"{r['npu_planned']}"
        else:
            node = _mark(
                r["ray_node"], "alive" if r["ray_node"] else ("running, not joined" if r.get("ray_running") else "down")
            )
            npu = f"{r['npu'] if r['npu'] is not None else '-'}/{r['npu_planned']}"
        shows_vllm = rank or r["role"] == "head"
        health = Text("")
        if r["role"] == "head":
            health = _mark(r.get("health") == 200, str(r.get("health") or "down"))
            if r.get("engines") and (r.get("engines_planned") or 1) > 1:
                health += Text(f", {r['engines']}/{r['engines_planned']} engines")
        table.add_row(
            r["host"],
            r["role"],
            r["address"],
            _mark(r["reachable"], "yes" if r["reachable"] else "no"),
            node,
            npu,
            str(r.get("vllm_pid") or "-") if shows_vllm else "",
            _uptime(r.get("uptime_s")) if shows_vllm else "",
            health,
            ", ".join(r.get("models") or []) if r["role"] == "head" else "",
        )
    out.print(table)
    if report.plan.container is not None:
        boxes = Table(title="containers", title_justify="left", box=None, pad_edge=False, header_style="dim")
        for col in ("host", "engine", "container", "state", "image", "image id", "digest"):
            boxes.add_column(col)
        for r in report.hosts:
            c = r.get("container") or {}
            boxes.add_row(
                r["host"],
                c.get("engine") or "-",
                c.get("id") or "-",
                _mark(
                    bool(c.get("running")),
                    "running" if c.get("running") else "absent" if not c.get("id") else "stopped",
                ),
                c.get("image") or "-",
                c.get("image_id") or "-",
                (c.get("digest") or "-")[:19],
            )
        out.print(boxes)
    out.print(
        Text(
            f"endpoint {report.plan.endpoint}  model '{report.plan.served_name.value}'",
            style="green" if report.ok else "yellow",
        )
    )
    for r in report.hosts:
        if r.get("error"):
            out.print(Text(f"{r['host']}: ", style="bold red") + Text(r["error"]))


def render_metrics(rows: list[dict[str, Any]]) -> None:
    table = Table(title="server load (/metrics)", title_justify="left", box=None, pad_edge=False, header_style="dim")
    for col in ("model", "engines", "running", "waiting", "KV cache", "prompt tok/s", "gen tok/s", "preemptions"):
        table.add_column(col)

    def num(value: Any, fmt: str = "{:.0f}") -> str:
        return "-" if value is None else fmt.format(value)

    for r in rows:
        table.add_row(
            r["model"],
            str(r["engines"]),
            num(r["running"]),
            num(r["waiting"]),
            num(r["kv_cache_usage"] * 100 if r["kv_cache_usage"] is not None else None, "{:.1f}%"),
            num(r["prompt_tokens_per_s"], "{:.1f}"),
            num(r["generation_tokens_per_s"], "{:.1f}"),
            num(r["preemptions"]),
        )
    out.print(table)


def render_bench(report: Any) -> None:
    from toolkit.api.results import COLUMNS, rows, search_sentence

    _notes(report.notes)
    ident = report.identity
    out.print(
        Text(f"{ident['served_name']}", style="bold")
        + Text(
            f"  launcher {ident['launcher']}, TP {ident['tp']} x PP {ident['pp']} x DP {ident['dp']} on "
            f"{ident['hosts']} x {ident['hardware']}, {ident['runtime']['name']}",
            style="dim",
        )
    )
    table = Table(box=None, pad_edge=False, header_style="dim")
    for col in COLUMNS:
        table.add_column(col)
    for row in rows(report):
        table.add_row(*row)
    out.print(table)
    if report.search is not None:
        out.print(Text(f"SLO {report.slo}: ", style="bold") + Text(search_sentence(report)))
    for v in report.verdicts:
        mark = _mark(v.passed, "ok" if v.passed else "BELOW")
        out.print(Text(f"{v.label}: {v.what} {v.measured:.1f} vs baseline {v.baseline:.1f} ({v.ratio:.2f}x) ") + mark)
    if report.failure:
        out.print(Text("stopped: ", style="bold red") + Text(report.failure))
    if report.saved:
        out.print(Text("results: ", style="bold") + Text(report.saved))


def render_logs(report: LogsReport) -> None:
    if report.tails:
        for host, files in report.tails.items():
            for path, lines in files.items():
                out.print(Text(f"==> {host}:{path} <==", style="bold"))
                for line in lines:
                    out.print(escape(line), soft_wrap=True)
    for host, row in report.hosts.items():
        if row.get("error"):
            out.print(Text(f"{host}: ", style="bold red") + Text(row["error"]))
        elif report.tails is not None and host in report.tails and not row.get("files"):
            looked = ", ".join(f if f.startswith("/") else f"~/{f}" for f in row.get("missing") or []) or "-"
            out.print(
                Text(f"{host}: ", style="bold yellow")
                + Text(f"no vLLM or Ray log yet (looked for {looked}; `up` starts them)")
            )
    if report.archive:
        total = sum(r.get("files", 0) for r in report.hosts.values())
        out.print(
            Text("archive: ", style="bold") + Text(f"{report.archive} ({total} files from {len(report.hosts)} hosts)")
        )


def render_ask(report: AskReport) -> None:
    for i, answer in enumerate(report.answers):
        prefix = f"[{i}] " if len(report.answers) > 1 else ""
        out.print(Text(prefix, style="bold") + Text(answer), soft_wrap=True)
    timing = f"{report.latency_s * 1000:.0f} ms" + (
        f", first token {report.ttft_s * 1000:.0f} ms" if report.ttft_s is not None else ""
    )
    tokens = (
        f"{report.prompt_tokens} prompt + {report.completion_tokens} completion tokens"
        if report.completion_tokens is not None
        else "tokens: n/a"
    )
    reasons = ", ".join(str(r) for r in report.finish_reasons)
    err.print(
        Text(
            f"{report.mode}{' (stream)' if report.stream else ''} -> {report.endpoint}  model '{report.model}'  "
            f"{timing}  {tokens}  finish: {reasons}",
            style="dim",
        )
    )
    if report.parsed is not None:
        err.print(Text("JSON valid against the schema", style="green"))
    if report.problem:
        err.print(Text("error: ", style="bold red") + Text(report.problem))


def render_generate(report: GenerateReport) -> None:
    if not report.ok:
        render_report(report.run)
        return
    s = report.summary
    rates = report.rates
    err.print(
        Text("generate: ", style="bold green")
        + Text(
            f"{report.results} results"
            + (f" -> {report.out}" if report.out else "")
            + f"; model load {s.get('load_s', 0):.0f}s, batch {s.get('seconds', 0):.1f}s, "
            f"{rates.get('prompts_per_s', 0):.2f} prompts/s, {rates.get('output_tokens_per_s', 0):.0f} output tokens/s "
            f"(TP {report.plan.tp.value} x PP {report.plan.pp.value}, backend {report.plan.backend.value})"
        )
    )


def _container(out: Console, plan: Plan) -> None:
    """The container every host runs in: each `run` argument with its reason, then the command."""
    from toolkit.launch.container import run_command

    c = plan.container
    assert c is not None
    out.print()
    out.print(Text("container on every host", style="bold"))
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("part")
    table.add_column("value")
    table.add_column("from", style="dim")
    table.add_row("engine", str(c.engine.value), c.engine.origin)
    table.add_row("image", str(c.image.value), c.image.origin)
    table.add_row("name", str(c.name.value), c.name.origin)
    for arg in c.args:
        table.add_row(arg.what, escape(" ".join(arg.argv)), arg.origin)
    table.add_row("setup", escape("; ".join(c.setup)) or "-", "run inside before every command")
    out.print(table)
    engine = str(c.engine.value) if c.engine.value != "auto" else "docker"
    out.print(Text("  $ ", style="dim") + Text(run_command(c, engine)))


def render_image_load(report: Any) -> None:
    table = Table(box=None, pad_edge=False, header_style="dim")
    for col in ("host", "engine", "result", "sent", "seconds", "error"):
        table.add_column(col)
    for name, h in report.hosts.items():
        if h.get("error"):
            table.add_row(name, "-", _mark(False, "failed"), "-", "-", h["error"])
            continue
        result = "had it" if h["had"] else ("loaded, resumed" if h["resumed_from"] else "loaded")
        if h.get("retagged"):
            result += f", renamed {', '.join(h['retagged'])}"
        table.add_row(name, h["engine"], _mark(True, result), f"{h['sent'] >> 20} MiB", str(h["seconds"]), "")
    out.print(table)
    out.print(
        Text(
            f"image {report.image_id[:12]} ({', '.join(report.tags) or 'untagged'}), {report.size >> 20} MiB",
            style="green" if report.ok else "yellow",
        )
    )


def render_image_status(report: Any) -> None:
    table = Table(box=None, pad_edge=False, header_style="dim")
    for col in ("host", "engine", "image id", "container", "digest"):
        table.add_column(col)
    for name, h in report.hosts.items():
        if h.get("error"):
            table.add_row(name, "-", "-", "-", h["error"])
            continue
        table.add_row(
            name,
            h["engine"] or "-",
            h["image_id"] or "absent",
            h["container"] or "-",
            (h["digests"][0].rsplit("@", 1)[-1] if h["digests"] else "-")[:19],
        )
    out.print(table)
    out.print(Text(f"image {report.image}", style="bold"))
    for p in report.problems:
        out.print(Text(p.render(), style="red"))
