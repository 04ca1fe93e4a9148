"""DeepSeek V3 / R1 (671B MoE with MLA), BF16 and W8A8.

Source: vllm-ascend DeepSeek-R1/V3 tutorials: W8A8 fits one A3 node (16 dies) or two A2 nodes
(16 x 64 GB), served with `--quantization ascend`, `--enable-expert-parallel`,
`--trust-remote-code`, `HCCL_BUFFSIZE=1024`; BF16 needs twice the devices (four A2 nodes).
DeepSeek-V3.1 W8A8 on two A2 hosts is published as DP 4 x TP 4 without Ray (section 7).
"""

from __future__ import annotations

from toolkit.plugin_api import ModelInfo, ModelProfile, hookimpl, sizing_rows, with_layout

SOURCE = "vllm-ascend DeepSeek-R1 / V3 tutorials (docs/ascend-facts.md sections 3 and 5)"


@hookimpl
def ascend_deploy_model_profile(model: ModelInfo) -> ModelProfile | None:
    claimed = model.model_type in ("deepseek_v3", "deepseek_v32") or (
        not model.model_type and model.name_matches(r"deepseek-(v3|r1)") and not model.name_matches("distill")
    )
    if not claimed:
        return None
    w8a8 = (model.quantization or "").startswith("w8a8")
    cards = 16 if w8a8 else 32
    return ModelProfile(
        family="deepseek-v3",
        source=SOURCE,
        rows=with_layout(sizing_rows(cards, 32768), "910B", tp=4, dp=4, note="vllm-ascend recipe: DP 4 x TP 4, no Ray")
        if w8a8
        else sizing_rows(cards, 32768),
        extra_args=("--enable-expert-parallel",),
        env={"HCCL_BUFFSIZE": "1024", "HCCL_CONNECT_TIMEOUT": "1200"},
        trust_remote_code=True,
        quantization="ascend" if w8a8 else None,
        note="W8A8 weights" if w8a8 else "BF16 weights (the original FP8 checkpoint must be converted first)",
    )


@hookimpl
def ascend_deploy_claims() -> list[str]:
    return ["DeepSeek-V3 / DeepSeek-R1 (BF16, W8A8)"]
