"""`sim up`, `sim down`, `sim status`: a cluster of simulated Atlas 800 hosts on this machine.

Each host is a network namespace on a bridge with its own mount, UTS and PID namespaces and a
real OpenSSH sshd. `down` removes everything `up` made, found by name even when the state file
is lost after a crash.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from toolkit.errors import BadInput
from toolkit.sim import netns, placeholders, rundirs
from toolkit.sim.hosttree import SSHD, new_ed25519, remove_tree, write_host, write_private
from toolkit.sim.inventory_file import INVENTORY_MARKER, write_inventory
from toolkit.sim.layout import (
    HARDWARE,
    MAX_HOSTS,
    Paths,
    SimState,
    bridge_name,
    default_root,
    plan_hosts,
    scratch_parent,
)
from toolkit.sim.netns import SimError
from toolkit.sim.placeholders import PLACEHOLDERS

Progress = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


@dataclass
class SimOptions:
    name: str = "sim"
    hosts: int = 2
    hardware: str = "910B3"
    root: Path = field(default_factory=default_root)
    inventory: Path | None = None  # default: inventories/sim.yaml (sim-NAME.yaml for other names)
    ping_ms: int = 100
    devices: list[int] | None = None  # devices the inventory asks for (default: all)
    tensor_parallel: int | None = None  # serve.tensor_parallel_size written into the inventory
    containers: bool = False  # podman on every host and an inventory with a container section

    def inventory_path(self) -> Path:
        if self.inventory is not None:
            return self.inventory
        return Path("inventories") / ("sim.yaml" if self.name == "sim" else f"sim-{self.name}.yaml")


def require_root() -> None:
    if os.geteuid() != 0:
        raise BadInput(
            "`ascend-deploy sim` needs root: it creates network namespaces, bridges and mounts",
            hint="run it with sudo (the simulated cluster lives on this machine only)",
        )
    if not os.path.exists(SSHD):
        raise BadInput(
            "OpenSSH server not found (/usr/sbin/sshd)",
            hint="apt-get install openssh-server (`make test` and `make demo` do it)",
        )
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise BadInput("`unshare` and `ip` are needed", hint="apt-get install util-linux iproute2")


def require_engine() -> None:
    if shutil.which("podman") is None or shutil.which("runc") is None:
        raise BadInput(
            "`sim up --container` needs podman and runc on this machine",
            hint="make system-deps (apt-get install podman runc)",
        )


def require_image(root: Path) -> None:
    """The simulator's image in the shared store, before anything is made (`make host-env` imports it)."""
    from toolkit.sim.image import Store, have_image, opened

    with opened(Store(root)) as store:
        if not have_image(store):
            raise BadInput(
                f"`sim up --container`: the simulator image is not in {store.graph}",
                hint="make host-env imports it (a few minutes, once)",
            )


def check_root_dir(root: Path) -> Path:
    root = root.resolve()
    scratch = scratch_parent(root)
    if scratch is not None:
        raise BadInput(
            f"--root {root} is under {scratch}",
            hint="simulated hosts mount their own /tmp and /dev/shm; leave --root out (here the default is "
            f"{default_root()}) or pick a folder elsewhere",
        )
    return root


def load_state(paths: Paths) -> SimState | None:
    try:
        return SimState.from_dict(json.loads(paths.state.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def save_state(paths: Paths, state: SimState) -> None:
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2))
    os.replace(tmp, paths.state)


def _free_subnet() -> int:
    used = netns.used_subnets()
    for x in range(1, 251):
        if x not in used:
            return x
    raise SimError("no free subnet left for another simulated cluster (10.213.1-250.0/24)")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")


def _listening(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.3):
            return True
    except OSError:
        return False


