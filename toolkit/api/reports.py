"""What the entry points return: one report per command, each with `ok` (the exit code) and
`to_dict()` (the `--json` document, made by `serial.plain` from the fields and the computed
properties each report names). Reports keep every host's outcome, never only the first error."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from toolkit.api.deployed import Deployed
from toolkit.client.benchmark import Point, Search, Verdict
from toolkit.engine.lock import Held
from toolkit.engine.runner import HostStatus, RunReport
from toolkit.planner.plan import Plan, plan_to_dict
from toolkit.serial import plain


class PlanFacing:
    """The endpoint and served name a report shows, from its plan."""

    plan: Plan

    @property
    def endpoint(self) -> str:
        return self.plan.endpoint

    @property
    def served_model(self) -> str:
        return str(self.plan.served_name.value)


#: the steps that verify the server answers (one per launcher family's playbook)
READY_STEPS = ("vllm_ready", "proc_ready")


@dataclass
class UpReport(PlanFacing):
    inventory: str
    plan: Plan
    preflight: Any = None  # CheckNetReport, or None with --skip-preflight
    run: RunReport | None = None
    failed_stage: str | None = None
    duration: float = 0.0
    check: bool = False
    lock: Held | None = None
    messages: list[str] = field(default_factory=list)  # what this run itself has to say (after the lock's)

    __json_extra__ = (
        *("ok", "inventory", "check", "changed", "failed_stage", "duration", "endpoint", "served_model"),
        *("stages", "answers", "phases", "serving", "notes", "examples", "preflight", "run", "plan"),
    )
    __json_skip__ = ("inventory", "plan", "preflight", "run", "failed_stage", "duration", "check", "lock", "messages")
    __json_as__ = {"plan": "plan_document", "examples": "examples_when_serving"}
    __json_round__ = {"duration": 3}

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
        ready = next((st for st in self.run.stages if st.step in READY_STEPS), None) if self.run else None
        return self.ok and ready is not None and not ready.skipped_reason and bool(ready.hosts)

    @property
    def notes(self) -> list[str]:
        return (self.lock.notes if self.lock else []) + self.messages

    @property
    def stages(self) -> list[StageTime]:
        return [StageTime(*row) for row in self.stage_times()]

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

    @property
    def answers(self) -> dict[str, Any]:
        """What the server answered to the readiness requests (models, completion, chat)."""
        if not self.run:
            return {}
        ready = next((s for s in self.run.stages if s.step in READY_STEPS), None)
        head = ready.hosts.get(self.plan.head.name) if ready else None
        return dict(head.data.get("answers", {})) if head else {}

    @property
    def phases(self) -> dict[str, Any]:
        """This start's phases as the engines logged them (weights, compile, graph capture, engine init;
        `facts.phases`): the slowest host's for each, every host's under `hosts` when several ranks' hosts
        logged their own (dp), and the wait until /health answered, in seconds; empty without a (re)start."""
        if not self.run:
            return {}
        ready = next((s for s in self.run.stages if s.step in READY_STEPS), None)
        head = ready.hosts.get(self.plan.head.name) if ready else None
        if ready is None or head is None or not head.data.get("phases"):
            return {}
        logged = {name: h.data["phases"] for name, h in ready.hosts.items() if h.data.get("phases")}
        slowest: dict[str, Any] = {}
        for phases in logged.values():
            for key, value in phases.items():
                slowest[key] = max(slowest.get(key, value), value)
        out = {**slowest, "ready_s": head.data.get("waited_s")}
        if len(logged) > 1:
            out["hosts"] = logged
        return out

    @property
    def examples(self) -> dict[str, str]:
        return usage_examples(self.plan)

    @property
    def examples_when_serving(self) -> dict[str, str]:
        return self.examples if self.serving else {}

    @property
    def plan_document(self) -> dict[str, Any]:
        return plan_to_dict(self.plan)

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass
class StageTime:
    """One row of `up`'s stage table."""

    name: str
    seconds: float
    status: str

    __json_round__ = {"seconds": 3}


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


