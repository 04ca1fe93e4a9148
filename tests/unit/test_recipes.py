"""Each multi-node recipe vllm-ascend publishes for a model family we carry, planned on its hardware with
`launcher: auto` and no parallel sizes: per node, the structural flags of `vllm serve` and the recipe's
model environment equal the recipe's (tests/unit/recipes/*.yaml, copied from the source at its commit;
differences kept on purpose are listed there with the reason)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import recipe_inventory
from toolkit import api
from toolkit.config.loader import load_inventory

RECIPES = sorted((Path(__file__).parent / "recipes").glob("*.yaml"))
#: what decides where ranks run and how they meet (tuning flags such as --max-num-seqs are the user's)
STRUCTURAL = (
    "--data-parallel-size",
    "--data-parallel-size-local",
    "--data-parallel-start-rank",
    "--headless",
    "--data-parallel-address",
    "--data-parallel-rpc-port",
    "--tensor-parallel-size",
    "--enable-expert-parallel",
    "--quantization",
    "--max-model-len",
    "--speculative-config",
    "--tokenizer-mode",  # model-level flags a recipe needs (DeepSeek-V3.2's tokenizer and reasoning parser)
    "--reasoning-parser",
)
#: per host, from the inventory's addresses and NICs (checked by the planner's own tests)
HOST_VARS = {"HCCL_IF_IP", "GLOO_SOCKET_IFNAME", "TP_SOCKET_IFNAME", "HCCL_SOCKET_IFNAME"}
HEAD_ADDRESS = "10.0.0.1"


def flags(argv: list[str]) -> dict[str, Any]:
    """`--flag value` / `--flag=value` / a switch (True), JSON values compared as data."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            if "=" in arg:
                key, value = arg.split("=", 1)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                key, value = arg, argv[i + 1]
                i += 1
            else:
                key, value = arg, True
            try:
                out[key] = json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value
            except ValueError:
                out[key] = value
        i += 1
    return out


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_the_plan_equals_the_published_recipe_per_node(path: Path, tmp_path: Path) -> None:
    recipe = yaml.safe_load(path.read_text())
    assert "@" in recipe["source"] and len(recipe["nodes"]) == recipe["hosts"]
    kept = recipe.get("kept") or {}
    p = api.plan(load_inventory(recipe_inventory(recipe, tmp_path), []))
    for index, (node, host) in enumerate(zip(recipe["nodes"], p.hosts)):
        words = {
            "$local_ip": host.address,
            "$node0_ip": HEAD_ADDRESS,
            "$LOCAL_IP": host.address,
            "$MASTER_IP": HEAD_ADDRESS,
        }
        text = node["serve"]
        for word, value in words.items():
            text = text.replace(word, value)
        published = flags(shlex.split(text))
        planned = flags(list(host.server_argv) if host.server_argv else (p.vllm_argv() if index == 0 else []))
        for flag in STRUCTURAL:
            if flag in kept:
                continue
            assert planned.get(flag) == published.get(flag), (
                path.name,
                host.name,
                flag,
                planned.get(flag),
                published.get(flag),
            )
        env = {k: str(v.value) for k, v in host.env.items()}
        wanted = {k: str(v) for k, v in node["env"].items() if k not in HOST_VARS and k not in kept}
        assert {k: env.get(k) for k in wanted} == wanted, (path.name, host.name)
    assert p.launcher.value == ("dp" if recipe["hosts"] > 1 else "mp") and not any(h.ray_argv for h in p.hosts)
