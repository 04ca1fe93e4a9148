"""The launchers the planner knows, by name: one module each (`ray`, `dp`, `mp`), and those a
plugin registers (hook `ascend_deploy_launchers`). `serve.launcher`'s choices are this registry's
names; `auto` asks them in their `auto_order`. The commands that start a launcher's processes live in
`toolkit.launch` (built-ins) or with the plugin's strategy (its `launch` attribute)."""

from __future__ import annotations

from typing import Iterable

from toolkit.config.inventory import Inventory
from toolkit.planner.launchers.base import (
    ROW_ORDER,
    BaseLauncher,
    HostServe,
    LaunchStrategy,
    Situation,
    module_argv,
    ports_with_hccl,
    serve_argv,
)
from toolkit.planner.launchers.dp import DataParallelLayout
from toolkit.planner.launchers.mp import OneHostLayout
from toolkit.planner.launchers.ray import EXPERT_PARALLEL, RayLayout, ray_argv
from toolkit.planner.types import HCCL_BASE_PORT, PortUse

BUILTIN: dict[str, LaunchStrategy] = {s.name: s for s in (RayLayout(), DataParallelLayout(), OneHostLayout())}

__all__ = [
    "BUILTIN",
    "EXPERT_PARALLEL",
    "ROW_ORDER",
    "BaseLauncher",
    "HostServe",
    "LaunchStrategy",
    "Situation",
    "by_name",
    "module_argv",
    "serve_argv",
    "ports_for",
    "ray_argv",
    "registry",
]

#: launchers registered by plugins loaded in this process (name -> strategy); built-ins win no tie
_FROM_PLUGINS: dict[str, LaunchStrategy] = {}


def register(strategies: Iterable[LaunchStrategy]) -> None:
    """Add plugins' launchers (called when plugins load; a name registered again is replaced)."""
    for strategy in strategies:
        _FROM_PLUGINS[strategy.name] = strategy


def unregister(name: str) -> None:
    _FROM_PLUGINS.pop(name, None)


def registry() -> dict[str, LaunchStrategy]:
    """Every launcher by name: the built-ins, then plugins' (a plugin cannot replace a built-in)."""
    return {**_FROM_PLUGINS, **BUILTIN}


def by_name(name: str) -> LaunchStrategy | None:
    return registry().get(name)


def ports_for(launcher: str, inventory: Inventory, hccl_base: int = HCCL_BASE_PORT) -> tuple[PortUse, ...]:
    """The ports a launcher binds for this inventory; 'auto' (the plan unknown): every launcher's."""
    chosen = list(registry().values()) if launcher == "auto" else [s for s in [by_name(launcher)] if s]
    uses: dict[str, PortUse] = {}
    for strategy in chosen:
        for use in strategy.own_ports(inventory):
            uses.setdefault(use.what, use)
    return ports_with_hccl(list(uses.values()), hccl_base)
