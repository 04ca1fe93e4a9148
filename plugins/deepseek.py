"""DeepSeek V3 / R1 (671B MoE with MLA), BF16 and W8A8.

Sources (vllm-project/vllm-ascend at commit 182b75ea84ff13ece27b57391331ef8935410aea):
- docs/source/tutorials/models/DeepSeek-R1.md@182b75ea, "5.1 Single-Node" and "5.2 Multi-Node Data
  Parallel": W8A8 on one A3 node (16 dies) as DP 4 x TP 4, or on two A2 nodes as DP 4 x TP 4 with two
  ranks per node, no Ray; `--quantization ascend`, `--enable-expert-parallel`, `--max-model-len 16384`
  ("sufficient for 3.5k in / 1.5k out; at least 35000 for accuracy runs").
- docs/source/tutorials/models/DeepSeek-V3.1.md@182b75ea, "5.2 Multi-Node Data Parallel Deployment": the
  same A2 layout and environment (HCCL_BUFFSIZE=200, VLLM_ASCEND_BALANCE_SCHEDULING=1,
  HCCL_INTRA_PCIE_ENABLE=1, HCCL_INTRA_ROCE_ENABLE=0); the A3 single-node recipe sets
  HCCL_OP_EXPANSION_MODE=AIV (the runtime adds it on A3) and VLLM_ASCEND_BALANCE_SCHEDULING=1.
BF16 needs twice the devices (sized from the reference's table: four A2 nodes). HCCL_CONNECT_TIMEOUT
1200 is ours, not the recipes': 671B of weights take minutes to load before the ranks connect.
"""

from __future__ import annotations

from dataclasses import replace

from toolkit.plugin_api import ModelInfo, ModelProfile, Row, hookimpl, sizing_rows, with_layout

SOURCE = "vllm-ascend DeepSeek-R1.md / DeepSeek-V3.1.md tutorials @182b75ea (docs/ascend-facts.md sections 3, 5, 7)"
COMMIT = "182b75ea"
#: the A2 multi-node recipe's environment (DeepSeek-V3.1.md@182b75ea and DeepSeek-R1.md@182b75ea, section 5.2)
A2_MULTI_NODE_ENV = {"HCCL_BUFFSIZE": "200", "HCCL_INTRA_PCIE_ENABLE": "1", "HCCL_INTRA_ROCE_ENABLE": "0"}
#: what both tutorials state for W8A8 (performance runs; accuracy runs need >= 35000)
W8A8_MAX_LEN = 16384
#: the single-node A3 recipe's environment (DeepSeek-R1.md@182b75ea, 5.1; multi-node runs get it from the runtime)
A3_SINGLE_NODE_ENV = {"HCCL_OP_EXPANSION_MODE": "AIV", "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True"}
#: the tutorials' speculative decoding with the checkpoint's MTP layer (sections 5.1 and 5.2)
MTP_3 = {"num_speculative_tokens": 3, "method": "mtp"}
TUTORIAL = f"vllm-ascend docs/source/tutorials/models/DeepSeek-R1.md@{COMMIT}"
#: V3.2 W8A8 on two A3 nodes: vllm-ascend nightly DeepSeek-V3_2-W8A8-A3-dual-nodes.yaml@182b75ea (source below)
V32_W8A8_2XA3 = Row(
    hardware="A3",
    devices=32,
    tp=8,
    dp=4,
    max_model_len=90000,
    extra_args=("--tokenizer-mode", "deepseek_v32", "--reasoning-parser", "deepseek_v3"),
    env={"HCCL_BUFFSIZE": "1024", "VLLM_ASCEND_ENABLE_MLAPO": "1", "ASCEND_A3_EBA_ENABLE": "1"},
    note="nightly: DP 4 x TP 8 on 2 A3 nodes, 2 ranks per node, no Ray",
    source="vllm-ascend tests/e2e/nightly/multi_node/internal_dp/config/DeepSeek-V3_2-W8A8-A3-dual-nodes.yaml@182b75ea",
    launcher="dp",
    baseline="GSM8K 3.5k in, rate 11.2, 512 prompts: 862.63 output tok/s (gate 0.97x)",
    speculative={"num_speculative_tokens": 3, "method": "deepseek_mtp"},
)
#: BF16 on two A3 nodes: vllm-ascend tests/e2e/nightly/multi_node/internal_dp/config/DeepSeek-V3.1-BF16.yaml@182b75ea
BF16_2XA3 = Row(
    hardware="A3",
    devices=32,
    tp=8,
    dp=4,
    max_model_len=8192,
    env={
        "HCCL_BUFFSIZE": "2048",
        "VLLM_ASCEND_ENABLE_MLAPO": "1",
        "HCCL_INTRA_PCIE_ENABLE": "1",
        "HCCL_INTRA_ROCE_ENABLE": "0",
    },
    note="nightly: DP 4 x TP 8 on 2 A3 nodes, 2 ranks per node, no Ray",
    source="vllm-ascend tests/e2e/nightly/multi_node/internal_dp/config/DeepSeek-V3.1-BF16.yaml@182b75ea",
    launcher="dp",
    baseline="GSM8K 3.5k in / 1.5k out, rate 11.2: 647.34 output tok/s (gate 0.97x)",
    speculative={"num_speculative_tokens": 1, "method": "mtp"},
)


@hookimpl
def ascend_deploy_model_profile(model: ModelInfo) -> ModelProfile | None:
    claimed = model.model_type in ("deepseek_v3", "deepseek_v32") or (
        not model.model_type and model.name_matches(r"deepseek-(v3|r1)") and not model.name_matches("distill")
    )
    if not claimed:
        return None
    w8a8 = (model.quantization or "").startswith("w8a8")
    if w8a8 and model.model_type == "deepseek_v32":  # V3.2's own published recipe only (its sparse attention,
        rows: tuple[Row, ...] = (V32_W8A8_2XA3,)  # its MTP method); other hardware: the planner's rules
    elif w8a8:
        rows = sizing_rows(16, W8A8_MAX_LEN)
        rows = with_layout(rows, "910B", tp=4, dp=4, note=f"DeepSeek-R1.md@{COMMIT} 5.2: DP 4 x TP 4, 2 ranks per node")
        envs = {"910B": A2_MULTI_NODE_ENV, "A3": A3_SINGLE_NODE_ENV}
        rows = tuple(replace(r, env=envs[r.hardware]) if r.hardware in envs else r for r in rows)
        rows = with_layout(rows, "A3", tp=4, dp=4, note=f"DeepSeek-R1.md@{COMMIT} 5.1: DP 4 x TP 4 on one A3 node")
        rows = tuple(
            replace(r, speculative=MTP_3, source=TUTORIAL) if r.hardware in ("910B", "A3") else r for r in rows
        )
    else:
        rows = sizing_rows(32, 32768)
        rows = tuple(r for r in rows if r.hardware != "A3") + (BF16_2XA3,)
    return ModelProfile(
        family="deepseek-v3",
        source=SOURCE,
        rows=rows,
        extra_args=("--enable-expert-parallel",),
        env={"VLLM_ASCEND_BALANCE_SCHEDULING": "1", "HCCL_CONNECT_TIMEOUT": "1200"},
        trust_remote_code=True,
        quantization="ascend" if w8a8 else None,
        note="W8A8 weights" if w8a8 else "BF16 weights (the original FP8 checkpoint must be converted first)",
    )


@hookimpl
def ascend_deploy_claims() -> list[str]:
    return ["DeepSeek-V3 / DeepSeek-R1 (BF16, W8A8)"]
