"""Files of one simulated host: its /usr/local/Ascend (driver, CANN, tools, device state, a
fake `acl` module), /etc/hccn.conf, sshd config and host key, HOME, and its init script.

Everything here is written by the control side before the host starts; the host's init
bind-mounts the Ascend tree and hccn.conf over the real paths inside its own mount namespace.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from toolkit.sim.layout import MAIN_NIC, SECOND_NIC, Hardware, Paths, SimHost, SimState

TOOLS = Path(__file__).resolve().parent / "tools"
SSHD = "/usr/sbin/sshd"
HOST_PATH = (
    "/usr/local/Ascend/bin:/usr/local/Ascend/driver/tools:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)
DRIVER_VERSION = "24.1.rc2"
CANN_VERSION = "8.0.RC2"
#: each simulated host's own /dev/shm (a tmpfs, as on a host with 16 GiB of RAM)
SHM_SIZE = "8g"
DEFAULT_DEVICE = {
    "link": "UP",
    "health": "Success",
    "tls": "0",
    "optical": "present",
    "npu_health": "OK",
}

ACL_MODULE = '''"""Simulated AscendCL (`acl`) of an ascend-deploy simulated host; never on real hosts.

Real Ray detects Ascend NPUs through `acl.rt.get_device_count()` and `acl.get_soc_name()`;
this module answers them from the host's simulator config, so Ray registers the host's NPUs
exactly as on an Atlas 800.
"""

import os

_CONF = "/usr/local/Ascend/sim/conf"


def _conf():
    values = {}
    with open(_CONF) as fh:
        for line in fh:
            key, _, value = line.strip().partition("=")
            values[key] = value
    return values


class rt:  # noqa: N801 - mirrors acl.rt
    @staticmethod
    def get_device_count():
        visible = os.environ.get("ASCEND_RT_VISIBLE_DEVICES")
        if visible is not None:
            return (len([v for v in visible.split(",") if v.strip()]), 0)
        return (int(_conf().get("NDEV", "0")), 0)


def get_soc_name():
    return _conf().get("SOC")
'''


def write_private(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def new_ed25519() -> tuple[bytes, str]:
    """(private key in OpenSSH format, public key line)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, public


def device_state(host: SimHost, device: int, subnet: int, overrides: dict[str, str] | None = None) -> dict[str, str]:
    state = {
        "ip": host.card_ips[device],
        "netmask": "255.255.0.0",
        "netdetect": f"29.{subnet}.0.1",
        "gateway": f"29.{subnet}.0.1",
        "lldp_port": f"400GE1/{host.index}/{device + 1}:1",
        "chassis": f"7c:33:f9:{subnet:02x}:{host.index:02x}:{device:02x}",
        **DEFAULT_DEVICE,
    }
    state.update(overrides or {})
    return state


def render_state(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def render_hccn_conf(states: list[dict[str, str]]) -> str:
    lines = []
    for d, st in enumerate(states):
        if st.get("ip"):
            lines += [f"address_{d}={st['ip']}", f"netmask_{d}={st['netmask']}"]
        if st.get("netdetect"):
            lines.append(f"netdetect_{d}={st['netdetect']}")
        if st.get("gateway"):
            lines.append(f"gateway_{d}={st['gateway']}")
        lines.append(f"send_arp_status_{d}=1")
    return "\n".join(lines) + "\n"


def render_conf(host: SimHost, hw: Hardware, paths: Paths, ping_ms: int, slow_ms: int = 0) -> str:
    return render_state(
        {
            "HOST": host.name,
            "NDEV": str(hw.devices),
            "NCARD": str(hw.cards),
            "DIES": str(hw.dies),
            "HW": hw.npu_smi_names[0],
            "SOC": hw.soc or "",
            "HBM": str(hw.hbm_mb),
            "PING_MS": str(ping_ms),
            "SLOW_MS": str(slow_ms),
            "FABRIC": str(paths.fabric),
        }
    )


def write_device(paths: Paths, host: SimHost, device: int, values: dict[str, str]) -> None:
    """Atomic rewrite, so a concurrent hccn_tool never reads half a file."""
    target = paths.sim(host.name) / "dev" / f"{device}.state"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(render_state(values))
    os.replace(tmp, target)


def read_device(paths: Paths, host: SimHost, device: int) -> dict[str, str]:
    values = {}
    for line in (paths.sim(host.name) / "dev" / f"{device}.state").read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


def _tool_copy(paths: Paths, tool: str) -> Path:
    """The simulated tool, copied under the cluster's root: a link into the checkout would dangle
    inside the hosts when the checkout is under /tmp (each host mounts its own /tmp)."""
    target = paths.root / "tools" / tool
    source = (TOOLS / tool).read_bytes()
    if not target.exists() or target.read_bytes() != source:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source)
        target.chmod(0o755)
    return target


