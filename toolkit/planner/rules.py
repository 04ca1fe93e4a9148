"""The planning rules: inventory + config.json + plugins -> every command and variable of a
deployment, each value with where it came from. Pure: no SSH, no file reads (the caller passes
config.json), so `plan` can be rendered, diffed and tested without a cluster.

One method per decision (hardware, model, parallelism, length and batching, memory, vLLM
arguments, host plans), in the order `build` takes them. Validation happens here, before
anything starts: a bad combination is a `PlanInvalid` (exit 2) listing every problem with the
field to change, instead of a vLLM crash minutes into loading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping

from toolkit.config.hardware import DEFAULT_KIND
from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.config.yamlsrc import did_you_mean
from toolkit.facts.deploy import state_dir
from toolkit.planner import checkpoint, launchers, memory
from toolkit.planner.container import ContainerPlan, image_version, plan_container
from toolkit.planner.launchers import EXPERT_PARALLEL, ROW_ORDER, HostServe, LaunchStrategy, Situation
from toolkit.planner.plugins import Plugins
from toolkit.planner.types import (
    HCCL_BASE_PORT,
    Arg,
    HostPlan,
    MemoryPlan,
    Plan,
    PlanInvalid,
    PlanIssue,
    PortUse,
    Value,
    paired_args,
)
from toolkit.plugin_api import (
    DEVICE_CLASS,
    DEVICES_PER_NODE,
    HBM_GIB,
    SINGLE_NODE_ONLY,
    ModelInfo,
    ModelProfile,
    Row,
    RuntimeProfile,
)

#: Variables the planner owns; users set the inventory field named instead.
PLANNED_ENV = {
    "HCCL_IF_IP": "address",
    "GLOO_SOCKET_IFNAME": "nic",
    "TP_SOCKET_IFNAME": "nic",
    "HCCL_SOCKET_IFNAME": "nic",
    "VLLM_HOST_IP": "address",
    "ASCEND_RT_VISIBLE_DEVICES": "devices",
    "RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES": "(always 1)",
    "VLLM_API_KEY": "serve.api_key_env or serve.api_key_file",
}
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
DEFAULT_UTILIZATION = 0.9
#: a conservative read rate of weights from shared storage, per host (start-up timeouts)
LOAD_GIB_PER_S = 0.5
#: `up` waits this much longer than the engines' own start-up timeout
READY_MARGIN_S = 120.0
DEFAULT_MAX_SEQS = 256
CHUNKED_BATCH_TOKENS = 8192
GENERIC_MAX_LEN = 32768


@dataclass(frozen=True)
class _Model:
    """What the plugins and config.json say about the model."""

    info: ModelInfo
    profile: ModelProfile
    plugin_name: str
    row: Row | None
    merged_config: dict[str, Any]
    shape: memory.Shape | None
    limit: int | None
    quantization: Value


def model_info(
    inventory: Inventory, config: Mapping[str, Any] | None, files: checkpoint.Description | None = None
) -> tuple[ModelInfo, Value]:
    """The model as the plugins see it, and its weights' quantization with where that was read: the
    inventory, the checkpoint's description file, config.json, and the name only as a last resort."""
    spec = inventory.spec.model
    assert spec is not None
    name = spec.served_name or spec.path.rstrip("/").rsplit("/", 1)[-1]
    found = checkpoint.from_config(config) if config is not None else None
    if spec.quantization is not None:
        quant = Value(spec.quantization, _origin(inventory, "model.quantization"))
    elif files is not None:
        scheme, how = checkpoint.from_description(files.data)
        quant = Value(scheme, f"{files.source}: {how}")
    elif found is not None:
        quant = Value(found[0], f"config.json: {found[1]}")
    elif (by_name := checkpoint.from_name(spec.path, name)) is not None:
        quant = Value(
            by_name, f"model name (last resort: no {checkpoint.DESCRIPTION_GLOB} nor quantization_config read)"
        )
    else:
        quant = Value(None, f"none ({checkpoint.DESCRIPTION_GLOB} and config.json's quantization_config not found)")
    info = ModelInfo(path=spec.path, name=name, config=dict(config or {}), quantization=quant.value)
    return info, quant


