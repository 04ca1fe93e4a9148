"""The host's network: the NIC that carries the address, bridges and tunnels, the ports the
deployment binds, and the card-to-card pings (one problem per pair, not per direction)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from toolkit.checks import Problem
from toolkit.checks.pings import PingResult
from toolkit.config.inventory import Inventory
from toolkit.facts.deploy import is_deployment_process
from toolkit.facts.net import PROBE_TIMEOUT_S, RETRY_TIMEOUT_S
from toolkit.planner.types import PortUse

if TYPE_CHECKING:
    pass
from toolkit.checks.view import HostView, device_ok

HINT_PING = (
    "check both ports on the switch (hccn_tool -lldp -g), the cabling and the RoCE subnet/gateway; HCCL will time out "
    "(EI0006) on this path"
)


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


BRIDGE_NIC_PREFIXES = ("docker", "br-", "virbr", "cni", "flannel", "cali", "veth", "podman", "tun", "utun", "tap")
BRIDGE_NETWORKS = (ipaddress.ip_network("172.17.0.0/16"), ipaddress.ip_network("198.18.0.0/15"))


def bridge_or_tunnel(nic: str, address: str) -> bool:
    """The node address sits on a container bridge or a proxy/TUN interface."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return nic.startswith(BRIDGE_NIC_PREFIXES) or any(ip in net for net in BRIDGE_NETWORKS)


def host_network_problems(inventory: Inventory, v: HostView) -> list[Problem]:
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
        firewall = (
            "open the firewall between the nodes (Ray uses the GCS port and a range of worker ports); "
            "DistStoreError/placement group hangs otherwise"
        )
        if probe.state == "timeout":  # only timeouts: a dropping firewall, or a host too loaded to answer
            latency = v.facts.get("tool_latency")
            load = (
                f" ({name} was busy: {latency.runnable} runnable processes on {latency.cpus} CPUs)"
                if latency is not None and latency.host_busy
                else ""
            )
            busy = bool(load)
            out.append(
                Problem(
                    name,
                    None,
                    check,
                    f"{what}: no answer within {PROBE_TIMEOUT_S} s, nor within {RETRY_TIMEOUT_S} s when tried again"
                    + load,
                    "reachable (open or refused)",
                    "only timeouts, no refusal: either a firewall drops the packets, or "
                    + (f"{name}" if busy else f"{name} or {target.split(':')[0]}")
                    + " is too loaded to answer in time (check `uptime` there and run check-net again); if the hosts "
                    "are idle, " + firewall,
                )
            )
            continue
        out.append(Problem(name, None, check, f"{what}: {probe.state}", "reachable (open or refused)", firewall))
    return out


def ping_problems(views: list[HostView]) -> list[Problem]:
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
