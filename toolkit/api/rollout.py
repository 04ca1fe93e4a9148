"""`upgrade`: a new image, runtime profile or setting onto a running cluster, gated on the benchmark,
rolled back by itself. The plan that runs comes from the deployment record on the head; the new one
from the inventory (and `--set`). Everything that can be checked is checked while the old deployment
still serves (the new image on every host, the weights, the new plan's preflight); then, under the
cluster lock, `up`'s own stages apply the new plan, readiness is awaited, the gate measures the
baseline's load points. Any failure after that point, or a Ctrl-C, restores the recorded plan through
the same stages (its image is still on the hosts) and checks that it serves again. The record's
entries say what happened (`history`)."""

from __future__ import annotations

import getpass
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from toolkit.api.benchmark import (
    VOLATILE,
    BenchSettings,
    identity,
    identity_differences,
    measure_loads,
    read_baseline,
)
from toolkit.api.context import ConnectFn, Options, make_executor, plan_for, read_model_config, require_all_hosts
from toolkit.api.deploy import apply, preflight
from toolkit.api.deployed import read_record
from toolkit.api.reports import BenchReport, UpReport
from toolkit.client.benchmark import compare
from toolkit.config.applied import inventory_from_applied
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import EventSink, Executor, no_events
from toolkit.engine.lock import ClusterLocked, Held, acquire
from toolkit.errors import BadInput, HostError, Interrupted
from toolkit.facts.deploy import Paths
from toolkit.facts.record import Record
from toolkit.planner.plan import Plan
from toolkit.planner.record import differences, plan_digest
from toolkit.planner.serialize import plan_from_dict, plan_to_dict
from toolkit.planner.upgrade import Step, change_kinds, upgrade_steps
from toolkit.serial import plain
from toolkit.steps.commands import write_stdin_command
from toolkit.steps.record import TOOL, now

#: identity keys an upgrade may change and still be compared with the old deployment's baseline
UPGRADABLE = (*VOLATILE, "runtime")


@dataclass
class Gate:
    """`--gate BASELINE.json [--min-ratio R] [--check-latency]`."""

    baseline: Path
    min_ratio: float = 0.97
    latency: bool = False


