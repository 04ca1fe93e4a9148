"""Qwen2 / Qwen2.5 / QwQ, Qwen3 dense and Qwen3 MoE (30B-A3B, 235B-A22B).

Source: Huawei ModelArts sizing table (min cards / max-model-len on 64 GB cards):
Qwen2.5-0.5B..14B 1/32K; Qwen2.5-32B 2/32K; Qwen2.5-72B, Qwen2-72B 4/32K; Qwen3-0.6B..14B 1/32K;
Qwen3-30B-A3B, Qwen3-32B, QwQ-32B 2/32K; Qwen3-235B-A22B 16/64K; 32 GB cards: double.
vllm-ascend tutorials: Qwen3 MoE with `--enable-expert-parallel`; W8A8 with `--quantization ascend`;
Qwen3-235B-A22B on two A2 hosts as DP 2 x TP 8 without Ray (docs/ascend-facts.md section 7; at
vllm-ascend@182b75ea that layout is published by the nightly config
tests/e2e/nightly/multi_node/internal_dp/config/Qwen3-235B-A22B-A2.yaml with max-model-len 40960 and a
benchmark baseline, so it is planned; the sizing table's 64K with YaRN on the same layout is listed
as also published). On two A3 hosts the nightly
tests/e2e/nightly/multi_node/internal_dp/config/Qwen3-235B-A22B.yaml@182b75ea runs DP 4 x TP 8, two ranks
per node, max-model-len 8192, no Ray, with a benchmark baseline (2209.9 output tok/s, gate 0.97x).
Qwen3's native window is 40960 tokens: 64K uses YaRN rope scaling (factor 2 over 32768), as
the Qwen3 model card describes.
"""

from __future__ import annotations

from dataclasses import replace

from toolkit.planner.memory import params, shape_of
from toolkit.plugin_api import ModelInfo, ModelProfile, Row, hookimpl, sizing_rows, with_layout

SOURCE = "Huawei ModelArts sizing table; vllm-ascend Qwen3 tutorials and nightly multi-node configs @182b75ea"
SIZING = "Huawei ModelArts sizing table (docs/ascend-facts.md section 5)"
YARN_64K = {"rope_scaling": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32768}}

#: (family, largest size in B this entry covers, min 64 GB cards, max-model-len, row extras)
TABLE: dict[str, list[tuple[float, int, int, dict]]] = {
    "qwen2.5": [(14.9, 1, 32768, {}), (33, 2, 32768, {}), (73, 4, 32768, {})],
    "qwen3": [(14.9, 1, 32768, {}), (33, 2, 32768, {})],
    "qwen3-moe": [(31, 2, 32768, {}), (236, 16, 65536, {"hf_overrides": YARN_64K})],
}
#: (family, min 64 GB cards) -> the published data-parallel layout on A2 (910B): (TP, DP)
DP_LAYOUTS = {("qwen3-moe", 16): (8, 2)}
NIGHTLY = "vllm-ascend tests/e2e/nightly/multi_node/internal_dp/config/{}@182b75ea"
#: (family, min 64 GB cards) -> more published layouts: the nightly multi-node configs (benchmark-gated)
PUBLISHED: dict[tuple[str, int], tuple[Row, ...]] = {
    ("qwen3-moe", 16): (
        Row(
            hardware="910B",
            devices=16,
            tp=8,
            dp=2,
            max_model_len=40960,
            note="nightly: DP 2 x TP 8 on 2 A2 nodes, 1 rank per node, no Ray (Qwen3's native window)",
            source=NIGHTLY.format("Qwen3-235B-A22B-A2.yaml"),
            launcher="dp",
            baseline="GSM8K 3.5k in / 1.5k out, rate 4.8: 1152.03 output tok/s (gate 0.97x)",
        ),
        Row(
            hardware="A3",
            devices=32,
            tp=8,
            dp=4,
            max_model_len=8192,
            note="nightly: DP 4 x TP 8 on 2 A3 nodes, 2 ranks per node, no Ray",
            source=NIGHTLY.format("Qwen3-235B-A22B.yaml"),
            launcher="dp",
            baseline="GSM8K 3.5k in / 1.5k out, rate 11.2: 2209.92 output tok/s (gate 0.97x)",
        ),
    ),
}


def _family(model: ModelInfo) -> str | None:
    kind = model.model_type
    if kind == "qwen3_moe" or (not kind and model.name_matches(r"qwen3-\d+b-a\d+b")):
        return "qwen3-moe"
    if kind == "qwen3" or (not kind and model.name_matches(r"qwen3")):
        return "qwen3"
    if kind == "qwen2" or (not kind and model.name_matches(r"qwen2|qwq")):
        return "qwen2.5"
    return None


def _size(model: ModelInfo) -> float | None:
    shape = shape_of(model.config)
    if shape is not None:
        return sum(params(shape)) / 1e9
    return model.size_b()


def rows_for(family: str, size: float | None) -> tuple[Row, ...]:
    if size is None:
        return ()
    for largest, cards, max_len, extra in TABLE[family]:
        if size <= largest:
            rows = sizing_rows(cards, max_len, source=SIZING, **extra)
            if (family, cards) in DP_LAYOUTS:
                tp, dp = DP_LAYOUTS[family, cards]
                note = f"the sizing table's {max_len // 1024}K on the nightly's DP {dp} x TP {tp} layout, no Ray"
                rows = with_layout(rows, "910B", tp=tp, dp=dp, note=note)
                rows = tuple(replace(r, launcher="dp") if r.hardware == "910B" else r for r in rows)
            return rows + PUBLISHED.get((family, cards), ())
    return ()


@hookimpl
def ascend_deploy_model_profile(model: ModelInfo) -> ModelProfile | None:
    family = _family(model)
    if family is None:
        return None
    quantized = (model.quantization or "").startswith("w8a8")
    args: tuple[str, ...] = ("--enable-expert-parallel",) if family == "qwen3-moe" else ()
    return ModelProfile(
        family=family,
        source=SOURCE,
        rows=rows_for(family, _size(model)),
        extra_args=args,
        quantization="ascend" if quantized else None,
    )


@hookimpl
def ascend_deploy_claims() -> list[str]:
    return ["Qwen2 / Qwen2.5 (0.5B-72B), QwQ-32B", "Qwen3 dense (0.6B-32B)", "Qwen3 MoE (30B-A3B, 235B-A22B)"]
