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
from dataclasses import replace
from typing import Any, Mapping, Sequence

from toolkit.config.hardware import DEFAULT_KIND
from toolkit.config.inventory import Inventory
from toolkit.config.yamlsrc import did_you_mean
from toolkit.facts.deploy import state_dir
from toolkit.planner import checkpoint, demand, launchers, memory
from toolkit.planner import startup as startup_mod
from toolkit.planner.container import ContainerPlan, image_version, plan_container
from toolkit.planner.environment import EnvironmentRules
from toolkit.planner.launchers import EXPERT_PARALLEL, ROW_ORDER, HostServe, LaunchStrategy, Situation
from toolkit.planner.observation import endpoint_of, inventory_ports, probe_url_of
from toolkit.planner.plugins import Plugins
from toolkit.planner.server_args import ServerArgRules
from toolkit.planner.sizing import SizingRules
from toolkit.planner.startup import start_key
from toolkit.planner.state import ModelFacts, flags_in, origin_of, row_origin
from toolkit.planner.types import (
    Arg,
    HostPlan,
    Plan,
    PlanInvalid,
    PlanIssue,
    Value,
)
from toolkit.plugin_api import (
    DEVICE_CLASS,
    ModelInfo,
    ModelProfile,
    Row,
    RuntimeProfile,
)

DEFAULT_UTILIZATION = 0.9


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
        quant = Value(spec.quantization, origin_of(inventory, "model.quantization"))
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