@dataclass
class UpgradeReport:
    """What the upgrade changed, where it stopped, the gate's numbers, the rollback, what serves now."""

    inventory: str
    outcome: str = "planned"  # unchanged | planned (--dry-run) | refused | upgraded | rolled-back | rollback-failed
    from_plan: str = ""
    to_plan: str = ""
    changes: list[str] = field(default_factory=list)
    kinds: dict[str, list[str]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    refusals: list[Any] = field(default_factory=list)  # staging: the new plan's preflight problems
    failure: dict[str, Any] | None = None  # step, message, log
    gate: dict[str, Any] | None = None
    applied: UpReport | None = None
    restored: UpReport | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage_s, apply_s, gate_s, rollback_s
    serving: str | None = None  # "new", "old" or None (nothing verified)
    running_now: list[str] = field(default_factory=list)  # the rollback failed too: `status`, host by host
    notes: list[str] = field(default_factory=list)
    duration: float = 0.0

    __json_extra__ = ("ok",)
    __json_as__ = {"applied": "applied_summary", "restored": "restored_summary"}
    __json_round__ = {"duration": 2}

    @property
    def ok(self) -> bool:
        return self.outcome in ("unchanged", "planned", "upgraded")

    @property
    def applied_summary(self) -> dict[str, Any] | None:
        return _summary(self.applied)

    @property
    def restored_summary(self) -> dict[str, Any] | None:
        return _summary(self.restored)

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def _summary(report: UpReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "ok": report.ok,
        "failed_stage": report.failed_stage,
        "duration": round(report.duration, 2),
        "stages": [plain(s) for s in report.stages],
        "phases": report.phases,
        "endpoint": report.endpoint,
        "answers": report.answers,
        "examples": report.examples_when_serving,  # how a client connects (the key by its variable, never its value)
    }


def upgrade(
    inventory: Inventory,
    opts: Options,
    *,
    gate: Gate | None = None,
    dry_run: bool = False,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> UpgradeReport:
    """Compare, stage, apply, gate; roll back on any failure after the old deployment stopped."""
    require_all_hosts(opts, "upgrade")
    started = time.monotonic()
    report = UpgradeReport(str(inventory.path))
    base = read_baseline(gate.baseline) if gate is not None else None  # a bad file is refused before any SSH
    local = read_model_config(inventory)
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        record = _record(executor, inventory)
        current = record.current
        assert current is not None
        new_plan = plan_for(inventory, executor, local)
        new_doc = plan_to_dict(new_plan)
        report.from_plan, report.to_plan = str(current.get("plan_sha256", "")), plan_digest(new_doc)
        report.steps = upgrade_steps(
            container=new_plan.container is not None,
            gate=str(gate.baseline) if gate else None,
            min_ratio=gate.min_ratio if gate else 0.97,
            latency=gate.latency if gate else False,
        )
        if report.to_plan == report.from_plan:
            report.outcome = "unchanged"
            report.notes.append("the inventory plans what runs now: nothing to upgrade")
            return _done(report, started)
        report.changes = differences(current["plan"], new_doc)
        report.kinds = change_kinds(current["plan"], new_doc)
        settings = _gate_settings(gate, base, new_plan) if gate is not None and base is not None else None
        base_points = base[2] if base is not None else []
        if dry_run:
            report.outcome = "planned"
            return _done(report, started)
        t = time.monotonic()
        staged = preflight(inventory, executor, new_plan)
        report.timings["stage_s"] = round(time.monotonic() - t, 2)
        if staged.problems:
            report.outcome, report.refusals = "refused", list(staged.problems)
            report.notes.append("nothing was stopped: the old deployment still serves")
            return _done(report, started)
        attempt: dict[str, Any] = {"from": report.from_plan, "to": report.to_plan, "started": now()}
        try:
            with _locked(executor, inventory, "upgrade"):
                _apply_and_gate(inventory, executor, report, new_plan, settings, base_points)
                if report.failure is not None:
                    _restore(inventory, executor, current, report)
                else:
                    report.outcome = "upgraded"
                _annotate(executor, inventory, report, attempt, new_doc, current)
        except (Interrupted, KeyboardInterrupt):
            # where it was: a failure already named means the rollback ran; a new deployment serving, the gate
            step = "rollback" if report.failure is not None else "gate" if report.serving == "new" else "apply"
            report.failure = {"step": step, "message": "interrupted (Ctrl-C): restoring the recorded deployment"}
            _after_interrupt(inventory, opts, emit, connect, current, report, attempt, new_doc)
    if report.outcome == "rollback-failed":
        report.running_now = _what_runs(inventory, opts, connect)
    return _done(report, started)


def _what_runs(inventory: Inventory, opts: Options, connect: ConnectFn | None) -> list[str]:
    """After a rollback that failed too: `status` against the recorded deployment, one line per host."""
    from toolkit.api.inspect import status
    from toolkit.errors import ToolkitError

    try:
        found = status(inventory, opts, connect=connect)
    except ToolkitError as exc:
        return [f"status could not be read: {exc}"]
    lines = []
    for h in found.hosts:
        if not h["reachable"]:
            lines.append(f"{h['host']}: unreachable ({h.get('error')})")
            continue
        procs = ", ".join(f"{p['name']} pid {p['pid'] or '-'}" for p in h.get("processes", [])) or "nothing planned"
        ray = f"Ray {'running' if h.get('ray_running') else 'not running'}"
        health = f", /health {h['health']}" if h.get("role") == "head" else ""
        lines.append(f"{h['host']}: {ray}; {procs}{health}")
    return lines + [f"{f.get('host')} [{f.get('check')}]: {f.get('observed')}" for f in found.findings]


def _done(report: UpgradeReport, started: float) -> UpgradeReport:
    report.duration = time.monotonic() - started
    return report


def _record(executor: Executor, inventory: Inventory) -> Record:
    record, why = read_record(executor, inventory)
    if record is None or record.current is None:
        raise BadInput(
            f"nothing is deployed on {inventory.name} to upgrade"
            + (f" ({why})" if why else ": the head's record says nothing runs"),
            hint="start it with `ascend-deploy up`; `upgrade` replaces a running deployment and restores it on failure",
        )
    return record


def _gate_settings(gate: Gate, base: tuple[dict[str, Any], dict[str, Any], list[Any]], plan: Plan) -> BenchSettings:
    """The baseline's own load points and dataset, refused before anything stops when the baseline is
    of another model, hardware or layout (a runtime or tool change is what an upgrade compares)."""
    ident, settings, points = base
    differs = identity_differences(ident, identity(plan), UPGRADABLE)
    if differs:
        raise BadInput(
            f"--gate {gate.baseline} is a result of another deployment: "
            + "; ".join(f"{k} {a} there, {b} in the new plan" for k, (a, b) in differs.items()),
            hint="measure a baseline of the running deployment with `ascend-deploy bench`, then pass it to --gate",
        )
    if settings.get("dataset") not in (None, "random"):
        raise BadInput(
            f"--gate {gate.baseline} was measured with a prompts file, which the gate cannot send again",
            hint="measure the baseline with the random dataset (`ascend-deploy bench` without --prompts)",
        )
    loads = [p.load for p in points if p.ok]
    if not loads:
        raise BadInput(f"--gate {gate.baseline} has no measured point", hint="give a result.json with points")
    return BenchSettings(
        loads=loads,
        input_len=int(settings.get("input_len") or 128),
        output_len=int(settings.get("output_len") or 32),
        num_prompts=int(settings.get("num_prompts") or 100),
        seed=int(settings.get("seed") or 0),
        baseline=gate.baseline,
        min_ratio=gate.min_ratio,
        latency=gate.latency,
    )


@contextmanager
def _locked(executor: Executor, inventory: Inventory, command: str, wait_s: float = 20.0) -> Iterator[Held]:
    """The cluster lock; held by this very process (an interrupted holder whose channel is still
    closing), it is waited for, briefly."""
    mine = f"pid {os.getpid()}, user {getpass.getuser()} on {socket.gethostname()}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            held = acquire(executor.session(inventory.head, "lock"), inventory.name, command)
            break
        except ClusterLocked as exc:
            if mine not in exc.message or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        yield held
    finally:
        held.release()


def _apply_and_gate(
    inventory: Inventory,
    executor: Executor,
    report: UpgradeReport,
    plan: Plan,
    settings: BenchSettings | None,
    base_points: list[Any],
) -> None:
    """`up`'s stages for the new plan, then the gate (`settings`: the baseline's loads, its ratio and
    latency rule; `base_points`: its measured points); `report.failure` says what failed."""
    report.applied = UpReport(report.inventory, plan)
    extra = {"via": "upgrade", "from": report.from_plan}
    apply(inventory, executor, report.applied, Options(), skip_preflight=True, record_extra=extra)
    report.timings["apply_s"] = round(report.applied.duration, 2)
    if not report.applied.ok:
        report.failure = {"step": "apply", **_stage_failure(report.applied)}
        return
    report.serving = "new"
    if settings is None:
        return
    t = time.monotonic()
    bench = BenchReport(report.inventory, identity(plan), {})
    measure_loads(inventory, executor, plan, settings, bench)
    verdicts = compare(bench.points, base_points, min_ratio=settings.min_ratio, latency=settings.latency)
    passed = bench.failure is None and bool(verdicts) and all(v.passed for v in verdicts)
    report.gate = {
        "baseline": str(settings.baseline),
        "min_ratio": settings.min_ratio,
        "passed": passed,
        "failure": bench.failure,
        "verdicts": [plain(v) for v in verdicts],
        "points": [plain(p) for p in bench.points],
    }
    report.timings["gate_s"] = round(time.monotonic() - t, 2)
    if not passed:
        worst = min(verdicts, key=lambda v: v.ratio) if verdicts else None
        message = (
            f"the gate failed: {worst.label} {worst.what} {worst.measured:.1f} against the baseline's "
            f"{worst.baseline:.1f} ({worst.ratio:.2f}x, at least {settings.min_ratio:g} required)"
            if worst is not None and not worst.passed
            else f"the gate failed: {bench.failure or 'no point could be compared with the baseline'}"
        )
        report.failure = {"step": "gate", "message": message}


def _stage_failure(up: UpReport) -> dict[str, Any]:
    """The failed stage's first host error and the log lines it carries."""
    stage = next((s for s in up.run.stages if s.name == up.failed_stage), None) if up.run else None
    errors = [h.error for h in stage.hosts.values() if h.error is not None] if stage else []
    if not errors:
        return {"stage": up.failed_stage, "message": f"stage {up.failed_stage} failed"}
    first = errors[0]
    host = first.host if isinstance(first, HostError) else ""
    return {
        "stage": up.failed_stage,
        "host": host,
        "message": first.message,
        "log": list(getattr(first, "details", []))[-20:],
    }


def _restore(inventory: Inventory, executor: Executor, current: dict[str, Any], report: UpgradeReport) -> None:
    """`up`'s stages for the recorded plan, with the inventory it was applied with."""
    t = time.monotonic()
    report.serving = None
    old = inventory_from_applied(current.get("inventory") or {}, inventory.path)
    plan = plan_from_dict(current["plan"])
    report.restored = UpReport(report.inventory, plan)
    extra = {"via": "rollback", "after": report.to_plan}
    apply(old, executor, report.restored, Options(), skip_preflight=True, record_extra=extra)
    report.timings["rollback_s"] = round(time.monotonic() - t, 2)
    if report.restored.ok and report.restored.serving:
        report.outcome, report.serving = "rolled-back", "old"
    else:
        report.outcome = "rollback-failed"
        failed = _stage_failure(report.restored) if not report.restored.ok else {"message": "not verified serving"}
        report.notes.append(
            f"the recorded deployment did not come back: {failed.get('message')}; "
            "`ascend-deploy status` shows what runs now, `ascend-deploy logs` collects the logs"
        )


def _annotate(
    executor: Executor,
    inventory: Inventory,
    report: UpgradeReport,
    attempt: dict[str, Any],
    new_doc: dict[str, Any],
    current: dict[str, Any],
) -> None:
    """Keep the attempt in the record (`history` shows it); a failure to write it is a note, not a failure."""
    attempt = {
        **attempt,
        "outcome": report.outcome,
        "changes": report.changes,
        "gate": {k: v for k, v in (report.gate or {}).items() if k != "points"} or None,
        "failure": report.failure,
        "timings": report.timings,
    }
    tried = {
        "plan_sha256": report.to_plan,
        "deployed_at": attempt["started"],
        "tool": TOOL,
        "via": "upgrade",
        "plan": new_doc,
    }
    tried["inventory"] = current.get("inventory")
    head = inventory.head
    record, why = read_record(executor, inventory)
    if why is not None:
        report.notes.append(f"the upgrade was not kept in the deployment record: {why}")
        return
    try:
        text = (record or Record(None)).with_upgrade(attempt, tried, now()).to_json()
        path = Paths.of(inventory.name).record
        wrote = executor.map(
            lambda s: s.run(write_stdin_command(path), stdin=text, timeout=30, check=True, setup=False),
            [head],
            stage="record",
        ).outcomes[head.name]
        if not wrote.ok:
            raise wrote.error or HostError(head.name, "no answer")
    except HostError as exc:
        report.notes.append(f"the upgrade was not kept in the deployment record: {exc.message}")


def _after_interrupt(
    inventory: Inventory,
    opts: Options,
    emit: EventSink,
    connect: ConnectFn | None,
    current: dict[str, Any],
    report: UpgradeReport,
    attempt: dict[str, Any],
    new_doc: dict[str, Any],
) -> None:
    """Ctrl-C after the old deployment began to stop: restore it on fresh connections (the interrupted
    ones are closed). A second Ctrl-C ends the rollback too: the error then says what may run."""
    try:
        with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
            with _locked(executor, inventory, "upgrade (rollback)"):
                _restore(inventory, executor, current, report)
                _annotate(executor, inventory, report, attempt, new_doc, current)
    except (Interrupted, KeyboardInterrupt):
        raise Interrupted(
            "interrupted twice: the rollback was stopped too; the hosts may run parts of either deployment",
            hint="`ascend-deploy status` shows what runs; `ascend-deploy up` with the old inventory restores it",
        ) from None


__all__ = ["Gate", "UpgradeReport", "upgrade"]
