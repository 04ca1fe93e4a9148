"""The server's arguments: every vLLM flag the plan writes with its origin, the plugin's and the
user's pass-through last, and the refusals of flags the planner owns or the runtime removed."""

from __future__ import annotations

import json

from toolkit.planner.demand import LOAD_STRATEGY
from toolkit.planner.launchers import LaunchStrategy, Situation
from toolkit.planner.state import ModelFacts, PlannerState, flags_in, origin_of
from toolkit.planner.types import (
    Arg,
    Value,
    paired_args,
)
from toolkit.plugin_api import (
    RuntimeProfile,
)

#: vLLM flags the planner writes; in extra_args they would silently fight the plan.
MANAGED_FLAGS = {
    "--model": "model.path",
    "--served-model-name": "model.served_name",
    "--host": "serve.host",
    "--port": "serve.port",
    "--tensor-parallel-size": "serve.tensor_parallel_size",
    "-tp": "serve.tensor_parallel_size",
    "--pipeline-parallel-size": "serve.pipeline_parallel_size",
    "-pp": "serve.pipeline_parallel_size",
    "--data-parallel-size": "serve.data_parallel_size",
    "-dp": "serve.data_parallel_size",
    "--max-model-len": "serve.max_model_len",
    "--max-num-seqs": "serve.max_num_seqs",
    "--max-num-batched-tokens": "serve.max_num_batched_tokens",
    "--block-size": "serve.block_size",
    "--gpu-memory-utilization": "serve.gpu_memory_utilization",
    "--dtype": "serve.dtype",
    "--distributed-executor-backend": "(ray for several hosts, mp for one)",
    "--api-key": "serve.api_key_env (a key on the command line shows in `ps` on the host)",
    "--trust-remote-code": "model.trust_remote_code",
    "--enforce-eager": "serve.enforce_eager",
    "--data-parallel-size-local": "hosts[].devices (ranks per host = devices / TP)",
    "--data-parallel-address": "(the head's address)",
    "--data-parallel-rpc-port": "serve.data_parallel_rpc_port",
    "--data-parallel-start-rank": "(each host's first rank)",
    "--headless": "(every host but the head, launcher dp)",
    "--data-parallel-backend": "serve.launcher",
}
MANAGED_RAY_FLAGS = {
    "--head": "the head's role in hosts",
    "--address": "(the head's address)",
    "--port": "ray.port",
    "--node-ip-address": "the host's address",
    "--resources": "devices (the NPU resource)",
    "--num-cpus": "ray.num_cpus",
    "--object-store-memory": "ray.object_store_memory",
    "--temp-dir": "(per cluster)",
}
DEFAULT_MAX_SEQS = 256


