"""`status`: what runs on each host now (Ray, vLLM, health, models), in one round trip per host,
looked at through the plan that was deployed (the head's record) when there is one, and compared
with what the inventory plans now."""

from __future__ import annotations

import time
from typing import Any

from toolkit.api.context import ConnectFn, Options, make_executor, plan_for
from toolkit.api.deployed import SHOWN
from toolkit.api.reports import StatusReport
from toolkit.api.supervise import findings
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import EventSink, no_events
from toolkit.engine.registry import Shared
from toolkit.engine.runner import HostStatus, run_playbook
from toolkit.errors import BadInput
from toolkit.facts.metrics import as_rows
from toolkit.planner.plan import Plan
from toolkit.steps import load_playbook


def status(
    inventory: Inventory,
    opts: Options,
    *,
    metrics: bool = False,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> StatusReport:
    """What runs on each host now; with `metrics`, the server's load per model from /metrics."""
    from toolkit.api.deployed import compare, read_record, recorded_plan

    started = time.monotonic()
    params = {"status_probe": {"metrics": True}} if metrics else None
    deployed = None
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        record, problem = read_record(executor, inventory)
        running = recorded_plan(record) if record is not None else None
        if record is not None and running is not None:
            plan, notes = running, []
            deployed = compare(record, inventory, executor)
            if not deployed.matches_inventory:
                more = len(deployed.differences) - SHOWN
                notes += [
                    f"the inventory now plans something other than what was deployed {deployed.deployed_at} (shown "
                    "here as deployed; `ascend-deploy up` applies the inventory):",
                    *deployed.differences[:SHOWN],
                    *([f"and {more} more (status --json lists them)"] if more > 0 else []),
                ]
        else:
            plan, notes = plan_or_observation(inventory)
            if record is not None and record.current is not None:
                notes.append("the deployment record's plan could not be read back: shown from the inventory")
        if problem:
            notes.append(problem)
        run = run_playbook(load_playbook("status"), inventory, executor, shared=Shared(plan=plan), params=params)
    stage = run.stages[0]
    head = stage.hosts.get(plan.head.name)
    nodes = (head.data.get("ray_nodes") if head and head.status != HostStatus.FAILED else None) or {}
    rows = []
    for hp in plan.hosts:
        h = stage.hosts.get(hp.name)
        if h is None:
            continue
        reachable = h.status != HostStatus.FAILED
        d = h.data if reachable else {}
        row: dict[str, Any] = {
            "host": hp.name,
            "role": hp.role,
            "address": hp.address,
            "reachable": reachable,
            "error": h.error.message if h.error else None,
            # what must run here: a Ray node, or (launchers dp, mp) this host's own vLLM rank(s)
            "runs": "vllm" if hp.server_argv else "ray",
            "ray_running": d.get("ray_running"),
            "ray_node": hp.address in nodes,
            "npu": int(nodes[hp.address]) if hp.address in nodes else None,
            "npu_planned": len(hp.devices),
        }
        found = d.get("procs") or {}
        row["processes"] = [  # what the plan runs here, as found (a pid only for a process with a pid file)
            {
                "name": p.name,
                "kind": p.kind,
                "pid": (found.get(p.name) or {}).get("pid"),
                "uptime_s": (found.get(p.name) or {}).get("uptime_s"),
                "api": p.api,
            }
            for p in hp.processes
        ]
        if plan.container is not None:  # placement container: which container, from which image
            row["container"] = d.get("container")
        if hp.server_argv:
            row.update(ranks=list(hp.ranks), vllm_pid=d.get("vllm_pid"), uptime_s=d.get("vllm_uptime_s"))
        if hp.role == "head":
            row.update(
                vllm_pid=d.get("vllm_pid"),
                uptime_s=d.get("vllm_uptime_s"),
                health=d.get("health"),
                models=d.get("models"),
                endpoint=plan.endpoint,
                last_log_line=d.get("last_log_line"),
                ray_nodes=len(nodes),
                engines=d.get("engines"),
                answered=d.get("answered"),
                engines_planned=plan.dp.value if isinstance(plan.dp.value, int) else None,
            )
        rows.append(row)
    report = StatusReport(
        str(inventory.path),
        plan,
        rows,
        time.monotonic() - started,
        notes,
        deployed=deployed,
        findings=findings(plan, rows),
    )
    if metrics:
        loads = head.data.get("metrics") if head and head.status != HostStatus.FAILED else None
        report.metrics = as_rows(loads)
        if loads is None:
            report.notes.append("no metrics: the head's server did not answer /metrics")
    return report


def plan_or_observation(inventory: Inventory) -> tuple[Plan, list[str]]:
    """The plan; or, when it does not validate (or a plugin fails to load), what `status` needs
    from the inventory alone, with the problem as notes: what runs is answerable whatever the
    inventory now says (an edit after `up`, a plugin folder gone)."""
    try:
        return plan_for(inventory), []
    except BadInput as exc:
        from toolkit.planner.plan import observation_plan
        from toolkit.planner.plugins import load_plugins

        plugins = load_plugins([])
        try:
            runtime = plugins.runtime(inventory.spec.runtime)
        except BadInput:
            runtime = plugins.runtime(None)
        lines = exc.lines()
        first = (
            f"{lines[0]}: hosts, Ray and vLLM are shown as found, not compared with a plan (`ascend-deploy plan` "
            "explains)"
        )
        return observation_plan(inventory, runtime), [first, *(line.strip() for line in lines[1:])]
