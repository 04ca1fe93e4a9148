"""Launcher `dp`: vLLM's own data parallel across hosts, no Ray (vllm-ascend's multi-node
recipes). Every host runs one `vllm serve` with the same model and flags; the head is rank 0 and
serves the API, every other host adds `--headless --data-parallel-start-rank R`. `auto` picks it for
expert parallel across hosts where the runtime lists Ray + EP as broken."""

from __future__ import annotations

from toolkit.config.inventory import Inventory
from toolkit.planner.launchers.base import BaseLauncher, HostServe, Situation, serve_argv
from toolkit.planner.types import VLLM_RANK, Arg, HostPlan, PlanIssue, PortUse, Process, Value
from toolkit.plugin_api import Row


class DataParallelLayout(BaseLauncher):
    name: str = "dp"
    summary: str = "vLLM's own data parallel across hosts, no Ray (vllm-ascend's multi-node recipes)"
    auto_order: int = 20

    def auto(self, s: Situation) -> str | None:
        broken = s.runtime.ray_expert_parallel_broken
        if s.multi_host and s.expert_parallel and broken:
            return (
                f"auto: expert parallel across {len(s.hosts)} hosts, and {broken}: vLLM's own data parallel, no Ray "
                "(vllm-ascend's multi-node recipes)"
            )
        return None

    def sizes(self, s: Situation) -> tuple[Value, Value, Value] | None:
        """TP = NPUs per host, DP = devices / TP, unless PP is set or a row lays out these devices."""
        serve = s.inventory.spec.serve
        if serve.pipeline_parallel_size or (s.row is not None and s.row.devices == s.total_devices):
            return None
        per_node = max(len(h.devices) for h in s.hosts)
        tp = (
            Value(serve.tensor_parallel_size, s.origin("serve.tensor_parallel_size"))
            if serve.tensor_parallel_size
            else Value(per_node, "rule for dp: TP = NPUs per node")
        )
        dp = (
            Value(serve.data_parallel_size, s.origin("serve.data_parallel_size"))
            if serve.data_parallel_size
            else Value(max(1, s.total_devices // tp.value), "derived for dp: devices / TP (PP 1)")
        )
        return tp, Value(1, "launcher dp: no pipeline parallel"), dp

    def row_sizes(self, row: Row, where: str) -> tuple[Value, Value, Value]:
        if row.pp > 1:
            relaid = f"{where}: its PP {row.pp} stages run as DP ranks (launcher dp has no PP)"
            return Value(row.tp, where), Value(1, relaid), Value(row.pp * row.dp, relaid)
        return super().row_sizes(row, where)

    def rank_checks(self, s: Situation, tp: Value, pp: Value, dp: Value) -> list[PlanIssue]:
        """No PP; whole ranks on every host (devices = local ranks x TP); distinct ports."""
        issues = []
        if pp.value > 1:
            issues.append(
                PlanIssue(
                    "serve.pipeline_parallel_size",
                    f"launcher dp runs whole model replicas per DP rank: PP {pp.value} is not supported",
                    "use TP inside a host and DP across hosts (PP 1), or serve.launcher: ray for PP across hosts",
                )
            )
        for host in s.hosts:
            if len(host.devices) % tp.value:
                issues.append(
                    PlanIssue(
                        f"hosts[{host.name}].devices",
                        f"{host.name} has {len(host.devices)} devices, not a whole number of DP ranks of TP {tp.value}",
                        f"give every host a multiple of {tp.value} devices, or change serve.tensor_parallel_size",
                    )
                )
        return issues + super().rank_checks(s, tp, pp, dp)

    def own_ports(self, inventory: Inventory) -> list[PortUse]:
        port = inventory.spec.serve.data_parallel_rpc_port
        return [
            *super().own_ports(inventory),
            PortUse("the data-parallel RPC port", port, port, "serve.data_parallel_rpc_port"),
        ]

    def backend(self, s: Situation) -> Value:
        return Value("mp", "launcher dp: each rank's own executor inside its host (vLLM's default, not passed)")

    def passes_backend(self) -> bool:
        return False  # each rank's own default executor, as the recipes run it

    def dp_args(self, s: Situation, backend: Value) -> list[Arg]:
        if not s.multi_host:
            return []
        head = s.inventory.head
        serve = s.inventory.spec.serve
        return [
            Arg("--data-parallel-address", head.address, f"the head {head.name}'s address (rank 0)"),
            Arg("--data-parallel-rpc-port", serve.data_parallel_rpc_port, s.origin("serve.data_parallel_rpc_port")),
        ]

    def host_plans(self, s: Situation, hosts: list[HostServe], tp: Value, args: list[Arg]) -> tuple[HostPlan, ...]:
        """Each host's own server with its local ranks; workers headless, from their first rank."""
        plans = []
        first_rank = 0
        for h in hosts:
            host = h.host
            local = max(1, len(host.devices) // tp.value)
            rank_args: list[Arg] = []
            if s.multi_host:
                rank_args.append(
                    Arg("--data-parallel-size-local", local, f"{len(host.devices)} devices / TP {tp.value}")
                )
                if not host.is_head:
                    rank_args += [
                        Arg("--data-parallel-start-rank", first_rank, "ranks before this host's"),
                        Arg("--headless", None, "a worker host: engines only, the head serves the API"),
                    ]
            argv = list(serve_argv(s, args))
            for arg in rank_args:
                argv += arg.argv()
            serve = s.inventory.spec.serve
            rank = Process(
                "vllm",
                VLLM_RANK,
                tuple(argv),
                group="ranks",
                ready="http" if host.is_head else "alive",
                same="group",  # all ranks must agree: a change anywhere restarts every one
                ports=(serve.port, serve.data_parallel_rpc_port) if host.is_head else (),
                args=tuple(rank_args),
                ranks=tuple(range(first_rank, first_rank + local)),
                api=host.is_head,
            )
            plans.append(HostPlan(*h.common, (rank,)))
            first_rank += local
        return tuple(plans)

    def dp_rpc_port(self, inventory: Inventory) -> int | None:
        return inventory.spec.serve.data_parallel_rpc_port
