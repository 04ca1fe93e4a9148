"""A memory estimate from config.json alone: weights by dtype/quantization + the KV cache of one
max-length sequence + a fixed per-device reserve, against HBM x gpu-memory-utilization.

Deliberately simple and checked against the reference's sizing table (tests/unit/models):
for every model there, `min_devices` equals the table's minimum card count. Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

GIB = 1 << 30
#: Activations, workspace, HCCL buffers and the runtime's own allocations, per device.
RESERVE_BYTES = 3 * GIB
#: Device counts the planner considers (TP x PP); tables use powers of two.
DEVICE_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Shape:
    """The numbers that size a transformer, normalised across config.json dialects."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    intermediate: int
    tied: bool
    experts: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0
    dense_layers: int = 0  # leading layers with a dense MLP in an MoE model
    mla: tuple[int, int, int, int, int] | None = None  # q_lora, kv_lora, nope, rope, v head dims
    max_positions: int | None = None


def _get(cfg: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return default


def text_config(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """Multimodal configs nest the language model under `text_config`/`llm_config`."""
    for key in ("text_config", "llm_config", "language_config"):
        if isinstance(cfg.get(key), dict) and cfg[key].get("hidden_size"):
            return {**cfg, **cfg[key]}
    return cfg


def shape_of(config: Mapping[str, Any]) -> Shape | None:
    """Parse the sizing numbers; None if config.json lacks the basics (hidden size, layers, heads)."""
    cfg = text_config(config)
    hidden = _get(cfg, "hidden_size", "n_embd", "d_model")
    layers = _get(cfg, "num_hidden_layers", "num_layers", "n_layer")
    heads = _get(cfg, "num_attention_heads", "n_head")
    if (
        not (isinstance(hidden, int) and isinstance(layers, int) and isinstance(heads, int))
        or min(hidden, layers, heads) <= 0
    ):
        return None
    kv_heads = _get(cfg, "num_key_value_heads", "multi_query_group_num", default=heads)
    if cfg.get("multi_query_attention") is False and "num_key_value_heads" not in cfg:
        kv_heads = heads
    head_dim = _get(cfg, "head_dim", "kv_channels", default=hidden // heads)
    vocab = _get(cfg, "vocab_size", "padded_vocab_size", default=32000)
    if cfg.get("padded_vocab_size"):
        vocab = cfg["padded_vocab_size"]
    intermediate = _get(cfg, "intermediate_size", "ffn_hidden_size", default=4 * hidden)
    experts = _get(cfg, "num_experts", "num_local_experts", "n_routed_experts", default=0) or 0
    expert_inter = _get(cfg, "moe_intermediate_size", default=intermediate) if experts else 0
    shared = 0
    if experts:
        if cfg.get("n_shared_experts"):
            shared = int(cfg["n_shared_experts"]) * expert_inter
        elif cfg.get("shared_expert_intermediate_size"):
            shared = int(cfg["shared_expert_intermediate_size"])
    dense_layers = int(cfg.get("first_k_dense_replace") or 0) if experts else 0
    if experts and cfg.get("mlp_only_layers"):
        dense_layers = len(cfg["mlp_only_layers"])
    mla = None
    if cfg.get("kv_lora_rank"):
        mla = (
            int(cfg.get("q_lora_rank") or 0),
            int(cfg["kv_lora_rank"]),
            int(cfg.get("qk_nope_head_dim") or 128),
            int(cfg.get("qk_rope_head_dim") or 64),
            int(cfg.get("v_head_dim") or 128),
        )
    tied = bool(cfg.get("tie_word_embeddings", False))
    return Shape(
        hidden,
        layers,
        heads,
        int(kv_heads),
        int(head_dim),
        int(vocab),
        int(intermediate),
        tied,
        int(experts),
        int(expert_inter),
        int(shared),
        dense_layers,
        mla,
        max_positions(cfg),
    )


def max_positions(config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> int | None:
    """The longest sequence the model accepts, as vLLM derives it: max_position_embeddings (or
    seq_length) times a rope-scaling factor when one is configured."""
    cfg = {**text_config(config), **(overrides or {})}
    base = _get(cfg, "max_position_embeddings", "seq_length", "max_sequence_length", "n_positions")
    if not isinstance(base, int):
        return None
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type") or scaling.get("type")
    factor = scaling.get("factor")
    if (
        isinstance(factor, (int, float))
        and kind not in (None, "default", "llama3", "longrope", "su", "mrope")
        and factor > 1
    ):
        if kind == "yarn" and isinstance(scaling.get("original_max_position_embeddings"), int):
            base = scaling["original_max_position_embeddings"]  # vLLM scales the original window
        return int(base * factor)
    return base


def params(shape: Shape) -> tuple[int, int]:
    """(parameters in linear layers, parameters in embeddings/lm_head). Norms and biases are noise."""
    h, a, d = shape.hidden, shape.heads, shape.head_dim
    if shape.mla:
        q_lora, kv_lora, nope, rope, v = shape.mla
        q = h * q_lora + q_lora * a * (nope + rope) if q_lora else h * a * (nope + rope)
        attn = q + h * (kv_lora + rope) + kv_lora * a * (nope + v) + a * v * h
    else:
        attn = h * a * d + 2 * h * shape.kv_heads * d + a * d * h
    dense_mlp = 3 * h * shape.intermediate
    if shape.experts:
        moe = 3 * h * shape.expert_intermediate * shape.experts + 3 * h * shape.shared_intermediate + h * shape.experts
        mlp_total = shape.dense_layers * dense_mlp + (shape.layers - shape.dense_layers) * moe
    else:
        mlp_total = shape.layers * dense_mlp
    linear = shape.layers * attn + mlp_total
    embed = shape.vocab * h * (1 if shape.tied else 2)
    return linear, embed


#: Bytes per linear-layer weight by quantization; embeddings stay 16-bit.
QUANT_BYTES = {None: 2.0, "w8a8": 1.0, "w8a8_dynamic": 1.0, "fp8": 1.0, "w4a8": 0.5, "w4a16": 0.5}


def weight_bytes(shape: Shape, quantization: str | None = None, dtype: str | None = None) -> int:
    linear, embed = params(shape)
    per = QUANT_BYTES.get(quantization.lower() if quantization else None, 2.0)
    if quantization is None and dtype in ("float32", "fp32"):
        per = 4.0
    emb_bytes = 4 if dtype in ("float32", "fp32") else 2
    return int(linear * per + embed * emb_bytes)


def expert_bytes(shape: Shape, quantization: str | None = None) -> int:
    """The routed experts' share of the weights (what expert parallel spreads over TP x DP ranks)."""
    if not shape.experts:
        return 0
    per = QUANT_BYTES.get(quantization.lower() if quantization else None, 2.0)
    moe_layers = shape.layers - shape.dense_layers
    return int(moe_layers * 3 * shape.hidden * shape.expert_intermediate * shape.experts * per)


def kv_bytes_per_token(shape: Shape, tp: int, pp: int) -> int:
    """KV cache bytes for one token on one device. Heads split across TP (at least one per device,
    i.e. replicated when TP exceeds the KV heads); MLA's latent cache is not split by TP."""
    layers = math.ceil(shape.layers / pp)
    if shape.mla:
        _, kv_lora, _, rope, _ = shape.mla
        return layers * (kv_lora + rope) * 2
    return layers * math.ceil(shape.kv_heads / tp) * shape.head_dim * 2 * 2


@dataclass(frozen=True)
class Estimate:
    """Bytes on one device for one (TP, PP, max length) choice."""

    weights: int
    kv_cache: int
    reserve: int
    available: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.reserve

    @property
    def fits(self) -> bool:
        return self.total <= self.available


def available_bytes(hbm_gib: float, utilization: float) -> int:
    return int(hbm_gib * GIB * utilization)


def estimate(
    shape: Shape,
    *,
    tp: int,
    pp: int,
    max_len: int,
    hbm_gib: float,
    utilization: float,
    quantization: str | None = None,
    dtype: str | None = None,
    ep: int = 0,
) -> Estimate:
    """`ep` > 0: expert parallel over that many ranks (TP x DP): each device holds 1/ep of the
    experts and 1/TP of the rest; without it, 1/TP of everything (per pipeline stage)."""
    total = weight_bytes(shape, quantization, dtype)
    experts = expert_bytes(shape, quantization) if ep else 0
    weights = math.ceil((total - experts) / (tp * pp) + experts / (max(ep, 1) * pp))
    kv = kv_bytes_per_token(shape, tp, pp) * max_len
    return Estimate(weights, kv, RESERVE_BYTES, available_bytes(hbm_gib, utilization))


def split(devices: int, per_node: int) -> tuple[int, int]:
    """TP fills a node, PP spans nodes (the reference's rule of thumb)."""
    tp = min(devices, per_node)
    return tp, max(1, devices // tp)


def min_devices(
    shape: Shape,
    *,
    max_len: int,
    hbm_gib: float,
    utilization: float,
    per_node: int,
    quantization: str | None = None,
    dtype: str | None = None,
) -> int | None:
    """The fewest devices (powers of two, TP dividing the attention heads) that hold the model."""
    for n in DEVICE_STEPS:
        tp, pp = split(n, per_node)
        if shape.heads % tp or pp > shape.layers:
            continue
        if estimate(
            shape,
            tp=tp,
            pp=pp,
            max_len=max_len,
            hbm_gib=hbm_gib,
            utilization=utilization,
            quantization=quantization,
            dtype=dtype,
        ).fits:
            return n
    return None


def max_len_that_fits(
    shape: Shape,
    *,
    tp: int,
    pp: int,
    hbm_gib: float,
    utilization: float,
    quantization: str | None = None,
    dtype: str | None = None,
    step: int = 1024,
    ep: int = 0,
) -> int:
    """The longest max-model-len (a multiple of `step`) that fits; 0 if even the weights do not."""
    base = estimate(
        shape,
        tp=tp,
        pp=pp,
        max_len=0,
        hbm_gib=hbm_gib,
        utilization=utilization,
        quantization=quantization,
        dtype=dtype,
        ep=ep,
    )
    room = base.available - base.total
    per_token = kv_bytes_per_token(shape, tp, pp)
    if room <= 0 or per_token <= 0:
        return 0
    return (room // per_token) // step * step
