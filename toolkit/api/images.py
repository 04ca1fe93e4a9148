"""The container images on the hosts: read on every host at once (engine, image id and digests,
the cluster's container), for `up`'s preflight and `ascend-deploy image status`."""

from __future__ import annotations

from toolkit.engine.executor import Executor
from toolkit.facts import Raw
from toolkit.facts.container import ContainerFacts, container_command, parse_container
from toolkit.planner.types import ContainerPlan


def read_images(executor: Executor, cluster: str, container: ContainerPlan) -> dict[str, ContainerFacts | str]:
    """host -> what its engine says, or why it could not be asked."""
    command = container_command(
        str(container.engine.value), str(container.name.value), str(container.image.value), cluster
    )
    group = executor.map(lambda s: s.run(command, timeout=60, check=False, setup=False), stage="images")
    found: dict[str, ContainerFacts | str] = {}
    for name, outcome in group.outcomes.items():
        if outcome.ok and outcome.value is not None:
            found[name] = parse_container(Raw(outcome.value.stdout, outcome.value.exit_code))
        else:
            found[name] = outcome.error.message if outcome.error else "no answer"
    return found
