"""What a launch layout decides, and what it is handed to decide it.

A launcher (how the model's ranks start and find each other) is one strategy object: the planner
core asks it, in order, whether `auto` should pick it, what it refuses, how it sizes TP x PP x DP,
which ports and environment it adds, its executor backend and data-parallel flags, and what each
host runs. `BaseLauncher` answers every question the plain way, so a strategy overrides only what
differs. Pure: no I/O; the strategy sees the inventory and plugin answers through `Situation`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.planner.types import (
    HCCL_BASE_PORT,
    HCCL_PORTS_PER_HOST,
    VLLM_RANK,
    Arg,
    HostPlan,
    PlanIssue,
    PortUse,
    Process,
    Value,
)
from toolkit.plugin_api import ModelProfile, Row, RuntimeProfile

#: `auto` asks the strategies in `auto_order`; the plugin row's own launcher is asked at this point
ROW_ORDER = 50


@dataclass(frozen=True)
class Situation:
    """What a launcher decides from: the inventory, the runtime profile, the model's plugin profile
    and table row, and the planner's answers that do not depend on the launcher."""

    inventory: Inventory
    runtime: RuntimeProfile
    profile: ModelProfile
    row: Row | None
    row_fits: bool  # the row's layout uses exactly these devices (taken as given)
    expert_parallel: bool
    origin: Callable[[str], str]  # "inventory KEY" | "--set KEY" | "default"

    @property
    def hosts(self) -> tuple[ResolvedHost, ...]:
        return tuple(self.inventory.hosts)

    @property
    def multi_host(self) -> bool:
        return len(self.inventory.hosts) > 1

    @property
    def total_devices(self) -> int:
        return sum(len(h.devices) for h in self.inventory.hosts)


@dataclass(frozen=True)
class HostServe:
    """What every launcher's host plans start from: a host, its planned environment, and the
    server's arguments (`--model` first) shared by every rank."""

    host: ResolvedHost
    env: Mapping[str, Value]

    @property
    def common(self) -> tuple[str, str, str, tuple[int, ...], str | None, Mapping[str, Value]]:
        h = self.host
        return (h.name, h.address, h.role, h.devices, None if h.nic == "auto" else h.nic, self.env)


class LaunchStrategy(Protocol):
    """One launcher, as the planner asks it (see `BaseLauncher` for what each answer means)."""

    name: str
    summary: str
    auto_order: int

    def auto(self, s: Situation) -> str | None: ...
    def refusals(self, s: Situation) -> list[PlanIssue]: ...
    def sizes(self, s: Situation) -> tuple[Value, Value, Value] | None: ...
    def row_sizes(self, row: Row, where: str) -> tuple[Value, Value, Value]: ...
    def rank_checks(self, s: Situation, tp: Value, pp: Value, dp: Value) -> list[PlanIssue]: ...
    def own_ports(self, inventory: Inventory) -> list[PortUse]: ...
    def backend(self, s: Situation) -> Value: ...
    def passes_backend(self) -> bool: ...
    def dp_args(self, s: Situation, backend: Value) -> list[Arg]: ...
    def host_env(self, s: Situation, host: ResolvedHost) -> dict[str, Value]: ...
    def host_plans(self, s: Situation, hosts: list[HostServe], tp: Value, args: list[Arg]) -> tuple[HostPlan, ...]: ...
    def dp_rpc_port(self, inventory: Inventory) -> int | None: ...


