"""Rendering of `upgrade` (the differences, the steps, where it failed, the gate's numbers, the
rollback) and `history` (a row per recorded deployment)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolkit.cli.console import err, notes_block, out

OUTCOME_WORDS = {
    "unchanged": ("nothing to upgrade: the inventory plans what runs now", "bold green"),
    "planned": ("dry run: nothing was touched", "bold"),
    "refused": ("upgrade refused before anything stopped: the old deployment still serves", "bold red"),
    "upgraded": ("upgraded: the new deployment serves", "bold green"),
    "rolled-back": ("rolled back: the previous deployment serves again", "bold yellow"),
    "rollback-failed": ("the rollback failed too: see below for what runs", "bold red"),
}


def render_upgrade(report: Any) -> None:
    out.print(Text(f"plan {report.from_plan[:12]} -> {report.to_plan[:12]}", style="dim"))
    if report.kinds:
        out.print(Text("what changes: ", style="bold") + Text(", ".join(report.kinds)))
    for line in report.changes:
        out.print(f"  {escape(line)}")
    if report.outcome == "planned":
        table = Table(box=None, pad_edge=False, header_style="dim")
        for col in ("step", "what", "serving"):
            table.add_column(col)
        for s in report.steps:
            table.add_row(s.name, escape(s.what), s.serving)
        out.print(table)
    for p in report.refusals:
        err.print(
            Text(f"{p.host}" + (f" NPU {p.device}" if p.device is not None else "") + f" [{p.check}] ", style="red")
            + Text(f"{p.observed} (expected {p.expected}) -> {p.hint}")
        )
    if report.failure:
        f = report.failure
        where = f.get("step", "?") + (f" ({f['stage']})" if f.get("stage") else "")
        host = f" on {f['host']}" if f.get("host") else ""
        err.print(Text(f"failed at {where}{host}: ", style="bold red") + Text(str(f.get("message", ""))))
        for line in f.get("log") or []:
            err.print(Text(f"  {line}", style="dim"))
    if report.gate:
        render_gate(report.gate)
    timings = ", ".join(f"{k.removesuffix('_s')} {v:g} s" for k, v in report.timings.items())
    if timings:
        out.print(Text(f"timings: {timings}", style="dim"))
    if report.running_now:
        err.print(Text("what runs now:", style="bold red"))
        for line in report.running_now:
            err.print(f"  {escape(line)}")
    notes_block(report.notes)
    words, style = OUTCOME_WORDS.get(report.outcome, (report.outcome, "bold"))
    out.print(Text(f"{words} ({report.duration:.1f}s)", style=style))


def render_gate(gate: dict[str, Any]) -> None:
    table = Table(box=None, pad_edge=False, header_style="dim", title=f"gate against {gate['baseline']}")
    for col in ("load", "measure", "new", "baseline", "ratio", "result"):
        table.add_column(col)
    for v in gate.get("verdicts") or []:
        table.add_row(
            v["label"],
            v["what"],
            f"{v['measured']:.1f}",
            f"{v['baseline']:.1f}",
            f"{v['ratio']:.2f}x",
            Text("pass", style="green") if v["passed"] else Text(f"below {gate['min_ratio']:g}", style="bold red"),
        )
    out.print(table)


def render_history(report: Any) -> None:
    if report.problem:
        err.print(Text(report.problem, style="bold red"))
        return
    if not report.rows:
        out.print(f"no deployment recorded on {report.head} for {report.cluster}")
        return
    table = Table(box=None, pad_edge=False, header_style="dim")
    for col in ("deployed", "via", "plan", "image / runtime", "state", "gate", "changes"):
        table.add_column(col)
    for r in report.rows:
        changes = r["changes"]
        shown = "; ".join(changes[:3]) + (f" (+{len(changes) - 3})" if len(changes) > 3 else "")
        state = r["state"] + (f" ({r['failure']['step']})" if r.get("failure") and r["rolled_back"] else "")
        table.add_row(
            str(r["deployed_at"] or "-"),
            str(r["via"]),
            str(r["plan_sha256"] or "")[:12],
            escape(str(r["image"] or r["runtime"] or "-")),
            Text(state, style="green" if r["state"] == "running" else "yellow" if r["rolled_back"] else ""),
            escape(r["gate_text"] or "-"),
            escape(shown or "-"),
        )
    out.print(table)
