"""`up`: plan (refused before any SSH when invalid), preflight, then the up playbook on one
executor; the report says what changed, what answered, and how a client connects."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from toolkit.api.context import ConnectFn, Options, make_executor, plan_for, read_model_config, require_all_hosts
from toolkit.api.reports import UpReport
from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.config.secrets import read_api_key
from toolkit.engine.executor import EventSink, Executor, no_events
from toolkit.engine.lock import cluster_lock
from toolkit.engine.registry import Shared
from toolkit.engine.runner import RunReport, check_tags, run_playbook
from toolkit.facts.deploy import Paths
from toolkit.planner.plan import ray_temp_dir
from toolkit.steps import load_playbook
from toolkit.transport.shell import q

if TYPE_CHECKING:
    from concurrent.futures import Future

    from toolkit.checks.report import CheckNetReport
    from toolkit.planner.plan import Plan


def up(
    inventory: Inventory,
    opts: Options,
    *,
    skip_preflight: bool = False,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
    record: Callable[[Path], None] | None = None,
) -> UpReport:
    """Preflight, env, Ray head + workers, wait for Ray, vLLM, readiness. Stops at the first failed stage."""
    require_all_hosts(opts, "up")
    started = time.monotonic()
    local = read_model_config(inventory)
    plan = plan_for(inventory, local=local) if local[0] is not None else None  # fail fast, before any SSH
    read_api_key(inventory)  # a missing or unreadable secret too
    if record is not None:
        record(inventory.path)
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor, ExitStack() as held:
        report = UpReport(str(inventory.path), plan or plan_for(inventory, executor, local), check=opts.check)
        if not opts.check:  # --check changes nothing: no lock
            report.lock = held.enter_context(cluster_lock(executor, inventory.head, inventory.name, "up"))
        apply(inventory, executor, report, opts, skip_preflight=skip_preflight)
    report.duration = time.monotonic() - started
    return report


def apply(
    inventory: Inventory,
    executor: Executor,
    report: UpReport,
    opts: Options,
    *,
    skip_preflight: bool,
    record_extra: dict[str, Any] | None = None,
) -> None:
    """`up`'s stages for `report.plan` on an open executor whose caller holds the cluster lock (`up`;
    `upgrade` applies a new plan, and restores the recorded one, through this very function).
    `record_extra`: what the deployment record's entry also says (`upgrade`: how it came to run)."""
    from toolkit.launch import launch_for, not_needed

    started = time.monotonic()
    launcher = launch_for(report.plan).launcher
    book = load_playbook(launcher.up_playbook)
    check_tags(book, opts.tags or None, opts.skip_tags or None)
    shared = Shared(plan=report.plan, api_key=read_api_key(inventory), record_extra=dict(record_extra or {}))
    snapshot = launcher.snapshot_command()
    if not opts.check and snapshot is not None:
        shared.ray_snapshot = background(executor, inventory.head, snapshot)
    if not skip_preflight:
        report.preflight = preflight(inventory, executor, report.plan)
        shared.hbm_before = hbm_levels(report.preflight.views)
        if report.preflight.problems:
            report.failed_stage = "preflight"
            report.duration = time.monotonic() - started
            return
    skip = set(opts.skip_tags) | ({"verify"} if opts.check else set())
    run = run_playbook(
        book,
        inventory,
        executor,
        check=opts.check,
        tags=opts.tags or None,
        skip_tags=skip or None,
        shared=shared,
        not_needed=not_needed(report.plan),
    )
    report.run = run
    report.failed_stage = run.failed_stage
    if report.ok and not opts.check and report.phases.get("ready_s") is not None:
        remember_start(report)
    if any(s.name == run.failed_stage and s.step == "ray_ready" for s in run.stages):
        attach_ray_logs(inventory, executor, run)
    report.duration = time.monotonic() - started


