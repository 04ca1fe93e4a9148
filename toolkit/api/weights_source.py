"""The source of a `weights sync`: a folder on the control machine (its manifest computed once and
kept in the folder, reused while sizes and modification times are unchanged: `launch/manifest_program`,
which a folder on a host runs too) or a host that holds a complete verified copy; and the safetensors
headers checked before a byte moves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

from toolkit.engine.executor import Session
from toolkit.errors import HostError
from toolkit.launch import manifest_program, shipped

CHUNK = 1 << 20
#: the slowest hashing a host's disk is given time for (bytes/s): the bound of the hasher's run
HASH_RATE = 50 << 20


def local_manifest(folder: Path) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The folder's manifest (hashing only the files changed since the hashes kept there) and each
    safetensors file's header problem (None: it parses)."""
    found = manifest_program.folder_manifest(str(folder))
    return found["manifest"], found["headers"]


def local_stream(folder: Path, stream: list[dict[str, Any]], sent: Any) -> Iterator[bytes]:
    """The bytes of the run, file after file from each one's offset (`sent(n)` after each chunk)."""
    for f in stream:
        with (folder / f["name"]).open("rb") as src:
            src.seek(int(f["offset"]))
            left = int(f["size"]) - int(f["offset"])
            while left > 0:
                block = src.read(min(CHUNK, left))
                if not block:
                    raise OSError(f"{folder / f['name']} is shorter than its manifest says")
                left -= len(block)
                yield block
                sent(len(block))


def host_manifest(
    session: Session, host: str, root: str, total: int, progress: Callable[[int], None]
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """A plain folder on a host as a source: the folder hasher run there (hashes kept in the folder, so a
    second run reads only what changed), `progress(bytes hashed)` while it reads."""
    found = _hasher(
        session, host, root, {}, 600 + total / HASH_RATE, progress, f"could not hash {root} as a weights source"
    )
    return found["manifest"], found["headers"]


def host_headers(session: Session, host: str, root: str, names: list[str]) -> dict[str, str | None]:
    """The safetensors header check of a source whose hashes are known (a host's model.path with a
    complete, verified manifest): the same shipped program, only the headers read."""
    why = f"could not read the safetensors headers in {root}"
    return dict(_hasher(session, host, root, {"headers": names}, 120, lambda _n: None, why)["headers"])


def _hasher(
    session: Session,
    host: str,
    root: str,
    cfg: dict[str, Any],
    timeout: float,
    progress: Callable[[int], None],
    failed: str,
) -> dict[str, Any]:
    """The folder hasher shipped to `host` for `root`: its RESULT, or a HostError naming the host."""
    found: dict[str, Any] = {}
    on_output = shipped.on_lines(
        {
            "HASH": lambda rest: progress(int(rest)) if rest.isdigit() else None,
            "RESULT": lambda rest: found.update(json.loads(rest)),
            "FAIL": lambda rest: found.update(fail=rest),
        }
    )
    res = session.run(
        shipped.COMMAND,
        stdin=[shipped.payload(manifest_program, {"root": root, **cfg})],
        on_output=on_output,
        timeout=timeout,
        check=False,
        setup=False,
    )
    if "headers" not in found:
        why = found.get("fail") or (res.stderr.strip().splitlines() or [f"exit {res.exit_code}"])[-1]
        raise HostError(
            host,
            f"{failed}: {why}",
            hint="check that the folder is readable by the SSH user and python3 runs on the host",
            stage="weights-source",
        )
    return found
