"""The weights' quantization is read from the checkpoint's own files (ModelSlim's
quant_model_description.json, config.json's quantization_config), the name only as a last resort, and
`plan` says which one it used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import MODELS, cli
from toolkit import api
from toolkit.config.loader import load_inventory
from toolkit.errors import BadInput
from toolkit.planner.checkpoint import from_config, from_description
from toolkit.planner.plan import PlanInvalid

#: the shape of a ModelSlim description (vllm-ascend's quantized DeepSeek): one scheme per weight, FLOAT kept
DESCRIPTION = {
    "model_quant_type": "W8A8_DYNAMIC",
    "version": "1.0.0",
    "model.embed_tokens.weight": "FLOAT",
    "model.layers.0.self_attn.q_a_proj.weight": "W8A8_DYNAMIC",
    "model.layers.0.self_attn.q_a_proj.input_scale": "W8A8_DYNAMIC",
    "model.layers.3.mlp.experts.0.down_proj.weight": "W8A8_DYNAMIC",
    "lm_head.weight": "FLOAT",
}


def test_the_description_file_names_the_scheme() -> None:
    assert from_description(DESCRIPTION) == ("w8a8_dynamic", "model_quant_type W8A8_DYNAMIC")
    per_weight = {k: v for k, v in DESCRIPTION.items() if k != "model_quant_type"}
    per_weight["model.layers.1.mlp.down_proj.weight"] = "W8A8"
    per_weight["model.layers.2.mlp.down_proj.weight"] = "W8A8"
    per_weight["model.layers.4.mlp.down_proj.weight"] = "W8A8"
    assert from_description(per_weight) == ("w8a8", "3 of 5 quantized weights W8A8")
    assert from_description({"a.weight": "W4A8_DYNAMIC"})[0] == "w4a8"
    assert from_description({"a.weight": "FLOAT"}) == (None, "no quantized weight listed")
    assert from_description({"a.weight": "W8A8C8"})[0] == "w8a8c8"  # a scheme we do not size: kept as named


def test_config_json_quantization_config() -> None:
    w8a8 = {
        "quant_method": "compressed-tensors",
        "config_groups": {"group_0": {"weights": {"num_bits": 8}, "input_activations": {"num_bits": 8}}},
    }
    assert from_config({"quantization_config": w8a8})[0] == "w8a8"  # type: ignore[index]
    assert from_config({"quantization_config": {"quant_method": "fp8"}})[0] == "fp8"  # type: ignore[index]
    assert from_config({}) is None
    assert from_config({"quantization_config": {"quant_method": "awq"}})[0] is None  # type: ignore[index]


def write_inventory(folder: Path, config: Path, *, path: str = "/data/models/DeepSeek-R1", **model: str) -> Path:
    data = {
        "cluster": "ds",
        "hardware": "910B3",
        "defaults": {"devices": list(range(8)), "nic": "eth0"},
        "hosts": [{"name": "a2-0", "address": "10.0.0.1", "role": "head"}, {"name": "a2-1", "address": "10.0.0.2"}],
        "model": {"path": path, "config": str(config), **model},
    }
    (folder / "inv.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "inv.yaml"


def test_deepseek_r1_marked_w8a8_by_its_description_plans_the_published_recipe(tmp_path: Path) -> None:
    """The done-when of the recipes issue: no parallel sizes, a checkpoint whose name says nothing, marked
    W8A8 by its description file: DP 4 x TP 4, two ranks per host, --quantization ascend, the recipe's
    environment, no Ray."""
    shutil.copy(MODELS / "DeepSeek-R1.json", tmp_path / "config.json")
    (tmp_path / "quant_model_description.json").write_text(json.dumps(DESCRIPTION))
    p = api.plan(load_inventory(write_inventory(tmp_path, tmp_path / "config.json"), []))
    assert p.quantization.value == "w8a8_dynamic" and p.quantization.origin.startswith(
        str(tmp_path / "quant_model_description.json")
    )
    assert (p.tp.value, p.pp.value, p.dp.value, p.launcher.value) == (4, 1, 4, "dp")
    head, worker = p.hosts
    assert not head.ray_argv and not worker.ray_argv
    argv = list(worker.server_argv)
    assert (
        argv[argv.index("--data-parallel-size-local") + 1] == "2"
        and argv[argv.index("--data-parallel-start-rank") + 1] == "2"
    )
    assert argv[argv.index("--quantization") + 1] == "ascend" and "--headless" in argv
    env = {k: v.value for k, v in worker.env.items()}
    assert {
        k: env[k]
        for k in ("HCCL_BUFFSIZE", "VLLM_ASCEND_BALANCE_SCHEDULING", "HCCL_INTRA_PCIE_ENABLE", "HCCL_INTRA_ROCE_ENABLE")
    } == {
        "HCCL_BUFFSIZE": "200",
        "VLLM_ASCEND_BALANCE_SCHEDULING": "1",
        "HCCL_INTRA_PCIE_ENABLE": "1",
        "HCCL_INTRA_ROCE_ENABLE": "0",
    }


def test_a_named_config_copy_finds_its_named_description_and_the_cli_shows_where(tmp_path: Path) -> None:
    shutil.copy(MODELS / "DeepSeek-R1.json", tmp_path / "DeepSeek-R1.config.json")
    (tmp_path / "DeepSeek-R1.quant_model_description.json").write_text(json.dumps(DESCRIPTION))
    (tmp_path / "Other.quant_model_description.json").write_text(json.dumps({"a.weight": "W4A8_DYNAMIC"}))
    inv = write_inventory(tmp_path, tmp_path / "DeepSeek-R1.config.json")
    out = cli("plan", str(inv), "--json")
    assert out.returncode == 0, out.stderr
    quant = json.loads(out.stdout)["plan"]["model"]["quantization"]
    assert quant == {
        "value": "w8a8_dynamic",
        "from": f"{tmp_path / 'DeepSeek-R1.quant_model_description.json'}: model_quant_type W8A8_DYNAMIC",
    }
    table = cli("plan", str(inv))
    assert "weights" in table.stdout and "w8a8_dynamic" in table.stdout


def test_the_name_is_a_last_resort_and_the_inventory_wins(tmp_path: Path) -> None:
    shutil.copy(MODELS / "DeepSeek-R1.json", tmp_path / "config.json")
    by_name = api.plan(
        load_inventory(write_inventory(tmp_path, tmp_path / "config.json", path="/data/models/DeepSeek-R1-w8a8"), [])
    )
    assert by_name.quantization.value == "w8a8" and by_name.quantization.origin.startswith("model name (last resort")
    with pytest.raises(PlanInvalid) as bf16:  # nothing marks it: 16-bit weights, which 2 A2 hosts cannot hold
        api.plan(
            load_inventory(write_inventory(tmp_path, tmp_path / "config.json", path="/data/models/DeepSeek-R1"), [])
        )
    assert any("needs about" in i.message for i in bf16.value.issues)
    (tmp_path / "quant_model_description.json").write_text(json.dumps(DESCRIPTION))
    stated = api.plan(load_inventory(write_inventory(tmp_path, tmp_path / "config.json", quantization="w4a8"), []))
    assert (stated.quantization.value, stated.quantization.origin) == ("w4a8", "inventory model.quantization")


def test_an_unreadable_description_is_refused_with_the_file(tmp_path: Path) -> None:
    shutil.copy(MODELS / "DeepSeek-R1.json", tmp_path / "config.json")
    (tmp_path / "quant_model_description.json").write_text("{not json")
    with pytest.raises(BadInput) as raised:
        api.plan(load_inventory(write_inventory(tmp_path, tmp_path / "config.json"), []))
    assert str(tmp_path / "quant_model_description.json") in raised.value.message and raised.value.hint
