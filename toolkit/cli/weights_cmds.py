"""`ascend-deploy weights`: the checkpoint at `model.path` on every host (sync, status).

No `from __future__ import annotations`: typer reads every signature at start-up (see app.py)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolkit import api
from toolkit.cli.options import (
    EPILOG,
    AcceptKeysOpt,
    InventoryArg,
    JsonOpt,
    LimitOpt,
    SetOpt,
    finish,
    guarded,
    inventory_of,
    options_of,
    progress_for,
)
from toolkit.errors import BadInput

weights_app = typer.Typer(
    help=(
        "The model's weights on every host's local disk (`model.path`): `sync` carries them host to host in "
        "a pipelined chain (one copy's time whatever the host count), verified and resumable; `status` tells "
        "which hosts hold the same complete checkpoint."
    ),
    no_args_is_help=True,
)


@weights_app.command("sync", epilog=EPILOG)
@guarded
def weights_sync(
    inventory: InventoryArg = None,
    from_local: Annotated[
        Optional[Path],
        typer.Option("--from-local", help="A checkpoint folder on this machine (the jump host): it goes out once."),
    ] = None,
    from_host: Annotated[
        Optional[str],
        typer.Option(
            "--from",
            help="HOST: a host whose model.path holds a complete, verified copy (default: the first such host); "
            "HOST:DIR: a checkpoint folder on that host (hashed there once), whose own model.path is filled too.",
        ),
    ] = None,
    fanout: Annotated[
        int,
        typer.Option("--fanout", min=1, max=16, help="Children per host: 1 is a chain (the fastest on equal links)."),
    ] = 1,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a host that holds another complete checkpoint at model.path.")
    ] = False,
    limit: LimitOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Put the checkpoint at `model.path` on every host that lacks it or differs. Each host receives the
    stream from its predecessor over the cluster network (one connection per host, bound to its inventory
    address, accepted once from the expected peer with a one-time token; nothing listens after the run),
    writes it to a hidden part file while forwarding it, and renames each file once its SHA-256 matches the
    source's manifest; the manifest (name, size, sha256) is kept in the model folder, so a re-run compares
    manifests and sends only what is missing. An interrupted run resumes from each host's part files; a host
    that fails mid-chain is routed around in a second pass. Refused before any byte moves (exit 2): too
    little disk, a source that is not a checkpoint, a host that holds another checkpoint (--replace)."""
    if from_local is not None and from_host is not None:
        raise BadInput("give one source: --from-local DIR or --from HOST")
    inv = inventory_of(inventory, set_)
    opts = options_of(limit, None, False, False, accept_new_host_keys, set_)
    with progress_for(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).weights_sync(
            from_local=from_local, from_host=from_host, fanout=fanout, replace=replace
        )
    finish(report, json_, "render_weights_sync")


@weights_app.command("status", epilog=EPILOG)
@guarded
def weights_status(
    inventory: InventoryArg = None,
    limit: LimitOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Per host: complete, or the files missing or differing from the manifest most hosts hold, part files
    of a stopped sync, no manifest; and whether every host holds the same one. Reads manifests and sizes,
    hashes nothing. Exit 1 unless every host holds the same complete checkpoint."""
    inv = inventory_of(inventory, set_)
    opts = options_of(limit, None, False, False, accept_new_host_keys, set_)
    with progress_for(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).weights_status()
    finish(report, json_, "render_weights_status")
