"""Local memory of the last inventory `up` used in this folder, so later commands may omit it.

Only a convenience: `down` and `status` always probe the live hosts, never trust local state."""

from __future__ import annotations

import os
from pathlib import Path

from toolkit.errors import BadInput

STATE_DIR = Path(".ascend-deploy")
LAST_INVENTORY = STATE_DIR / "last-inventory"


def record_inventory(path: Path, cwd: Path | None = None) -> None:
    base = cwd or Path.cwd()
    target = base / LAST_INVENTORY
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(str(path.resolve()) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def default_inventory(cwd: Path | None = None) -> Path:
    """The inventory recorded by the last `up` here, or a BadInput saying what to pass."""
    base = cwd or Path.cwd()
    target = base / LAST_INVENTORY
    if target.is_file():
        recorded = Path(target.read_text(encoding="utf-8").strip())
        if recorded.is_file():
            return recorded
        raise BadInput(
            f"the last `up` here used {recorded}, which no longer exists",
            hint="pass the inventory explicitly, e.g. `ascend-deploy status inventories/prod.yaml`",
        )
    raise BadInput(
        "no inventory given and no `up` has run in this folder",
        hint="pass the inventory file, e.g. `ascend-deploy facts inventories/prod.yaml`",
    )