def _row_origin(family: str, row: Row) -> str:
    """How a value that comes from a plugin row is attributed: the row's layout and where it is published."""
    return f"plugin {family} row {row.layout()}" + (f" ({row.source})" if row.source else "")


def _origin(inventory: Inventory, key: str) -> str:
    where = inventory.section_origins.get(key, "default")
    return f"inventory {key}" if where == "inventory" else f"--set {key}" if where == "--set" else "default"


def _flag_in(args: list[str] | tuple[str, ...], flags: Mapping[str, str]) -> list[tuple[str, str]]:
    found = []
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in flags:
            found.append((flag, flags[flag]))
    return found


class _Planner:
    """One planning pass; collects issues instead of stopping at the first."""

    def __init__(
        self,
        inventory: Inventory,
        plugins: Plugins,
        config: Mapping[str, Any] | None,
        config_source: str | None,
        description: checkpoint.Description | None = None,
    ) -> None:
        self.inv = inventory
        self.spec = inventory.spec
        self.serve = inventory.spec.serve
        self.plugins = plugins
        self.config = config
        self.config_source = config_source
        self.description = description
        self.issues: list[PlanIssue] = []
        self.notes: list[str] = []

    @property
    def total_devices(self) -> int:
        """The devices every host offers, together (what TP x PP x DP must equal)."""
        return sum(len(h.devices) for h in self.inv.hosts)

    def issue(self, field_: str, message: str, hint: str | None = None) -> None:
        self.issues.append(PlanIssue(field_, message, hint))

    # -------------------------------------------------------------- pieces
    def runtime(self) -> tuple[RuntimeProfile, str]:
        image = self.spec.container.image if self.spec.container else None
        version = image_version(image) if image else None
        if self.spec.runtime is None and version is not None:  # the image says which release it carries
            known = [p for p in self.plugins.runtimes() if p.vllm_ascend == version]
            if known:
                return known[0], f"container.image tag ({image})"
        prof = self.plugins.runtime(self.spec.runtime)
        return prof, _origin(self.inv, "runtime") if self.spec.runtime else "default: newest vllm-ascend profile"

    def container(self, kind: str, device_class: str, runtime: RuntimeProfile) -> tuple[ContainerPlan | None, Value]:
        """The container every host runs in (inventory `container:`), or the host's own Python."""
        spec = self.spec.container
        if spec is None or self.spec.model is None:
            return None, Value(
                "host", "default: each host's own Python environment (setup lines + the plan's env file)"
            )
        plan, issues = plan_container(
            spec,
            cluster=self.inv.name,
            kind=kind,
            device_class=device_class,
            runtime=runtime,
            runtime_set=self.spec.runtime is not None,
            model_path=self.spec.model.path,
            state_dir=state_dir(self.inv.name),
            origin=lambda key: _origin(self.inv, key),
        )
        self.issues += issues
        if plan is None:
            return None, Value("container", _origin(self.inv, "container"))
        return plan, Value(
            "container",
            f"{_origin(self.inv, 'container')}: one {plan.name.value} per host from {plan.image.value}",
        )

    def parallel(self, sit: Situation, strategy: LaunchStrategy) -> tuple[Value, Value, Value]:
        hosts = self.inv.hosts
        total = self.total_devices
        s = self.serve
        profile, row = sit.profile, sit.row
        own = strategy.sizes(sit)
        if own is not None:
            return own
        if s.tensor_parallel_size or s.pipeline_parallel_size or s.data_parallel_size:
            dp = Value(s.data_parallel_size or 1, _origin(self.inv, "serve.data_parallel_size"))
            if s.tensor_parallel_size and s.pipeline_parallel_size:
                return (
                    Value(s.tensor_parallel_size, _origin(self.inv, "serve.tensor_parallel_size")),
                    Value(s.pipeline_parallel_size, _origin(self.inv, "serve.pipeline_parallel_size")),
                    dp,
                )
            if s.tensor_parallel_size:
                pp = max(1, total // (s.tensor_parallel_size * dp.value))
                return (
                    Value(s.tensor_parallel_size, _origin(self.inv, "serve.tensor_parallel_size")),
                    Value(pp, "derived: devices / (TP x DP)"),
                    dp,
                )
            if s.pipeline_parallel_size:
                tp = max(1, total // (s.pipeline_parallel_size * dp.value))
                return (
                    Value(tp, "derived: devices / (PP x DP)"),
                    Value(s.pipeline_parallel_size, _origin(self.inv, "serve.pipeline_parallel_size")),
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

    def max_len(self, row: Row | None, limit: int | None) -> Value:
        if self.serve.max_model_len:
            return Value(self.serve.max_model_len, _origin(self.inv, "serve.max_model_len"))
        if row is not None:
            if limit is not None and row.max_model_len > limit:
                return Value(limit, f"plugin row {row.max_model_len} capped to the model's limit {limit}")
            return Value(row.max_model_len, f"plugin row {row.hardware}")
        if limit is not None:
            return Value(min(limit, GENERIC_MAX_LEN), f"default: min(model limit {limit}, {GENERIC_MAX_LEN})")
        return Value(GENERIC_MAX_LEN, "default (config.json unknown)")

    def check_extra_args(self, runtime: RuntimeProfile, args: list[str], where: str) -> None:
        for flag, replacement in _flag_in(args, runtime.removed_vllm_flags):
            self.issue(where, f"{flag} does not exist in vLLM {runtime.vllm} ({runtime.name})", replacement)
        for arg in args:
            for key, replacement in runtime.removed_config_keys.items():
                if key in arg:
                    self.issue(where, f"{key} is not accepted by {runtime.name}", replacement)
        for flag, field_ in _flag_in(args, MANAGED_FLAGS):
            self.issue(where, f"{flag} is set by the planner", f"set {field_} instead")

    def check_ray_args(self, runtime: RuntimeProfile) -> None:
        args = self.spec.ray.extra_args
        for flag, replacement in _flag_in(args, runtime.removed_ray_flags):
            self.issue("ray.extra_args", f"`ray start {flag}` must not be used with {runtime.name}", replacement)
        for flag, field_ in _flag_in(args, MANAGED_RAY_FLAGS):
            self.issue("ray.extra_args", f"{flag} is set by the planner", f"set {field_} instead")

    def host_env(
        self,
        host: ResolvedHost,
        profile: ModelProfile,
        row: Row | None,
        nic_auto: bool,
        planned: Mapping[str, Value],
        own: Mapping[str, Value],
    ) -> dict[str, Value]:
        env: dict[str, Value] = dict(planned)
        for key, value in profile.env.items():
            env[key] = Value(value, f"plugin {profile.family}")
        if row is not None:  # the recipe's own: named with its source
            where = _row_origin(profile.family, row)
            env.update({key: Value(value, where) for key, value in row.env.items()})
        nic_value = f"<NIC owning {host.address}>" if nic_auto else host.nic
        nic_origin = (
            "auto: resolved at run time from the host's address"
            if nic_auto
            else f"{self.inv.origins[host.name].get('nic', 'default')} nic"
        )
        env.update(
            {
                "HCCL_IF_IP": Value(host.address, "host address"),
                "GLOO_SOCKET_IFNAME": Value(nic_value, nic_origin),
                "TP_SOCKET_IFNAME": Value(nic_value, nic_origin),
                "HCCL_SOCKET_IFNAME": Value(nic_value, nic_origin),
                "VLLM_HOST_IP": Value(host.address, "host address"),
                "ASCEND_RT_VISIBLE_DEVICES": Value(
                    ",".join(map(str, host.devices)), f"{self.inv.origins[host.name].get('devices', 'default')} devices"
                ),
            }
        )
        env.update(own)  # the launcher's own (Ray's node IP, its device rule)
        for key, value in host.env.items():
            level = self.inv.origins[host.name].get(f"env.{key}", "host")
            if key in PLANNED_ENV:
                self.issue(
                    f"{level} env.{key}" if level != "--set" else f"--set env.{key}",
                    f"{key} is set by the planner from {PLANNED_ENV[key]}",
                    f"remove it from env and set {PLANNED_ENV[key]} instead",
                )
                continue
            env[key] = Value(value, f"inventory {level} env")
        return env

    # -------------------------------------------------------------- decisions, in order

    def situation(self, m: _Model, runtime: RuntimeProfile) -> Situation:
        """What every launcher decides from (the model, its row, expert parallel, the runtime)."""
        return Situation(
            inventory=self.inv,
            runtime=runtime,
            profile=m.profile,
            row=m.row,
            row_fits=m.row is not None and self.row_lays_out(m.row, self.total_devices),
            expert_parallel=EXPERT_PARALLEL in self.ep_args(m),
            origin=lambda key: _origin(self.inv, key),
        )

    def launcher(self, sit: Situation) -> tuple[Value, LaunchStrategy]:
        """How the ranks start: the user's `serve.launcher`, or (auto) the first launcher, in their
        `auto_order`, that claims this deployment (mp on one host, dp for expert parallel across hosts
        where the runtime lists Ray + EP as broken), the launcher the plugin row's published recipe
        runs, else the fallback (ray). The chosen launcher's refusals are the plan's issues."""
        known = launchers.registry()
        asked = self.serve.launcher
        if asked != "auto" and asked not in known:
            guess = did_you_mean(asked, list(known))
            self.issue(
                "serve.launcher",
                f"{asked!r} is not a launcher",
                (f"did you mean '{guess}'? " if guess else "") + f"launchers: auto, {', '.join(known)}",
            )
        chosen: Value | None = None
        if asked != "auto" and asked in known:
            chosen = Value(asked, _origin(self.inv, "serve.launcher"))
        else:
            row = sit.row
            for strategy in sorted(known.values(), key=lambda x: x.auto_order):
                if strategy.auto_order > ROW_ORDER and row is not None and row.launcher in known and sit.row_fits:
                    chosen = Value(
                        row.launcher,
                        f"auto: plugin {sit.profile.family} row {row.layout()}: the published recipe runs launcher "
                        f"{row.launcher}" + (f" ({row.source})" if row.source else ""),
                    )
                    break
                reason = strategy.auto(sit)
                if reason is not None:
                    chosen = Value(strategy.name, reason)
                    break
        assert chosen is not None, "the fallback launcher (ray) always answers"
        strategy = known[chosen.value]
        self.issues += strategy.refusals(sit)
        return chosen, strategy

    def speculative(self, m: _Model) -> tuple[Arg | None, int]:
        """The recipe's speculative decoding when the checkpoint has MTP layers (config.json
        `num_nextn_predict_layers`), unless `serve.speculative: off` or the user passes their own; with
        the MTP layers it adds (0 when off)."""
        row = m.row
        if row is None or not row.speculative:
            return None, 0
        spec = dict(row.speculative)
        mtp = int(m.info.config.get("num_nextn_predict_layers") or 0)
        where = _row_origin(m.profile.family, row)
        if not mtp:
            if self.config is not None:
                self.notes.append(f"{where} runs speculative decoding with MTP layers; this config.json has none")
            return None, 0
        if self.serve.speculative == "off":
            self.notes.append(f"speculative decoding off ({_origin(self.inv, 'serve.speculative')}): {where} runs it")
            return None, 0
        if _flag_in(list(self.serve.extra_args), {"--speculative-config": ""}):
            return None, 0  # the user's own, in serve.extra_args
        origin = f"{where}: the checkpoint has {mtp} MTP layer(s); serve.speculative: off turns it off"
        return Arg("--speculative-config", json.dumps(spec, separators=(", ", ": ")), origin), mtp

    def ep_args(self, m: _Model) -> list[str]:
        return list(m.profile.extra_args) + list(m.row.extra_args if m.row else ()) + list(self.serve.extra_args)

    def timeouts(self, mem: MemoryPlan | None, hosts: int) -> dict[str, Value]:
        """Start-up timeouts sized to the job: vLLM's 600 s engine wait and HCCL's 120 s connect
        timeout are too short for hundreds of GB of weights loaded on several hosts."""
        if mem is None:
            return {}
        per_host = mem.per_device.weights * max(len(h.devices) for h in self.inv.hosts) / memory.GIB
        sized = timeout_for(per_host, hosts)
        why = f"sized: ~{per_host:.0f} GiB of weights per host at {LOAD_GIB_PER_S} GiB/s + {hosts} host(s)"
        out = {"VLLM_ENGINE_READY_TIMEOUT_S": Value(str(sized), why + " (vLLM's default 600 s)")}
        if hosts > 1:
            out["HCCL_CONNECT_TIMEOUT"] = Value(
                str(min(7200, max(120, sized))), why + ": ranks that load first wait for the others to connect"
            )
            out["HCCL_EXEC_TIMEOUT"] = Value(
                str(min(3600, max(1836, sized))), why + " (CANN's default 1836 s at least)"
            )
        return out

    def recipe_env(self, runtime: RuntimeProfile, device_class: str, hosts: int) -> dict[str, Value]:
        """The runtime's multi-node recipe settings (every host), when the plan spans hosts."""
        if hosts < 2:
            return {}
        where = f"runtime {runtime.name}: multi-node recipe"
        env = {k: Value(v, where) for k, v in runtime.multi_node_env.items()}
        for k, v in runtime.multi_node_env_by_class.get(device_class, {}).items():
            env[k] = Value(v, f"{where} on {device_class}")
        return env

    def ready_timeout(self, env: Mapping[str, Value]) -> Value:
        """`up`'s wait for /health: never shorter than the engine's own start-up timeout."""
        engine = env.get("VLLM_ENGINE_READY_TIMEOUT_S")
        need = float(engine.value) + READY_MARGIN_S if engine is not None and str(engine.value).isdigit() else 0.0
        given = float(self.serve.ready_timeout)
        if self.inv.section_origins.get("serve.ready_timeout", "default") != "default":
            if given < need:  # the user's choice stands (a quick failure on purpose), with a warning
                self.notes.append(
                    f"serve.ready_timeout {given:g}s is shorter than the engines' own start-up timeout "
                    f"(VLLM_ENGINE_READY_TIMEOUT_S={engine.value if engine else '?'}) + {READY_MARGIN_S:g}s: `up` "
                    f"may give up on a server that is still loading (at least {need:g}s lets it finish)"
                )
            return Value(given, _origin(self.inv, "serve.ready_timeout"))
        if given < need:
            return Value(need, f"raised to the engines' start-up timeout + {READY_MARGIN_S:g}s")
        return Value(given, "default")

    def hardware(self) -> tuple[str, str, Value]:
        kind = self.spec.hardware or DEFAULT_KIND
        origin = _origin(self.inv, "hardware") if self.spec.hardware else "default: 910B, 64 GB per device"
        return kind, DEVICE_CLASS[kind], Value(kind, origin)

    def model(self, device_class: str) -> _Model:
        """The model's plugin profile and table row, and its shape from config.json (if known)."""
        info, quantization = model_info(self.inv, self.config, self.description)
        profile, plugin_name = self.plugins.profile_for(info)
        row = self.picked_row(profile, profile.row_for(device_class, self.total_devices))
        if profile.note:
            self.notes.append(profile.note)
        merged_config = {**info.config, **(row.hf_overrides if row else {})}
        shape = memory.shape_of(merged_config) if self.config else None
        limit = memory.max_positions(merged_config) if self.config else None
        if self.config is None:
            self.notes.append(
                "config.json not available here: memory, head-count and length checks are skipped "
                "(set model.config to a local copy, or run where model.path exists)"
            )
        elif shape is None:
            self.notes.append(
                f"config.json ({self.config_source}) lacks hidden size/layers/heads: memory and head checks are skipped"
            )
        return _Model(info, profile, plugin_name, row, merged_config, shape, limit, quantization)

    def picked_row(self, profile: ModelProfile, row: Row | None) -> Row | None:
        """The published layout the user's explicit sizes and length name (the `--set` options `plan`
        shows for it), so its overrides, environment and launcher come with it; else `row`."""
        s = self.serve
        wanted = (s.tensor_parallel_size, s.pipeline_parallel_size, s.data_parallel_size, s.max_model_len)
        if row is None or all(w is None for w in wanted):
            return row
        for candidate in (row, *profile.alternatives(row)):
            have = (candidate.tp, candidate.pp, candidate.dp, candidate.max_model_len)
            if all(w is None or w == h for w, h in zip(wanted, have)):
                return candidate
        return row

    def parallelism(
        self, m: _Model, kind: str, device_class: str, sit: Situation, strategy: LaunchStrategy
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

    def length_and_batching(self, m: _Model, runtime: RuntimeProfile) -> tuple[Value, Value, bool]:
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
            batched = Value(self.serve.max_num_batched_tokens, _origin(self.inv, "serve.max_num_batched_tokens"))
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
        m: _Model,
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

    def vllm_args(
        self,
        m: _Model,
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
            Value(trust, _origin(self.inv, "model.trust_remote_code"))
            if trust is not None
            else Value(m.profile.trust_remote_code, f"plugin {m.profile.family}")
        )
        block = self.serve.block_size or runtime.block_size
        args: list[Arg] = [
            Arg("--model", spec_model.path, _origin(self.inv, "model.path")),
            Arg("--served-model-name", served.value, served.origin),
            Arg("--host", self.serve.host, _origin(self.inv, "serve.host")),
            Arg("--port", self.serve.port, _origin(self.inv, "serve.port")),
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
                _origin(self.inv, "serve.max_num_seqs") if self.serve.max_num_seqs else "default (vLLM)",
            ),
            Arg("--max-num-batched-tokens", batched.value, batched.origin),
        ]
        if block:
            args.append(
                Arg(
                    "--block-size",
                    block,
                    _origin(self.inv, "serve.block_size") if self.serve.block_size else f"runtime {runtime.name}",
                )
            )
        args += [Arg("--gpu-memory-utilization", util.value, util.origin), Arg("--dtype", dtype.value, dtype.origin)]
        chunked_default = runtime.chunked_prefill_default
        if self.serve.enable_chunked_prefill is not None and self.serve.enable_chunked_prefill != chunked_default:
            args.append(
                Arg(
                    "--enable-chunked-prefill" if chunked else "--no-enable-chunked-prefill",
                    None,
                    _origin(self.inv, "serve.enable_chunked_prefill"),
                )
            )
        args.append(Arg("--trust-remote-code", True if trust_v.value else False, trust_v.origin))
        args.append(
            Arg(
                "--enforce-eager",
                True if self.serve.enforce_eager else False,
                _origin(self.inv, "serve.enforce_eager")
                if self.serve.enforce_eager is not None
                else "default (graph mode)",
            )
        )
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
        own = paired_args(self.serve.extra_args, _origin(self.inv, "serve.extra_args"))
        own_flags = {a.flag for a in own}
        plugin_args = list(m.profile.extra_args) + list(m.row.extra_args if m.row else ())
        args += [a for a in paired_args(plugin_args, f"plugin {m.profile.family}") if a.flag not in own_flags]
        return args + own

    def host_plans(
        self,
        m: _Model,
        sit: Situation,
        strategy: LaunchStrategy,
        tp: Value,
        args: list[Arg],
        planned_env: Mapping[str, Value],
    ) -> tuple[HostPlan, ...]:
        """Per host: its environment, and what the launcher runs there (a Ray node, its own server)."""
        hosts = [
            HostServe(
                host,
                self.host_env(host, m.profile, m.row, host.nic == "auto", planned_env, strategy.host_env(sit, host)),
            )
            for host in self.inv.hosts
        ]
        argv = [*sit.runtime.serve_argv, self.spec.model.path if self.spec.model else ""]
        for arg in args:
            if arg.flag != "--model":
                argv += arg.argv()
        return strategy.host_plans(sit, hosts, tp, argv)

    # -------------------------------------------------------------- whole plan

    def build(self) -> Plan:
        if self.spec.model is None:
            raise PlanInvalid(
                str(self.inv.path),
                [
                    PlanIssue(
                        "model",
                        "the inventory has no model section",
                        "add model: {path: /data/models/NAME, served_name: NAME}",
                    )
                ],
            )
        runtime, runtime_origin = self.runtime()
        kind, device_class, hardware = self.hardware()
        container, placement = self.container(kind, device_class, runtime)
        m = self.model(device_class)
        sit = self.situation(m, runtime)
        launcher, strategy = self.launcher(sit)
        tp, pp, dp = self.parallelism(m, kind, device_class, sit, strategy)
        self.issues += strategy.rank_checks(sit, tp, pp, dp)
        max_len, batched, chunked = self.length_and_batching(m, runtime)
        util = Value(
            self.serve.gpu_memory_utilization or DEFAULT_UTILIZATION,
            _origin(self.inv, "serve.gpu_memory_utilization")
            if self.serve.gpu_memory_utilization
            else "default (vLLM)",
        )
        dtype = Value(self.serve.dtype or "auto", _origin(self.inv, "serve.dtype") if self.serve.dtype else "default")
        spec_arg, mtp = self.speculative(m)
        if mtp and m.shape is not None:  # the draft's MTP layers load beside the model's (one MoE layer each)
            m = replace(m, shape=replace(m.shape, layers=m.shape.layers + mtp))
        mem_plan = self.memory(m, kind, device_class, (tp, pp, dp), max_len, util, dtype)

        self.check_extra_args(runtime, list(self.serve.extra_args), "serve.extra_args")
        self.check_extra_args(
            runtime, list(m.profile.extra_args) + list(m.row.extra_args if m.row else ()), f"plugin {m.plugin_name}"
        )
        self.check_ray_args(runtime)

        hosts = self.inv.hosts
        served = Value(
            m.info.name,
            _origin(self.inv, "model.served_name") if self.spec.model.served_name else "default: model directory name",
        )
        backend = strategy.backend(sit)
        args = self.vllm_args(
            m, runtime, served, (tp, pp, dp), backend, (max_len, batched, chunked), util, dtype, sit, strategy
        )
        if spec_arg is not None:
            args.append(spec_arg)
        planned_env = self.recipe_env(runtime, device_class, len(hosts))
        planned_env.update(self.timeouts(mem_plan, len(hosts)))
        api_key = None
        if self.serve.api_key_env:
            api_key = f"local ${self.serve.api_key_env}"
        elif self.serve.api_key_file:
            api_key = f"local file {self.serve.api_key_file}"
        host_plans = self.host_plans(m, sit, strategy, tp, args, planned_env)
        ready = self.ready_timeout(host_plans[0].env if host_plans else {})
        if self.issues:
            raise PlanInvalid(str(self.inv.path), self.issues)
        return Plan(
            cluster=self.inv.name,
            hardware=hardware,
            device_class=device_class,
            runtime=runtime,
            runtime_origin=runtime_origin,
            model_path=self.spec.model.path,
            served_name=served,
            family=m.profile.family,
            plugin=m.plugin_name,
            plugin_source=m.profile.source,
            row=m.row,
            config_source=self.config_source,
            quantization=m.quantization,
            alternatives=m.profile.alternatives(m.row),
            tp=tp,
            pp=pp,
            dp=dp,
            backend=backend,
            vllm_args=tuple(args),
            api_key=api_key,
            hosts=host_plans,
            memory=mem_plan,
            notes=tuple(self.notes),
            endpoint=_endpoint(self.inv),
            ray_port=self.spec.ray.port,
            probe_url=_probe_url(self.inv),
            launcher=launcher,
            ready_timeout=ready,
            dp_rpc_port=strategy.dp_rpc_port(self.inv),
            ports=inventory_ports(self.inv, str(launcher.value)),
            placement=placement,
            container=container,
            api_key_env=self.serve.api_key_env,
            api_key_file=str(self.inv.resolve_path(self.serve.api_key_file))
            if self.serve.api_key_file and not self.serve.api_key_env
            else None,
        )


def timeout_for(per_host_gib: float, hosts: int) -> int:
    """Seconds for the engines to load and meet: weights at LOAD_GIB_PER_S, 300 s of graph
    compilation and warm-up, a minute per extra host; at least vLLM's 600 s, at most the
    recipes' 30000, in whole minutes."""
    seconds = 300 + per_host_gib / LOAD_GIB_PER_S + 60 * (hosts - 1)
    return int(min(30000, max(600, -(-seconds // 60) * 60)))


def _endpoint(inventory: Inventory) -> str:
    return f"http://{inventory.head.address}:{inventory.spec.serve.port}/v1"


def _probe_url(inventory: Inventory) -> str:
    """Where the head itself reaches the server (a wildcard bind answers on loopback)."""
    serve = inventory.spec.serve
    return f"http://{'127.0.0.1' if serve.host in ('0.0.0.0', '::') else serve.host}:{serve.port}"


def observation_plan(inventory: Inventory, runtime: RuntimeProfile) -> Plan:
    """What `status` needs to look at a cluster whose inventory no longer plans (hosts, roles,
    addresses, devices, ports, the served name), taken from the inventory as written with no
    planning rule applied: "what runs there now?" must not depend on the plan being valid."""
    model = inventory.spec.model
    kind = inventory.spec.hardware or DEFAULT_KIND
    unplanned = Value(None, "not planned: the plan is not valid")
    name = (model.served_name or model.path.rstrip("/").rsplit("/", 1)[-1]) if model else "-"
    hosts = tuple(
        HostPlan(h.name, h.address, h.role, h.devices, None if h.nic == "auto" else h.nic, {}, ())
        for h in inventory.hosts
    )
    return Plan(
        cluster=inventory.name,
        hardware=Value(kind, "inventory"),
        device_class=DEVICE_CLASS[kind],
        runtime=runtime,
        runtime_origin=unplanned.origin,
        model_path=model.path if model else "-",
        served_name=Value(name, "inventory"),
        family="-",
        plugin="-",
        plugin_source="-",
        row=None,
        config_source=None,
        tp=unplanned,
        pp=unplanned,
        dp=unplanned,
        backend=unplanned,
        vllm_args=(),
        api_key=None,
        hosts=hosts,
        memory=None,
        endpoint=_endpoint(inventory),
        ray_port=inventory.spec.ray.port,
        probe_url=_probe_url(inventory),
    )


def inventory_ports(inventory: Inventory, launcher: str) -> tuple[PortUse, ...]:
    """The ports a launcher would bind for this inventory (HCCL's base from the head's env if set).
    `launcher` 'auto' (the plan unknown) counts both Ray's and the DP RPC port."""
    given = inventory.head.env.get("HCCL_IF_BASE_PORT", "")
    base = int(given) if given.isdigit() else HCCL_BASE_PORT
    return launchers.ports_for(launcher, inventory, base)


def make_plan(
    inventory: Inventory,
    plugins: Plugins,
    config: Mapping[str, Any] | None = None,
    config_source: str | None = None,
    description: checkpoint.Description | None = None,
) -> Plan:
    """Plan the deployment; raises `PlanInvalid` listing every problem found. `description`: the
    checkpoint's quant_model_description.json, when read."""
    return _Planner(inventory, plugins, config, config_source, description).build()
