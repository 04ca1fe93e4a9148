"""The simulated cluster's plan: hardware kinds, names, addresses and on-disk layout. Pure data.

Every host gets a main NIC named like a server NIC on the cluster subnet, a second NIC on
another subnet (so that picking the NIC that owns the address matters), and 8 cards (16 dies on
A3) with RoCE IPs on a separate card subnet, one /24 per device index (rail-aligned).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.config.hardware import KINDS, Kind

MAIN_NIC = "enp67s0f5"
SECOND_NIC = "enp67s0f6"
MAX_HOSTS = 200
NETNS_PREFIX = "adsim-"


#: The kinds the simulator builds (their facts come from the one hardware table).
Hardware = Kind
HARDWARE: dict[str, Kind] = {name: KINDS[name] for name in ("910B3", "910B4", "A3")}


@dataclass
class SimHost:
    name: str
    index: int  # 1-based
    address: str  # main NIC, cluster subnet
    second_address: str  # second NIC, other subnet
    netns: str
    veth: str  # root-namespace end of the veth pair
    card_ips: list[str]
    pid1: int | None = None  # root-namespace pid of the host's init (PID 1 inside)
    holder: int | None = None  # root-namespace pid of the `unshare` parent

    @property
    def role(self) -> str:
        return "head" if self.index == 1 else "worker"


@dataclass
class SimState:
    """What `sim up` made; written to ROOT/NAME/state.json so `down` can undo it (it also
    scans for leftovers by name, in case this file is lost)."""

    name: str
    hosts_count: int
    hardware: str
    subnet: int  # the X in 10.213.X.0/24 (cluster), 10.214.X.0/24 (second NIC), 29.X.d.0 (cards)
    root: str
    bridge: str
    hosts: list[SimHost] = field(default_factory=list)
    created_paths: list[str] = field(default_factory=list)  # bind-mount targets we created
    faults: list[dict[str, Any]] = field(default_factory=list)
    ping_ms: int = 100
    inventory: str | None = None  # the inventory file `up` wrote
    containers: bool = False  # a container engine on every host (`sim up --container`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SimState":
        hosts = [SimHost(**h) for h in data.pop("hosts", [])]
        return cls(**data, hosts=hosts)

    def host(self, name: str) -> SimHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)


def bridge_name(subnet: int) -> str:
    return f"adsim{subnet}br"


def plan_hosts(name: str, count: int, hardware: Hardware, subnet: int) -> list[SimHost]:
    hosts = []
    for i in range(1, count + 1):
        host = f"{name}-{i}"
        hosts.append(
            SimHost(
                name=host,
                index=i,
                address=f"10.213.{subnet}.{10 + i}",
                second_address=f"10.214.{subnet}.{10 + i}",
                netns=f"{NETNS_PREFIX}{name}-{i}",
                veth=f"ads{subnet}h{i}",
                card_ips=[f"29.{subnet}.{d}.{10 + i}" for d in range(hardware.devices)],
            )
        )
    return hosts


#: Each simulated host mounts its own /tmp and /dev/shm: files of the cluster there are invisible to it.
SCRATCH = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
#: Where a folder's simulated clusters live when `.sim` beside it cannot serve (see `default_root`).
STATE_HOME = Path("/var/lib/ascend-deploy/sim")


def scratch_parent(path: Path) -> Path | None:
    """The per-host scratch folder `path` is in (or is), if any."""
    return next((s for s in SCRATCH if path == s or s in path.parents), None)


def default_root(folder: Path | None = None, *, uid: int | None = None) -> Path:
    """Where `sim` keeps its clusters and host environment by default: `.sim` in `folder` (the
    current one), unless the hosts could not use it there (under /tmp, /var/tmp or /dev/shm,
    which each host mounts afresh; or a path with white space, which sshd's `SetEnv` and the hosts'
    PATH cannot carry). Then a folder of its own per checkout: /var/lib/ascend-deploy/sim/NAME-HASH
    for root, the user's cache directory otherwise. The same folder always gives the same root."""
    import hashlib
    import os
    import re

    here = (folder or Path.cwd()).resolve()
    local = here / ".sim"
    if scratch_parent(local) is None and not re.search(r"\s", str(local)):
        return local
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", here.name).strip("-.") or "root"
    leaf = f"{slug[:40]}-{hashlib.sha256(str(here).encode()).hexdigest()[:10]}"
    if (os.geteuid() if uid is None else uid) == 0:
        return STATE_HOME / leaf
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ascend-deploy" / "sim" / leaf


@dataclass(frozen=True)
class Paths:
    """Where a simulated cluster keeps its files (never under /tmp: hosts mount their own /tmp)."""

    root: Path  # ROOT/NAME

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def fabric(self) -> Path:
        return self.root / "fabric"

    @property
    def client_key(self) -> Path:
        return self.root / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    def host(self, name: str) -> Path:
        return self.root / "hosts" / name

    def ascend(self, name: str) -> Path:
        return self.host(name) / "Ascend"

    def sim(self, name: str) -> Path:
        return self.ascend(name) / "sim"

    def home(self, name: str) -> Path:
        return self.host(name) / "home"