class _Planner(SizingRules, ServerArgRules, EnvironmentRules):
    """One planning pass; collects issues instead of stopping at the first."""

    # -------------------------------------------------------------- pieces
    def runtime(self) -> tuple[RuntimeProfile, str]:
        image = self.spec.container.image if self.spec.container else None
        version = image_version(image) if image else None
        if self.spec.runtime is None and version is not None:  # the image says which release it carries
            known = [p for p in self.plugins.runtimes() if p.vllm_ascend == version]
            if known:
                return known[0], f"container.image tag ({image})"
        prof = self.plugins.runtime(self.spec.runtime)
        return prof, origin_of(self.inv, "runtime") if self.spec.runtime else "default: newest vllm-ascend profile"

    def container(
        self, kind: str, device_class: str, runtime: RuntimeProfile, shm: tuple[str, str]
    ) -> tuple[ContainerPlan | None, Value]:
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
            origin=lambda key: origin_of(self.inv, key),
            shm=shm,
        )
        self.issues += issues
        if plan is None:
            return None, Value("container", origin_of(self.inv, "container"))
        return plan, Value(
            "container",
            f"{origin_of(self.inv, 'container')}: one {plan.name.value} per host from {plan.image.value}",
        )

    # -------------------------------------------------------------- decisions, in order

    def situation(self, m: ModelFacts, runtime: RuntimeProfile) -> Situation:
        """What every launcher decides from (the model, its row, expert parallel, the runtime)."""
        return Situation(
            inventory=self.inv,
            runtime=runtime,
            profile=m.profile,
            row=m.row,
            row_fits=m.row is not None and self.row_lays_out(m.row, self.total_devices),
            expert_parallel=EXPERT_PARALLEL in self.ep_args(m),
            origin=lambda key: origin_of(self.inv, key),
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
            chosen = Value(asked, origin_of(self.inv, "serve.launcher"))
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

    def speculative(self, m: ModelFacts) -> tuple[Arg | None, int]:
        """The recipe's speculative decoding when the checkpoint has MTP layers (config.json
        `num_nextn_predict_layers`), unless `serve.speculative: off` or the user passes their own; with
        the MTP layers it adds (0 when off)."""
        row = m.row
        if row is None or not row.speculative:
            return None, 0
        spec = dict(row.speculative)
        mtp = int(m.info.config.get("num_nextn_predict_layers") or 0)
        where = row_origin(m.profile.family, row)
        if not mtp:
            if self.config is not None:
                self.notes.append(f"{where} runs speculative decoding with MTP layers; this config.json has none")
            return None, 0
        if self.serve.speculative == "off":
            self.notes.append(f"speculative decoding off ({origin_of(self.inv, 'serve.speculative')}): {where} runs it")
            return None, 0
        if flags_in(list(self.serve.extra_args), {"--speculative-config": ""}):
            return None, 0  # the user's own, in serve.extra_args
        origin = f"{where}: the checkpoint has {mtp} MTP layer(s); serve.speculative: off turns it off"
        return Arg("--speculative-config", json.dumps(spec, separators=(", ", ": ")), origin), mtp

    def hardware(self) -> tuple[str, str, Value]:
        kind = self.spec.hardware or DEFAULT_KIND
        origin = origin_of(self.inv, "hardware") if self.spec.hardware else "default: 910B, 64 GB per device"
        return kind, DEVICE_CLASS[kind], Value(kind, origin)

    def model(self, device_class: str) -> ModelFacts:
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
        return ModelFacts(info, profile, plugin_name, row, merged_config, shape, limit, quantization)

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

    def host_plans(
        self,
        m: ModelFacts,
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
        return strategy.host_plans(sit, hosts, tp, args)

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
        m = self.model(device_class)
        sit = self.situation(m, runtime)
        launcher, strategy = self.launcher(sit)
        tp, pp, dp = self.parallelism(m, kind, device_class, sit, strategy)
        self.issues += strategy.rank_checks(sit, tp, pp, dp)
        max_len, batched, chunked = self.length_and_batching(m, runtime)
        util = Value(
            self.serve.gpu_memory_utilization or DEFAULT_UTILIZATION,
            origin_of(self.inv, "serve.gpu_memory_utilization")
            if self.serve.gpu_memory_utilization
            else "default (vLLM)",
        )
        dtype = Value(self.serve.dtype or "auto", origin_of(self.inv, "serve.dtype") if self.serve.dtype else "default")
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
            origin_of(self.inv, "model.served_name")
            if self.spec.model.served_name
            else "default: model directory name",
        )
        backend = strategy.backend(sit)
        args = self.vllm_args(
            m, runtime, served, (tp, pp, dp), backend, (max_len, batched, chunked), util, dtype, sit, strategy
        )
        if spec_arg is not None:
            args.append(spec_arg)
        planned_env = self.recipe_env(runtime, device_class, len(hosts))
        key = start_key(
            self.spec.model.path,
            (tp, pp, dp),
            str(launcher.value),
            "container" if self.spec.container is not None else "host",
            [len(h.devices) for h in hosts],
            str(hardware.value),
            runtime.name,
        )
        startup, timeouts = self.timeouts(mem_plan, len(hosts), startup_mod.predict(self.startups, key))
        planned_env.update(timeouts)
        api_key = None
        if self.serve.api_key_env:
            api_key = f"local ${self.serve.api_key_env}"
        elif self.serve.api_key_file:
            api_key = f"local file {self.serve.api_key_file}"
        host_plans = self.host_plans(m, sit, strategy, tp, args, planned_env)
        container, placement = self.container(
            kind, device_class, runtime, demand.container_shm(str(backend.value), host_plans)
        )
        measured = startup is not None and not startup.origin.startswith("rule of thumb")
        ready = self.ready_timeout(host_plans[0].env if host_plans else {}, predicted=measured)
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
            endpoint=endpoint_of(self.inv),
            ray_port=self.spec.ray.port,
            probe_url=probe_url_of(self.inv),
            launcher=launcher,
            ready_timeout=ready,
            startup=startup,
            dp_rpc_port=strategy.dp_rpc_port(self.inv),
            ports=inventory_ports(self.inv, str(launcher.value)),
            placement=placement,
            container=container,
            api_key_env=self.serve.api_key_env,
            api_key_file=str(self.inv.resolve_path(self.serve.api_key_file))
            if self.serve.api_key_file and not self.serve.api_key_env
            else None,
        )


def make_plan(
    inventory: Inventory,
    plugins: Plugins,
    config: Mapping[str, Any] | None = None,
    config_source: str | None = None,
    description: checkpoint.Description | None = None,
    startups: Sequence[Mapping[str, Any]] = (),
) -> Plan:
    """Plan the deployment; raises `PlanInvalid` listing every problem found. `description`: the
    checkpoint's quant_model_description.json, when read; `startups`: measured cold starts
    (`config.startups`), from which the next one is predicted and the start-up timeouts sized."""
    return _Planner(inventory, plugins, config, config_source, description, startups).build()
