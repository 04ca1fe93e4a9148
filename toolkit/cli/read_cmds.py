"""Commands that read the hosts or the plan and change nothing: facts, run, check-net, show-vars,
schema, plan, plugins.

No `from __future__ import annotations`: typer reads every signature at start-up (see app.py)."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from toolkit import api
from toolkit.cli.options import (
    EPILOG,
    AcceptKeysOpt,
    CheckOpt,
    ForksOpt,
    InventoryArg,
    JsonOpt,
    LimitOpt,
    SetOpt,
    VerboseOpt,
    app,
    exit_with,
    finish,
    guarded,
    inventory_of,
    options_of,
    progress_for,
)
from toolkit.config.inventory import InventoryFile
from toolkit.errors import EXIT_FAILED, EXIT_OK, BadInput


@app.command(epilog=EPILOG)
@guarded
def facts(
    inventory: InventoryArg = None,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
    check: CheckOpt = False,
    set_: SetOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
) -> None:
    """Gather read-only facts from every host: hostname, OS, kernel, CPU/memory, NICs with addresses,
    Python and package versions (vllm, vllm-ascend, torch, torch_npu, ray), Ascend driver/CANN versions
    and NPU count. One SSH connection and one round trip per host."""
    from toolkit.cli import render

    inv = inventory_of(inventory, set_)
    opts = options_of(limit, forks, verbose, check, accept_new_host_keys, set_)
    with progress_for(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).facts()
    if json_:
        stage = report.stages[0]
        render.print_json(
            {
                "ok": report.ok,
                "hosts": {
                    name: {
                        "ok": h.error is None,
                        "facts": h.data.get("facts"),
                        "error": h.error.to_dict() if h.error else None,
                    }
                    for name, h in stage.hosts.items()
                },
            }
        )
    else:
        render.render_facts(report)
        for name, host in report.stages[0].hosts.items():
            if host.error:
                render.render_error(host.error, as_json=False)
    exit_with(EXIT_OK if report.ok else EXIT_FAILED)


@app.command(epilog=EPILOG)
@guarded
def run(
    playbook: Annotated[
        str, typer.Argument(help="Bundled playbook name (facts, env, ...) or a path to a playbook YAML.")
    ],
    inventory: InventoryArg = None,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
    check: CheckOpt = False,
    set_: SetOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    tags: Annotated[
        Optional[str], typer.Option("--tags", help="Only stages with one of these tags (comma list).")
    ] = None,
    skip_tags: Annotated[
        Optional[str], typer.Option("--skip-tags", help="Skip stages with one of these tags (comma list).")
    ] = None,
) -> None:
    """Run a playbook: its stages in order, a barrier after each, stopping at the first stage that fails
    on any host. With --check, facts are read but nothing is changed, and each host's would-be commands
    are printed."""

    inv = inventory_of(inventory, set_)
    opts = options_of(limit, forks, verbose, check, accept_new_host_keys, set_)
    opts.tags = {t.strip() for t in (tags or "").split(",") if t.strip()}
    opts.skip_tags = {t.strip() for t in (skip_tags or "").split(",") if t.strip()}
    with progress_for(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).run(playbook)
    finish(report, json_, "render_report")


@app.command("check-net", epilog=EPILOG)
@guarded
def check_net(
    inventory: InventoryArg = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            "-m",
            help="rail: device i of every host pings device i of every other host (default); ring: device i pings "
            "device i of the next host, O(N), for large clusters; full: every device pair across hosts.",
        ),
    ] = "rail",
    packets: Annotated[int, typer.Option("--packets", min=1, max=100, help="Packets per ping.")] = 3,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
    set_: SetOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
) -> None:
    """NPU + network preflight in seconds: per NPU (npu-smi health, hccn_tool IP, link, net_health,
    optical, TLS switch, LLDP), card-to-card pings across hosts, the NIC that owns each host's address,
    routes and reachability of the head's Ray port, versions, model directory and clock on every host.
    Each problem names host, NPU, check, what was seen, what was expected and what to do. Exit 0 when
    clean, 1 when any problem is found."""
    from toolkit.checks.pings import MODES

    if mode not in MODES:
        raise BadInput(f"--mode {mode!r} is not one of {', '.join(MODES)}")
    inv = inventory_of(inventory, set_)
    opts = options_of(limit, forks, verbose, False, accept_new_host_keys, set_)
    with progress_for(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).check_net(mode=mode, packets=packets)
    finish(report, json_, "render_check_net")


@app.command("show-vars", epilog=EPILOG)
@guarded
def show_vars(
    inventory: InventoryArg = None,
    host: Annotated[Optional[str], typer.Argument(help="Host name (default: every host).", show_default=False)] = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Print every resolved setting of a host and the level it came from: default < defaults (inventory)
    < host (inventory entry) < --set."""
    from toolkit.cli import render
    from toolkit.config.vars import cluster_vars, host_vars
    from toolkit.config.yamlsrc import did_you_mean

    if inventory is not None and host is None and not inventory.exists() and inventory.suffix not in (".yaml", ".yml"):
        host, inventory = str(inventory), None  # `show-vars HOST` with the recorded inventory
    inv = inventory_of(inventory, set_)
    names = [h.name for h in inv.hosts]
    if host is not None and host not in names:
        guess = did_you_mean(host, names)
        raise BadInput(
            f"no host named '{host}' in {inv.path}",
            hint=f"did you mean '{guess}'?" if guess else f"hosts: {', '.join(names)}",
        )
    chosen = [host] if host else names
    if json_:
        render.print_json(
            {
                "inventory": str(inv.path),
                "hosts": {n: {k: {"value": v, "from": o} for k, v, o in host_vars(inv, n)} for n in chosen},
                "cluster": {k: {"value": v, "from": o} for k, v, o in cluster_vars(inv)},
            }
        )
        return
    for name in chosen:
        render.render_vars(name, host_vars(inv, name), cluster_vars(inv) if name == chosen[-1] else [])


