"""Plans that are not a planning pass: what `status` looks at when the inventory does not plan
(hosts and ports as written), and the ports an inventory's launcher would bind."""

from __future__ import annotations

from toolkit.config.hardware import DEFAULT_KIND
from toolkit.config.inventory import Inventory
from toolkit.planner import launchers
from toolkit.planner.types import (
    HCCL_BASE_PORT,
    HostPlan,
    Plan,
    PortUse,
    Value,
)
from toolkit.plugin_api import (
    DEVICE_CLASS,
    RuntimeProfile,
)


def endpoint_of(inventory: Inventory) -> str:
    return f"http://{inventory.head.address}:{inventory.spec.serve.port}/v1"


def probe_url_of(inventory: Inventory) -> str:
    """Where the head itself reaches the server (a wildcard bind answers on loopback)."""
    serve = inventory.spec.serve
    return f"http://{'127.0.0.1' if serve.host in ('0.0.0.0', '::') else serve.host}:{serve.port}"


def observation_plan(inventory: Inventory, runtime: RuntimeProfile) -> Plan:
    """What `status` needs to look at a cluster whose inventory no longer plans (hosts, roles,
    addresses, devices, ports, the served name), taken from the inventory as written with no
    planning rule applied: "what runs there now?" must not depend on the plan being valid."""
    model = inventory.spec.model
    kind = inventory.spec.hardware or DEFAULT_KIND
    unplanned = Value(None, "not planned: the plan is not valid")
    name = (model.served_name or model.path.rstrip("/").rsplit("/", 1)[-1]) if model else "-"
    hosts = tuple(
        HostPlan(h.name, h.address, h.role, h.devices, None if h.nic == "auto" else h.nic, {}) for h in inventory.hosts
    )
    return Plan(
        cluster=inventory.name,
        hardware=Value(kind, "inventory"),
        device_class=DEVICE_CLASS[kind],
        runtime=runtime,
        runtime_origin=unplanned.origin,
        model_path=model.path if model else "-",
        served_name=Value(name, "inventory"),
        family="-",
        plugin="-",
        plugin_source="-",
        row=None,
        config_source=None,
        tp=unplanned,
        pp=unplanned,
        dp=unplanned,
        backend=unplanned,
        vllm_args=(),
        api_key=None,
        hosts=hosts,
        memory=None,
        endpoint=endpoint_of(inventory),
        ray_port=inventory.spec.ray.port,
        probe_url=probe_url_of(inventory),
    )


def inventory_ports(inventory: Inventory, launcher: str) -> tuple[PortUse, ...]:
    """The ports a launcher would bind for this inventory (HCCL's base from the head's env if set).
    `launcher` 'auto' (the plan unknown) counts both Ray's and the DP RPC port."""
    given = inventory.head.env.get("HCCL_IF_BASE_PORT", "")
    base = int(given) if given.isdigit() else HCCL_BASE_PORT
    return launchers.ports_for(launcher, inventory, base)
