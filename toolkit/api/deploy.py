"""`up`: plan (refused before any SSH when invalid), preflight, then the up playbook on one
executor; the report says what changed, what answered, and how a client connects."""

from __future__ import annotations

import shlex
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from toolkit.api.context import ConnectFn, Options, make_executor, plan_for, read_model_config, require_all_hosts
from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.config.secrets import read_api_key
from toolkit.engine.executor import EventSink, Executor, no_events
from toolkit.engine.lock import Held, cluster_lock
from toolkit.engine.registry import Shared
from toolkit.engine.runner import HostStatus, RunReport, check_tags, run_playbook
from toolkit.facts.deploy import Paths
from toolkit.planner.plan import Plan, plan_to_dict, ray_temp_dir
from toolkit.steps import load_playbook
from toolkit.transport.shell import q

if TYPE_CHECKING:
    from concurrent.futures import Future


@dataclass
class UpReport:
    inventory: str
    plan: Plan
    preflight: Any = None  # CheckNetReport, or None with --skip-preflight
    run: RunReport | None = None
    failed_stage: str | None = None
    duration: float = 0.0
    check: bool = False
    lock: Held | None = None

    @property
    def ok(self) -> bool:
        return self.failed_stage is None

    @property
    def changed(self) -> bool:
        return self.run is not None and any(
            h.status in (HostStatus.CHANGED, HostStatus.WOULD_CHANGE) for s in self.run.stages for h in s.hosts.values()
        )

    @property
    def serving(self) -> bool:
        """vLLM was verified ready in this run (False when --tags/--skip-tags left it out)."""
        ready = next((st for st in self.run.stages if st.step == "vllm_ready"), None) if self.run else None
        return self.ok and ready is not None and not ready.skipped_reason and bool(ready.hosts)

    def stage_times(self) -> list[tuple[str, float, str]]:
        out = []
        if self.preflight is not None:
            out.append(("preflight", self.preflight.duration, "ok" if self.preflight.ok else "failed"))
        for s in self.run.stages if self.run else []:
            statuses = {h.status for h in s.hosts.values()}
            status = (
                "failed"
                if HostStatus.FAILED in statuses
                else "changed"
                if statuses & {HostStatus.CHANGED, HostStatus.WOULD_CHANGE}
                else "skipped"
                if s.skipped_reason or statuses == {HostStatus.SKIPPED}
                else "ok"
                if statuses == {HostStatus.OK}
                else "unchanged"
            )
            out.append((s.name, s.duration, status))
        return out

    def answers(self) -> dict[str, Any]:
        if not self.run:
            return {}
        ready = next((s for s in self.run.stages if s.step == "vllm_ready"), None)
        head = ready.hosts.get(self.plan.head.name) if ready else None
        return dict(head.data.get("answers", {})) if head else {}

    def examples(self) -> dict[str, str]:
        return usage_examples(self.plan)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "inventory": self.inventory,
            "check": self.check,
            "changed": self.changed,
            "failed_stage": self.failed_stage,
            "duration": round(self.duration, 3),
            "endpoint": self.plan.endpoint,
            "served_model": self.plan.served_name.value,
            "stages": [{"name": n, "seconds": round(d, 3), "status": st} for n, d, st in self.stage_times()],
            "answers": self.answers(),
            "serving": self.serving,
            "notes": self.lock.notes if self.lock else [],
            "examples": self.examples() if self.serving else {},
            "preflight": self.preflight.to_dict() if self.preflight is not None else None,
            "run": self.run.to_dict() if self.run else None,
            "plan": plan_to_dict(self.plan),
        }


def usage_examples(plan: Plan) -> dict[str, str]:
    """A ready-to-paste curl and OpenAI client example for the endpoint, reading the API key from
    where the inventory says it is (never the key itself)."""
    name = plan.served_name.value
    imports, key, auth = "", '"EMPTY"', ""  # the OpenAI client needs some key; vLLM without one ignores it
    if plan.api_key_env:
        imports, key = "import os\n", f"os.environ[{plan.api_key_env!r}]"
        auth = f' -H "Authorization: Bearer ${plan.api_key_env}"'
    elif plan.api_key_file:
        imports, key = "from pathlib import Path\n", f"Path({plan.api_key_file!r}).read_text().strip()"
        auth = f' -H "Authorization: Bearer $(cat {shlex.quote(plan.api_key_file)})"'
    curl = (
        f"curl {plan.endpoint}/chat/completions -H 'Content-Type: application/json'{auth} "
        f'-d \'{{"model": "{name}", "messages": [{{"role": "user", "content": "Hello!"}}], "max_tokens": 64}}\''
    )
    python = (
        f"{imports}from openai import OpenAI\n"
        f'client = OpenAI(base_url="{plan.endpoint}", api_key={key})\n'
        f'reply = client.chat.completions.create(model="{name}", messages=[{{"role": "user", "content": "Hello!"}}], '
        "max_tokens=64)\n"
        "print(reply.choices[0].message.content)"
    )
    return {"curl": curl, "python": python}


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
    from toolkit.checks.report import build
    from toolkit.checks.rules import runtime_problems

    require_all_hosts(opts, "up")
    check_tags(load_playbook("up"), getattr(opts, "tags", None), getattr(opts, "skip_tags", None))
    started = time.monotonic()
    local = read_model_config(inventory)
    plan = plan_for(inventory, local=local) if local[0] is not None else None  # fail fast, before any SSH
    key = read_api_key(inventory)
    if record is not None:
        record(inventory.path)
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor, ExitStack() as held:
        report = UpReport(str(inventory.path), plan or plan_for(inventory, executor, local), check=opts.check)
        if not opts.check:  # --check changes nothing: no lock
            report.lock = held.enter_context(cluster_lock(executor, inventory.head, inventory.name, "up"))
        shared = Shared(plan=report.plan, api_key=key)
        if not opts.check:
            shared.ray_snapshot = ray_snapshot(executor, inventory.head, report.plan)
        if not skip_preflight:
            run = run_playbook(
                load_playbook("check-net"), inventory, executor, params={"card_pings": {"mode": "rail", "packets": 3}}
            )
            pre = build(inventory, run, "rail")
            pre.problems.extend(runtime_problems(report.plan.runtime, [v for v in pre.views if v.data is not None]))
            report.preflight = pre
            if pre.problems:
                report.failed_stage = "preflight"
                report.duration = time.monotonic() - started
                return report
        skip = set(getattr(opts, "skip_tags", set())) | ({"verify"} if opts.check else set())
        run = run_playbook(
            load_playbook("up"),
            inventory,
            executor,
            check=opts.check,
            tags=getattr(opts, "tags", None) or None,
            skip_tags=skip or None,
            shared=shared,
        )
        report.run = run
        report.failed_stage = run.failed_stage
        if any(s.name == run.failed_stage and s.step == "ray_ready" for s in run.stages):
            attach_ray_logs(inventory, executor, run)
    report.duration = time.monotonic() - started
    return report


def ray_snapshot(executor: Executor, head: ResolvedHost, plan: Plan) -> "Future[Any]":
    """Ask Ray for its nodes on the head in the background while the other stages run (see
    `RayLauncher.snapshot_command`); the thread ends with its command, or when the executor closes."""
    import threading
    from concurrent.futures import Future

    from toolkit.launch import launch_for

    future: Future[Any] = Future()

    def query() -> None:
        try:
            session = executor.session(
                head
            )  # no stage: a failure to connect is reported by the stage that needs the head
            future.set_result(
                session.run(launch_for(plan).launcher.snapshot_command(), timeout=60, check=False, setup=True)
            )
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