def status(opts: SimOptions) -> dict[str, Any]:
    """Hosts, addresses, state and injected faults, probed live (not trusted from the file)."""
    paths = Paths(check_root_dir(opts.root) / opts.name)
    state = load_state(paths)
    live_ns = set(netns.netns_of(opts.name))
    if state is None:
        return {"name": opts.name, "up": False, "hosts": [], "leftovers": sorted(live_ns), "faults": []}
    sshd_up = _sshd_hosts(state)
    hosts = []
    for h in state.hosts:
        hosts.append(
            {
                "name": h.name,
                "role": h.role,
                "address": h.address,
                "netns": h.netns in live_ns,
                "init": _alive(h.pid1),
                "sshd": h.name in sshd_up,
                "ssh_port": _listening(h.address),
                "faults": [f for f in state.faults if f["host"] == h.name],
            }
        )
    up = bool(hosts) and all(x["netns"] and x["init"] for x in hosts)
    return {
        "name": state.name,
        "up": up,
        "hardware": state.hardware,
        "root": str(paths.root),
        "inventory": str(opts.inventory_path()),
        "hosts": hosts,
        "faults": state.faults,
        # the hosts' podman run roots and temp dirs (short, machine-wide: rundirs), when they have an engine
        "run_dirs": [str(d.base) for d in rundirs.owned(paths.root)],
    }


def _sshd_hosts(state: SimState) -> set[str]:
    listeners = netns.sshd_pids([h.netns for h in state.hosts], listener_only=True)
    return {h.name for h in state.hosts if listeners.get(h.netns)}


