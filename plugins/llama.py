"""Llama 3 / 3.1 and the DeepSeek-R1 distills built on them.

Source: Huawei ModelArts sizing table: Llama3/3.1-8B 1/32K; Llama3/3.1-70B 4/32K;
DeepSeek-R1-Distill-Llama-70B 4/32K (64 GB cards; 32 GB cards double). Llama 3 (not 3.1) has an
8K window: the planner caps the row's 32K to the model's limit.
"""

from __future__ import annotations

from toolkit.planner.memory import params, shape_of
from toolkit.plugin_api import ModelInfo, ModelProfile, hookimpl, sizing_rows

SOURCE = "Huawei ModelArts sizing table (docs/ascend-facts.md section 5)"
NAMES = r"llama-?3|deepseek-r1-distill-llama"


@hookimpl
def ascend_deploy_model_profile(model: ModelInfo) -> ModelProfile | None:
    if model.model_type not in ("llama", "") or not model.name_matches(NAMES):
        return None
    shape = shape_of(model.config)
    size = sum(params(shape)) / 1e9 if shape else model.size_b()
    rows = ()
    if size is not None:
        rows = sizing_rows(1, 32768) if size <= 9 else sizing_rows(4, 32768) if size <= 71 else ()
    family = "deepseek-r1-distill-llama" if model.name_matches("distill") else "llama3"
    return ModelProfile(family=family, source=SOURCE, rows=rows)


@hookimpl
def ascend_deploy_claims() -> list[str]:
    return ["Llama 3 / 3.1 (8B, 70B)", "DeepSeek-R1-Distill-Llama-70B"]
