"""Running a playbook: stages in order, a barrier after each, stop at the first failed stage.

Each host's step yields operations; under `--check` they are recorded, not run, so the report
shows per host exactly what would change. The report keeps every host's outcome.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.config.playbook import Playbook, Stage
from toolkit.config.yamlsrc import did_you_mean
from toolkit.engine.executor import Event, EventKind, Executor, Label, Session
from toolkit.engine.registry import STEPS, Results, Shared, StepContext
from toolkit.errors import AuthError, BadInput, CommandTimeout, ConnectError, HostError, HostKeyError
from toolkit.serial import plain

#: Errors a retry cannot fix: the host is unreachable or refused us, or a command already had
#: the stage's whole time limit (a second try would only double the wait on a hung host).
NOT_RETRIED = (ConnectError, AuthError, HostKeyError, CommandTimeout)


class HostStatus(Label):
    """How one host came out of one stage."""

    UNCHANGED = "unchanged"  # a change step found nothing to do
    CHANGED = "changed"
    WOULD_CHANGE = "would-change"  # --check: it would have run operations
    OK = "ok"  # a verification step passed (read-only steps never "change")
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class OpReport:
    command: str
    description: str
    ran: bool
    exit_code: int | None = None
    duration: float = 0.0


@dataclass
class HostReport:
    host: str
    status: HostStatus
    ops: list[OpReport] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: HostError | None = None
    attempts: int = 1
    duration: float = 0.0

    __json_round__ = {"duration": 3}

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass
class StageReport:
    name: str
    step: str
    hosts: dict[str, HostReport] = field(default_factory=dict)
    duration: float = 0.0
    skipped_reason: str | None = None

    @property
    def ok(self) -> bool:
        return all(h.status != HostStatus.FAILED for h in self.hosts.values())

    @property
    def skipped(self) -> str | None:
        """Why the whole stage was skipped (--tags, no hosts to run on), if it was."""
        return self.skipped_reason

    __json_extra__ = ("ok", "skipped")
    __json_skip__ = ("skipped_reason",)
    __json_round__ = {"duration": 3}

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass
class RunReport:
    playbook: str
    check: bool
    stages: list[StageReport] = field(default_factory=list)
    failed_stage: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed_stage is None

    __json_extra__ = ("ok",)
    __json_round__ = {"duration": 3}

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def select_hosts(stage: Stage, hosts: list[ResolvedHost]) -> list[ResolvedHost]:
    if stage.hosts == "head":
        return [h for h in hosts if h.is_head]
    if stage.hosts == "workers":
        return [h for h in hosts if not h.is_head]
    return list(hosts)


def _run_step(
    stage: Stage,
    inventory: Inventory,
    check: bool,
    results: Results,
    session: Session,
    shared: Shared,
) -> HostReport:
    info = STEPS[stage.step]
    # A read-only step verifies (probes, waits, reads): it passes ("ok") or fails, never "changes".
    report = HostReport(session.name, HostStatus.OK if info.read_only else HostStatus.UNCHANGED)
    attempt = 0
    while True:
        attempt += 1
        report.ops, report.data = [], {}
        ctx = StepContext(session, inventory, dict(stage.params), check, results=results, shared=shared)
        try:
            for op in info.fn(ctx):
                if check and not info.read_only:
                    report.ops.append(OpReport(op.command, op.description, ran=False))
                    session.emit(Event(EventKind.ACTION, session.name, stage.name, f"would {op.description}"))
                    continue
                session.emit(Event(EventKind.ACTION, session.name, stage.name, op.description))
                res = session.run(op.command, timeout=op.timeout or stage.timeout, stdin=op.stdin)
                report.ops.append(OpReport(op.command, op.description, True, res.exit_code, res.duration))
            break
        except NOT_RETRIED:
            raise
        except HostError:
            if attempt > stage.retries:
                raise
            session.emit(Event(EventKind.RETRY, session.name, stage.name, f"attempt {attempt + 1}/{stage.retries + 1}"))
            time.sleep(stage.delay)
    report.data = ctx.data
    report.attempts = attempt
    if report.ops and not info.read_only:
        report.status = HostStatus.WOULD_CHANGE if check else HostStatus.CHANGED
    return report


def check_tags(playbook: Playbook, tags: set[str] | None, skip_tags: set[str] | None) -> None:
    """Refuse a tag no stage has: a typo would silently run (or skip) nothing."""
    known = {t for stage in playbook.stages for t in stage.tags}
    for flag, given in (("--tags", tags), ("--skip-tags", skip_tags)):
        unknown = sorted(set(given or ()) - known)
        if unknown:
            close = did_you_mean(unknown[0], known)
            raise BadInput(
                f"{flag}: playbook {playbook.name!r} has no stage tagged {', '.join(map(repr, unknown))}"
                + (f" (did you mean {close!r}?)" if close else ""),
                hint=f"its tags: {', '.join(sorted(known)) or 'none'}",
            )


def run_playbook(
    playbook: Playbook,
    inventory: Inventory,
    executor: Executor,
    *,
    check: bool = False,
    tags: set[str] | None = None,
    skip_tags: set[str] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    shared: Shared | None = None,
    not_needed: dict[str, str] | None = None,
) -> RunReport:
    """Run stages in order with a barrier between them; stop after the first failed stage unless
    it says `on_failure: continue` (then later stages skip only the hosts that failed).

    Host failures never raise: they are in the report (`failed_stage`, per-host errors).
    `params` overrides the parameters of every stage that runs a step, by step name (e.g.
    check-net's --mode for `card_pings`): playbooks may name their stages as they like.
    `not_needed` (tag -> why) leaves out the stages the plan has no use for (no container to start):
    they are not in the report, as if the playbook did not name them."""
    check_tags(playbook, tags, skip_tags)
    unknown = sorted({s.step for s in playbook.stages} - set(STEPS))
    if unknown:
        raise BadInput(
            f"playbook {playbook.name!r} names steps that are not registered: {', '.join(unknown)}",
            hint="load it with toolkit.steps.load_playbook (which registers the built-in steps)",
        )
    started = time.monotonic()
    report = RunReport(playbook.name, check)
    hosts = list(executor.hosts)
    results: Results = {}
    failed_hosts: dict[str, str] = {}
    for stage in playbook.stages:
        if params and stage.step in params:
            stage = stage.model_copy(update={"params": {**stage.params, **params[stage.step]}})
        if any(tag in stage.tags for tag in not_needed or {}):
            continue  # no part of this plan (no container to start): not a stage of this run at all
        stage_report = StageReport(stage.name, stage.step)
        report.stages.append(stage_report)
        if tags and not tags & set(stage.tags):
            stage_report.skipped_reason = "not in --tags"
            continue
        if skip_tags and skip_tags & set(stage.tags):
            stage_report.skipped_reason = "in --skip-tags"
            continue
        targets = [h for h in select_hosts(stage, hosts) if h.name not in failed_hosts]
        for h in select_hosts(stage, hosts):
            if h.name in failed_hosts:
                stage_report.hosts[h.name] = HostReport(
                    h.name, HostStatus.SKIPPED, data={"reason": f"failed in stage '{failed_hosts[h.name]}'"}
                )
        if not targets:
            stage_report.skipped_reason = stage_report.skipped_reason or f"no {stage.hosts} hosts to run on"
            continue
        t0 = time.monotonic()
        group = executor.map(
            functools.partial(_run_step, stage, inventory, check, results, shared=shared or Shared()),
            targets,
            stage=stage.name,
            parallel=stage.mode == "parallel",
            timeout=stage.timeout,
        )
        stage_report.duration = time.monotonic() - t0
        for outcome in group:
            if outcome.ok and outcome.value is not None:
                outcome.value.duration = outcome.duration
                stage_report.hosts[outcome.host] = outcome.value
            else:
                stage_report.hosts[outcome.host] = HostReport(
                    outcome.host, HostStatus.FAILED, error=outcome.error, duration=outcome.duration
                )
                failed_hosts.setdefault(outcome.host, stage.name)
        ran = {
            name: h.data
            for name, h in stage_report.hosts.items()
            if h.status not in (HostStatus.FAILED, HostStatus.SKIPPED)
        }
        results.setdefault(stage.step, {}).update(ran)
        if not stage_report.ok:
            report.failed_stage = report.failed_stage or stage.name
            if stage.on_failure == "stop":
                break
    report.duration = time.monotonic() - started
    return report
