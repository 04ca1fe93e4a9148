"""The plan as `--json` prints it: every value with its origin, plus the exact commands."""

from __future__ import annotations

from typing import Any

from toolkit.planner.types import Plan, Value
from toolkit.plugin_api import Row
from toolkit.serial import plain


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
        "launch": {"launcher": v(plan.launcher), "runtime": v(plan.placement)},
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
                "rank_args": [{"flag": a.flag, "value": a.value, "from": a.origin} for a in h.rank_args],
            }
            for h in plan.hosts
        ],
        "vllm": {
            "host": plan.head.name,
            "command": plan.vllm_command,
            "argv": plan.vllm_argv(),
            "args": [{"flag": a.flag, "value": a.value, "from": a.origin} for a in plan.vllm_args],
            "api_key": plan.api_key,
            "endpoint": plan.endpoint,
            "ready_timeout": v(plan.ready_timeout),
            "dp_rpc_port": plan.dp_rpc_port,
        },
        "memory": mem,
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
