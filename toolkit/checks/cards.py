"""The NPU cards: driver and device count, each card's link, health, IP and optics, the hccn.conf
that makes IPs persist, and TLS settings that must agree across cards (docs/ascend-facts.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.checks import Problem
from toolkit.config.hardware import KINDS
from toolkit.config.inventory import Inventory
from toolkit.facts.deploy import is_deployment_process
from toolkit.facts.hccn import HCCN_CONF

if TYPE_CHECKING:
    pass
from toolkit.checks.view import HostView, majority

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
HINT_NPU_HEALTH = (
    "npu-smi info -t health -i {card} shows the alarm; fix or exclude this NPU (drop it from `devices`) before "
    "deploying"
)


def npu_memory_problems(v: HostView) -> list[Problem]:
    """A device the plan uses held by a process that is not a deployment's (vLLM, Ray): the next start
    would fail with "free memory on device is less than desired". Named with its pid, command and HBM."""
    info = v.facts.get("npu_smi")
    if info is None:
        return []
    holders: dict[int, str] = v.facts.get("npu_holders") or {}
    out = []
    for d in v.host.devices:
        chip = info.chip(d)
        if chip is None:
            continue
        foreign = [p for p in info.processes_on(d) if not is_deployment_process(holders.get(p.pid, ""))]
        if not foreign:
            continue
        held = "; ".join(
            f"pid {p.pid} ({holders.get(p.pid) or p.name}"
            + (f", {p.memory_mb} MB" if p.memory_mb is not None else "")
            + ")"
            for p in foreign
        )
        hbm = f"; HBM {chip.hbm_used_mb} of {chip.hbm_total_mb} MB in use" if chip.hbm_used_mb is not None else ""
        out.append(
            Problem(
                v.host.name,
                d,
                "npu-memory",
                f"NPU {d} is held by {held}{hbm}",
                "no process on a device the plan uses",
                f"stop what holds it (`kill {foreign[0].pid}` once you know it may go; a killed vLLM can leave its "
                "engine holding the card), or give the deployment other devices (hosts[].devices): vLLM would "
                "stop with 'free memory on device is less than desired'",
            )
        )
    return out


def npu_problems(inventory: Inventory, v: HostView) -> list[Problem]:
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


def device_problems(v: HostView) -> list[Problem]:
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


def hccn_conf_problems(v: HostView) -> list[Problem]:
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


def tls_problems(views: list[HostView]) -> list[Problem]:
    switches = {
        (v.host.name, d): dev.tls_switch for v in views for d, dev in v.devices.items() if dev.tls_switch is not None
    }
    head = next((dev.tls_switch for v in views if v.host.is_head for dev in v.devices.values()), None)
    common = majority(switches.values(), head)
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
