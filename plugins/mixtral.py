"""Mixtral 8x7B (MoE).

Source: vllm-ascend supported-models notes: Mixtral-8x7B served at TP4 on 64 GB cards.
"""

from __future__ import annotations

from toolkit.plugin_api import ModelInfo, ModelProfile, hookimpl, sizing_rows

SOURCE = "vllm-ascend: Mixtral-8x7B at TP4 (docs/ascend-facts.md section 5)"


@hookimpl
def ascend_deploy_model_profile(model: ModelInfo) -> ModelProfile | None:
    if model.model_type != "mixtral" and not (not model.model_type and model.name_matches(r"mixtral")):
        return None
    return ModelProfile(
        family="mixtral", source=SOURCE, rows=sizing_rows(4, 32768), extra_args=("--enable-expert-parallel",)
    )


@hookimpl
def ascend_deploy_claims() -> list[str]:
    return ["Mixtral-8x7B"]
