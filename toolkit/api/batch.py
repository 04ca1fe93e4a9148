"""`generate`: an offline batch with vLLM's `LLM` API on the cluster, with the plan's
parallelism; results stream back as they come."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from toolkit.api.context import ConnectFn, Options, make_executor, plan_for, require_all_hosts
from toolkit.config.inventory import Inventory
from toolkit.config.secrets import read_api_key
from toolkit.engine.executor import EventSink, no_events
from toolkit.engine.registry import Shared
from toolkit.engine.runner import RunReport, run_playbook
from toolkit.errors import BadInput
from toolkit.planner.plan import Plan
from toolkit.steps import load_playbook


def read_prompts(path: Path) -> list[dict[str, Any]]:
    """Prompts from a text file (one per line) or JSONL ({"prompt": ..., "id": ...} per line)."""
    import json

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BadInput(f"--prompts {path}: {exc.strerror or exc}") from None
    items: list[dict[str, Any]] = []
    jsonl = path.suffix == ".jsonl"
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if jsonl:
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise BadInput(
                    f"{path}:{number}: not JSON ({exc})", hint='one object per line: {"prompt": "..."}'
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) or not record["prompt"]:
                raise BadInput(f"{path}:{number}: expected an object with a non-empty string 'prompt'")
            items.append({"id": record.get("id", number), "prompt": record["prompt"]})
        else:
            items.append({"id": number, "prompt": line})
    if not items:
        raise BadInput(f"--prompts {path} has no prompts", hint="one prompt per line, or JSONL with a 'prompt' field")
    return items


@dataclass
class GenerateReport:
    inventory: str
    plan: Plan
    run: RunReport
    results: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.run.ok

    def rates(self) -> dict[str, float]:
        seconds = self.summary.get("seconds") or 0.0
        if not seconds:
            return {}
        return {
            "prompts_per_s": round(self.summary.get("done", 0) / seconds, 3),
            "output_tokens_per_s": round(self.summary.get("output_tokens", 0) / seconds, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "inventory": self.inventory,
            "results": self.results,
            "out": self.out,
            "summary": self.summary,
            "rates": self.rates(),
            "duration": round(self.duration, 3),
            "failed_stage": self.run.failed_stage,
            "run": self.run.to_dict(),
        }


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
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        plan = plan_for(inventory, executor)
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
    stage = next(s for s in run.stages if s.step == "generate_run")
    head = stage.hosts.get(plan.head.name)
    summary = dict(head.data.get("summary", {})) if head else {}
    return GenerateReport(str(inventory.path), plan, run, count, summary, duration=time.monotonic() - started)
