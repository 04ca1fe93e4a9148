"""The plan as `--json` prints it (every value with its origin, plus the exact commands), and back:
`plan_from_dict(plan_to_dict(plan)) == plan`, so the deployment record on the head (the applied
plan) rebuilds the plan that runs, whatever the inventory says now."""

from __future__ import annotations

from typing import Any

from toolkit.planner import memory
from toolkit.planner.types import Arg, ContainerPlan, HostPlan, MemoryPlan, Plan, PortUse, Process, RunArg, Value
from toolkit.plugin_api import Row, RuntimeProfile
from toolkit.serial import plain, restore

#: keys a row's document adds to its fields (not read back)
_ROW_VIEWS = ("layout", "set")


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan for `--json`: every value with its origin, plus the exact commands."""

    def v(value: Value) -> dict[str, Any]:
        return {"value": value.value, "from": value.origin}

    mem = None
    if plan.memory is not None:
        est = plan.memory.per_device
        mem = {
            "per_device_bytes": {
                "weights": est.weights,
                "kv_cache": est.kv_cache,
                "reserve": est.reserve,
                "total": est.total,
                "available": est.available,
            },
            "fits": est.fits,
            "hbm_gib": plan.memory.hbm_gib,
            "min_devices": plan.memory.min_devices,
            "max_model_len_that_fits": plan.memory.max_len_fits,
        }
    args = arg_docs(plan.vllm_args)
    return {
        "cluster": plan.cluster,
        "hardware": v(plan.hardware),
        "device_class": plan.device_class,
        "runtime": {**plain(plan.runtime), "from": plan.runtime_origin},
        "model": {
            "path": plan.model_path,
            "served_name": v(plan.served_name),
            "family": plan.family,
            "plugin": plan.plugin,
            "source": plan.plugin_source,
            "row": plain(plan.row),
            "config": plan.config_source,
            "quantization": v(plan.quantization),
            "alternatives": [{**plain(r), "layout": r.layout(), "set": pick_with(r)} for r in plan.alternatives],
        },
        "launch": {"launcher": v(plan.launcher), "placement": v(plan.placement)},
        "parallel": {
            "tp": v(plan.tp),
            "pp": v(plan.pp),
            "dp": v(plan.dp),
            "backend": v(plan.backend),
            "devices": plan.devices,
        },
        "hosts": [
            {
                "name": h.name,
                "role": h.role,
                "address": h.address,
                "devices": list(h.devices),
                "nic": h.nic or "auto",
                "env": {k: v(val) for k, val in h.env.items()},
                "ray_command": h.ray_command,
                "ray_argv": list(h.ray_argv),
                "server_command": h.server_command,
                "server_argv": list(h.server_argv),
                "ranks": list(h.ranks),
                "rank_args": arg_docs(h.rank_args),
                "processes": [process_to_dict(p) for p in h.processes],
            }
            for h in plan.hosts
        ],
        "vllm": {
            "host": plan.head.name,
            "command": plan.vllm_command,
            "argv": plan.vllm_argv(),
            "args": args,
            "api_key": plan.api_key,
            "api_key_env": plan.api_key_env,
            "api_key_file": plan.api_key_file,
            "probe_url": plan.probe_url,
            "endpoint": plan.endpoint,
            "ready_timeout": v(plan.ready_timeout),
            "dp_rpc_port": plan.dp_rpc_port,
        },
        "ray_port": plan.ray_port,
        "ports": [plain(u) for u in plan.ports],
        "memory": mem,
        "startup": v(plan.startup) if plan.startup is not None else None,
        "container": container_to_dict(plan),
        "notes": list(plan.notes),
    }


def container_to_dict(plan: Plan) -> dict[str, Any] | None:
    """The container every host runs in, each `run` argument with its reason (None: on the host)."""
    c = plan.container
    if c is None:
        return None

    def v(value: Value) -> dict[str, Any]:
        return {"value": value.value, "from": value.origin}

    return {
        "engine": v(c.engine),
        "image": v(c.image),
        "name": v(c.name),
        "args": [{"what": a.what, "argv": list(a.argv), "from": a.origin} for a in c.args],
        "setup": list(c.setup),
        "state_dir": c.state_dir,
        "run_argv": list(c.run_argv),
        "hash": c.config_hash,
    }


def pick_with(row: Row) -> str:
    """The `--set` options that choose a published layout instead of the planned one."""
    sets = [f"serve.tensor_parallel_size={row.tp}", f"serve.pipeline_parallel_size={row.pp}"]
    sets += [f"serve.data_parallel_size={row.dp}", f"serve.max_model_len={row.max_model_len}"]
    if row.launcher:
        sets.append(f"serve.launcher={row.launcher}")
    return " ".join(f"--set {x}" for x in sets)


def arg_docs(args: tuple[Arg, ...]) -> list[dict[str, Any]]:
    """vLLM flags as the plan's document writes them (`_args` reads them back)."""
    return [{"flag": a.flag, "value": a.value, "from": a.origin, "inline": a.inline} for a in args]