def preflight(inventory: Inventory, executor: Executor, plan: Plan) -> CheckNetReport:
    """check-net against `plan` (the NPUs, network, host memory, shm, driver, ports, weights) plus the
    runtime on the hosts, or in containers the image on every host."""
    from toolkit.api.images import read_images
    from toolkit.checks.images import container_problems
    from toolkit.checks.report import build
    from toolkit.checks.rules import runtime_problems
    from toolkit.planner.demand import plan_needs

    run = run_playbook(
        load_playbook("check-net"), inventory, executor, params={"card_pings": {"mode": "rail", "packets": 3}}
    )
    pre = build(inventory, run, "rail", plan.ports, plan_needs(plan))
    container = plan.container
    if container is None:  # in containers the image carries vLLM, CANN and torch-npu: its id is compared
        pre.problems.extend(runtime_problems(plan.runtime, [v for v in pre.views if v.data is not None]))
    else:
        found = read_images(executor, inventory.name, container)
        pre.problems.extend(container_problems(container, found, inventory.head.name))
    return pre


def hbm_levels(views: list[Any]) -> dict[str, dict[str, int]]:
    """HBM in use per device the inventory gives each host, read at preflight, for the devices no
    process held then (a device our running deployment holds has no "before" now: the record keeps
    the earlier reading)."""
    out: dict[str, dict[str, int]] = {}
    for v in views:
        npu = (v.data or {}).get("npu_smi")
        if npu is None:
            continue
        levels = {}
        for d in v.host.devices:
            chip = npu.chip(d)
            if chip is not None and chip.hbm_used_mb is not None and not npu.processes_on(d):
                levels[str(d)] = chip.hbm_used_mb
        out[v.host.name] = levels
    return out


def remember_start(report: UpReport) -> None:
    """Keep this cold start's phases on the control machine (`config.startups`): the next `plan` of
    the same model and layout predicts its start from them. A history that cannot be written costs
    the prediction, never the deployment: it becomes a note."""
    from datetime import datetime, timezone

    from toolkit import __version__
    from toolkit.config.startups import append_startup
    from toolkit.planner.startup import plan_start_key, startup_record

    phases = report.phases
    record = startup_record(
        plan_start_key(report.plan),
        {k: v for k, v in phases.items() if k not in ("ready_s", "hosts")},
        float(phases["ready_s"]),
        datetime.now(timezone.utc).isoformat(timespec="seconds"),
        __version__,
    )
    try:
        where = append_startup(record)
    except OSError as e:
        report.messages.append(f"this start's phases were not kept ({e}): the next plan cannot predict from it")
    else:
        report.messages.append(f"start-up phases kept in {where} (the next `plan` predicts from them)")


def background(executor: Executor, head: ResolvedHost, command: str) -> "Future[Any]":
    """Run the launcher's snapshot command on the head in the background while the other stages
    run (see `RayLauncher.snapshot_command`); the thread ends with its command, or when the
    executor closes."""
    import threading
    from concurrent.futures import Future

    future: Future[Any] = Future()

    def query() -> None:
        try:
            # no stage: a failure to connect is reported by the stage that needs the head
            session = executor.session(head)
            future.set_result(session.run(command, timeout=60, check=False, setup=True))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=query, name="ray-snapshot", daemon=True).start()
    return future


def attach_ray_logs(inventory: Inventory, executor: Executor, run: RunReport) -> None:
    """A host that never joined Ray: put the tail of its own Ray logs under the error."""
    from toolkit.launch.ray import NodesMissing

    stage = next(s for s in run.stages if s.step == "ray_ready")
    for host_report in stage.hosts.values():
        err = host_report.error
        if not isinstance(err, NodesMissing):
            continue
        p = Paths.of(inventory.name)
        raylet = f"{ray_temp_dir(inventory.name)}/session_latest/logs/raylet.out"
        hosts = [h for h in inventory.hosts if h.name in err.missing]
        script = f"tail -n 12 {q(p.ray_log)} 2>/dev/null; tail -n 8 {q(raylet)} 2>/dev/null; true"
        res = executor.map(lambda s: s.run(script, timeout=30, check=False, setup=False), hosts, stage="ray-logs")
        for name in err.missing:
            outcome = res.outcomes.get(name)
            if outcome is None:
                continue
            if outcome.ok and outcome.value is not None:
                lines = outcome.value.stdout.strip().splitlines() or [
                    "(no Ray log on this host: `ray start` never ran there)"
                ]
                err.details.extend([f"{name}: Ray log tail"] + [f"  {ln}" for ln in lines[-20:]])
            elif outcome.error is not None:
                err.details.append(f"{name}: unreachable for its log: {outcome.error.message}")
