"""GLM-4 (glm-4-9b-chat with its own modelling code, GLM-4-9B-0414 in transformers' format).

Source: Huawei ModelArts sizing table: GLM-4-9B 1/32K on 64 GB cards (32 GB cards: double).
"""

from __future__ import annotations

from toolkit.plugin_api import ModelInfo, ModelProfile, hookimpl, sizing_rows

SOURCE = "Huawei ModelArts sizing table (docs/ascend-facts.md section 5)"


@hookimpl
def ascend_deploy_model_profile(model: ModelInfo) -> ModelProfile | None:
    if model.model_type not in ("chatglm", "glm4", "glm") and not (
        not model.model_type and model.name_matches(r"glm-?4")
    ):
        return None
    return ModelProfile(
        family="glm-4",
        source=SOURCE,
        rows=sizing_rows(1, 32768),
        trust_remote_code=model.model_type == "chatglm",  # glm-4-9b-chat ships its own tokenizer code
    )


@hookimpl
def ascend_deploy_claims() -> list[str]:
    return ["GLM-4-9B (chat, 0414)"]