def write_cann(ascend: Path) -> None:
    """The simulated CANN toolkit and ATB under `ascend` (a host's /usr/local/Ascend, or the
    container image's): install info, the `acl` module Ray asks for NPUs, set_env.sh files."""
    arch = platform.machine()
    toolkit_home = ascend / "ascend-toolkit" / "latest"
    info = toolkit_home / f"{arch}-linux" / "ascend_toolkit_install.info"
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text(f"package_name=Ascend-cann-toolkit\nversion={CANN_VERSION}\narch={arch}\nos=linux\n")
    site = toolkit_home / "python" / "site-packages"
    (site / "acl").mkdir(parents=True, exist_ok=True)
    (site / "acl" / "__init__.py").write_text(ACL_MODULE)
    (ascend / "ascend-toolkit" / "set_env.sh").write_text(
        "# simulated CANN environment (ascend-deploy sim)\n"
        "export ASCEND_TOOLKIT_HOME=/usr/local/Ascend/ascend-toolkit/latest\n"
        "export ASCEND_HOME_PATH=$ASCEND_TOOLKIT_HOME\n"
        "export PATH=/usr/local/Ascend/bin:/usr/local/Ascend/driver/tools:$PATH\n"
        "export PYTHONPATH=$ASCEND_TOOLKIT_HOME/python/site-packages${PYTHONPATH:+:$PYTHONPATH}\n"
    )
    atb = ascend / "nnal" / "atb"
    atb.mkdir(parents=True, exist_ok=True)
    (atb / "set_env.sh").write_text(
        "# simulated ATB environment (ascend-deploy sim)\nexport ATB_HOME_PATH=/usr/local/Ascend/nnal/atb/latest\n"
    )


def write_host(paths: Paths, state: SimState, host: SimHost, hw: Hardware, authorized_key: str) -> str:
    """Write one host's tree; returns its host public key line."""
    base = paths.host(host.name)
    ascend = paths.ascend(host.name)
    sim = paths.sim(host.name)
    for folder in (
        sim / "dev",
        sim / "lock",
        ascend / "bin",
        ascend / "driver" / "tools",
        paths.home(host.name) / ".ssh",
    ):
        folder.mkdir(parents=True, exist_ok=True)
    (sim / "conf").write_text(render_conf(host, hw, paths, state.ping_ms))
    states = [device_state(host, d, state.subnet) for d in range(hw.devices)]
    for d, st in enumerate(states):
        (sim / "dev" / f"{d}.state").write_text(render_state(st))
        (sim / "dev" / f"davinci{d}").touch()
    fifo = sim / "sleep.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    for tool, where in (
        ("hccn_tool", ascend / "driver" / "tools"),
        ("hccn_tool", ascend / "bin"),
        ("npu-smi", ascend / "bin"),
    ):
        link = where / tool
        if not link.is_symlink():
            link.symlink_to(_tool_copy(paths, tool))
    (ascend / "driver" / "version.info").write_text(f"Version={DRIVER_VERSION}\npackage_version={DRIVER_VERSION}\n")
    write_cann(ascend)
    (base / "hccn.conf").write_text(render_hccn_conf(states))

    private, public = new_ed25519()
    write_private(base / "ssh_host_ed25519_key", private)
    (base / "ssh_host_ed25519_key.pub").write_text(public + "\n")
    (base / "sshd_config").write_text(
        "\n".join(
            [
                f"ListenAddress {host.address}",
                "Port 22",
                f"HostKey {base / 'ssh_host_ed25519_key'}",
                f"PidFile {base / 'sshd.pid'}",
                f"AuthorizedKeysFile {paths.root / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "LogLevel VERBOSE",
                "MaxSessions 128",
                "MaxStartups 128:30:256",
                "Subsystem sftp internal-sftp",  # as a stock host's sshd has it: scp and sftp work
                # podman's settings on every host, engine or not: a probe (`down` looks for the cluster's
                # containers) must not make the machine's default stores (/var/lib/containers, /run/libpod)
                f"SetEnv HOME={paths.home(host.name)} PATH={HOST_PATH}"
                f" CONTAINERS_CONF={base / 'containers' / 'containers.conf'}"
                f" CONTAINERS_STORAGE_CONF={base / 'containers' / 'storage.conf'}",
                "",
            ]
        )
    )
    write_private(paths.root / "authorized_keys", authorized_key + "\n", 0o600)
    write_podman(paths, host, state.containers)
    if state.containers:
        write_engine(paths, host)
    (base / "init.sh").write_text(init_script(paths, host, state.containers))
    return public


