"""The plan as tables: every value with its origin, the hosts' commands and environment, the
container, the resolved variables of `show-vars`, and the plugins."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from toolkit.planner.plan import Plan

from toolkit.cli.console import gib, out


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
            f"{gib(est.total)} of {gib(est.available)} per device (weights {gib(est.weights)}, KV cache "
            f"{gib(est.kv_cache)}, reserve {gib(est.reserve)})",
            f"fewest devices: {plan.memory.min_devices}; longest max-model-len here: {plan.memory.max_len_fits}",
        )
    if plan.startup is not None:
        summary.add_row(
            "cold start",
            f"~{float(plan.startup.value):g} s to the first /health 200 (`up` waits "
            f"{float(plan.ready_timeout.value):g} s: {plan.ready_timeout.origin})",
            plan.startup.origin,
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
        for proc in h.processes:  # in start order; the head's API server is shown in full below
            if proc.args:
                ranks = ", ".join(map(str, proc.ranks))
                out.print(Text(f"  DP rank(s) {ranks}: ", style="dim") + Text(_args_line(proc.args)))
            if not proc.api:
                out.print(Text("  $ ", style="dim") + Text(proc.command))

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
