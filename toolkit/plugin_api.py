"""What plugin authors import: the hook marker and the data their hooks return.

A model plugin answers two questions about a model (does it belong to me? which table rows,
arguments and environment does it need?); a runtime plugin describes a vLLM / vllm-ascend
version (flags that exist, flags removed and what replaces them, the Ray resource name).
Everything here is plain frozen data so the planner stays pure and plugins stay testable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import pluggy

from toolkit.config.hardware import DEVICE_CLASS, DEVICES_PER_NODE, HBM_GIB, SINGLE_NODE_ONLY  # noqa: F401  (plugins import them from here)

PROJECT = "ascend_deploy"
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class ModelInfo:
    """What the planner knows about the model before anything runs."""

    path: str
    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    quantization: str | None = None  # "w8a8", "w4a8", ... (inventory, or inferred from the name)

    @property
    def architectures(self) -> tuple[str, ...]:
        return tuple(self.config.get("architectures") or ())

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type") or "")

    def name_matches(self, pattern: str) -> bool:
        """Case-insensitive regex search on the served name and the directory name."""
        base = self.path.rstrip("/").rsplit("/", 1)[-1]
        return any(re.search(pattern, text, re.IGNORECASE) for text in (self.name, base))

    def size_b(self) -> float | None:
        """Parameter count in billions from the name (`Qwen2.5-72B`, `Qwen3-30B-A3B` -> 30)."""
        for text in (self.name, self.path.rstrip("/").rsplit("/", 1)[-1]):
            m = re.search(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)[bB](?![A-Za-z0-9])", text) or re.search(
                r"-(\d+(?:\.\d+)?)[bB]", text
            )
            if m:
                return float(m.group(1))
        return None


@dataclass(frozen=True)
class Row:
    """One line of a sizing table: what a model needs on one device class."""

    hardware: str  # a DEVICE_CLASS value
    devices: int
    tp: int
    pp: int = 1
    dp: int = 1
    max_model_len: int = 32768
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    hf_overrides: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    #: where the layout is published (`path@commit` in its repository), shown by `plan`
    source: str = ""
    #: how the recipe starts its ranks (e.g. "dp": vLLM's data parallel without Ray); None: the planner's rule
    launcher: str | None = None
    #: the published benchmark baseline that backs it (nightly configs); preferred over a row without one
    baseline: str = ""
    #: the recipe's `--speculative-config` for checkpoints with MTP layers (config.json num_nextn_predict_layers)
    speculative: Mapping[str, Any] = field(default_factory=dict)

    def layout(self) -> str:
        return f"TP {self.tp} x PP {self.pp} x DP {self.dp}"


@dataclass(frozen=True)
class ModelProfile:
    """A plugin's answer for one model: its family, table rows, and what every launch needs."""

    family: str
    source: str
    rows: tuple[Row, ...] = ()
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    trust_remote_code: bool = False
    quantization: str | None = None  # the vLLM `--quantization` value, e.g. "ascend"
    note: str = ""

    def row_for(self, device_class: str, devices: int | None = None) -> Row | None:
        """The row for this hardware: given the devices, one of that size first, a row with a published
        benchmark baseline before one without (then the table's order); else the class's first row."""
        rows = [r for r in self.rows if r.hardware == device_class]
        sized = [r for r in rows if devices is not None and r.devices == devices]
        if sized:
            return sorted(sized, key=lambda r: not r.baseline)[0]
        return rows[0] if rows else None

    def alternatives(self, chosen: Row | None) -> tuple[Row, ...]:
        """The other published layouts for the chosen row's hardware and devices."""
        if chosen is None:
            return ()
        return tuple(
            r for r in self.rows if r is not chosen and (r.hardware, r.devices) == (chosen.hardware, chosen.devices)
        )


@dataclass(frozen=True)
class RuntimeProfile:
    """One vLLM / vllm-ascend version: what its command lines may contain."""

    name: str
    vllm: str
    vllm_ascend: str | None
    cann: str | None
    torch_npu: str | None
    source: str
    ray_resource: str = "NPU"
    server_module: str = "vllm.entrypoints.openai.api_server"
    removed_vllm_flags: Mapping[str, str] = field(default_factory=dict)  # flag -> what to use instead
    removed_ray_flags: Mapping[str, str] = field(default_factory=dict)
    removed_config_keys: Mapping[str, str] = field(default_factory=dict)  # key inside a JSON flag value
    block_size: int | None = 128
    chunked_prefill_default: bool = True
    beam_search: bool = True  # the server's use_beam_search
    #: request field for JSON-schema decoding: structured_outputs | guided_json | response_format
    structured_output: str = "structured_outputs"
    #: the command that serves (the dp launcher's ranks need it: `--headless` is handled there)
    serve_argv: tuple[str, ...] = ("vllm", "serve")
    #: why Ray + expert parallel must not be planned on this release (None: not known broken)
    ray_expert_parallel_broken: str | None = None
    #: vLLM's `--safetensors-load-strategy` values this release accepts (empty: unknown, never passed)
    load_strategies: tuple[str, ...] = ()
    #: settings the release's multi-node recipes put on every host (OMP, HCCL buffers, allocator)
    multi_node_env: Mapping[str, str] = field(default_factory=dict)
    #: more of them per device class (A3 recipes add HCCL_OP_EXPANSION_MODE=AIV)
    multi_node_env_by_class: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: the release's container image for A2 hosts (the planner adds the -a3 / -310p suffix); None: no
    #: image, the release runs only from each host's own Python
    image: str | None = None

    @property
    def version_key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", self.vllm)[:3])


def sizing_rows(
    devices_64gb: int, max_model_len: int, *, classes: tuple[str, ...] = ("910B", "A3", "910B4"), **extra: Any
) -> tuple[Row, ...]:
    """Rows for one table entry given in 64 GB cards: 910B and A3 dies take the count as is,
    32 GB 910B4 cards double it (the reference's rule). TP fills a node, PP spans nodes."""
    rows = []
    for cls in classes:
        n = devices_64gb * 64 // HBM_GIB[cls] if HBM_GIB[cls] < 64 else devices_64gb
        tp = min(n, DEVICES_PER_NODE[cls])
        rows.append(Row(hardware=cls, devices=n, tp=tp, pp=n // tp, max_model_len=max_model_len, **extra))
    return tuple(rows)


def with_layout(rows: tuple[Row, ...], hardware: str, *, tp: int, dp: int, note: str) -> tuple[Row, ...]:
    """`rows` with the `hardware` row re-laid out as TP x DP (PP 1) over the same devices: a
    published data-parallel recipe (e.g. DP 2 x TP 8 on two A2 hosts) instead of TP x PP."""
    out = []
    for row in rows:
        if row.hardware == hardware:
            if tp * dp != row.devices:
                raise ValueError(f"TP {tp} x DP {dp} != the row's {row.devices} devices")
            row = replace(row, tp=tp, pp=1, dp=dp, note=note)
        out.append(row)
    return tuple(out)
