"""Preflight steps (read-only): every NPU/network fact of a host in one round trip, then the
card-to-card pings planned from all hosts' facts, in one round trip per host."""

from __future__ import annotations

import secrets
import time
from typing import Any, Iterator

from toolkit.checks import pings
from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts import Fact, Raw
from toolkit.facts.deploy import PS_COMMAND, parse_commands, parse_deployment_rss_mib
from toolkit.facts.hccn import device_script, hccn_conf_command, parse_devices, parse_hccn_conf
from toolkit.facts.host import HOST_FACTS, df_command, parse_df, parse_mem_available_mib
from toolkit.facts.model import model_command, parse_model
from toolkit.facts.net import latency_command, parse_latency, parse_probes, parse_routes, probe_command, route_command
from toolkit.facts.npu import holders, npu_smi_fact, parse_info_list
from toolkit.facts.ports import listeners_command, parse_listeners
from toolkit.facts.weights import parse_weights, weights_command

#: Up to this many hosts every host probes every other host's SSH port; beyond, only its ring
#: neighbour (O(N) connections instead of O(N^2)).
FULL_MESH_PROBES = 8


def probe_targets(inv: Inventory, me: ResolvedHost) -> list[tuple[str, int]]:
    hosts = inv.hosts
    targets: list[tuple[str, int]] = []
    if not me.is_head:
        targets.append((inv.head.address, inv.spec.ray.port))
    others = [h for h in hosts if h.name != me.name]
    if len(hosts) <= FULL_MESH_PROBES:
        targets += [(h.address, h.port or 22) for h in others]
    elif others:
        idx = [h.name for h in hosts].index(me.name)
        nxt = hosts[(idx + 1) % len(hosts)]
        targets.append((nxt.address, nxt.port or 22))
    return targets


def preflight_fact_list(inv: Inventory, host: ResolvedHost, nonce: str) -> list[Fact[Any]]:
    """Every fact check-net reads on one host (one batch, one round trip)."""
    devices = list(host.devices)
    peers = [h.address for h in inv.hosts if h.name != host.name]
    facts: list[Fact[Any]] = [
        Fact(
            "tool_latency", latency_command(devices[0]), parse_latency
        ),  # first: before the device reads load the host
        *HOST_FACTS,
        npu_smi_fact(),
        Fact("process_commands", PS_COMMAND, parse_commands),  # -> npu_holders, then dropped
        Fact("mem_available_mib", "cat /proc/meminfo", parse_mem_available_mib),
        Fact("deployment_rss_mib", PS_COMMAND, parse_deployment_rss_mib),
        Fact("shm", df_command("/dev/shm"), parse_df("/dev/shm")),
        Fact("npu_list", "npu-smi info -l", parse_info_list),
        Fact("devices", device_script(devices, nonce), lambda raw: parse_devices(raw, nonce, devices)),
        Fact("hccn_conf", hccn_conf_command(), parse_hccn_conf),
        Fact("routes", route_command(peers), parse_routes),
        Fact("probes", probe_command(probe_targets(inv, host)), parse_probes),
        Fact("listeners", listeners_command(), parse_listeners),
    ]
    if inv.spec.model is not None:
        path = inv.spec.model.path
        facts.append(Fact("model", model_command(path), parse_model(path)))
        facts.append(Fact("weights", weights_command(path), parse_weights(path)))
    return facts


@step("preflight_facts", read_only=True)
def preflight_facts(ctx: StepContext) -> Iterator[Op]:
    """Read npu-smi, every hccn_tool check per device, NICs, routes, reachability, versions, model, clock."""
    clock = read_clock(ctx)  # first, while the host is idle: the round trip bounds the error
    values = ctx.facts(preflight_fact_list(ctx.inventory, ctx.host, secrets.token_hex(5)))
    values["npu_holders"] = holders(values.get("npu_smi"), values.pop("process_commands", None) or {})
    values.update(clock)
    ctx.data.update(values)
    return iter(())


def read_clock(ctx: StepContext) -> dict[str, float | None]:
    """Host clock minus ours, +- half the round trip (the uncertainty)."""
    t0 = time.time()
    res = ctx.session.run("date +%s.%N", setup=False, check=False)
    t1 = time.time()
    try:
        offset: float | None = float(res.stdout.strip()) - (t0 + t1) / 2
    except ValueError:
        offset = None
    return {"clock_offset_s": offset, "clock_uncertainty_s": (t1 - t0) / 2}


@step("card_pings", read_only=True)
def card_pings(ctx: StepContext) -> Iterator[Op]:
    """Ping peer cards (mode rail, ring or full) from every device of this host, one at a time per device."""
    mode = str(ctx.params.get("mode", "rail"))
    packets = int(ctx.params.get("packets", 3))
    source = ctx.from_step("preflight_facts")
    card_ips = {name: pingable(data) for name, data in source.items() if "devices" in data}
    order = [h.name for h in ctx.inventory.hosts if h.name in card_ips]
    planned = pings.plan({name: card_ips[name] for name in order}, mode, only=ctx.host.name).get(ctx.host.name, [])
    ctx.data["mode"] = mode
    if not planned:
        ctx.data["pings"] = []
        return iter(())
    nonce = secrets.token_hex(5)
    timeout = max(60.0, ctx.session.default_timeout or 0)
    res = ctx.session.run(pings.script(planned, nonce, packets), check=False, timeout=timeout)
    ctx.data["pings"] = pings.parse(Raw(res.stdout, res.exit_code), nonce, ctx.host.name, planned)
    return iter(())


def pingable(data: dict[str, Any]) -> dict[int, str]:
    """Devices worth pinging: an IP and a link that is UP (others are reported by their own checks)."""
    return {d.id: d.ip for d in data["devices"].values() if d.ip and d.link == "UP" and "ip" not in d.errors}
