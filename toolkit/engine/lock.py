"""One `up` or `down` at a time per cluster: a lock held on the head, by a live process.

The holder is a shell on the head that takes `flock` on `~/.ascend-deploy/locks/<cluster>` and
then waits on its stdin, which is our SSH channel. When we release, or when this process dies
for any reason (Ctrl-C, SIGKILL, a crash), the channel closes, the shell exits and the kernel
drops the lock: no lock file outlives its run by design. What can still be left:
- a holder file without a lock (the holder shell was killed on the head): the next run reports
  the dead run it replaces and goes on;
- a lock whose controller died behind a half-open connection (network cut): if that controller
  was this machine and its pid is gone, the next run ends the orphaned holder and takes over;
  otherwise it refuses and names the holder and how to end it.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from toolkit.errors import HostError
from toolkit.serial import plain
from toolkit.transport.shell import q

if TYPE_CHECKING:
    from toolkit.config.inventory import ResolvedHost
    from toolkit.engine.executor import Executor, Session

LOCK_DIR = ".ascend-deploy/locks"
#: Exit status of the lock script when another run holds the lock.
BUSY = 75


class ClusterLocked(HostError):
    """Another run holds the cluster's lock (exit 1); names the holder."""

    kind = "locked"


@dataclass
class LockInfo:
    """What a run records about itself in the holder file (and what a refused run shows)."""

    command: str
    controller: str
    pid: int
    user: str
    since: str
    remote_pid: int | None = None

    @classmethod
    def mine(cls, command: str) -> "LockInfo":
        return cls(command, socket.gethostname(), os.getpid(), getpass.getuser(), time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid}, user {self.user} on {self.controller}, since {self.since})"

    @classmethod
    def parse(cls, text: str) -> "LockInfo | None":
        """The holder file: the holder shell's pid on the first line, our JSON on the second."""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) < 2:
            return None
        try:
            data = json.loads(lines[1])
            return cls(
                str(data["command"]),
                str(data["controller"]),
                int(data["pid"]),
                str(data["user"]),
                str(data["since"]),
                int(lines[0]) if lines[0].strip().isdigit() else None,
            )
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> str:
        return json.dumps(
            {
                "command": self.command,
                "controller": self.controller,
                "pid": self.pid,
                "user": self.user,
                "since": self.since,
            }
        )

    def dead_here(self) -> bool:
        """The run that holds the lock was on this machine and is gone."""
        if self.controller != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def lock_script(cluster: str, info: LockInfo) -> str:
    """Take the lock or say who has it; then hold it until stdin closes."""
    path = f"{LOCK_DIR}/{cluster}"
    holder = f"{path}.holder"
    return "\n".join(
        [
            'cd "$HOME" 2>/dev/null || true',
            "umask 077",
            f"mkdir -p {q(LOCK_DIR)} || exit 1",
            f"exec 9>>{q(path)} || exit 1",
            f"if ! flock -n 9; then echo BUSY; cat {q(holder)} 2>/dev/null; exit {BUSY}; fi",
            f"if [ -s {q(holder)} ]; then echo STALE; cat {q(holder)}; fi",
            f"{{ echo $$; printf '%s\\n' {q(info.to_json())}; }} > {q(holder)}",
            "echo LOCKED",
            "read -r _ || true",  # until our end of the channel closes
            f"rm -f {q(holder)}",
        ]
    )


def _section(lines: list[str], marker: str) -> str:
    """The lines after `marker` up to the next all-caps marker line."""
    if marker not in lines:
        return ""
    out = []
    for line in lines[lines.index(marker) + 1 :]:
        if line in ("BUSY", "STALE", "LOCKED"):
            break
        out.append(line)
    return "\n".join(out)


@dataclass
class Held:
    """A lock we hold; `notes` says what we found (a dead run's leftovers we replaced)."""

    host: str
    release: Callable[[], None]
    notes: list[str] = field(default_factory=list)

    __json_skip__ = ("release",)

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def acquire(session: Session, cluster: str, command: str, *, timeout: float = 30.0) -> Held:
    """Take the cluster lock on `session`'s host (the head) or raise ClusterLocked."""
    info = LockInfo.mine(command)
    notes: list[str] = []
    for attempt in (1, 2):
        result, release = session.conn.hold(lock_script(cluster, info), until="LOCKED", timeout=timeout)
        lines = result.stdout.splitlines()
        if release is not None:
            stale = LockInfo.parse(_section(lines, "STALE"))
            if stale is not None:
                notes.append(f"a previous {stale.describe()} ended without releasing the lock (it died); taken over")
            return Held(session.name, release, notes)
        holder = LockInfo.parse(_section(lines, "BUSY"))
        if result.exit_code != BUSY:
            raise HostError(
                session.name,
                f"cannot take the cluster lock ({LOCK_DIR}/{cluster}): exit {result.exit_code}: {result.tail(3)}",
                hint="is `flock` (util-linux) installed on the head, and its home writable?",
                stage="lock",
            )
        if attempt == 1 and holder is not None and holder.remote_pid and holder.dead_here():
            # our own earlier run died but its holder shell still waits (the connection did not close)
            session.run(f"kill {int(holder.remote_pid)} 2>/dev/null; sleep 0.2", setup=False, check=False, timeout=30)
            notes.append(f"the lock of a dead run {holder.describe()} was still held on the head; its holder was ended")
            continue
        who = holder.describe() if holder else "another run (no holder recorded)"
        hint = "wait for it to finish; `ascend-deploy status` shows what runs"
        if holder is not None and holder.remote_pid:
            hint += f"; if that run is gone, end its holder on the head: kill {holder.remote_pid}"
        raise ClusterLocked(session.name, f"cluster '{cluster}' is locked by {who}", hint=hint, stage="lock")
    raise ClusterLocked(
        session.name, f"cluster '{cluster}' is still locked after ending a dead run's holder", stage="lock"
    )


@contextmanager
def cluster_lock(executor: Executor, head: ResolvedHost, cluster: str, command: str) -> Iterator[Held]:
    """Hold the lock for the duration of the block (released on any exit, Ctrl-C included)."""
    held = acquire(executor.session(head, "lock"), cluster, command)
    try:
        yield held
    finally:
        held.release()
