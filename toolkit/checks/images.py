"""Preflight of the container runtime: every host has a container engine that answers (the same
one everywhere), and the plan's image with the same id as the head's, before anything starts.
Different images on different hosts are what a version check on the hosts' own Python misses."""

from __future__ import annotations

from toolkit.checks import Problem
from toolkit.facts.container import ContainerFacts
from toolkit.planner.types import ContainerPlan

LOAD_HINT = (
    "ascend-deploy image load INVENTORY IMAGE.tar (the head's image: `{engine} save {image} | gzip > IMAGE.tar.gz`)"
)


def container_problems(container: ContainerPlan, found: dict[str, ContainerFacts | str], head: str) -> list[Problem]:
    """One problem per host and kind: engine missing or different, image missing or different."""
    image = str(container.image.value)
    problems: list[Problem] = []
    ref = found.get(head)
    ref_engine = ref.engine if isinstance(ref, ContainerFacts) else None
    ref_id = ref.image_id if isinstance(ref, ContainerFacts) else None
    for host, facts in found.items():
        if isinstance(facts, str):
            problems.append(
                Problem(host, None, "container", f"cannot read the engine: {facts}", "an answer", "check SSH")
            )
            continue
        if facts.engine is None or not any(e.name == facts.engine and e.answers for e in facts.engines):
            wanted = (
                container.engine.value if container.engine.value != "auto" else "docker (its daemon running) or podman"
            )
            problems.append(
                Problem(
                    host,
                    None,
                    "engine",
                    f"no container engine answers ({facts.why_no_engine()})",
                    str(wanted),
                    f"install podman, or docker with its daemon running, on {host}",
                )
            )
            continue
        if ref_engine and facts.engine != ref_engine and container.engine.value == "auto":
            problems.append(
                Problem(
                    host,
                    None,
                    "engine",
                    f"{facts.engine} (the head {head} uses {ref_engine})",
                    "the same engine on every host",
                    f"set container.engine: {ref_engine}, or install it on {host}",
                )
            )
        hint = LOAD_HINT.format(engine=facts.engine, image=image)
        if facts.image_id is None:
            problems.append(
                Problem(
                    host,
                    None,
                    "image",
                    f"{image} is not on {host}",
                    f"{image}" + (f" ({ref_id[:12]})" if ref_id else ""),
                    hint,
                )
            )
        elif ref_id and host != head and facts.image_id != ref_id:
            problems.append(
                Problem(
                    host,
                    None,
                    "image",
                    f"{image} is {facts.image_id[:12]}",
                    f"{ref_id[:12]} as on {head}",
                    hint,
                )
            )
    return problems
