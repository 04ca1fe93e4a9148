"""Short, machine-wide run folders for the simulator's podman stores.

podman's overlay driver refuses a run root longer than 50 characters ("the specified runroot is
longer than 50 characters"), and a unix socket's path must fit in 107 bytes. A store's graph root
may sit anywhere (the sim root follows the checkout: 80+ characters is ordinary), so each store's
run root and libpod temp dir go to `/run/adsim/KEY`, KEY a hash of the store's resolved graph root:
the same store always gets the same folder (podman's database records both and refuses another),
whatever the checkout's path. /run is a tmpfs, as podman expects of run state; the simulated hosts
share it with this machine. Each folder names its store in `owner`, so `sim down` finds and removes
a cluster's folders even when its state file is lost.

Sockets (measured with podman 4.3 and conmon 2.1 here): conmon makes a container's attach socket in
the container's folder under the graph root and binds it through the folder's descriptor, so a long
graph root is fine; podman 5 puts a socket folder under the temp dir, which stays short here.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

#: where the run folders live (11 characters: a run root is /run/adsim/KEY/run, 27)
RUN_HOME = Path("/run/adsim")
#: containers/storage's limit on a run root with the overlay driver
RUNROOT_MAX = 50
#: a unix socket's path holds 107 bytes (podman 5's conmon: TMP/socket/<64-hex container id>/attach)
SOCKET_MAX = 107
OWNER = "owner"


@dataclass(frozen=True)
class RunDirs:
    """One store's run folders: `run` (podman's run root) and `tmp` (libpod's temp dir: exit files,
    conmon's sockets); `owner` holds the graph root they serve."""

    base: Path
    store: Path  # the graph root, resolved

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def tmp(self) -> Path:
        return self.base / "tmp"

    def make(self) -> "RunDirs":
        for d in (self.run, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
        (self.base / OWNER).write_text(str(self.store) + "\n")
        return self

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
        try:
            self.base.parent.rmdir()  # RUN_HOME, once no store has folders there
        except OSError:
            pass


def run_dirs(store: Path) -> RunDirs:
    """The run folders of the store whose graph root is `store` (nothing is made)."""
    resolved = store.resolve()
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return RunDirs(RUN_HOME / key, resolved)


def owned(under: Path) -> Iterator[RunDirs]:
    """Every run folder whose store lies under `under` (a cluster's folder, the sim root)."""
    prefix = under.resolve()
    for owner in sorted(RUN_HOME.glob(f"*/{OWNER}")):
        try:
            store = Path(owner.read_text().strip())
        except OSError:
            continue
        if store == prefix or prefix in store.parents:
            yield RunDirs(owner.parent, store)


def remove_owned(under: Path) -> list[str]:
    """Remove the run folders of every store under `under` (RUN_HOME too, once empty); what went."""
    gone = []
    for dirs in owned(under):
        dirs.remove()
        gone.append(str(dirs.base))
    return gone
