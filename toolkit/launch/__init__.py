"""The two launch seams. A deployment is a **launcher** (how the model's ranks are started and
found: `ray` = Ray head, then workers, then the vLLM API server on the head with the Ray backend;
`dp` = one `vllm serve` per host, headless workers first, then the head; `mp` = one host's server)
run in a **placement** (where each process runs: `host` = the host's own Python environment with
the plan's env file sourced; `container` = inside one long-running container per host, through
`docker exec`). The planner names both, with the reason (`plan` shows them); the
steps, teardown, status and logs ask them for commands and never branch on which one it is.

A new way to launch (vLLM data parallel without Ray) or a new place to run (a container per host)
is a module here implementing `Launcher` or `Placement` (see `base.py`), registered in `LAUNCHERS`
or `PLACEMENTS`, plus its tests.
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
    try:
        placement = PLACEMENTS[plan.placement.value](plan)
        launcher = LAUNCHERS[plan.launcher.value](plan, placement)
    except KeyError as exc:
        raise BadInput(
            f"no launch implementation for {exc.args[0]!r}",
            hint=f"launchers: {', '.join(LAUNCHERS)}; placements: {', '.join(PLACEMENTS)}",
        ) from None
    return Launch(launcher, placement)


def not_needed(plan: Plan) -> dict[str, str]:
    """Stage tags the plan has no use for, with why (the runner leaves those stages out of the run)."""
    return {} if plan.container is not None else {"container": "processes run on the host"}
