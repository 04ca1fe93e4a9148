"""The container steps: `up` starts one long-running container per host from the plan's image
(unchanged when the same image id runs with the same derived arguments; otherwise recreated, which
ends whatever ran inside), records the engine it used; `down` removes the cluster's containers,
found by their label on whichever engine has them (no plan needed), after stopping Ray inside."""

from __future__ import annotations

from typing import Iterator

from toolkit.engine.registry import Op, StepContext, step
from toolkit.errors import CommandFailed
from toolkit.facts import Fact, Raw
from toolkit.facts.container import container_command, labelled_command, parse_container, parse_labelled
from toolkit.facts.deploy import Paths
from toolkit.launch.container import run_command
from toolkit.launch.ray import ray_stop_command
from toolkit.planner.types import ray_temp_dir
from toolkit.steps.commands import write_file_op
from toolkit.transport.shell import q

START_TIMEOUT = 120


def _recorded(raw: Raw) -> str:
    return raw.stdout.strip()


@step("container_start", needs_plan=True)
def container_start(ctx: StepContext) -> Iterator[Op]:
    """This host's container, started or recreated only when its image or arguments changed."""
    plan = ctx.shared.the_plan()
    c = plan.container
    if c is None:  # the processes run on the host: nothing to do
        return
    p = Paths.of(plan.cluster)
    name, image = str(c.name.value), str(c.image.value)
    found = ctx.facts(
        [
            Fact(
                "container",
                container_command(str(c.engine.value), name, image, plan.cluster),
                lambda raw: parse_container(raw),
                setup=False,
            ),
            Fact("recorded_engine", f"cat {q(p.engine)} 2>/dev/null", _recorded, setup=False),
        ]
    )
    facts, recorded = found["container"], found["recorded_engine"]
    host = ctx.host.name
    engine = facts.engine
    if engine is None or not any(e.name == engine and e.answers for e in facts.engines):
        wanted = f"container.engine {c.engine.value}" if c.engine.value != "auto" else "no container engine answers"
        raise CommandFailed(
            host,
            f"{wanted} on {host} ({facts.why_no_engine()})",
            hint="install podman, or docker with its daemon running (`systemctl start docker`), on every host; "
            "or run on the hosts' own Python (remove the inventory's container section)",
        )
    if facts.image_id is None:
        raise CommandFailed(
            host,
            f"image {image} is not on {host} ({engine})",
            hint=f"ascend-deploy image load INVENTORY IMAGE.tar (air-gapped), or `{engine} pull {image}` on {host}",
        )
    ctx.data.update(engine=engine, image_id=facts.image_id, digests=list(facts.image_digests))
    if recorded != engine:
        yield write_file_op(p.engine, engine + "\n", f"record the container engine ({engine})")
    have = facts.container
    reasons = []
    if have is None:
        reasons.append("not created")
    else:
        if have.image_id != facts.image_id:
            reasons.append("the image changed")
        if have.config_hash != c.config_hash:
            reasons.append("settings changed" if have.config_hash else "created outside ascend-deploy")
        if not have.running:
            reasons.append("stopped")
    ctx.data.update(started=bool(reasons), reason=", ".join(reasons), container=have.id[:12] if have else None)
    if not reasons:
        return
    if have is not None:
        yield Op(f"{engine} rm -f {q(name)} >/dev/null", f"remove the old container {name} ({', '.join(reasons)})")
    yield Op(
        f'umask 077 && mkdir -p {q(p.dir)} "$HOME"/.cache {q(ray_temp_dir(plan.cluster))} && {run_command(c, engine)}',
        f"start container {name} from {image} ({', '.join(reasons)})",
        timeout=START_TIMEOUT,
    )


@step("container_remove")
def container_remove(ctx: StepContext) -> Iterator[Op]:
    """Stop Ray inside each of the cluster's containers (its own `ray stop`), then remove them."""
    cluster = ctx.inventory.name
    found = ctx.facts([Fact("labelled", labelled_command(cluster), parse_labelled, setup=False)])["labelled"]
    ctx.data["containers"] = [name for _, name in found]
    for engine, name in found:
        yield Op(
            f"{engine} exec {q(name)} bash -c {q(ray_stop_command())} >/dev/null 2>&1; "
            f"{engine} rm -f {q(name)} >/dev/null",
            f"stop Ray in container {name}, then remove it ({engine})",
            timeout=120,
        )
