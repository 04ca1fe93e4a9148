"""Rendering for the CLI: the reports of the commands that operate and use a deployment, and (by
name, for `options.finish`) every renderer. The only package that prints (with cli/sim.py); library
code hands it reports and events. The terminal itself is console.py; the plan is render_plan.py;
facts and check-net are render_checks.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from toolkit.api.reports import DownReport, GenerateReport, LogsReport, StatusReport, UpReport
    from toolkit.client.ask import AskReport

from toolkit.cli.console import Progress, err, mark, notes_block, out, render_error, stage_table, uptime  # noqa: F401  (renderers by name)
from toolkit.cli.jsonout import print_json  # noqa: F401  (the CLI's JSON output; kept importable from here)
from toolkit.cli.render_checks import render_check_net, render_facts, render_report, render_warnings  # noqa: F401
from toolkit.cli.render_plan import render_plan, render_plugins, render_vars  # noqa: F401
from toolkit.cli.render_upgrade import render_history, render_upgrade  # noqa: F401

#: how `up` names each start-up phase (`facts.phases`), in the order they happen
PHASE_WORDS = (
    ("weights_s", "weights loaded in {:g} s"),
    ("weights_gib", "{:g} GiB of weights"),
    ("compile_s", "torch.compile {:g} s"),
    ("graph_s", "graph capture {:g} s"),
    ("engine_init_s", "engine init (profile, KV cache, warm-up) {:g} s"),
    ("ready_s", "/health 200 after {:g} s"),
)


def phases_line(phases: dict[str, Any]) -> str:
    return ", ".join(words.format(phases[key]) for key, words in PHASE_WORDS if phases.get(key) is not None)


def render_up(report: UpReport, *, actions_logged: bool = False) -> None:
    """`actions_logged`: the progress log already printed each operation as it ran."""
    notes_block(report.lock.notes if report.lock else [])
    if report.preflight is not None and not report.preflight.ok:
        render_check_net(report.preflight)
        err.print(
            Text("up stopped at preflight: ", style="bold red")
            + Text("fix the problems above, or re-run with --skip-preflight")
        )
        return
    if report.preflight is not None:
        render_warnings(report.preflight.warnings)
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
    out.print(stage_table(report.stage_times()))
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
    if report.phases:
        out.print(Text("start-up: ", style="dim") + Text(phases_line(report.phases)))
        predicted = report.plan.startup
        if predicted is not None:
            out.print(Text(f"  predicted {float(predicted.value):g} s: {predicted.origin}", style="dim"))
    notes_block(report.messages)
    ex = report.examples
    out.print(Text("\ncurl:", style="bold"))
    out.print(ex["curl"], soft_wrap=True)
    out.print(Text("\nPython (pip install openai):", style="bold"))
    out.print(ex["python"], soft_wrap=True)


def render_down(report: DownReport) -> None:
    notes_block(report.notes + (report.lock.notes if report.lock else []))
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


def render_status(report: StatusReport) -> None:
    notes_block(report.notes)
    for f in report.findings:
        err.print(Text(f"{f['host']} [{f['check']}] ", style="bold red") + Text(f["observed"]))
        err.print(Text(f"    fix: {f['fix']}", style="dim"))
    d = report.deployed
    if d is not None:
        same = mark(
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
            node = mark(r.get("vllm_pid") is not None, f"rank {ranks} " + ("up" if r.get("vllm_pid") else "down"))
            npu = f"{r['npu_planned']}"
        else:
            node = mark(
                r["ray_node"], "alive" if r["ray_node"] else ("running, not joined" if r.get("ray_running") else "down")
            )
            npu = f"{r['npu'] if r['npu'] is not None else '-'}/{r['npu_planned']}"
        shows_vllm = rank or r["role"] == "head"
        health = Text("")
        if r["role"] == "head":
            health = mark(r.get("health") == 200, str(r.get("health") or "down"))
            if r.get("engines") and (r.get("engines_planned") or 1) > 1:
                health += Text(f", {r['engines']}/{r['engines_planned']} engines")
        table.add_row(
            r["host"],
            r["role"],
            r["address"],
            mark(r["reachable"], "yes" if r["reachable"] else "no"),
            node,
            npu,
            str(r.get("vllm_pid") or "-") if shows_vllm else "",
            uptime(r.get("uptime_s")) if shows_vllm else "",
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
                mark(
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

    notes_block(report.notes)
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
        verdict = mark(v.passed, "ok" if v.passed else "BELOW")
        out.print(
            Text(f"{v.label}: {v.what} {v.measured:.1f} vs baseline {v.baseline:.1f} ({v.ratio:.2f}x) ") + verdict
        )
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


def render_image_load(report: Any) -> None:
    table = Table(box=None, pad_edge=False, header_style="dim")
    for col in ("host", "engine", "result", "sent", "seconds", "error"):
        table.add_column(col)
    for name, h in report.hosts.items():
        if h.get("error"):
            table.add_row(name, "-", mark(False, "failed"), "-", "-", h["error"])
            continue
        result = "had it" if h["had"] else ("loaded, resumed" if h["resumed_from"] else "loaded")
        if h.get("retagged"):
            result += f", renamed {', '.join(h['retagged'])}"
        table.add_row(name, h["engine"], mark(True, result), f"{h['sent'] >> 20} MiB", str(h["seconds"]), "")
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


def render_watch(event: Any) -> None:
    """One `watch` event: the time, the state in words, what changed; a heal and how it ended."""
    style = "green" if event.serving else ("bold red" if event.kind == "state" else "yellow")
    out.print(Text(f"{event.at} ", style="dim") + Text(event.summary, style=style))
    for change in event.changes:
        out.print(Text(f"  {change}"))
    if event.kind == "state":
        for f in event.findings:
            out.print(Text(f"  {f['host']} [{f['check']}]: {f['observed']} -> {f['fix']}"))
    elif event.heal_duration_s is not None:
        out.print(Text(f"  `up` ran for {event.heal_duration_s:g} s"))


def render_weights_sync(report: Any) -> None:
    for w in report.warnings:
        err.print(Text("warning: ", style="bold yellow") + Text(w))
    table = Table(box=None, pad_edge=False, header_style="dim")
    for col in ("host", "result", "MiB", "s", "MiB/s", "verified", "error"):
        table.add_column(col)
    for name, h in report.hosts.items():
        table.add_row(
            name,
            Text(h["result"], style="green" if h["result"] in ("complete", "unchanged") else "bold red"),
            str(h.get("bytes", 0) >> 20),
            f"{h.get('seconds', 0):g}",
            str(h.get("rate_mib_s") or "-"),
            str(h.get("verified", "-")),
            escape(str(h.get("error") or "")),
        )
    out.print(table)
    style = "bold green" if report.ok else "bold red"
    out.print(
        Text(
            f"weights sync: {report.files} file(s), {report.bytes >> 20} MiB from {report.source} in "
            f"{report.duration:.1f}s ({report.passes} pass(es))",
            style=style,
        )
    )


def render_weights_status(report: Any) -> None:
    table = Table(box=None, pad_edge=False, header_style="dim")
    for col in ("host", "state", "missing", "differing", "part files"):
        table.add_column(col)
    for name, h in report.hosts.items():
        table.add_row(
            name,
            Text(h["state"], style="green" if h["state"] == "complete" else "bold red"),
            ", ".join(h.get("missing", [])[:5]) or "-",
            ", ".join(h.get("differing", [])[:5]) or "-",
            ", ".join(h.get("partial", [])[:5]) or "-",
        )
    out.print(table)
    out.print(
        Text(
            f"weights at {report.path}: "
            + ("the same complete checkpoint on every host" if report.ok else "not the same complete checkpoint"),
            style="bold green" if report.ok else "bold red",
        )
    )
