"""The check-net report: per-host summaries, every ping, every problem; built from a playbook run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolkit.checks import Problem
from toolkit.checks.pings import PingResult
from toolkit.checks.resources import driver_findings, host_memory_problems, shm_problems, storage_warnings
from toolkit.checks.rules import HostView, evaluate, tool_latency_findings
from toolkit.checks.view import majority
from toolkit.config.inventory import Inventory
from toolkit.engine.runner import HostStatus, RunReport
from toolkit.planner.demand import PlanNeeds
from toolkit.planner.types import PortUse
from toolkit.serial import plain


@dataclass
class CheckNetReport:
    mode: str
    views: list[HostView]
    pings: list[PingResult]
    problems: list[Problem]
    duration: float = 0.0
    hosts: list[dict[str, Any]] = field(default_factory=list)
    #: findings that do not stop a start (a driver/CANN pairing the vendor's notes do not list)
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    @property
    def ok(self) -> bool:
        return not self.problems

    __json_extra__ = ("ok",)
    __json_skip__ = ("views",)  # their facts are in `hosts`, summarized
    __json_round__ = {"duration": 3}

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def host_summary(view: HostView) -> dict[str, Any]:
    if view.data is None:
        return {
            "name": view.host.name,
            "address": view.host.address,
            "reachable": False,
            "error": getattr(view.error, "message", str(view.error)),
        }
    data = view.data
    info = data.get("npu_smi")
    return {
        "name": view.host.name,
        "address": view.host.address,
        "reachable": True,
        "hostname": data.get("hostname"),
        "nics": plain(data.get("nics")),
        "npus": plain(info.chips) if info else None,
        "npu_processes": plain(info.processes) if info else None,
        "devices": [plain(view.devices[d]) for d in sorted(view.devices)],
        "versions": {
            "driver": data.get("driver"),
            "cann": data.get("cann"),
            "python": data.get("python"),
            **(data.get("packages") or {}),
        },
        "model": plain(data.get("model")),
        "memory_available_mib": data.get("mem_available_mib"),
        "deployment_rss_mib": data.get("deployment_rss_mib"),
        "shm": plain(data.get("shm")),
        "probes": plain(data.get("probes")),
        "clock_offset_s": data.get("clock_offset_s"),
        "clock_uncertainty_s": data.get("clock_uncertainty_s"),
        "tool_latency": plain(data.get("tool_latency")),
    }


def without_driver(p: Problem) -> Problem:
    """A versions problem without its driver part (the driver check names the driver)."""
    if p.check != "versions":
        return p
    rest = [part for part in p.observed.split("; ") if not part.startswith("driver ")]
    return Problem(p.host, p.device, p.check, "; ".join(rest), p.expected, p.hint)


def build(
    inventory: Inventory,
    run: RunReport,
    mode: str,
    ports: tuple[PortUse, ...] = (),
    needs: PlanNeeds | None = None,
) -> CheckNetReport:
    """The check-net report: every host's view and every problem; `ports` are checked free,
    `needs` (the plan's memory, shared memory and CANN) against each host."""
    facts_stage = next((s for s in run.stages if s.step == "preflight_facts"), None)
    ping_stage = next((s for s in run.stages if s.step == "card_pings"), None)
    views = []
    for host in inventory.hosts:
        report = facts_stage.hosts.get(host.name) if facts_stage else None
        if report is None:
            continue  # not selected (--limit)
        if report.status == HostStatus.FAILED:
            views.append(HostView(host, None, report.error))
            continue
        view = HostView(host, report.data)
        ping_report = ping_stage.hosts.get(host.name) if ping_stage else None
        if ping_report is not None and ping_report.status == HostStatus.FAILED:
            view.error = ping_report.error
        elif ping_report is not None:
            view.pings = list(ping_report.data.get("pings", []))
        views.append(view)
    problems = evaluate(inventory, views, ports)
    warnings = [w for v in views if v.data is not None for w in tool_latency_findings(v) if w.check != "tool-latency"]
    if needs is not None:
        installed = majority([v.data.get("cann") for v in views if v.data is not None])
        for view in views:
            if view.data is None:
                continue
            problems += host_memory_problems(needs, view) + shm_problems(needs, view)
            found, warned = driver_findings(needs, view, installed)
            problems += found
            warnings += warned + storage_warnings(needs, view)
            if found:  # one root cause, one problem: the driver check says more than "differs"
                problems = [without_driver(p) if p.host == view.host.name else p for p in problems]
                problems = [p for p in problems if p.observed]
    for view in views:  # a host whose ping round trip itself failed
        if view.data is not None and view.error is not None:
            problems.append(
                Problem(
                    view.host.name,
                    None,
                    "ping-run",
                    view.error.message,
                    "the ping round trip to finish",
                    view.error.hint or "re-run check-net; see -v for the host's output",
                )
            )
    all_pings = [p for v in views for p in v.pings]
    notes = [needs.unplanned] if needs is not None and needs.unplanned else []
    return CheckNetReport(
        mode, views, all_pings, problems, run.duration, [host_summary(v) for v in views], warnings, notes
    )
