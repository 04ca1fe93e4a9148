"""The sizing rules: TP x PP x DP (from the launcher, the user, a published row or the rule of
thumb), checked against the devices, heads and layers; max-model-len and batching; the memory
estimate that refuses a plan that would not fit."""

from __future__ import annotations

from toolkit.planner import memory
from toolkit.planner.launchers import EXPERT_PARALLEL, LaunchStrategy, Situation
from toolkit.planner.state import ModelFacts, PlannerState, origin_of
from toolkit.planner.types import (
    MemoryPlan,
    Value,
)
from toolkit.plugin_api import (
    DEVICES_PER_NODE,
    HBM_GIB,
    SINGLE_NODE_ONLY,
    Row,
    RuntimeProfile,
)

CHUNKED_BATCH_TOKENS = 8192
GENERIC_MAX_LEN = 32768


class SizingRules(PlannerState):
    """Parallel sizes, length and memory."""

    def parallel(self, sit: Situation, strategy: LaunchStrategy) -> tuple[Value, Value, Value]:
        hosts = self.inv.hosts
        total = self.total_devices
        s = self.serve
        profile, row = sit.profile, sit.row
        own = strategy.sizes(sit)
        if own is not None:
            return own
        if s.tensor_parallel_size or s.pipeline_parallel_size or s.data_parallel_size:
            dp = Value(s.data_parallel_size or 1, origin_of(self.inv, "serve.data_parallel_size"))
            if s.tensor_parallel_size and s.pipeline_parallel_size:
                return (
                    Value(s.tensor_parallel_size, origin_of(self.inv, "serve.tensor_parallel_size")),
                    Value(s.pipeline_parallel_size, origin_of(self.inv, "serve.pipeline_parallel_size")),
                    dp,
                )
            if s.tensor_parallel_size:
                pp = max(1, total // (s.tensor_parallel_size * dp.value))
                return (
                    Value(s.tensor_parallel_size, origin_of(self.inv, "serve.tensor_parallel_size")),
                    Value(pp, "derived: devices / (TP x DP)"),
                    dp,
                )
            if s.pipeline_parallel_size:
                tp = max(1, total // (s.pipeline_parallel_size * dp.value))
                return (
                    Value(tp, "derived: devices / (PP x DP)"),
                    Value(s.pipeline_parallel_size, origin_of(self.inv, "serve.pipeline_parallel_size")),
                    dp,
                )
            per = max(1, total // dp.value)
            tp, pp = memory.split(per, max(len(h.devices) for h in hosts))
            return Value(tp, "derived: devices per DP rank, TP fills a node"), Value(pp, "derived"), dp
        counts = {len(h.devices) for h in hosts}
        if row is not None and self.row_lays_out(row, total):
            return strategy.row_sizes(row, f"plugin {profile.family} row {row.hardware}")
        if len(counts) > 1:
            self.issue(
                "hosts[].devices",
                f"hosts use different device counts ({', '.join(f'{h.name}: {len(h.devices)}' for h in hosts)}), so "
                "TP = NPUs per node is ambiguous",
                "set serve.tensor_parallel_size and serve.pipeline_parallel_size",
            )
        per_node = max(counts)
        rule = "rule of thumb: TP = NPUs per node, PP = nodes"
        return Value(per_node, rule), Value(len(hosts), rule), Value(1, "default")

    def row_lays_out(self, row: Row, total: int) -> bool:
        """A plugin row is a published layout and is taken as given (TP smaller than a host, with several
        DP ranks per host, included): it must use these devices (TP x PP x DP) and its TP groups must
        split evenly over the hosts (whole groups on every host, or one group across them all)."""
        if row.devices != total or row.tp * row.pp * row.dp != total:
            return False
        return row.tp == total or all(len(h.devices) % row.tp == 0 for h in self.inv.hosts)

    def parallelism(
        self, m: ModelFacts, kind: str, device_class: str, sit: Situation, strategy: LaunchStrategy
    ) -> tuple[Value, Value, Value]:
        """TP x PP x DP, checked against the devices, the heads and the layers."""
        hosts = self.inv.hosts
        total = self.total_devices
        if device_class in SINGLE_NODE_ONLY and len(hosts) > 1:
            self.issue(
                "hardware",
                f"{kind} cannot span hosts (no RoCE between cards) but the inventory lists {len(hosts)} hosts",
                "serve from one host (Atlas 300I Duo is single-node only)",
            )
        tp, pp, dp = self.parallel(sit, strategy)
        if tp.value * pp.value * dp.value != total:
            self.issue(
                "serve.tensor_parallel_size",
                f"TP {tp.value} x PP {pp.value} x DP {dp.value} = {tp.value * pp.value * dp.value}, "
                f"but the hosts give {total} devices ({', '.join(f'{h.name}: {len(h.devices)}' for h in hosts)})",
                "TP x PP x DP must equal the devices across hosts: change the sizes or hosts[].devices",
            )
        if m.shape is not None and m.shape.heads % tp.value:
            valid = [t for t in memory.DEVICE_STEPS if m.shape.heads % t == 0 and t <= total]
            self.issue(
                "serve.tensor_parallel_size",
                f"{m.shape.heads} attention heads are not divisible by TP {tp.value}",
                f"use a TP that divides {m.shape.heads}: {', '.join(map(str, valid))}",
            )
        if m.shape is not None and pp.value > m.shape.layers:
            self.issue("serve.pipeline_parallel_size", f"PP {pp.value} exceeds the model's {m.shape.layers} layers")
        if m.row is not None and m.row.devices != total:
            self.notes.append(
                f"the {m.profile.family} table row for {device_class} uses {m.row.devices} devices; the inventory "
                f"gives {total}"
                + (
                    " (more than the model needs: fewer hosts, or data parallel, would serve more requests per device)"
                    if m.row.devices < total
                    else ""
                )
            )
        return tp, pp, dp

    def max_len(self, row: Row | None, limit: int | None) -> Value:
        if self.serve.max_model_len:
            return Value(self.serve.max_model_len, origin_of(self.inv, "serve.max_model_len"))
        if row is not None:
            if limit is not None and row.max_model_len > limit:
                return Value(limit, f"plugin row {row.max_model_len} capped to the model's limit {limit}")
            return Value(row.max_model_len, f"plugin row {row.hardware}")
        if limit is not None:
            return Value(min(limit, GENERIC_MAX_LEN), f"default: min(model limit {limit}, {GENERIC_MAX_LEN})")
        return Value(GENERIC_MAX_LEN, "default (config.json unknown)")

    def length_and_batching(self, m: ModelFacts, runtime: RuntimeProfile) -> tuple[Value, Value, bool]:
        """max-model-len (within the model's window) and max-num-batched-tokens (chunked prefill or not)."""
        max_len = self.max_len(m.row, m.limit)
        if m.limit is not None and max_len.value > m.limit:
            self.issue(
                "serve.max_model_len",
                f"{max_len.value} exceeds the model's limit of {m.limit} tokens (max_position_embeddings / seq_length"
                + (" with rope scaling" if m.merged_config.get("rope_scaling") else "")
                + ")",
                f"use at most {m.limit}, or extend the window with rope scaling (--hf-overrides) where the model "
                "supports it",
            )
        chunked_default = runtime.chunked_prefill_default
        chunked = (
            self.serve.enable_chunked_prefill if self.serve.enable_chunked_prefill is not None else chunked_default
        )
        if self.serve.max_num_batched_tokens:
            batched = Value(self.serve.max_num_batched_tokens, origin_of(self.inv, "serve.max_num_batched_tokens"))
            if not chunked and batched.value < max_len.value:
                self.issue(
                    "serve.max_num_batched_tokens",
                    f"{batched.value} is below max-model-len {max_len.value} with chunked prefill off: a full-length "
                    "prompt could never be scheduled",
                    f"raise it to at least {max_len.value} or set serve.enable_chunked_prefill: true",
                )
        elif chunked:
            batched = Value(CHUNKED_BATCH_TOKENS, "default: chunked prefill splits long prompts")
        else:
            batched = Value(max_len.value, "default: = max-model-len (chunked prefill off)")
        return max_len, batched, chunked

    def memory(
        self,
        m: ModelFacts,
        kind: str,
        device_class: str,
        parallel: tuple[Value, Value, Value],
        max_len: Value,
        util: Value,
        dtype: Value,
    ) -> MemoryPlan | None:
        """The per-device estimate; a plan that does not fit is refused with the ways that would.
        With expert parallel the experts spread over TP x DP ranks, the rest over TP."""
        if m.shape is None:
            return None
        tp, pp, dp = parallel
        hbm = HBM_GIB[device_class]
        quant = m.info.quantization
        common = dict(hbm_gib=hbm, utilization=util.value, quantization=quant, dtype=dtype.value)
        ep = tp.value * dp.value if EXPERT_PARALLEL in self.ep_args(m) else 0
        est = memory.estimate(m.shape, tp=tp.value, pp=pp.value, max_len=max_len.value, ep=ep, **common)
        need = memory.min_devices(m.shape, max_len=max_len.value, per_node=DEVICES_PER_NODE[device_class], **common)
        fits_len = memory.max_len_that_fits(m.shape, tp=tp.value, pp=pp.value, ep=ep, **common)
        if m.limit is not None:
            fits_len = min(fits_len, m.limit)
        if not est.fits and tp.value * pp.value > 0:
            gib = memory.GIB
            ways = []
            if need:
                ways.append(f"{need} devices hold it at max-model-len {max_len.value}")
            if fits_len >= 1024:
                ways.append(f"max-model-len {fits_len} fits on these {tp.value * pp.value} devices")
            self.issue(
                "serve.max_model_len" if fits_len >= 1024 else "hosts[].devices",
                f"needs about {est.total / gib:.1f} GiB per device (weights {est.weights / gib:.1f} + KV cache "
                f"{est.kv_cache / gib:.1f} + reserve {est.reserve / gib:.1f}), "
                f"{kind} offers {est.available / gib:.1f} GiB ({hbm} GiB x {util.value})",
                "; or ".join(ways) or "the model does not fit this hardware",
            )
        return MemoryPlan(est, need, fits_len, hbm)