class BaseLauncher:
    """The plain answer to every question; a launcher overrides what differs."""

    name: str = ""
    summary: str = ""
    #: lower is asked first by `auto`; a launcher that is never picked automatically returns None from `auto`
    auto_order: int = 100

    def auto(self, s: Situation) -> str | None:
        """The reason `serve.launcher: auto` picks this launcher here, or None."""
        return None

    def refusals(self, s: Situation) -> list[PlanIssue]:
        """Why this launcher cannot serve this model here (chosen by the user or by auto)."""
        return []

    def sizes(self, s: Situation) -> tuple[Value, Value, Value] | None:
        """TP, PP, DP when this launcher lays them out itself; None: the planner's general rules."""
        return None

    def row_sizes(self, row: Row, where: str) -> tuple[Value, Value, Value]:
        """A plugin row's published layout, as this launcher runs it."""
        return Value(row.tp, where), Value(row.pp, where), Value(row.dp, where)

    def rank_checks(self, s: Situation, tp: Value, pp: Value, dp: Value) -> list[PlanIssue]:
        """Sizes this launcher cannot run, and ports that collide (the API and this launcher's own)."""
        issues: list[PlanIssue] = []
        seen: dict[int, str] = {}
        uses = self.own_ports(s.inventory)
        if len(uses) < 2:
            return issues
        for use in uses:
            if use.first in seen:
                issues.append(
                    PlanIssue(
                        use.field,
                        f"port {use.first} is also {seen[use.first]}: two services cannot bind one port",
                        "give the API, the DP RPC port and Ray's port different numbers",
                    )
                )
            seen.setdefault(use.first, use.field)
        return issues

    def own_ports(self, inventory: Inventory) -> list[PortUse]:
        """The ports this launcher binds besides HCCL's range: the API, and its own."""
        port = inventory.spec.serve.port
        return [PortUse("the vLLM API", port, port, "serve.port")]

    def backend(self, s: Situation) -> Value:
        return Value("mp", f"launcher {self.name}: vLLM's worker processes on this host")

    def passes_backend(self) -> bool:
        """Whether `--distributed-executor-backend` is written (else vLLM's default is left)."""
        return True

    def dp_args(self, s: Situation, backend: Value) -> list[Arg]:
        """The flags that follow `--data-parallel-size` when DP > 1."""
        return []

    def host_env(self, s: Situation, host: ResolvedHost) -> dict[str, Value]:
        """Variables this launcher adds to (or re-explains in) a host's environment."""
        return {}

    def host_plans(self, s: Situation, hosts: list[HostServe], tp: Value, args: list[Arg]) -> tuple[HostPlan, ...]:
        """What each host runs (its processes, in start order): by default its own `vllm serve` with
        the shared arguments, the head's serving the API."""
        port = s.inventory.spec.serve.port
        return tuple(
            HostPlan(
                *h.common,
                (
                    Process(
                        "vllm",
                        VLLM_RANK,
                        serve_argv(s, args),
                        group="ranks",
                        ready="http" if h.host.is_head else "alive",
                        same="group",
                        ports=(port,) if h.host.is_head else (),
                        api=h.host.is_head,
                    ),
                ),
            )
            for h in hosts
        )

    def dp_rpc_port(self, inventory: Inventory) -> int | None:
        return None


def serve_argv(s: Situation, args: list[Arg]) -> tuple[str, ...]:
    """`vllm serve MODEL` (the runtime's serving command) with the shared arguments."""
    model = s.inventory.spec.model.path if s.inventory.spec.model else ""
    argv = [*s.runtime.serve_argv, model]
    for arg in args:
        if arg.flag != "--model":
            argv += arg.argv()
    return tuple(argv)


def module_argv(s: Situation, args: list[Arg]) -> tuple[str, ...]:
    """`python3 -m <the runtime's server module>` with the arguments (the API server on a Ray head)."""
    argv = ["python3", "-m", s.runtime.server_module]
    for arg in args:
        argv += arg.argv()
    return tuple(argv)


def ports_with_hccl(uses: list[PortUse], hccl_base: int = HCCL_BASE_PORT) -> tuple[PortUse, ...]:
    """A launcher's own ports, then HCCL's base range (every launcher's collectives bind it)."""
    hccl = PortUse("HCCL's base port range", hccl_base, hccl_base + HCCL_PORTS_PER_HOST - 1, "env.HCCL_IF_BASE_PORT")
    return (*uses, hccl)
