"""The container images on the hosts: read on every host at once (engine, image id and digests,
the cluster's container), for `up`'s preflight and `ascend-deploy image status`; and `image load`,
which sends an image tarball to every host that lacks it (air-gapped clusters)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from toolkit.api.context import ConnectFn, Options, make_executor, plan_for, ran
from toolkit.api.files import ImageArchive, read_image_archive
from toolkit.checks import Problem
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import Event, EventKind, EventSink, Executor, Session, no_events
from toolkit.errors import BadInput, CommandFailed
from toolkit.facts import Raw
from toolkit.facts.container import (
    ContainerFacts,
    container_command,
    image_present_command,
    names_image,
    parse_container,
    parse_image_present,
)
from toolkit.planner.types import ContainerPlan
from toolkit.serial import plain
from toolkit.steps.commands import (
    append_stdin_command,
    image_finish_command,
    images_dir,
    part_size_command,
    upload_hashed_command,
)
from toolkit.transport.shell import q


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


# ---------------------------------------------------------------- image load (air-gapped clusters)

CHUNK = 4 << 20
#: progress lines per host: at most one per this many seconds (and one at the end)
PROGRESS_EVERY_S = 2.0


@dataclass
class ImageLoadReport:
    """Per host: what it had, what was sent (bytes, resumed from), and the id it now has."""

    inventory: str
    archive: ImageArchive
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    duration: float = 0.0

    __json_extra__ = ("ok", "image_id", "sha256", "size", "tags")
    __json_skip__ = ("archive",)
    __json_round__ = {"duration": 3}

    @property
    def ok(self) -> bool:
        return bool(self.hosts) and all(h.get("error") is None for h in self.hosts.values())

    @property
    def image_id(self) -> str:
        return self.archive.image_id

    @property
    def sha256(self) -> str | None:
        """The file's checksum, taken only when a host needed the bytes (None: every host had the image)."""
        return self.archive.sha256_known

    @property
    def size(self) -> int:
        return self.archive.size

    @property
    def tags(self) -> list[str]:
        return list(self.archive.tags)

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def _chunks(path: Path, offset: int, progress: Callable[[int], None]) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(offset)
        sent = offset
        while True:
            data = fh.read(CHUNK)
            if not data:
                return
            sent += len(data)
            progress(sent)
            yield data


