"""A checkpoint with MTP layers (config.json `num_nextn_predict_layers`) is served with the recipe's
speculative decoding unless `serve.speculative: off`; the memory estimate counts the layers it loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import MODELS
from toolkit import api
from toolkit.config.loader import load_inventory
from toolkit.planner.plan import Plan


def plan(folder: Path, *, mtp: bool = True, hardware: str = "910B3", devices: int = 8, **serve: Any) -> Plan:
    config = json.loads((MODELS / "DeepSeek-R1.json").read_text())
    assert config["num_nextn_predict_layers"] == 1  # as the published checkpoint's config.json says
    if not mtp:
        del config["num_nextn_predict_layers"]
    (folder / "config.json").write_text(json.dumps(config))
    data = {
        "cluster": "ds",
        "hardware": hardware,
        "defaults": {"devices": list(range(devices)), "nic": "eth0"},
        "hosts": [{"name": "n0", "address": "10.0.0.1", "role": "head"}, {"name": "n1", "address": "10.0.0.2"}],
        "model": {"path": "/data/models/DeepSeek-R1-w8a8", "config": "config.json"},
        "serve": serve,
    }
    text = yaml.safe_dump(data, sort_keys=False).replace("speculative: 'off'", "speculative: off")  # bare YAML off
    (folder / "inv.yaml").write_text(text)
    return api.plan(load_inventory(folder / "inv.yaml", []))


def spec_arg(p: Plan) -> Any:
    return next((a for a in p.vllm_args if a.flag == "--speculative-config"), None)


def test_mtp_layers_bring_the_recipes_speculative_config_and_count_in_memory(tmp_path: Path) -> None:
    on = plan(tmp_path)
    arg = spec_arg(on)
    assert json.loads(arg.value) == {"num_speculative_tokens": 3, "method": "mtp"}
    assert "DeepSeek-R1.md@182b75ea" in arg.origin and "1 MTP layer" in arg.origin
    assert "--speculative-config" in on.hosts[1].server_argv  # every rank runs it
    off = plan(tmp_path, speculative="off")
    assert spec_arg(off) is None and any("speculative decoding off" in n for n in off.notes)
    assert on.memory is not None and off.memory is not None
    assert on.memory.per_device.weights > off.memory.per_device.weights  # the MTP layer's weights


def test_no_mtp_layers_no_speculation_and_the_users_own_config_wins(tmp_path: Path) -> None:
    without = plan(tmp_path, mtp=False)
    assert spec_arg(without) is None and any("has none" in n for n in without.notes)
    mine = plan(tmp_path, extra_args=["--speculative-config", '{"num_speculative_tokens": 1, "method": "mtp"}'])
    ours = [a for a in mine.vllm_args if a.flag == "--speculative-config"]
    assert [a.origin for a in ours] == ["inventory serve.extra_args"]  # theirs alone, not the recipe's too


def test_the_bf16_nightly_on_two_a3_hosts_speculates_one_token(tmp_path: Path) -> None:
    config = json.loads((MODELS / "DeepSeek-R1.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    data = {
        "cluster": "ds",
        "hardware": "A3",
        "defaults": {"devices": list(range(16)), "nic": "eth0"},
        "hosts": [{"name": "n0", "address": "10.0.0.1", "role": "head"}, {"name": "n1", "address": "10.0.0.2"}],
        "model": {"path": "/data/models/DeepSeek-V3.1", "config": "config.json"},
    }
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(data))
    p = api.plan(load_inventory(tmp_path / "inv.yaml", []))
    assert json.loads(spec_arg(p).value) == {"num_speculative_tokens": 1, "method": "mtp"}
    assert "DeepSeek-V3.1-BF16.yaml@182b75ea" in spec_arg(p).origin
