"""A host's container engine, image and the cluster's container, read in one command: which of
docker and podman answers (docker needs its daemon; podman none), the image's id and repo digests,
and the container by name (its image id, state and the plan hash on its label). `docker` and
`podman` both accept the same Go templates used here; podman prints ids without `sha256:`.

Also every container of a cluster by its label, on whichever engine has one (`down` needs no plan)."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.facts import Raw
from toolkit.transport.shell import q

ENGINES = ("docker", "podman")
LABEL = "ascend-deploy.cluster"
HASH_LABEL = "ascend-deploy.hash"
#: how each engine says it runs (docker: its daemon's version; podman: the storage it would use)
_ALIVE = {"docker": "version --format '{{.Server.Version}}'", "podman": "info --format '{{.Version.Version}}'"}


@dataclass(frozen=True)
class EngineState:
    name: str
    installed: bool
    answers: bool
    detail: str  # the version, or why it does not answer


@dataclass(frozen=True)
class ContainerState:
    id: str
    image_id: str
    running: bool
    config_hash: str


@dataclass(frozen=True)
class ContainerFacts:
    engines: tuple[EngineState, ...]
    engine: str | None  # the one the commands use (the inventory's, or the first that answers)
    image_id: str | None = None  # None: the image is not on the host
    image_digests: tuple[str, ...] = ()
    container: ContainerState | None = None
    labelled: tuple[str, ...] = field(default_factory=tuple)  # names of this cluster's containers

    def why_no_engine(self) -> str:
        return "; ".join(f"{e.name}: {e.detail if e.installed else 'not installed'}" for e in self.engines)


def _id(text: str) -> str:
    return text.strip().removeprefix("sha256:")


def container_command(engine: str, name: str, image: str, cluster: str) -> str:
    """Engines (`ENGINE name ok|down|missing detail`), then with the chosen one: `IMAGE id digests`,
    `CONTAINER id image running hash`, and `LABELLED name` for each of the cluster's containers."""
    lines = []
    for e in ENGINES:
        lines.append(
            f"if ! command -v {e} >/dev/null 2>&1; then echo 'ENGINE {e} missing -'; "
            f'elif v=$({e} {_ALIVE[e]} 2>&1); then echo "ENGINE {e} ok $v" | head -n 1; '
            f'else echo "ENGINE {e} down $(printf \'%s\' "$v" | tail -n 1 | cut -c1-200)"; fi'
        )
    pick = (
        f"E={q(engine)}"
        if engine in ENGINES
        else "E=$(printf '%s\\n' \"$__eng\" | awk '$3 == \"ok\" {print $2; exit}')"
    )
    probes = (
        '[ -n "$E" ] || exit 0; echo "USE $E"; '
        f'i=$("$E" image inspect --format \'{{{{.Id}}}} {{{{join .RepoDigests ","}}}}\' {q(image)} 2>/dev/null) '
        '&& echo "IMAGE $i"; '
        f'c=$("$E" container inspect --format \'{{{{.Id}}}} {{{{.Image}}}} {{{{.State.Running}}}} '
        f'{{{{index .Config.Labels "{HASH_LABEL}"}}}}\' {q(name)} 2>/dev/null) && echo "CONTAINER $c"; '
        f"\"$E\" ps -a --filter label={q(LABEL + '=' + cluster)} --format '{{{{.Names}}}}' 2>/dev/null "
        "| sed 's/^/LABELLED /'; true"
    )
    return "__eng=$(\n" + "\n".join(lines) + "\n); printf '%s\\n' \"$__eng\"\n" + pick + "\n" + probes