def _load_one(s: Session, archive: ImageArchive, engine_setting: str, cluster: str) -> dict[str, Any]:
    """One host: skip if it has the image id; else resume or start the upload, verify, load, check."""
    present = parse_image_present(
        Raw(*ran(s, image_present_command(engine_setting, archive.image_id, archive.tags), 60))
    )
    if present.engine is not None:  # the usual re-run: one round trip, one engine call per name
        return _had(present.engine, _retagged(s, present.engine, present.misnamed, archive.image_id), archive)
    command = container_command(engine_setting, "-", archive.image_id, cluster)
    out, code = ran(s, command, 60)
    facts = parse_container(Raw(out, code))
    if facts.engine is None or not any(e.name == facts.engine and e.answers for e in facts.engines):
        raise CommandFailed(
            s.name,
            f"no container engine answers on {s.name} ({facts.why_no_engine()})",
            hint=f"install podman, or docker with its daemon running, on {s.name}",
        )
    engine = facts.engine
    if facts.image_id == archive.image_id:  # the image is there; its names may point at another one
        return _had(engine, _retagged(s, engine, archive.tags, archive.image_id), archive)
    archive.start_hashing()  # this host needs the bytes: the checksum is ready by the time they have arrived
    part = f"{images_dir(cluster)}/{archive.part_name}"
    have = ran(s, part_size_command(part), 30)[0].strip()
    offset = int(have) if have.isdigit() and int(have) <= archive.size else 0
    last = [0.0]
    started = time.monotonic()

    def progress(sent: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or sent == archive.size:
            last[0] = now
            rate = (sent - offset) / max(now - started, 1e-6) / (1 << 20)
            s.emit(
                Event(
                    EventKind.PROGRESS,
                    s.name,
                    s.stage,
                    f"{sent >> 20}/{archive.size >> 20} MiB ({100 * sent // max(archive.size, 1)}%), {rate:.0f} MiB/s",
                )
            )

    timeout = max(600.0, archive.size / (5 << 20))
    checked = offset == 0  # a whole upload is hashed as it arrives; a resumed one after
    if checked:
        arrived = s.run(
            upload_hashed_command(part), stdin=_chunks(archive.path, 0, progress), timeout=timeout, setup=False
        ).stdout.strip()
        if arrived != archive.sha256:
            s.run(f"rm -f {q(part)}", timeout=30, check=False, setup=False)
            raise CommandFailed(
                s.name,
                f"the upload to {s.name} did not arrive intact (checksum {arrived or 'none'}, expected "
                f"{archive.sha256}); it was removed",
                hint="run image load again (it starts over on this host)",
            )
    elif offset < archive.size:
        s.run(
            append_stdin_command(part, offset),
            stdin=_chunks(archive.path, offset, progress),
            timeout=timeout,
            setup=False,
        )
    uploaded = time.monotonic()
    done = s.run(
        image_finish_command(engine, part, archive.sha256, archive.image_id, checked=checked),
        timeout=max(600.0, archive.size / (20 << 20)),
        check=False,
        setup=False,
    )
    if done.exit_code == 3:
        raise CommandFailed(
            s.name,
            f"the upload to {s.name} did not arrive intact ({done.stderr.strip()[-200:]}); it was removed",
            hint="run image load again (it starts over on this host)",
        )
    loaded = next((ln[7:].strip() for ln in done.stdout.splitlines() if ln.startswith("LOADED ")), "")
    if done.exit_code != 0 or loaded.removeprefix("sha256:") != archive.image_id:
        raise CommandFailed(
            s.name,
            f"`{engine} load` on {s.name} did not give image {archive.image_id[:12]} "
            f"(exit {done.exit_code}: {done.stderr.strip()[-300:]})",
            hint=f"check the host's disk space and `{engine} images`",
        )
    return {
        "engine": engine,
        "had": False,
        "retagged": [],
        "sent": archive.size - offset,
        "resumed_from": offset,
        "image_id": archive.image_id[:12],
        # where a host's time went: the upload, then the checksum and the engine's load
        "upload_s": round(uploaded - started, 2),
        "load_s": round(time.monotonic() - uploaded, 2),
    }


def _had(engine: str, retagged: list[str], archive: ImageArchive) -> dict[str, Any]:
    """A host that holds the image: nothing sent."""
    return {
        "engine": engine,
        "had": True,
        "retagged": retagged,
        "sent": 0,
        "resumed_from": 0,
        "image_id": archive.image_id[:12],
    }


def _retag_command(engine: str, tags: tuple[str, ...], image_id: str) -> str:
    """Point each name at the image where another image holds it; print those names."""
    e = q(engine)
    lines = [f"{names_image(e, q(t), image_id)} || {{ {e} tag {q(image_id)} {q(t)} && echo {q(t)}; }}" for t in tags]
    return "; ".join(lines) + "; true"


def _retagged(s: Session, engine: str, tags: tuple[str, ...], image_id: str) -> list[str]:
    """The names moved to the image (none asked: nothing run)."""
    return [t for t in ran(s, _retag_command(engine, tags, image_id), 60)[0].split() if t] if tags else []


def load_image(
    inventory: Inventory,
    opts: Options,
    path: Path,
    *,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> ImageLoadReport:
    """Send an image tarball to every host that lacks its image id, in parallel, resumable, checked
    on the host, then loaded: the way an air-gapped cluster gets the vendor image."""
    started = time.monotonic()
    archive = read_image_archive(path)
    engine = inventory.spec.container.engine if inventory.spec.container else "auto"
    report = ImageLoadReport(str(inventory.path), archive)
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        group = executor.map(lambda s: _load_one(s, archive, engine, inventory.name), stage="image-load")
    for name, outcome in group.outcomes.items():
        if outcome.ok and outcome.value is not None:
            report.hosts[name] = {**outcome.value, "error": None, "seconds": round(outcome.duration, 2)}
        else:
            report.hosts[name] = {"error": outcome.error.message if outcome.error else "no answer"}
    report.duration = time.monotonic() - started
    return report


@dataclass
class ImageStatusReport:
    """Per host: engine, the plan's image (id, digests) and the cluster's container."""

    inventory: str
    image: str
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    __json_extra__ = ("ok",)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def image_status(
    inventory: Inventory, opts: Options, *, emit: EventSink = no_events, connect: ConnectFn | None = None
) -> ImageStatusReport:
    """What every host has of the plan's image, and whether they agree (the preflight's check)."""
    from toolkit.checks.images import container_problems

    plan = plan_for(inventory)
    if plan.container is None:
        raise BadInput(
            f"{inventory.path}: the plan runs on the hosts' own Python (no container section)",
            hint="add `container: {}` (the runtime's vendor image) or `container: {image: ...}` to the inventory",
        )
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        found = read_images(executor, inventory.name, plan.container)
    report = ImageStatusReport(str(inventory.path), str(plan.container.image.value))
    for name, facts in found.items():
        if isinstance(facts, str):
            report.hosts[name] = {"error": facts}
            continue
        have = facts.container
        report.hosts[name] = {
            "engine": facts.engine,
            "image_id": facts.image_id[:12] if facts.image_id else None,
            "digests": list(facts.image_digests),
            "container": have.id[:12] if have else None,
            "container_image_id": have.image_id[:12] if have else None,
            "error": None,
        }
    report.problems = container_problems(plan.container, found, inventory.head.name)
    return report
