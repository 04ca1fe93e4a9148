"""Commands that change a running deployment and show its past: upgrade, history.

No `from __future__ import annotations`: typer reads every signature at start-up (see app.py)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolkit import api
from toolkit.cli.options import (
    EPILOG,
    AcceptKeysOpt,
    ForksOpt,
    InventoryArg,
    JsonOpt,
    SetOpt,
    VerboseOpt,
    app,
    finish,
    guarded,
    inventory_of,
    options_of,
    progress_for,
)
from toolkit.errors import BadInput


@app.command(epilog=EPILOG)
@guarded
def upgrade(
    inventory: InventoryArg = None,
    gate: Annotated[
        Optional[Path],
        typer.Option(
            "--gate",
            help="A result.json of `bench` measured on the running deployment: after the new one is ready, "
            "its load points are measured again and the upgrade stays only if each keeps --min-ratio of the "
            "baseline's output tokens/s.",
        ),
    ] = None,
    min_ratio: Annotated[
        float, typer.Option("--min-ratio", min=0.01, max=10.0, help="The gate's ratio (vllm-ascend's nightly: 0.97).")
    ] = 0.97,
    check_latency: Annotated[
        bool, typer.Option("--check-latency", help="The gate also holds p99 TTFT and TPOT to baseline / ratio.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the differences and the steps; touch nothing.")
    ] = False,
    forks: ForksOpt = None,
    verbose: VerboseOpt = False,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Replace the running deployment with what the inventory (and --set) plans now, e.g. a new vendor
    image (`--set container.image=...`) or runtime profile, and roll back by itself when it is worse.

    Reads the plan that runs from the deployment record on the head and shows what changes (image,
    runtime profile, flags, environment, layout); nothing to change exits 0. While the old deployment
    still serves: the new image on every host (`image status`; `image load` is the fix), the weights,
    the new plan's preflight. Then, under the cluster lock, `up`'s stages apply the new plan and wait
    for readiness; with --gate the baseline's load points run again. A failure from there on (a rank
    exits, readiness times out, the gate falls short) or a Ctrl-C restores the recorded plan (its image
    is still on the hosts), checks that it serves, and exits 1 with the report: what changed, where it
    failed (log tail or the gate's numbers), how long the rollback took. Ctrl-C twice stops the rollback
    too. `history` shows every upgrade and rollback."""
    inv = inventory_of(inventory, set_)
    opts = options_of(None, forks, verbose, False, accept_new_host_keys, set_)
    if gate is not None and not gate.is_file():
        raise BadInput(f"--gate {gate}: no such file", hint="give a result.json that `ascend-deploy bench` saved")
    settings = api.Gate(gate, min_ratio, check_latency) if gate is not None else None
    with progress_for(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).upgrade(gate=settings, dry_run=dry_run)
    finish(report, json_, "render_upgrade")


@app.command(epilog=EPILOG)
@guarded
def history(
    inventory: InventoryArg = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    json_: JsonOpt = False,
) -> None:
    """The deployments the head's record keeps, newest first: when, which tool and how (up, upgrade,
    rollback), the plan's digest, image and runtime, what changed from the one before, the gate's
    result, and whether it was rolled back. Reads one file on the head; changes nothing."""
    inv = inventory_of(inventory, None)
    opts = options_of(None, None, False, False, accept_new_host_keys, None)
    with progress_for(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).history()
    finish(report, json_, "render_history")
