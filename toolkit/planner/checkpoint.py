"""What the checkpoint's own files say about its weights, so that the plan does not go by the name.

vllm-ascend's quantized checkpoints (ModelSlim) carry `quant_model_description.json`, a map from each
weight to its scheme ("W8A8_DYNAMIC", "W8A8", "W4A8_DYNAMIC", "FLOAT"); vllm-ascend takes the file's
presence as `--quantization ascend` (vllm_ascend/quantization/utils.py `detect_quantization_method`
@182b75ea). Other quantized checkpoints say so in config.json's `quantization_config`. The name
("...-w8a8") is the last resort and the plan says so. Pure: the files are read by the caller.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

#: the description file's name in the model folder (some tools add a suffix: ..._w8a8.json)
DESCRIPTION_GLOB = "quant_model_description*.json"
#: ModelSlim's scheme names -> the inventory's `model.quantization` values
SCHEMES = {"W8A8": "w8a8", "W8A8_DYNAMIC": "w8a8_dynamic", "W4A8": "w4a8", "W4A8_DYNAMIC": "w4a8"}
NAME_MARKERS = ("w8a8", "w4a8")


def from_description(description: Mapping[str, Any]) -> tuple[str | None, str]:
    """The scheme most weights use (`model_quant_type` when the file states one), and how it was read."""
    stated = description.get("model_quant_type")
    if isinstance(stated, str) and stated.upper() in SCHEMES:
        return SCHEMES[stated.upper()], f"model_quant_type {stated}"
    counts = Counter(
        value.upper()
        for key, value in description.items()
        if key.endswith(".weight") and isinstance(value, str) and value.upper() != "FLOAT"
    )
    if not counts:
        return None, "no quantized weight listed"
    scheme, count = counts.most_common(1)[0]
    return SCHEMES.get(scheme, scheme.lower()), f"{count} of {sum(counts.values())} quantized weights {scheme}"


def from_config(config: Mapping[str, Any]) -> tuple[str | None, str] | None:
    """config.json's `quantization_config` (compressed-tensors W8A8 / W4A8, FP8); None when it has none."""
    quant = config.get("quantization_config")
    if not isinstance(quant, Mapping):
        return None
    method = str(quant.get("quant_method") or "")
    if method == "fp8":
        return "fp8", "quantization_config quant_method fp8"
    for group in (quant.get("config_groups") or {}).values():
        if not isinstance(group, Mapping):
            continue
        weights = (group.get("weights") or {}).get("num_bits")
        acts = (group.get("input_activations") or {}).get("num_bits")
        if weights in (4, 8) and acts == 8:
            return (
                f"w{weights}a8",
                f"quantization_config {method or 'config_groups'}: {weights}-bit weights, 8-bit activations",
            )
    return None, f"quantization_config {method or 'present'}: not a scheme the memory estimate knows (16-bit assumed)"


def from_name(path: str, name: str) -> str | None:
    text = (path + " " + name).lower()
    return next((m for m in NAME_MARKERS if m in text), None)


@dataclass(frozen=True)
class Description:
    """A checkpoint's quant_model_description.json as read (locally or from the head), and from where."""

    data: Mapping[str, Any]
    source: str
