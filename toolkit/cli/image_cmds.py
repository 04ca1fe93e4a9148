"""`ascend-deploy image`: the container image on the hosts (status, load).

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
    LimitOpt,
    SetOpt,
    finish,
    guarded,
    inventory_of,
    options_of,
    progress_for,
)
from toolkit.errors import BadInput

image_app = typer.Typer(
    help=(
        "Container images on the hosts (inventory `container:`): `status` lists each host's engine and the plan's "
        "image id; `load` sends an image tarball (docker save | gzip) to every host that lacks it, for air-gapped "
        "clusters."
    ),
    no_args_is_help=True,
)


@image_app.command("load", epilog=EPILOG)
@guarded
def image_load(
    inventory: InventoryArg = None,
    archive: Annotated[
        Optional[Path],
        typer.Argument(
            help="The image tarball: `docker save IMAGE | gzip > IMAGE.tar.gz` (or .tar, podman save).",
            show_default=False,
        ),
    ] = None,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Send an image tarball to every host that does not have its image id, all hosts at once over their
    SSH connections, with progress per host; the host verifies the checksum, then `docker load` (or
    `podman load`) and the image id is checked. An interrupted run resumes where each host stopped; a host
    that already has the image is sent nothing. Exit 1 if any host failed (named, with the fix)."""
    if archive is None:
        raise BadInput("image load needs the tarball: ascend-deploy image load INVENTORY IMAGE.tar.gz")
    inv = inventory_of(inventory, set_)
    opts = options_of(limit, forks, False, False, accept_new_host_keys, set_)
    with progress_for(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).image_load(archive)
    finish(report, json_, "render_image_load")


@image_app.command("status", epilog=EPILOG)
@guarded
def image_status(
    inventory: InventoryArg = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Per host: the container engine, the plan's image id and digests, the cluster's container. Exit 1 if a
    host lacks the image, has another id than the head, or has no engine (as `up`'s preflight would refuse)."""
    inv = inventory_of(inventory, set_)
    opts = options_of(None, None, False, False, accept_new_host_keys, set_)
    with progress_for(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).image_status()
    finish(report, json_, "render_image_status")
