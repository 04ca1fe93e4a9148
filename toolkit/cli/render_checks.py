"""Reports of what the hosts are: a playbook run's stages, `facts`, and `check-net`'s problems and
ping matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolkit.engine.runner import RunReport

if TYPE_CHECKING:
    from toolkit.checks import Problem
    from toolkit.checks.report import CheckNetReport

from toolkit.cli.console import STATUS_STYLE, err, mark, out


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
                mark(("ip" not in dev.errors and bool(dev.ip)), dev.ip or dev.errors.get("ip", "")[:30]),
                mark(dev.link == "UP", dev.link or "?"),
                mark(dev.health == "Success" if dev.link == "UP" else None, dev.health or ""),
                mark(dev.optical == "present" if dev.link == "UP" else None, dev.optical or ""),
                mark((d, "tls") not in flagged, str(dev.tls_switch)),
                Text(dev.lldp_port or "-", style="dim"),
                mark(good == len(pl) if pl else None, f"{good}/{len(pl)}" if pl else ""),
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
                    mark(all(p.ok for p in pl), f"{sum(p.ok for p in pl)}/{len(pl)}") if pl else Text("-", style="dim")
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
    render_warnings(report.warnings)
    for note in report.notes:
        err.print(Text(note, style="dim"))
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


def render_warnings(warnings: list[Problem]) -> None:
    """Findings that do not stop a start, one line each (on stderr: the report stays parseable)."""
    for w in warnings:
        err.print(Text("warning: ", style="bold yellow") + Text(w.render()))
