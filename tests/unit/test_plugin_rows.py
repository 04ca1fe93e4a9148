"""Every row of every built-in plugin is a layout somebody publishes or sizes for a device class: planned
on that many hosts of its hardware with `launcher: auto` and no parallel sizes, it must plan, with the
row's layout (the dp launcher runs a row's PP stages as DP ranks)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.helpers import MODELS
from toolkit import api
from toolkit.config.hardware import DEVICES_PER_NODE, KINDS
from toolkit.config.loader import load_inventory
from toolkit.planner.plugins import load_plugins
from toolkit.plugin_api import ModelInfo, Row

#: the quantizations a plugin row may depend on (None: the checkpoint's own dtype)
QUANTS = (None, "w8a8")
#: one hardware kind per device class a row names
KIND_OF = {k.device_class: k.name for k in reversed(list(KINDS.values()))}


def rows() -> Iterator[Any]:
    plugins = load_plugins(entry_points=False)
    seen: set[str] = set()
    for config in sorted(MODELS.glob("*.json")):
        for quant in QUANTS:
            info = ModelInfo(
                path=f"/data/models/{config.stem}",
                name=config.stem,
                config=json.loads(config.read_text()),
                quantization=quant,
            )
            profile, _ = plugins.profile_for(info)
            for row in profile.rows:
                if (
                    f"{profile.family} {row}" in seen
                    or row.devices % DEVICES_PER_NODE[row.hardware]
                    and row.devices > DEVICES_PER_NODE[row.hardware]
                ):
                    continue
                seen.add(f"{profile.family} {row}")
                yield pytest.param(
                    config.stem, quant, row, id=f"{config.stem}-{quant or 'bf16'}-{row.hardware}-{row.devices}"
                )


@pytest.mark.parametrize("model, quant, row", list(rows()))
def test_every_plugin_row_plans_on_its_own_hardware(tmp_path: Path, model: str, quant: str | None, row: Row) -> None:
    per_node = DEVICES_PER_NODE[row.hardware]
    hosts = max(1, row.devices // per_node)
    shutil.copy(MODELS / f"{model}.json", tmp_path / "config.json")
    data = {
        "cluster": "rows",
        "hardware": KIND_OF[row.hardware],
        "defaults": {"devices": list(range(min(row.devices, per_node))), "nic": "auto"},
        "hosts": [
            {"name": f"n{i}", "address": f"10.0.0.{i + 1}", **({"role": "head"} if i == 0 else {})}
            for i in range(hosts)
        ],
        "model": {
            "path": f"/data/models/{model}",
            "config": "config.json",
            **({"quantization": quant} if quant else {}),
        },
    }
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    p = api.plan(load_inventory(tmp_path / "inv.yaml", []))
    layout = (p.tp.value, p.pp.value, p.dp.value)
    if p.launcher.value == "dp":
        assert layout == (row.tp, 1, row.pp * row.dp), p.tp.origin
    else:
        assert layout == (row.tp, row.pp, row.dp), p.tp.origin
    assert "plugin" in p.tp.origin
