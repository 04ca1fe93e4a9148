"""Launcher `ray` (the seed's recipe): a Ray node on every host, the head first, then vLLM on the
head with the Ray executor backend across hosts. Picked by `auto` when nothing else is."""

from __future__ import annotations

import json

from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.planner.launchers.base import BaseLauncher, HostServe, Situation, module_argv
from toolkit.planner.types import (
    RAY_NODE,
    VLLM_SERVER,
    Arg,
    HostPlan,
    PlanIssue,
    PortUse,
    Process,
    Value,
    ray_temp_dir,
)
from toolkit.plugin_api import RuntimeProfile

EXPERT_PARALLEL = "--enable-expert-parallel"


class RayLayout(BaseLauncher):
    name: str = "ray"
    summary: str = "a Ray node per host, vLLM on the head with Ray's executor backend"
    auto_order: int = 1000  # the fallback

    def auto(self, s: Situation) -> str | None:
        return f"auto: {len(s.hosts)} hosts: a Ray node per host, vLLM on the head (the seed's recipe)"

    def refusals(self, s: Situation) -> list[PlanIssue]:
        broken = s.runtime.ray_expert_parallel_broken
        if s.expert_parallel and broken and s.multi_host:
            return [
                PlanIssue(
                    "serve.launcher",
                    f"launcher ray with {EXPERT_PARALLEL}: {broken}",
                    "set serve.launcher: dp (or auto), as vllm-ascend's multi-node MoE recipes do",
                )
            ]
        return []

    def own_ports(self, inventory: Inventory) -> list[PortUse]:
        port = inventory.spec.ray.port
        return [*super().own_ports(inventory), PortUse("Ray's GCS", port, port, "ray.port")]

    def backend(self, s: Situation) -> Value:
        if s.multi_host:
            return Value("ray", f"launcher ray on {len(s.hosts)} hosts: ray backend")
        return Value("mp", "1 host: mp backend (Ray runs, vLLM's workers are local processes)")

    def dp_args(self, s: Situation, backend: Value) -> list[Arg]:
        return [Arg("--data-parallel-backend", "ray", backend.origin)] if s.multi_host else []

    def host_env(self, s: Situation, host: ResolvedHost) -> dict[str, Value]:
        return {
            "VLLM_HOST_IP": Value(host.address, "host address (= Ray node IP)"),
            "RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES": Value(
                "1", "required: Ray must not rewrite the visible devices"
            ),
        }

    def host_plans(self, s: Situation, hosts: list[HostServe], tp: Value, args: list[Arg]) -> tuple[HostPlan, ...]:
        """A Ray node on every host (the head's first); on the head, then, the API server on that Ray
        cluster (RAY_ADDRESS set for it alone)."""
        ray_port = s.inventory.spec.ray.port
        head = s.inventory.head
        plans = []
        for h in hosts:
            node = Process(
                "ray-node",
                RAY_NODE,
                ray_argv(s.inventory, h.host, s.runtime),
                group="nodes",
                ready="ray-nodes",
                same="self",
                ports=(ray_port,) if h.host.is_head else (),
            )
            procs = [node]
            if h.host.is_head:
                procs.append(
                    Process(
                        "vllm",
                        VLLM_SERVER,
                        module_argv(s, args),
                        group="server",
                        ready="http",
                        same="self",
                        env={"RAY_ADDRESS": f"{head.address}:{ray_port}"},
                        ports=(s.inventory.spec.serve.port,),
                        api=True,
                    )
                )
            plans.append(HostPlan(*h.common, tuple(procs)))
        return tuple(plans)


def ray_argv(inventory: Inventory, host: ResolvedHost, runtime: RuntimeProfile) -> tuple[str, ...]:
    """`ray start` for `host`: the head's port, or the head's address; the host's NPUs as Ray's resource."""
    ray = inventory.spec.ray
    head = inventory.head
    argv = ["ray", "start"]
    if host.is_head:
        argv += ["--head", "--port", str(ray.port)]
    else:
        argv += ["--address", f"{head.address}:{ray.port}"]
    argv += ["--node-ip-address", host.address, "--resources", json.dumps({runtime.ray_resource: len(host.devices)})]
    if ray.num_cpus:
        argv += ["--num-cpus", str(ray.num_cpus)]
    if ray.object_store_memory:
        argv += ["--object-store-memory", str(ray.object_store_memory)]
    argv += ["--temp-dir", ray_temp_dir(inventory.name), "--disable-usage-stats"]
    if host.is_head:
        argv += ["--include-dashboard=false"]
    return tuple(argv + list(ray.extra_args))
