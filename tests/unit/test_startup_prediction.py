"""The next cold start predicted from measured ones, and the start-up timeouts sized from it (pure
planning over a history), and the control machine's history file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.helpers import inventory
from toolkit import api
from toolkit.config.startups import KEEP, append_startup, read_startups
from toolkit.planner.plan import make_plan
from toolkit.planner.plugins import load_plugins
from toolkit.planner.startup import plan_start_key, startup_record

pytestmark = pytest.mark.unit
MODEL = "Qwen2.5-72B-Instruct"


def planned(tmp_path: Path, history: list[dict], **changes: object):
    inv = inventory(tmp_path, MODEL, hosts=2, **changes)
    config = json.loads((tmp_path / "config.json").read_text())
    return make_plan(inv, load_plugins([]), config, "config.json", None, history)


def measured(tmp_path: Path, ready_s: float, at: str = "2026-12-01T10:00:00+00:00", **changes: object) -> dict:
    plan = planned(tmp_path, [], **changes)
    phases = {"weights_s": ready_s / 2, "engine_init_s": ready_s / 4}
    return startup_record(plan_start_key(plan), phases, ready_s, at, "0.1.0")


def test_without_a_measured_start_the_rule_of_thumb_says_so(tmp_path: Path) -> None:
    plan = planned(tmp_path, [])
    assert plan.startup is not None and plan.startup.origin.startswith("rule of thumb (no measured start")
    env = plan.head.env
    assert env["VLLM_ENGINE_READY_TIMEOUT_S"].origin.startswith("sized: ~")
    assert plan.ready_timeout.value == 1800.0 and plan.ready_timeout.origin == "default"


def test_the_same_model_and_layout_predicts_and_sizes_the_timeouts(tmp_path: Path) -> None:
    history = [measured(tmp_path, 400.0, at="2026-11-01T00:00:00+00:00"), measured(tmp_path, 1000.0)]
    plan = planned(tmp_path, history)
    assert plan.startup.value == 1000.0  # the newest of the closest level
    assert "the cold start of 2026-12-01T10:00:00+00:00 (same model and layout: /health after 1000 s" in (
        plan.startup.origin
    )
    assert "weights_s 500" in plan.startup.origin
    env = plan.head.env
    assert env["VLLM_ENGINE_READY_TIMEOUT_S"].value == "2040"  # 2 x 1000 s, in whole minutes
    assert env["VLLM_ENGINE_READY_TIMEOUT_S"].origin.startswith("2 x the predicted cold start: the cold start of")
    assert env["HCCL_CONNECT_TIMEOUT"].value == "2040"
    assert "collectives while serving" in env["HCCL_EXEC_TIMEOUT"].origin  # not from the prediction
    assert plan.ready_timeout.value == 2160.0 and "the engines' start-up timeout + 120s" in plan.ready_timeout.origin
    quick = planned(tmp_path, [measured(tmp_path, 30.0)])
    assert quick.head.env["VLLM_ENGINE_READY_TIMEOUT_S"].value == "600"  # never below vLLM's default


def test_a_closer_record_wins_and_an_unrelated_one_is_ignored(tmp_path: Path) -> None:
    other_layout = measured(tmp_path, 900.0, serve={"pipeline_parallel_size": 2, "tensor_parallel_size": 8})
    other_layout["layout"] = {**other_layout["layout"], "tp": 4, "pp": 4}
    other_model = {**measured(tmp_path, 50.0), "model": "/data/models/another"}
    plan = planned(tmp_path, [other_layout, other_model])
    assert plan.startup.value == 900.0 and "(same model, another layout:" in plan.startup.origin
    exact = measured(tmp_path, 700.0, at="2026-10-01T00:00:00+00:00")  # older, but the same layout
    plan = planned(tmp_path, [exact, other_layout])
    assert plan.startup.value == 700.0 and "same model and layout:" in plan.startup.origin
    assert planned(tmp_path, [other_model]).startup.origin.startswith("rule of thumb")


def test_a_user_ready_timeout_still_wins(tmp_path: Path) -> None:
    plan = planned(tmp_path, [measured(tmp_path, 1000.0)], serve={"ready_timeout": 5000})
    assert plan.ready_timeout.value == 5000.0


def test_the_history_file_is_private_bounded_and_tolerant(tmp_path: Path) -> None:
    path = tmp_path / "state" / "startups.jsonl"
    assert read_startups(path) == []
    append_startup({"model": "m", "ready_s": 1.0}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with path.open("a") as f:
        f.write('not json\n{"no": "ready_s"}\n')
    append_startup({"model": "m", "ready_s": 2.0}, path)
    assert [r["ready_s"] for r in read_startups(path)] == [1.0, 2.0]
    for i in range(KEEP + 3):
        append_startup({"model": "m", "ready_s": float(i)}, path)
    kept = read_startups(path)
    assert len(kept) == KEEP and kept[-1]["ready_s"] == float(KEEP + 2)


def test_api_plan_reads_the_history_the_environment_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = tmp_path / "h.jsonl"
    monkeypatch.setenv("ASCEND_DEPLOY_STARTUPS", str(history))
    record = measured(tmp_path, 1000.0)
    append_startup(record, history)
    inv = inventory(tmp_path, MODEL, hosts=2)
    assert api.plan(inv).startup.value == 1000.0
