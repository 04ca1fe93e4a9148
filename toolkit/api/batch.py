"""`generate`: an offline batch with vLLM's `LLM` API on the cluster, with the plan's
parallelism; results stream back as they come."""

from __future__ import annotations

import time
from typing import Any, Callable

from toolkit.api.context import ConnectFn, Options, make_executor, plan_for, require_all_hosts
from toolkit.api.reports import GenerateReport
from toolkit.config.inventory import Inventory
from toolkit.config.secrets import read_api_key
from toolkit.engine.executor import EventSink, no_events
from toolkit.engine.registry import Shared
from toolkit.engine.runner import run_playbook
from toolkit.errors import BadInput
from toolkit.launch import launch_for
from toolkit.steps import load_playbook


def generate(
    inventory: Inventory,
    opts: Options,
    prompts: list[dict[str, Any]],
    sampling: Any,
    *,
    on_result: Callable[[dict[str, Any]], None],
    stop_server: bool = False,
    timeout: float = 3600.0,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> GenerateReport:
    """Offline batch on the cluster with the plan's parallelism; results go to `on_result` as they come."""
    require_all_hosts(opts, "generate")
    started = time.monotonic()
    key = read_api_key(inventory)
    count = 0

    def counted(record: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        on_result(record)

    skip = set()
    if not stop_server:
        skip.add("stop-server")
    else:
        skip.add("server-check")  # the server is stopped after the Ray stages, on purpose
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        plan = plan_for(inventory, executor)
        refusal = launch_for(plan).launcher.batch_unsupported
        if refusal:
            raise BadInput(f"generate on launcher {plan.launcher.value}: {refusal}", hint=refusal.rsplit(". ", 1)[-1])
        if plan.backend.value == "mp":
            skip.add("ray")
        run = run_playbook(
            load_playbook("generate"),
            inventory,
            executor,
            skip_tags=skip,
            shared=Shared(
                plan=plan, api_key=key, prompts=prompts, sampling=sampling, on_result=counted, timeout=timeout
            ),
        )
    stage = next((s for s in run.stages if s.step == "generate_run"), None)  # None: an earlier stage failed
    head = stage.hosts.get(plan.head.name) if stage else None
    summary = dict(head.data.get("summary", {})) if head else {}
    return GenerateReport(str(inventory.path), plan, run, count, summary, duration=time.monotonic() - started)
