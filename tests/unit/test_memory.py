"""The memory estimate against the reference's sizing table (docs/ascend-facts.md section 5).

The config.json files in tests/unit/models carry the real architecture numbers of each model
(no weights); for every model in the ModelArts table the planner's minimum device count must
equal the table's, on 64 GB cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import SIZING_TABLE
from toolkit.planner import memory

MODELS = Path(__file__).parent / "models"


def shape(name: str) -> memory.Shape:
    s = memory.shape_of(json.loads((MODELS / f"{name}.json").read_text()))
    assert s is not None
    return s


@pytest.mark.parametrize("name", sorted(SIZING_TABLE))
def test_min_devices_equals_the_sizing_table(name: str) -> None:
    cards, max_len = SIZING_TABLE[name]
    assert memory.min_devices(shape(name), max_len=max_len, hbm_gib=64, utilization=0.9, per_node=8) == cards


@pytest.mark.parametrize("name", sorted(SIZING_TABLE))
def test_32gb_cards_need_about_double(name: str) -> None:
    cards, max_len = SIZING_TABLE[name]
    n = memory.min_devices(shape(name), max_len=max_len, hbm_gib=32, utilization=0.9, per_node=8)
    assert n is not None and cards <= n <= 2 * cards


@pytest.mark.parametrize(
    "name, billions",
    [
        ("Qwen2.5-72B-Instruct", 72.7),
        ("Qwen3-235B-A22B", 235.1),
        ("Qwen3-30B-A3B", 30.5),
        ("DeepSeek-V3", 671.0),
        ("Mixtral-8x7B-Instruct-v0.1", 46.7),
        ("glm-4-9b-chat", 9.4),
        ("Llama-3.1-8B-Instruct", 8.03),
        ("Qwen2.5-0.5B-Instruct", 0.49),
    ],
)
def test_parameter_counts_match_published_sizes(name: str, billions: float) -> None:
    assert sum(memory.params(shape(name))) / 1e9 == pytest.approx(billions, rel=0.01)


def test_deepseek_w8a8_fits_16_devices_bf16_needs_32() -> None:
    s = shape("DeepSeek-R1")
    assert memory.min_devices(s, max_len=32768, hbm_gib=64, utilization=0.9, per_node=16, quantization="w8a8") == 16
    assert memory.min_devices(s, max_len=32768, hbm_gib=64, utilization=0.9, per_node=8) == 32


def test_mla_kv_cache_is_not_split_by_tp() -> None:
    s = shape("DeepSeek-V3")
    assert memory.kv_bytes_per_token(s, 1, 1) == memory.kv_bytes_per_token(s, 16, 1) == 61 * (512 + 64) * 2


def test_gqa_kv_heads_split_then_replicated() -> None:
    s = shape("Qwen3-235B-A22B")  # 4 KV heads
    assert memory.kv_bytes_per_token(s, 2, 1) == 2 * memory.kv_bytes_per_token(s, 4, 1)
    assert memory.kv_bytes_per_token(s, 8, 1) == memory.kv_bytes_per_token(s, 4, 1)  # one head per device at least


@pytest.mark.parametrize(
    "name, limit",
    [
        ("Meta-Llama-3-8B-Instruct", 8192),
        ("Llama-3.1-8B-Instruct", 131072),
        ("glm-4-9b-chat", 131072),
        ("Qwen3-8B", 40960),
        ("DeepSeek-V3", 163840),
    ],
)
def test_position_limits_as_vllm_derives_them(name: str, limit: int) -> None:
    assert memory.max_positions(json.loads((MODELS / f"{name}.json").read_text())) == limit


def test_yarn_override_extends_the_limit() -> None:
    cfg = json.loads((MODELS / "Qwen3-235B-A22B.json").read_text())
    over = {"rope_scaling": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32768}}
    assert memory.max_positions(cfg, over) == 65536


def test_max_len_that_fits_is_consistent_with_the_estimate() -> None:
    s = shape("Qwen2.5-32B-Instruct")
    best = memory.max_len_that_fits(s, tp=4, pp=1, hbm_gib=32, utilization=0.9)
    assert best > 0
    assert memory.estimate(s, tp=4, pp=1, max_len=best, hbm_gib=32, utilization=0.9).fits
    assert not memory.estimate(s, tp=4, pp=1, max_len=best + 2048, hbm_gib=32, utilization=0.9).fits
    assert memory.max_len_that_fits(shape("Qwen2.5-72B-Instruct"), tp=1, pp=1, hbm_gib=64, utilization=0.9) == 0


def test_incomplete_config_gives_no_shape() -> None:
    assert memory.shape_of({"model_type": "llama"}) is None
    assert memory.shape_of({"hidden_size": 0, "num_hidden_layers": 2, "num_attention_heads": 2}) is None