def process_to_dict(p: Process) -> dict[str, Any]:
    """One process of a host: what it is, runs and binds, how it is started, probed and compared."""
    return {
        "name": p.name,
        "kind": p.kind,
        "command": p.command,
        "argv": list(p.argv),
        "group": p.group,
        "ready": p.ready,
        "same": p.same,
        "env": dict(p.env),
        "ports": list(p.ports),
        "args": arg_docs(p.args),
        "ranks": list(p.ranks),
        "api": p.api,
    }


def _process(d: dict[str, Any]) -> Process:
    return Process(
        name=d["name"],
        kind=d["kind"],
        argv=tuple(d["argv"]),
        group=d["group"],
        ready=d["ready"],
        same=d["same"],
        env=dict(d["env"]),
        ports=tuple(d["ports"]),
        args=_args(d["args"]),
        ranks=tuple(d["ranks"]),
        api=bool(d["api"]),
    )


def _value(d: dict[str, Any]) -> Value:
    return Value(d["value"], d["from"])


def _args(items: list[dict[str, Any]]) -> tuple[Arg, ...]:
    return tuple(Arg(a["flag"], a["value"], a["from"], bool(a.get("inline", False))) for a in items)


def _row(d: dict[str, Any] | None) -> Row | None:
    return None if d is None else restore(Row, {k: v for k, v in d.items() if k not in _ROW_VIEWS})


def plan_from_dict(d: dict[str, Any]) -> Plan:
    """The plan `plan_to_dict` wrote (a deployment record read back). A document without a key this
    needs raises KeyError or ValueError: the caller says the record is unreadable."""
    model, launch, par, vllm = d["model"], d["launch"], d["parallel"], d["vllm"]
    runtime = {k: v for k, v in d["runtime"].items() if k != "from"}
    mem = d.get("memory")
    memory_plan = None
    if mem is not None:
        b = mem["per_device_bytes"]
        memory_plan = MemoryPlan(
            memory.Estimate(b["weights"], b["kv_cache"], b["reserve"], b["available"]),
            mem["min_devices"],
            mem["max_model_len_that_fits"],
            mem["hbm_gib"],
        )
    c = d.get("container")
    container = None
    if c is not None:
        container = ContainerPlan(
            engine=_value(c["engine"]),
            image=_value(c["image"]),
            name=_value(c["name"]),
            args=tuple(RunArg(a["what"], tuple(a["argv"]), a["from"]) for a in c["args"]),
            setup=tuple(c["setup"]),
            state_dir=c["state_dir"],
        )
    hosts = tuple(
        HostPlan(
            name=h["name"],
            address=h["address"],
            role=h["role"],
            devices=tuple(h["devices"]),
            nic=None if h["nic"] == "auto" else h["nic"],
            env={k: _value(v) for k, v in h["env"].items()},
            processes=tuple(_process(p) for p in h["processes"]),
        )
        for h in d["hosts"]
    )
    return Plan(
        cluster=d["cluster"],
        hardware=_value(d["hardware"]),
        device_class=d["device_class"],
        runtime=restore(RuntimeProfile, runtime),
        runtime_origin=d["runtime"]["from"],
        model_path=model["path"],
        served_name=_value(model["served_name"]),
        family=model["family"],
        plugin=model["plugin"],
        plugin_source=model["source"],
        row=_row(model["row"]),
        config_source=model["config"],
        tp=_value(par["tp"]),
        pp=_value(par["pp"]),
        dp=_value(par["dp"]),
        backend=_value(par["backend"]),
        vllm_args=_args(vllm["args"]),
        api_key=vllm["api_key"],
        hosts=hosts,
        memory=memory_plan,
        notes=tuple(d["notes"]),
        endpoint=vllm["endpoint"],
        ray_port=d["ray_port"],
        probe_url=vllm["probe_url"],
        launcher=_value(launch["launcher"]),
        placement=_value(launch["placement"]),
        api_key_env=vllm["api_key_env"],
        api_key_file=vllm["api_key_file"],
        ready_timeout=_value(vllm["ready_timeout"]),
        startup=_value(d["startup"]) if d.get("startup") else None,
        dp_rpc_port=vllm["dp_rpc_port"],
        ports=tuple(restore(PortUse, u) for u in d["ports"]),
        container=container,
        quantization=_value(model["quantization"]),
        alternatives=tuple(r for r in (_row(a) for a in model["alternatives"]) if r is not None),
    )
