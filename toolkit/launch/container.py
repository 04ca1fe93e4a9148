"""The `container` placement: a host's processes run inside one long-running container per host
(the plan's `ContainerPlan`: the vendor image, its devices, driver mounts, --net=host, --pid=host).
Every launcher command goes through `docker exec` (or `podman exec`) with the plan's env file
sourced inside; with the host's PID namespace shared, pid files, `kill`, `pgrep` and npu-smi's
process list on the host see the container's processes, so stopping and probing stay host-side.

The engine (`container.engine: auto`) is found on each host by the `container` stage of `up`,
which records it in the cluster folder; commands read it from there."""

from __future__ import annotations

import re

from toolkit.facts.deploy import Paths
from toolkit.launch.host import HostPlacement
from toolkit.planner.plan import Plan
from toolkit.planner.types import ContainerPlan
from toolkit.transport.shell import q

ENGINES = ("docker", "podman")


def host_arg(arg: str) -> str:
    """`arg` quoted for the host's shell, except that `~/` at its start or after a `:` stays the
    SSH user's home there ("$HOME"/...): mounts name paths under the home of whoever runs them."""
    parts = re.split(r"(?:(?<=^)|(?<=:))~/", arg)
    return '"$HOME"/'.join(q(part) if part else "" for part in parts)


def engine_ref(container: ContainerPlan, p: Paths) -> tuple[str, str]:
    """(lines that find the engine, its command): the inventory's engine, or the one `up` found on
    this host (auto), read from the cluster folder."""
    engine = str(container.engine.value)
    if engine in ENGINES:
        return "", engine
    missing = "no container engine recorded here: run ascend-deploy up"
    return f'E=$(cat {q(p.engine)} 2>/dev/null) && [ -n "$E" ] || {{ echo {q(missing)} >&2; exit 127; }}; ', '"$E"'


def run_command(container: ContainerPlan, engine: str) -> str:
    """`ENGINE run -d --name NAME ... IMAGE sleep infinity`, for the host's shell."""
    return " ".join([engine, *(host_arg(a) for a in container.run_argv)])


class ContainerPlacement:
    name = "container"

    def __init__(self, plan: Plan) -> None:
        if plan.container is None:
            raise ValueError("the plan runs on the host: no container")
        self.container = plan.container
        self.paths = Paths.of(plan.cluster)
        self.host = HostPlacement(plan)

    def run(self, script: str) -> str:
        """`script` inside the container, in the cluster folder's parent (the SSH user's home on the
        host, where every relative path of a plan points), after the container's setup lines and with
        the plan's env file loaded. Exit status and output pass through."""
        inner = "\n".join([*self.container.setup, self.host.run(script)])
        name = q(str(self.container.name.value))
        find, engine = engine_ref(self.container, self.paths)
        command = f'{engine} exec -i -w "$HOME" {name} bash -c {q(inner)}'
        return f"{{ {find}{command}; }}" if find else command

    def detached(self, argv: list[str], log: str, pid_file: str) -> str:
        """The same lines as on the host: they run inside `run`'s shell, and with the host's PID
        namespace `$!` is the host's pid of the process."""
        return self.host.detached(argv, log, pid_file)