@dataclass
class DownReport:
    inventory: str
    run: RunReport
    duration: float = 0.0
    lock: Held | None = None
    notes: list[str] = field(default_factory=list)

    __json_extra__ = ("ok", "inventory", "duration", "hosts", "notes", "run")
    __json_skip__ = ("inventory", "run", "duration", "lock", "notes")
    __json_as__ = {"notes": "all_notes"}
    __json_round__ = {"duration": 3}

    @property
    def ok(self) -> bool:
        return self.run.ok

    @property
    def all_notes(self) -> list[str]:
        return self.notes + (self.lock.notes if self.lock else [])

    @property
    def hosts(self) -> dict[str, dict[str, Any]]:
        """Per host: the stages that stopped something, whether it is clean, its first error."""
        out: dict[str, dict[str, Any]] = {}
        for stage in self.run.stages:
            for name, h in stage.hosts.items():
                row = out.setdefault(name, {"stopped": [], "clean": None, "error": None})
                if h.status == HostStatus.CHANGED:
                    row["stopped"].append(stage.name)
                if stage.step == "deploy_clean" and h.status != HostStatus.FAILED and h.status != HostStatus.SKIPPED:
                    row["clean"] = h.data.get("clean")
                if h.error is not None and row["error"] is None:
                    row["error"] = f"[{stage.name}] {h.error.message}"
        return out

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass
class StatusReport(PlanFacing):
    inventory: str
    plan: Plan
    hosts: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] | None = None  # `status --metrics`: per served model
    #: the head's deployment record compared with the inventory (None: nothing recorded runs)
    deployed: Deployed | None = None
    #: what is wrong beyond each host's own state (orphaned ranks, missing engines): `api.supervise`
    findings: list[dict[str, Any]] = field(default_factory=list)

    __json_extra__ = (
        "ok",
        "inventory",
        "endpoint",
        "served_model",
        "duration",
        "deployed",
        "findings",
        "hosts",
        "notes",
        "metrics",
    )
    __json_skip__ = ("inventory", "plan", "hosts", "duration", "notes", "metrics", "deployed", "findings")
    __json_round__ = {"duration": 3}

    @property
    def ok(self) -> bool:
        """Every host reachable with what must run there (its Ray node, or its own vLLM rank), the
        server healthy, and nothing found wrong across hosts (`findings`)."""
        return (
            not self.findings
            and bool(self.hosts)
            and all(
                h["reachable"] and (h["ray_node"] if h.get("runs", "ray") == "ray" else h.get("vllm_pid") is not None)
                for h in self.hosts
            )
            and any(h.get("health") == 200 for h in self.hosts)
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass
class LogsReport:
    inventory: str
    archive: str | None
    hosts: dict[str, Any]
    tails: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return all(v.get("error") is None for v in self.hosts.values())

    __json_extra__ = ("ok",)
    __json_round__ = {"duration": 3}

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass
class GenerateReport:
    inventory: str
    plan: Plan
    run: RunReport
    results: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    duration: float = 0.0

    __json_extra__ = ("ok", "inventory", "results", "out", "summary", "rates", "duration", "failed_stage", "run")
    __json_skip__ = ("inventory", "plan", "run", "results", "summary", "out", "duration")
    __json_round__ = {"duration": 3}

    @property
    def ok(self) -> bool:
        return self.run.ok

    @property
    def failed_stage(self) -> str | None:
        return self.run.failed_stage

    @property
    def rates(self) -> dict[str, float]:
        """Prompts and output tokens per second over the batch's own time."""
        seconds = self.summary.get("seconds") or 0.0
        if not seconds:
            return {}
        return {
            "prompts_per_s": round(self.summary.get("done", 0) / seconds, 3),
            "output_tokens_per_s": round(self.summary.get("output_tokens", 0) / seconds, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass
class BenchReport:
    inventory: str
    identity: dict[str, Any]
    settings: dict[str, Any]
    points: list[Point] = field(default_factory=list)
    search: Search | None = None
    slo: dict[str, float] | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    baseline: str | None = None
    failure: str | None = None  # what stopped the run (the points before it are kept)
    saved: str | None = None  # the results folder
    notes: list[str] = field(default_factory=list)
    duration: float = 0.0

    __json_extra__ = ("ok", "regressions")
    __json_round__ = {"duration": 3}

    @property
    def regressions(self) -> list[str]:
        return [
            f"{v.label}: {v.what} {v.measured:.1f} vs baseline {v.baseline:.1f} ({v.ratio:.2f}x)"
            for v in self.verdicts
            if not v.passed
        ]

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.regressions and bool(self.points)

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))
