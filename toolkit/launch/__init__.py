"""The two launch seams. A deployment is a **launcher** (how the model's ranks are started and
found: `ray` = Ray head, then workers, then the vLLM API server on the head with the Ray backend;
`dp` = one `vllm serve` per host, headless workers first, then the head; `mp` = one host's server)
run in a **placement** (where each process runs: `host` = the host's own Python environment with
the plan's env file sourced; `container` = inside one long-running container per host, through
`docker exec`). The planner names both, with the reason (`plan` shows them); the
steps, teardown, status and logs ask them for commands and never branch on which one it is.

A new way to launch is a planning strategy in `toolkit.planner.launchers` (what each host runs)
plus a `Launcher` here (the commands that start and stop it), registered in `LAUNCHERS`, or, from a
plugin, the strategy's `launch` factory; a new place to run is a `Placement` in `PLACEMENTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from toolkit.errors import BadInput
from toolkit.launch.base import Launcher, Placement
from toolkit.launch.container import ContainerPlacement
from toolkit.launch.dp import DataParallelLauncher
from toolkit.launch.host import HostPlacement
from toolkit.launch.ray import RayLauncher
from toolkit.planner.plan import Plan

LAUNCHERS: dict[str, Callable[[Plan, Placement], Launcher]] = {
    "ray": RayLauncher,
    "dp": DataParallelLauncher,
    "mp": DataParallelLauncher,  # one host: the same, with a single (API-serving) process
}
PLACEMENTS: dict[str, Callable[[Plan], Placement]] = {"host": HostPlacement, "container": ContainerPlacement}


@dataclass(frozen=True)
class Launch:
    """The launcher and placement of one plan, bound to it."""

    launcher: Launcher
    placement: Placement


def launch_for(plan: Plan) -> Launch:
    """The launcher and placement the plan chose."""
    from toolkit.planner.launchers import by_name

    name = str(plan.launcher.value)
    strategy = by_name(name)
    factory = LAUNCHERS.get(name) or getattr(strategy, "launch", None)
    make_placement = PLACEMENTS.get(str(plan.placement.value))
    if factory is None or make_placement is None:
        raise BadInput(
            f"no launch implementation for {name if factory is None else plan.placement.value!r}",
            hint=f"launchers: {', '.join(LAUNCHERS)} and those plugins add (is the plugin that adds it loaded?); "
            f"placements: {', '.join(PLACEMENTS)}",
        )
    placement = make_placement(plan)
    return Launch(factory(plan, placement), placement)


def not_needed(plan: Plan) -> dict[str, str]:
    """Stage tags the plan has no use for, with why (the runner leaves those stages out of the run)."""
    return {} if plan.container is not None else {"container": "processes run on the host"}