@app.command(epilog=EPILOG)
@guarded
def schema(
    playbook: Annotated[
        bool, typer.Option("--playbook", help="Print the playbook schema instead of the inventory schema.")
    ] = False,
) -> None:
    """Print the JSON Schema of the inventory (for editor completion and validation), e.g. `ascend-
    deploy schema > inventory.schema.json`."""
    from toolkit.config.playbook import Playbook

    model = Playbook if playbook else InventoryFile
    data = model.model_json_schema()
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "ascend-deploy playbook" if playbook else "ascend-deploy inventory"
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@app.command(epilog=EPILOG)
@guarded
def plan(
    inventory: InventoryArg = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Print the full deployment without touching a host: roles, each host's environment and `ray start`
    command, the exact vLLM command, the memory estimate, and where every value came from (plugin row,
    inventory, default). Invalid combinations (TP x PP vs devices, max length vs the model, memory,
    flags removed in the target vLLM) fail here with exit 2, before anything starts."""
    from toolkit.cli import render
    from toolkit.planner.plan import plan_to_dict

    inv = inventory_of(inventory, set_)
    result = api.plan(inv)
    if json_:
        render.print_json({"ok": True, "inventory": str(inv.path), "plan": plan_to_dict(result)})
    else:
        render.render_plan(result, str(inv.path))


@app.command(epilog=EPILOG)
@guarded
def plugins(
    inventory: Annotated[
        Optional[Path], typer.Argument(help="Also load the plugin folders this inventory lists.", show_default=False)
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List every plugin (built-in `plugins/`, entry points in group `ascend_deploy.plugins`, inventory
    `plugins:` folders), where it was loaded from, the models it claims and the runtime profiles it adds."""
    from toolkit.cli import render

    inv = api.load(inventory, api.Options()) if inventory is not None else None
    infos = api.plugins_for(inv).describe()
    if json_:
        render.print_json({"ok": True, "plugins": infos})
    else:
        render.render_plugins(infos)
