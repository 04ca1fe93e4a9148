"""The plan as a record: `plan_from_dict(plan_to_dict(p)) == p` for every kind of plan (each
launcher, a container, every published recipe, a plan without config.json), through JSON; its digest
ignores why a value is what it is; its differences name what runs differently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import inventory, recipe_inventory
from toolkit import api
from toolkit.config.loader import load_inventory
from toolkit.planner.plan import Plan, plan_to_dict
from toolkit.planner.record import differences, plan_digest
from toolkit.planner.serialize import plan_from_dict

REPO = Path(__file__).resolve().parents[2]
IMAGE = "quay.io/ascend/vllm-ascend:v0.11.0"
RECIPES = sorted((Path(__file__).parent / "recipes").glob("*.yaml"))


def through_json(plan: Plan) -> Plan:
    return plan_from_dict(json.loads(json.dumps(plan_to_dict(plan))))


def plans(tmp_path: Path) -> dict[str, Plan]:
    out = {
        "ray": api.plan(inventory(tmp_path, "Qwen2.5-72B-Instruct", devices=[0, 1, 2, 3])),
        "dp": api.plan(inventory(tmp_path, "Qwen3-235B-A22B", hosts=2, devices=list(range(8)))),
        "mp": api.plan(inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0])),
        "no-config": api.plan(inventory(tmp_path, None, model_section={"path": "/data/models/Some-7B"}, hosts=1)),
        "container": api.plan(
            inventory(
                tmp_path,
                "Qwen2.5-7B-Instruct",
                hosts=2,
                devices=[0],
                container={"image": "quay.io/ascend/vllm-ascend:v0.11.0"},
            )
        ),
    }
    for example in ("example.yaml", "deepseek-r1-a3.yaml", "qwen3-235b-2xa2.yaml"):
        out[example] = api.plan(load_inventory(REPO / "inventories" / example))
    return out


def test_every_kind_of_plan_round_trips_through_json(tmp_path: Path) -> None:
    for name, plan in plans(tmp_path).items():
        assert through_json(plan) == plan, name
    assert plans(tmp_path)["container"].container is not None


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_published_recipe_round_trips(recipe: Path, tmp_path: Path) -> None:
    plan = api.plan(load_inventory(recipe_inventory(yaml.safe_load(recipe.read_text()), tmp_path)))
    assert through_json(plan) == plan


def test_the_digest_ignores_origins_and_the_differences_name_what_runs_differently(tmp_path: Path) -> None:
    base = api.plan(inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0]))
    by_set = api.plan(inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], sets=["serve.max_num_seqs=256"]))
    assert by_set.vllm_args != base.vllm_args  # another origin ...
    assert plan_digest(plan_to_dict(by_set)) == plan_digest(plan_to_dict(base))  # ... the same deployment
    seven = api.plan(inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], sets=["serve.max_num_seqs=7"]))
    old, new = plan_to_dict(base), plan_to_dict(seven)
    assert plan_digest(old) != plan_digest(new)
    assert differences(old, new) == ["vllm --max-num-seqs: 256 -> 7"]
    moved = api.plan(inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[1]))
    changed = differences(old, plan_to_dict(moved))
    assert "hosts[n0].devices: [0] -> [1]" in changed and "n0 env ASCEND_RT_VISIBLE_DEVICES: 0 -> 1" in changed
