"""Playbook-level entry points: run any playbook, gather facts, the check-net preflight."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.api.context import ConnectFn, Options, make_executor, plan
from toolkit.config.inventory import Inventory
from toolkit.config.secrets import read_api_key
from toolkit.engine.executor import EventSink, no_events
from toolkit.engine.registry import Shared
from toolkit.engine.runner import RunReport, run_playbook
from toolkit.planner.types import PortUse
from toolkit.steps import load_builtin_steps, load_playbook

if TYPE_CHECKING:
    from toolkit.checks.report import CheckNetReport
    from toolkit.planner.demand import PlanNeeds


def run(
    playbook: str,
    inventory: Inventory,
    opts: Options,
    *,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> RunReport:
    """Run a playbook (by bundled name or path) against the inventory. Playbooks whose steps act on
    the deployment (up's stages, status) get the plan and the API key, as `up` gives them."""
    book = load_playbook(playbook)
    steps = load_builtin_steps()
    shared = Shared()
    if any(steps[stage.step].needs_plan for stage in book.stages if stage.step in steps):
        shared = Shared(plan=plan(inventory), api_key=read_api_key(inventory))
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        return run_playbook(
            book,
            inventory,
            executor,
            check=opts.check,
            tags=opts.tags or None,
            skip_tags=opts.skip_tags or None,
            shared=shared,
        )


def check_net(
    inventory: Inventory,
    opts: Options,
    *,
    mode: str = "rail",
    packets: int = 3,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> "CheckNetReport":
    """NPU + network preflight (the `check-net` playbook), evaluated into problems."""
    from toolkit.checks.report import build

    book = load_playbook("check-net")
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        run = run_playbook(book, inventory, executor, params={"card_pings": {"mode": mode, "packets": packets}})
    ports, needs = planned_needs(inventory)
    return build(inventory, run, mode, ports, needs)


def planned_needs(inventory: Inventory) -> tuple[tuple[PortUse, ...], PlanNeeds]:
    """The ports the plan binds and what it needs of each host; when the inventory does not plan
    (yet), the ports of its launcher setting (auto: Ray's and the DP RPC port both), and needs that
    say why memory and shared memory were not checked."""
    from toolkit.errors import BadInput
    from toolkit.planner.demand import plan_needs, unplanned_needs
    from toolkit.planner.plan import inventory_ports

    try:
        planned = plan(inventory)
    except BadInput as e:
        why = f"host-memory and shm not checked: the inventory does not plan ({e.message}; see `ascend-deploy plan`)"
        return inventory_ports(inventory, inventory.spec.serve.launcher), unplanned_needs(why)
    return planned.ports, plan_needs(planned)


def facts(
    inventory: Inventory,
    opts: Options,
    *,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> RunReport:
    """Gather read-only facts from every selected host (the `facts` playbook)."""
    return run("facts", inventory, opts, emit=emit, connect=connect)