#: the cgroup v1 hierarchies runc needs (`ip netns exec` mounts a fresh /sys without them: sim-notes)
CGROUPS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
#: what a container of the vendor's recipe mounts from the host that a simulated host keeps in its tree
DRIVER_BINDS = {
    "/usr/local/dcmi": "dcmi",
    "/usr/local/bin/npu-smi": "npu-smi",
    "/etc/ascend_install.info": "ascend_install.info",
}


def write_podman(paths: Paths, host: SimHost, with_image: bool) -> None:
    """The host's own podman store and settings (the simulator's image beside it when it runs containers)."""
    from toolkit.sim.image import Store, containers_conf, storage_conf
    from toolkit.sim.rundirs import run_dirs

    base = paths.host(host.name)
    (base / "containers" / "storage").mkdir(parents=True, exist_ok=True)
    dirs = run_dirs(base / "containers" / "storage").make()  # short, under /run/adsim: removed by `sim down`
    (base / "containers" / "containers.conf").write_text(containers_conf(dirs))
    (base / "containers" / "storage.conf").write_text(
        storage_conf(dirs, Store(paths.root.parent) if with_image else None)
    )


def write_engine(paths: Paths, host: SimHost) -> None:
    """The driver parts a container of the vendor's recipe mounts (sim-notes)."""
    base = paths.host(host.name)
    (base / "dcmi").mkdir(exist_ok=True)
    (paths.ascend(host.name) / "driver" / "lib64").mkdir(parents=True, exist_ok=True)
    (base / "ascend_install.info").write_text(
        "UserName=HwHiAiUser\nUserGroup=HwHiAiUser\nDriver_Install_Path_Param=/usr/local/Ascend\n"
    )
    shutil.copyfile(_tool_copy(paths, "npu-smi"), base / "npu-smi")
    (base / "npu-smi").chmod(0o755)


def init_script(paths: Paths, host: SimHost, containers: bool = False) -> str:
    """PID 1 of the host: its network, mounts and hostname, then sshd; then it stays to reap."""
    base = paths.host(host.name)
    engine = ""
    if containers:
        engine = "mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup\n"
        for c in CGROUPS:
            engine += f"mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}\n"
        engine += (
            "mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd\n"
        )
        for target, source in DRIVER_BINDS.items():
            engine += f"mount --bind {base / source} {target}\n"
        # runc keeps container state in /run/runc: the host's own, gone with it (as a real host's at reboot)
        engine += "mount -t tmpfs -o mode=700,size=64m tmpfs /run/runc\n"
    prefix = host.address.rsplit(".", 1)[0]
    second_prefix = host.second_address.rsplit(".", 1)[0]
    return f"""#!/bin/bash
# init (PID 1) of simulated host {host.name}; written by ascend-deploy sim
set -e
hostname {host.name}
ip -batch - <<EOF
link set lo up
addr add {host.address}/24 brd {prefix}.255 dev {MAIN_NIC}
link set {MAIN_NIC} up
link add {SECOND_NIC} type veth peer name storage0
link set storage0 up
addr add {host.second_address}/24 brd {second_prefix}.255 dev {SECOND_NIC}
link set {SECOND_NIC} up
EOF
mount --bind {base / "Ascend"} /usr/local/Ascend
mount --bind {base / "hccn.conf"} /etc/hccn.conf
mount -t tmpfs -o mode=1777,size=4g tmpfs /tmp
mount -t tmpfs -o mode=1777,size={SHM_SIZE} tmpfs /dev/shm
{engine}{SSHD} -f {base / "sshd_config"} -E {base / "sshd.log"}
set +e
echo ready > {base / "init.ready"}
# stay as PID 1 so orphans (daemonized Ray, vLLM) are reaped; blocks without using CPU
exec 3<> {base / "Ascend" / "sim" / "sleep.fifo"}
while :; do read -r -u 3 _; done
"""


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