class ServerArgRules(PlannerState):
    """vLLM's flags and the checks on pass-through arguments."""

    def check_extra_args(self, runtime: RuntimeProfile, args: list[str], where: str) -> None:
        for flag, replacement in flags_in(args, runtime.removed_vllm_flags):
            self.issue(where, f"{flag} does not exist in vLLM {runtime.vllm} ({runtime.name})", replacement)
        for arg in args:
            for key, replacement in runtime.removed_config_keys.items():
                if key in arg:
                    self.issue(where, f"{key} is not accepted by {runtime.name}", replacement)
        for flag, field_ in flags_in(args, MANAGED_FLAGS):
            self.issue(where, f"{flag} is set by the planner", f"set {field_} instead")

    def check_ray_args(self, runtime: RuntimeProfile) -> None:
        args = self.spec.ray.extra_args
        for flag, replacement in flags_in(args, runtime.removed_ray_flags):
            self.issue("ray.extra_args", f"`ray start {flag}` must not be used with {runtime.name}", replacement)
        for flag, field_ in flags_in(args, MANAGED_RAY_FLAGS):
            self.issue("ray.extra_args", f"{flag} is set by the planner", f"set {field_} instead")

    def load_strategy(self, runtime: RuntimeProfile) -> list[Arg]:
        """Weights on shared storage (`model.storage: shared`): vLLM reads the checkpoint into the page
        cache before the workers load it (`prefetch`, vLLM's `LoadConfig`: "useful on network or
        high-latency storage"), where the runtime has it; on local disk vLLM's default (memory-mapped)."""
        spec = self.spec.model
        assert spec is not None
        if spec.storage != "shared" or flags_in(list(self.serve.extra_args), {LOAD_STRATEGY: ""}):
            return []
        if "prefetch" not in runtime.load_strategies:
            self.notes.append(
                f"model.storage is shared, but runtime {runtime.name} lists no {LOAD_STRATEGY}: the "
                "weights load as vLLM reads them (consider `ascend-deploy weights sync` to each host's disk)"
            )
            return []
        return [
            Arg(
                LOAD_STRATEGY,
                "prefetch",
                f"{origin_of(self.inv, 'model.storage')}: shared storage, read into the page cache before the "
                f"workers load it (runtime {runtime.name}; vLLM LoadConfig)",
            )
        ]

    def vllm_args(
        self,
        m: ModelFacts,
        runtime: RuntimeProfile,
        served: Value,
        parallel: tuple[Value, Value, Value],
        backend: Value,
        sizes: tuple[Value, Value, bool],
        util: Value,
        dtype: Value,
        sit: Situation,
        strategy: LaunchStrategy,
    ) -> list[Arg]:
        """The server's flags, each with its origin; the plugin's and the user's pass-through last."""
        tp, pp, dp = parallel
        max_len, batched, chunked = sizes
        spec_model = self.spec.model
        assert spec_model is not None
        trust = spec_model.trust_remote_code
        trust_v = (
            Value(trust, origin_of(self.inv, "model.trust_remote_code"))
            if trust is not None
            else Value(m.profile.trust_remote_code, f"plugin {m.profile.family}")
        )
        block = self.serve.block_size or runtime.block_size
        args: list[Arg] = [
            Arg("--model", spec_model.path, origin_of(self.inv, "model.path")),
            Arg("--served-model-name", served.value, served.origin),
            Arg("--host", self.serve.host, origin_of(self.inv, "serve.host")),
            Arg("--port", self.serve.port, origin_of(self.inv, "serve.port")),
            Arg("--tensor-parallel-size", tp.value, tp.origin),
            Arg("--pipeline-parallel-size", pp.value, pp.origin),
        ]
        if dp.value > 1:
            args.append(Arg("--data-parallel-size", dp.value, dp.origin))
            args += strategy.dp_args(sit, backend)
        if strategy.passes_backend():
            args.append(Arg("--distributed-executor-backend", backend.value, backend.origin))
        args += [
            Arg("--max-model-len", max_len.value, max_len.origin),
            Arg(
                "--max-num-seqs",
                self.serve.max_num_seqs or DEFAULT_MAX_SEQS,
                origin_of(self.inv, "serve.max_num_seqs") if self.serve.max_num_seqs else "default (vLLM)",
            ),
            Arg("--max-num-batched-tokens", batched.value, batched.origin),
        ]
        if block:
            args.append(
                Arg(
                    "--block-size",
                    block,
                    origin_of(self.inv, "serve.block_size") if self.serve.block_size else f"runtime {runtime.name}",
                )
            )
        args += [Arg("--gpu-memory-utilization", util.value, util.origin), Arg("--dtype", dtype.value, dtype.origin)]
        chunked_default = runtime.chunked_prefill_default
        if self.serve.enable_chunked_prefill is not None and self.serve.enable_chunked_prefill != chunked_default:
            args.append(
                Arg(
                    "--enable-chunked-prefill" if chunked else "--no-enable-chunked-prefill",
                    None,
                    origin_of(self.inv, "serve.enable_chunked_prefill"),
                )
            )
        args.append(Arg("--trust-remote-code", True if trust_v.value else False, trust_v.origin))
        args.append(
            Arg(
                "--enforce-eager",
                True if self.serve.enforce_eager else False,
                origin_of(self.inv, "serve.enforce_eager")
                if self.serve.enforce_eager is not None
                else "default (graph mode)",
            )
        )
        args += self.load_strategy(runtime)
        if m.profile.quantization:
            args.append(
                Arg(
                    "--quantization",
                    m.profile.quantization,
                    f"plugin {m.profile.family} ({m.info.quantization} weights)",
                )
            )
        if m.row is not None and m.row.hf_overrides and "--hf-overrides" not in " ".join(self.serve.extra_args):
            args.append(
                Arg(
                    "--hf-overrides",
                    json.dumps(dict(m.row.hf_overrides), separators=(",", ":")),
                    f"plugin row {m.row.hardware}",
                )
            )
        own = paired_args(self.serve.extra_args, origin_of(self.inv, "serve.extra_args"))
        own_flags = {a.flag for a in own}
        plugin_args = list(m.profile.extra_args) + list(m.row.extra_args if m.row else ())
        args += [a for a in paired_args(plugin_args, f"plugin {m.profile.family}") if a.flag not in own_flags]
        return args + own