def parse_container(raw: Raw, engine: str = "auto") -> ContainerFacts:
    engines: list[EngineState] = []
    use: str | None = None
    image_id: str | None = None
    digests: tuple[str, ...] = ()
    container: ContainerState | None = None
    labelled: list[str] = []
    for line in raw.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "ENGINE":
            name, _, tail = rest.partition(" ")
            state, _, detail = tail.partition(" ")
            engines.append(EngineState(name, state != "missing", state == "ok", detail.strip()))
        elif word == "USE":
            use = rest.strip()
        elif word == "IMAGE" and rest.strip():
            parts = rest.split()
            image_id = _id(parts[0])
            digests = tuple(d for d in (parts[1].split(",") if len(parts) > 1 else []) if d)
        elif word == "CONTAINER" and rest.strip():
            parts = rest.split()
            container = ContainerState(
                _id(parts[0]),
                _id(parts[1]) if len(parts) > 1 else "",
                len(parts) > 2 and parts[2] == "true",
                parts[3] if len(parts) > 3 and parts[3] != "<no" else "",
            )
        elif word == "LABELLED" and rest.strip():
            labelled.append(rest.strip())
    return ContainerFacts(tuple(engines), use, image_id, digests, container, tuple(labelled))


def labelled_command(cluster: str) -> str:
    """This cluster's containers on every engine that answers: `LABELLED engine name` lines."""
    return (
        "; ".join(
            f"command -v {e} >/dev/null 2>&1 && {e} ps -a --filter label={q(LABEL + '=' + cluster)} "
            f"--format '{{{{.Names}}}}' 2>/dev/null | sed 's/^/LABELLED {e} /'"
            for e in ENGINES
        )
        + "; true"
    )


def parse_labelled(raw: Raw) -> list[tuple[str, str]]:
    """(engine, container name) of each of the cluster's containers."""
    out = []
    for line in raw.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "LABELLED":
            out.append((parts[1], parts[2]))
    return out


def names_image(engine: str, ref: str, image_id: str) -> str:
    """A shell test: the engine resolves `ref` to `image_id` (`engine` and `ref` are shell words,
    already quoted: `"$e"`, or `q(name)`). docker prints ids with `sha256:`, podman without."""
    found = f"{engine} image inspect --format '{{{{.Id}}}}' {ref} 2>/dev/null | sed 's/^sha256://'"
    return f'[ "$({found})" = {q(image_id)} ]'


def image_present_command(engine: str, image_id: str, tags: tuple[str, ...]) -> str:
    """`image load`'s first question, asked cheaply (one engine call per name on the usual re-run):
    `HAVE engine` if the engine `up` would use holds the image id (the inventory's; or, as in
    `container_command`, the first of ENGINES that answers: an engine that finds the image answers,
    one that does not is asked whether it answers at all), then `TAG name ok|other` for each of the
    archive's names. No HAVE line: ask the full `container_command` (which engine, and why not)."""
    has = names_image('"$e"', q(image_id), image_id)
    candidates = q(engine) if engine in ENGINES else " ".join(ENGINES)
    alive = " ".join(f"{e}) {e} {_ALIVE[e]};;" for e in ENGINES)
    pick = (
        f'E=""; for e in {candidates}; do command -v "$e" >/dev/null 2>&1 || continue; '
        f"if {has}; then E=$e; break; fi; "
        + ("break; done" if engine in ENGINES else f"case $e in {alive} esac >/dev/null 2>&1 && break; done")
    )
    chosen = '"$E"'
    checks = "".join(
        f"; {names_image(chosen, q(tag), image_id)} && echo TAG {q(tag)} ok || echo TAG {q(tag)} other" for tag in tags
    )
    return f'{pick}; [ -n "$E" ] || exit 0; echo "HAVE $E"{checks}'


@dataclass(frozen=True)
class ImagePresence:
    engine: str | None  # the engine that holds the image; None: ask `container_command`
    misnamed: tuple[str, ...] = ()  # the archive's names that point at another image (or none)


def parse_image_present(raw: Raw) -> ImagePresence:
    engine: str | None = None
    misnamed: list[str] = []
    for line in raw.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "HAVE":
            engine = parts[1]
        elif len(parts) == 3 and parts[0] == "TAG" and parts[2] != "ok":
            misnamed.append(parts[1])
    return ImagePresence(engine, tuple(misnamed))