@contextmanager
def machine_lock() -> Iterator[None]:
    """One `sim up`/`sim down` at a time on this machine: they share the subnets, the bridge names
    and the placeholders at the real paths (a down that saw no other cluster removes them)."""
    PLACEHOLDERS.parent.mkdir(parents=True, exist_ok=True)
    with open(PLACEHOLDERS.parent / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def up(opts: SimOptions, progress: Progress = _quiet) -> dict[str, Any]:
    """Create the cluster (no-op when the same cluster is already up)."""
    require_root()
    with machine_lock():
        return _up(opts, progress)


def _up(opts: SimOptions, progress: Progress) -> dict[str, Any]:
    if opts.hardware not in HARDWARE:
        raise BadInput(f"unknown hardware {opts.hardware!r}", hint=f"one of {', '.join(HARDWARE)}")
    if not 1 <= opts.hosts <= MAX_HOSTS:
        raise BadInput(f"--hosts must be 1..{MAX_HOSTS}, got {opts.hosts}")
    root = check_root_dir(opts.root)
    paths = Paths(root / opts.name)
    existing = load_state(paths)
    if existing is not None:
        current = status(opts)
        same = (
            existing.hosts_count == opts.hosts
            and existing.hardware == opts.hardware
            and existing.containers == opts.containers
        )
        if current["up"] and same:
            write_inventory(opts.inventory_path(), opts.devices, opts.tensor_parallel, existing, paths)
            return {**current, "changed": False}
        if current["up"]:
            raise BadInput(
                f"simulated cluster '{opts.name}' is up with {existing.hosts_count} x {existing.hardware}",
                hint=f"run `ascend-deploy sim down --name {opts.name}` first",
            )
        progress("cleaning up a previous half-made cluster")
        _down(opts, _quiet)
    elif netns.netns_of(opts.name) or netns.bridges_of(opts.name):
        progress("cleaning up leftovers of a crashed run")
        _down(opts, _quiet)

    if opts.containers:
        require_engine()
        require_image(root)
    hw = HARDWARE[opts.hardware]
    subnet = _free_subnet()
    state = SimState(
        opts.name,
        opts.hosts,
        opts.hardware,
        subnet,
        str(root),
        bridge_name(subnet),
        ping_ms=opts.ping_ms,
        inventory=str(opts.inventory_path().resolve()),
        containers=opts.containers,
    )
    state.hosts = plan_hosts(opts.name, opts.hosts, hw, subnet)
    paths.root.mkdir(parents=True, exist_ok=True)
    save_state(paths, state)  # first, so a crash half-way can be undone by `down`
    try:
        state.created_paths += placeholders.make(hw.devices, containers=opts.containers)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        progress(f"writing {opts.hosts} host trees")
        client_private, client_public = new_ed25519()
        write_private(paths.client_key, client_private)
        (paths.root / "client_ed25519.pub").write_text(client_public + "\n")
        (paths.fabric / "cards").mkdir(parents=True, exist_ok=True)
        (paths.fabric / "loss").mkdir(parents=True, exist_ok=True)
        host_keys = {}
        for host in state.hosts:
            host_keys[host.name] = write_host(paths, state, host, hw, client_public)
            for ip in host.card_ips:
                (paths.fabric / "cards" / ip).write_text("up\n")
        paths.known_hosts.write_text(
            "".join(f"{h.address} {' '.join(host_keys[h.name].split()[:2])}\n" for h in state.hosts)
        )
        progress("creating namespaces, bridge and links")
        netns.create_network(state)
        save_state(paths, state)
        progress(f"starting {opts.hosts} hosts")
        procs = {}
        for host in state.hosts:
            log = open(paths.host(host.name) / "init.log", "wb")
            procs[host.name] = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.netns,
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--fork",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "/bin/bash",
                    str(paths.host(host.name) / "init.sh"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            log.close()
            host.holder = procs[host.name].pid
        _wait_hosts(state, paths, procs, progress)
        save_state(paths, state)
    except BaseException:
        save_state(paths, state)
        progress("start failed: removing what was made")
        try:
            _down(opts, _quiet)
        except Exception:  # the original error matters more; `sim down` can be re-run
            pass
        raise
    write_inventory(opts.inventory_path(), opts.devices, opts.tensor_parallel, state, paths)
    return {**status(opts), "changed": True}


def _wait_hosts(
    state: SimState, paths: Paths, procs: dict[str, subprocess.Popen[bytes]], progress: Progress, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    pending = {h.name: h for h in state.hosts}
    while pending:
        for name, host in list(pending.items()):
            proc = procs[name]
            if proc.poll() is not None:
                log = (paths.host(name) / "init.log").read_text(errors="replace").strip()
                raise SimError(f"simulated host {name} failed to start (exit {proc.returncode}): {log[-500:]}")
            if host.pid1 is None:
                kids = _children(proc.pid)
                host.pid1 = kids[0] if kids else None
            if (paths.host(name) / "init.ready").exists() and _listening(host.address):
                del pending[name]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise SimError(f"simulated hosts not ready after {timeout:g}s: {', '.join(sorted(pending))}")
        time.sleep(0.02)
    progress(f"{len(state.hosts)} hosts listening")


def down(opts: SimOptions, progress: Progress = _quiet) -> dict[str, Any]:
    """Remove every namespace, process, interface, mount target and file of the cluster."""
    with machine_lock():
        return _down(opts, progress)


def _down(opts: SimOptions, progress: Progress) -> dict[str, Any]:
    """Remove every namespace, process, interface, mount target and file of the cluster.

    Idempotent, and works from names alone when the state file is missing."""
    require_root()
    root = check_root_dir(opts.root)
    paths = Paths(root / opts.name)
    state = load_state(paths)
    spaces = sorted(set(netns.netns_of(opts.name)) | ({h.netns for h in state.hosts} if state else set()))
    bridges = sorted(set(netns.bridges_of(opts.name)) | ({state.bridge} if state else set()))
    holders = [p for h in (state.hosts if state else []) for p in (h.holder, h.pid1) if p]
    for pid in holders:
        try:
            os.kill(pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
    survivors = netns.kill_all(spaces)
    if survivors:
        raise SimError(f"processes survived SIGKILL in simulated hosts: {survivors[:10]}")
    veths = [h.veth for h in state.hosts] if state else []
    existing = {Path(p).name for p in Path("/sys/class/net").iterdir()}
    netns.delete(
        [ns for ns in spaces if (netns.NETNS_DIR / ns).exists()],
        [b for b in bridges if b in existing],
        [v for v in veths if v in existing],
    )
    if not netns.all_sim_netns():
        placeholders.remove_all()
    for inv in {opts.inventory_path().resolve(), *([Path(state.inventory)] if state and state.inventory else [])}:
        if inv.exists() and inv.read_text().startswith(INVENTORY_MARKER):
            inv.unlink()
    run_folders = rundirs.remove_owned(paths.root)
    remove_tree(paths.root)
    removed = {"name": opts.name, "netns": spaces, "bridges": bridges, "run_dirs": run_folders}
    progress(f"removed {len(spaces)} hosts")
    return removed
