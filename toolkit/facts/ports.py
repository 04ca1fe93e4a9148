"""Listening TCP ports and the process that holds each (`ss -ltnp`, then `ps` for their command
lines), so preflight can tell a port the plan needs that another program holds from one this
cluster's own vLLM or Ray holds (a re-run of `up` on a running cluster)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolkit.facts import Raw

_PROCS = "--- procs"
_PID = re.compile(r"pid=(\d+)")


@dataclass(frozen=True)
class Listener:
    port: int
    address: str
    pid: int | None
    command: str  # the holder's command line ("" when ss could not name it)


def listeners_command() -> str:
    """`ss` lists listening TCP sockets with their pids; `ps` gives those pids' command lines."""
    return (
        "command -v ss >/dev/null || { echo 'no-ss'; exit 0; }; "
        "out=$(ss -H -ltnp 2>/dev/null); printf '%s\\n' \"$out\"; "
        f"echo {_PROCS!r}; "
        "pids=$(printf '%s\\n' \"$out\" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\\n' ','); "
        '[ -n "$pids" ] && ps -ww -o pid=,args= -p "${pids%,}" 2>/dev/null | cut -c1-300; true'
    )


def parse_listeners(raw: Raw) -> list[Listener] | None:
    """Each listening socket with its holder; None when the host has no `ss`."""
    if raw.stdout.strip() == "no-ss":
        return None
    sockets, _, procs = raw.stdout.partition(_PROCS + "\n")
    commands: dict[int, str] = {}
    for line in procs.splitlines():
        parts = line.strip().split(None, 1)
        if parts and parts[0].isdigit():
            commands[int(parts[0])] = parts[1] if len(parts) > 1 else ""
    out = []
    for line in sockets.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        local = cols[3] if cols[0].upper() == "LISTEN" else cols[2]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        found = _PID.search(line)
        pid = int(found.group(1)) if found else None
        out.append(Listener(int(port), address.strip("[]"), pid, commands.get(pid, "") if pid else ""))
    return out
