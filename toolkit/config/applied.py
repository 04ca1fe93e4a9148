"""The inventory a deployment was started with, back from its record (`inventory_as_applied` in
`steps.record` wrote it): what `upgrade` hands `up`'s stages when it restores the recorded plan,
whatever the inventory file says now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from toolkit.config.inventory import Inventory, InventoryFile, ResolvedHost
from toolkit.errors import BadInput


def inventory_from_applied(applied: dict[str, Any], path: Path) -> Inventory:
    """`applied` (the record's `inventory`) as an Inventory; `path` is the file relative paths in it are
    read against (today's inventory file: the key files and known_hosts the run uses)."""
    try:
        spec = InventoryFile.model_validate(applied["spec"])
        hosts = [ResolvedHost.model_validate(h) for h in applied["hosts"]]
    except (KeyError, TypeError, ValidationError) as exc:
        raise BadInput(
            f"the deployment record's inventory cannot be read back ({type(exc).__name__}: {str(exc)[:300]})",
            hint="the record was written by another version: restore the previous deployment with `up` and the "
            "inventory it used",
        ) from None
    sets = {str(k): "--set" for k in applied.get("set") or []}
    return Inventory(path=path, spec=spec, hosts=hosts, origins={h.name: {} for h in hosts}, section_origins=sets)
