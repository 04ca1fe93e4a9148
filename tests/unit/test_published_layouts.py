"""Several published layouts for one hardware and device count: the one with a benchmark baseline is
planned, the others are listed by `plan` (table and --json) with their sources and the `--set` options
that pick them; a row that states its launcher is started that way under `launcher: auto`."""

from __future__ import annotations

import json
import shlex
import shutil
import textwrap
from pathlib import Path

import yaml

from tests.helpers import MODELS, cli

PLUGIN = """
from toolkit.plugin_api import ModelProfile, Row, hookimpl

@hookimpl
def ascend_deploy_model_profile(model):
    if not model.name_matches("qwen2.5-72b"):
        return None
    return ModelProfile(
        family="published-72b",
        source="test recipes",
        rows=(
            Row(hardware="910B", devices=16, tp=8, pp=2, max_model_len=16384, source="tutorial.md@abc"),
            Row(hardware="910B", devices=16, tp=4, dp=4, max_model_len=8192, source="nightly.yaml@abc",
                launcher="dp", baseline="1000 tok/s"),
        ),
    )
"""


def inventory(
    folder: Path, *, hardware: str = "910B3", hosts: int = 2, devices: int = 8, model: str = "Qwen2.5-72B-Instruct"
) -> Path:
    shutil.copy(MODELS / f"{model}.json", folder / "config.json")
    data = {
        "cluster": "pub",
        "hardware": hardware,
        "defaults": {"devices": list(range(devices)), "nic": "eth0"},
        "hosts": [
            {"name": f"n{i}", "address": f"10.0.0.{i + 1}", **({"role": "head"} if i == 0 else {})}
            for i in range(hosts)
        ],
        "model": {"path": f"/data/models/{model}", "config": "config.json"},
        "plugins": ["mine"],
    }
    (folder / "mine").mkdir(exist_ok=True)
    (folder / "mine" / "recipes.py").write_text(textwrap.dedent(PLUGIN))
    (folder / "inv.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "inv.yaml"


def test_the_benchmarked_layout_is_planned_and_the_other_listed_with_how_to_pick_it(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    out = cli("plan", str(inv), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["plan"]
    parallel = plan["parallel"]
    assert (parallel["tp"]["value"], parallel["pp"]["value"], parallel["dp"]["value"]) == (4, 1, 4)
    assert plan["launch"]["launcher"]["value"] == "dp" and "nightly.yaml@abc" in plan["launch"]["launcher"]["from"]
    assert plan["model"]["row"]["baseline"] == "1000 tok/s"
    (alt,) = plan["model"]["alternatives"]
    assert (alt["layout"], alt["source"]) == ("TP 8 x PP 2 x DP 1", "tutorial.md@abc")
    table = cli("plan", str(inv), cwd=tmp_path)
    assert "also published" in table.stdout and "tutorial.md@abc" in table.stdout

    picked = cli("plan", str(inv), "--json", *shlex.split(alt["set"]), "--set", "serve.launcher=ray", cwd=tmp_path)
    assert picked.returncode == 0, picked.stderr
    chosen = json.loads(picked.stdout)["plan"]
    assert (
        chosen["parallel"]["tp"]["value"],
        chosen["parallel"]["pp"]["value"],
        chosen["parallel"]["dp"]["value"],
    ) == (8, 2, 1)
    assert chosen["launch"]["launcher"]["value"] == "ray"
    assert any(a["max_model_len"] == 16384 for a in [chosen["model"]["row"], *chosen["model"]["alternatives"]])


def test_qwen3_235b_on_two_a3_hosts_plans_the_nightly_dp4_tp8(tmp_path: Path) -> None:
    """The recipes issue's done-when: vllm-ascend's nightly Qwen3-235B-A22B.yaml layout on 2 x A3."""
    inv = inventory(tmp_path, hardware="A3", devices=16, model="Qwen3-235B-A22B")
    out = cli("plan", str(inv), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["plan"]
    parallel = plan["parallel"]
    assert (parallel["tp"]["value"], parallel["pp"]["value"], parallel["dp"]["value"]) == (8, 1, 4)
    assert plan["launch"]["launcher"]["value"] == "dp"
    assert plan["model"]["row"]["source"].endswith("internal_dp/config/Qwen3-235B-A22B.yaml@182b75ea")
    worker = next(h for h in plan["hosts"] if h["role"] == "worker")
    assert "--data-parallel-size-local 2" in worker["server_command"] and worker["ranks"] == [2, 3]
    assert plan["hosts"][0]["env"]["HCCL_OP_EXPANSION_MODE"]["value"] == "AIV"


def test_deepseek_v31_bf16_on_two_a3_hosts_plans_the_nightly_layout_and_environment(tmp_path: Path) -> None:
    """vllm-ascend's nightly DeepSeek-V3.1-BF16.yaml: DP 4 x TP 8, two ranks per node, its HCCL settings,
    each named with the file it comes from."""
    inv = inventory(tmp_path, hardware="A3", devices=16, model="DeepSeek-V3")
    out = cli("plan", str(inv), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["plan"]
    parallel = plan["parallel"]
    assert (parallel["tp"]["value"], parallel["dp"]["value"], plan["launch"]["launcher"]["value"]) == (8, 4, "dp")
    env = plan["hosts"][1]["env"]
    assert env["HCCL_BUFFSIZE"]["value"] == "2048" and env["VLLM_ASCEND_ENABLE_MLAPO"]["value"] == "1"
    assert env["HCCL_BUFFSIZE"]["from"].endswith("DeepSeek-V3.1-BF16.yaml@182b75ea)")
