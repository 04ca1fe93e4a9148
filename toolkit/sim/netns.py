"""Network namespaces, the bridge and veth pairs of a simulated cluster, and the processes in
them. Batched through one `ip -batch` per operation: 64 hosts cost a handful of processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence

from toolkit.errors import ToolkitError
from toolkit.sim.layout import MAIN_NIC, NETNS_PREFIX, SimState

NETNS_DIR = Path("/run/netns")
ALIAS_PREFIX = "ascend-deploy-sim:"


class SimError(ToolkitError):
    kind = "sim"


def ip_batch(lines: list[str], *, force: bool = False) -> None:
    if not lines:
        return
    cmd = ["ip", "-force", "-batch", "-"] if force else ["ip", "-batch", "-"]
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if proc.returncode != 0 and not force:
        raise SimError(f"ip -batch failed: {proc.stderr.strip()[:400]}")


def create_network(state: SimState) -> None:
    br = state.bridge
    lines = [
        f"link add name {br} type bridge",
        f"link set {br} alias {ALIAS_PREFIX}{state.name}",
        f"addr add 10.213.{state.subnet}.1/24 dev {br}",
        f"link set {br} up",
    ]
    for host in state.hosts:
        lines += [
            f"netns add {host.netns}",
            f"link add {host.veth} type veth peer name {MAIN_NIC} netns {host.netns}",
            f"link set {host.veth} master {br}",
            f"link set {host.veth} up",
        ]
    ip_batch(lines)


def used_subnets() -> set[int]:
    """Subnets of every simulated cluster bridge on this machine (any name)."""
    out = subprocess.run(["ip", "-j", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
    used = set()
    for link in json.loads(out or "[]"):
        name = link.get("ifname", "")
        if name.startswith("adsim") and name.endswith("br") and name[5:-2].isdigit():
            used.add(int(name[5:-2]))
    return used


def bridges_of(name: str) -> list[str]:
    out = subprocess.run(["ip", "-j", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
    return [link["ifname"] for link in json.loads(out or "[]") if link.get("ifalias") == f"{ALIAS_PREFIX}{name}"]


def netns_of(name: str) -> list[str]:
    prefix = f"{NETNS_PREFIX}{name}-"
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit())


def all_sim_netns() -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return [p.name for p in NETNS_DIR.iterdir() if p.name.startswith(NETNS_PREFIX)]


def pids_in(netns: list[str]) -> dict[str, list[int]]:
    """Root-namespace pids of every process in each netns, from one pass over /proc."""
    inodes: dict[int, str] = {}
    for ns in netns:
        try:
            inodes[os.stat(NETNS_DIR / ns).st_ino] = ns
        except OSError:
            continue
    found: dict[str, list[int]] = {ns: [] for ns in netns}
    if not inodes:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ino = os.stat(f"/proc/{entry.name}/ns/net").st_ino
        except OSError:
            continue
        if ino in inodes:
            found[inodes[ino]].append(int(entry.name))
    return found


def sshd_pids(netns: list[str], *, listener_only: bool = False) -> dict[str, list[int]]:
    """sshd processes in each namespace: the listener (started with -f) and, unless
    `listener_only`, the per-connection session processes."""
    found: dict[str, list[int]] = {}
    for ns, pids in pids_in(netns).items():
        found[ns] = []
        for pid in pids:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                # the listener retitles itself "sshd: /usr/sbin/sshd -f CONFIG ... [listener]"
                listener = comm == "sshd" and b"-f" in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if listener or (not listener_only and comm in ("sshd", "sshd-session")):
                found[ns].append(pid)
    return found


def kill_all(netns: list[str], timeout: float = 5.0) -> list[int]:
    """SIGKILL every process in these namespaces and wait until they are gone; returns survivors."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for plist in pids_in(netns).values() for p in plist]
        if not pids:
            return []
        if time.monotonic() > deadline:
            return pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def ports_of(bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-j", "link", "show", "master", bridge], capture_output=True, text=True).stdout
    return [link["ifname"] for link in json.loads(out or "[]")]


def delete(netns: list[str], bridges: list[str], veths: Sequence[str] = ()) -> None:
    """Delete veths first (synchronous, frees their names at once; a netns dies asynchronously),
    then namespaces and bridges."""
    ports = sorted({*veths, *(p for br in bridges for p in ports_of(br))})
    ip_batch(
        [f"link del {v}" for v in ports] + [f"netns del {ns}" for ns in netns] + [f"link del {br}" for br in bridges],
        force=True,
    )
