"""`up`, `down`, `status` and `logs` as library calls: they plan, run playbooks on one executor
(one connection per host for the whole command), and return reports. They never print."""

from __future__ import annotations

import io
import shlex
import os
import tarfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from toolkit.transport.connection import Connection
from toolkit.errors import BadInput, HostError
from toolkit.engine.executor import EventSink, _no_events
from toolkit.facts.deploy import Paths
from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.engine.lock import ClusterLocked, Held, cluster_lock
from toolkit.planner.plan import Plan, plan_to_dict, ray_temp_dir
from toolkit.config.playbook import load_playbook
from toolkit.transport.shell import q
from toolkit.engine.runner import RunReport, check_tags, run_playbook

if TYPE_CHECKING:
    from concurrent.futures import Future


def read_api_key(inventory: Inventory) -> str | None:
    """The API key from the local variable or file the inventory names (never from the inventory)."""
    serve = inventory.spec.serve
    if serve.api_key_env:
        value = os.environ.get(serve.api_key_env, "")
        if not value.strip():
            raise BadInput(f"serve.api_key_env names ${serve.api_key_env}, which is not set (or empty) here",
                           hint=f"export {serve.api_key_env}=... before running, or remove serve.api_key_env")
        return value.strip()
    if serve.api_key_file:
        path = inventory.resolve_path(serve.api_key_file)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BadInput(f"serve.api_key_file {path}: {exc.strerror or exc}") from None
        if not value:
            raise BadInput(f"serve.api_key_file {path} is empty")
        return value
    return None


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
        return bool(self.run) and any(h.status in ("changed", "would-change") for s in self.run.stages for h in s.hosts.values())

    @property
    def serving(self) -> bool:
        """vLLM was verified ready in this run (False when --tags/--skip-tags left it out)."""
        ready = next((st for st in self.run.stages if st.name == "ready"), None) if self.run else None
        return self.ok and ready is not None and not ready.skipped_reason and bool(ready.hosts)

    def stage_times(self) -> list[tuple[str, float, str]]:
        out = []
        if self.preflight is not None:
            out.append(("preflight", self.preflight.duration, "ok" if self.preflight.ok else "failed"))
        for s in (self.run.stages if self.run else []):
            statuses = {h.status for h in s.hosts.values()}
            status = "failed" if "failed" in statuses else "changed" if statuses & {"changed", "would-change"} else "skipped" if s.skipped_reason or statuses == {"skipped"} else "ok" if statuses == {"ok"} else "unchanged"
            out.append((s.name, s.duration, status))
        return out

    def answers(self) -> dict[str, Any]:
        if not self.run:
            return {}
        ready = next((s for s in self.run.stages if s.name == "ready"), None)
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
    curl = (f"curl {plan.endpoint}/chat/completions -H 'Content-Type: application/json'{auth} "
            f"-d '{{\"model\": \"{name}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}], \"max_tokens\": 64}}'")
    python = (
        f"{imports}from openai import OpenAI\n"
        f"client = OpenAI(base_url=\"{plan.endpoint}\", api_key={key})\n"
        f"reply = client.chat.completions.create(model=\"{name}\", messages=[{{\"role\": \"user\", \"content\": \"Hello!\"}}], max_tokens=64)\n"
        "print(reply.choices[0].message.content)"
    )
    return {"curl": curl, "python": python}


def _plan_for(inventory: Inventory, executor: Any | None = None, local: tuple[dict | None, str | None] | None = None) -> Plan:
    """Plan with the local config.json (`local` when already read), else the head's (read over SSH once)."""
    import json

    from toolkit import api
    from toolkit.planner.plan import make_plan

    config, source = local if local is not None else api.read_model_config(inventory)
    if config is None and executor is not None and inventory.spec.model is not None:
        head = inventory.head
        path = inventory.spec.model.path.rstrip("/") + "/config.json"
        res = executor.map(lambda s: s.run(f"cat {q(path)}", timeout=30, check=False, setup=False), [head], stage="model-config")
        outcome = res.outcomes.get(head.name)
        text = outcome.value.stdout if outcome and outcome.ok and outcome.value and outcome.value.ok else ""
        try:
            config, source = (json.loads(text), f"{head.name}:{path}") if text.strip() else (None, None)
        except ValueError:
            config, source = None, None
    return make_plan(inventory, api.plugins_for(inventory), config, source)


def _require_all_hosts(opts: Any, command: str) -> None:
    if opts.limit:
        raise BadInput(f"`{command}` acts on the whole cluster; --limit is not accepted",
                       hint="edit the inventory to change which hosts take part")


def up(
    inventory: Inventory,
    opts: Any,
    *,
    skip_preflight: bool = False,
    emit: EventSink = _no_events,
    connect: Callable[[ResolvedHost], Connection] | None = None,
    record: Callable[[Path], None] | None = None,
) -> UpReport:
    """Preflight, env, Ray head + workers, wait for Ray, vLLM, readiness. Stops at the first failed stage."""
    from toolkit import api
    from toolkit.checks.report import build
    from toolkit.checks.rules import runtime_problems

    _require_all_hosts(opts, "up")
    check_tags(load_playbook("up"), getattr(opts, "tags", None), getattr(opts, "skip_tags", None))
    started = time.monotonic()
    local = api.read_model_config(inventory)
    plan = _plan_for(inventory, local=local) if local[0] is not None else None  # fail fast, before any SSH
    key = read_api_key(inventory)
    if record is not None:
        record(inventory.path)
    with api.make_executor(inventory, opts, emit=emit, connect=connect) as executor, ExitStack() as held:
        report = UpReport(str(inventory.path), plan or _plan_for(inventory, executor, local), check=opts.check)
        if not opts.check:  # --check changes nothing: no lock
            report.lock = held.enter_context(cluster_lock(executor, inventory.head, inventory.name, "up"))
        shared: dict[str, Any] = {"plan": report.plan, "api_key": key}
        if not opts.check:
            shared["ray_snapshot"] = _ray_snapshot(executor, inventory.head, report.plan)
        if not skip_preflight:
            run = run_playbook(load_playbook("check-net"), inventory, executor, params={"pings": {"mode": "rail", "packets": 3}})
            pre = build(inventory, run, "rail")
            pre.problems.extend(runtime_problems(report.plan.runtime, [v for v in pre.views if v.data is not None]))
            report.preflight = pre
            if pre.problems:
                report.failed_stage = "preflight"
                report.duration = time.monotonic() - started
                return report
        skip = set(getattr(opts, "skip_tags", set())) | ({"verify"} if opts.check else set())
        run = run_playbook(load_playbook("up"), inventory, executor, check=opts.check, tags=getattr(opts, "tags", None) or None,
                           skip_tags=skip or None, shared=shared)
        report.run = run
        report.failed_stage = run.failed_stage
        if run.failed_stage == "ray-ready":
            _attach_ray_logs(inventory, executor, run)
    report.duration = time.monotonic() - started
    return report


def _ray_snapshot(executor: Any, head: ResolvedHost, plan: Plan) -> "Future[Any]":
    """Ask Ray for its nodes on the head in the background while the other stages run (see
    `ray_snapshot_command`); the thread ends with its command, or when the executor closes."""
    from concurrent.futures import Future
    import threading

    from toolkit.steps.deploy import ray_snapshot_command

    future: Future[Any] = Future()

    def query() -> None:
        try:
            session = executor.session(head)  # no stage: a failure to connect is reported by the stage that needs the head
            future.set_result(session.run(ray_snapshot_command(plan, Paths.of(plan.cluster)), timeout=60, check=False, setup=True))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=query, name="ray-snapshot", daemon=True).start()
    return future


def _attach_ray_logs(inventory: Inventory, executor: Any, run: RunReport) -> None:
    """A host that never joined Ray: put the tail of its own Ray logs under the error."""
    from toolkit.steps.deploy import NodesMissing

    stage = next(s for s in run.stages if s.name == "ray-ready")
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
                lines = outcome.value.stdout.strip().splitlines() or ["(no Ray log on this host: `ray start` never ran there)"]
                err.details.extend([f"{name}: Ray log tail"] + [f"  {ln}" for ln in lines[-20:]])
            elif outcome.error is not None:
                err.details.append(f"{name}: unreachable for its log: {outcome.error.message}")


# ---------------------------------------------------------------------------- down


@dataclass
class DownReport:
    inventory: str
    run: RunReport
    duration: float = 0.0
    lock: Held | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.run.ok

    def hosts(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for stage in self.run.stages:
            for name, h in stage.hosts.items():
                row = out.setdefault(name, {"stopped": [], "clean": None, "error": None})
                if h.status == "changed":
                    row["stopped"].append(stage.name)
                if stage.name == "clean" and h.status != "failed" and h.status != "skipped":
                    row["clean"] = h.data.get("clean")
                if h.error is not None and row["error"] is None:
                    row["error"] = f"[{stage.name}] {h.error.message}"
        return out

    def to_dict(self) -> dict[str, Any]:
        notes = self.notes + (self.lock.notes if self.lock else [])
        return {"ok": self.ok, "inventory": self.inventory, "duration": round(self.duration, 3), "hosts": self.hosts(), "notes": notes,
                "run": self.run.to_dict()}


def down(inventory: Inventory, opts: Any, *, emit: EventSink = _no_events, connect: Callable[[ResolvedHost], Connection] | None = None) -> DownReport:
    """Stop vLLM and Ray everywhere, remove the cluster's files, verify nothing is left."""
    from toolkit import api

    _require_all_hosts(opts, "down")
    started = time.monotonic()
    lock: Held | None = None
    notes: list[str] = []
    with api.make_executor(inventory, opts, emit=emit, connect=connect) as executor, ExitStack() as held:
        if not opts.check:
            try:
                lock = held.enter_context(cluster_lock(executor, inventory.head, inventory.name, "down"))
            except ClusterLocked:
                raise
            except HostError as exc:  # an unreachable head must not stop the others from being cleaned
                notes.append(f"no cluster lock: the head is unreachable ({exc.message})")
        run = run_playbook(load_playbook("down"), inventory, executor, check=opts.check)
    report = DownReport(str(inventory.path), run, time.monotonic() - started, lock)
    report.notes.extend(notes)
    return report


# ---------------------------------------------------------------------------- status


@dataclass
class StatusReport:
    inventory: str
    plan: Plan
    hosts: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every host reachable with its Ray node alive, and the server healthy."""
        return bool(self.hosts) and all(h["reachable"] and h["ray_node"] for h in self.hosts) and any(h.get("health") == 200 for h in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "inventory": self.inventory, "endpoint": self.plan.endpoint, "served_model": self.plan.served_name.value,
                "duration": round(self.duration, 3), "hosts": self.hosts, "notes": self.notes}


def status(inventory: Inventory, opts: Any, *, emit: EventSink = _no_events, connect: Callable[[ResolvedHost], Connection] | None = None) -> StatusReport:
    from toolkit import api

    started = time.monotonic()
    plan, notes = _plan_or_observation(inventory)
    with api.make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        run = run_playbook(load_playbook("status"), inventory, executor, shared={"plan": plan})
    stage = run.stages[0]
    head = stage.hosts.get(plan.head.name)
    nodes = (head.data.get("ray_nodes") if head and head.status != "failed" else None) or {}
    rows = []
    for hp in plan.hosts:
        h = stage.hosts.get(hp.name)
        if h is None:
            continue
        reachable = h.status != "failed"
        d = h.data if reachable else {}
        row: dict[str, Any] = {
            "host": hp.name,
            "role": hp.role,
            "address": hp.address,
            "reachable": reachable,
            "error": h.error.message if h.error else None,
            "ray_running": d.get("ray_running"),
            "ray_node": hp.address in nodes,
            "npu": int(nodes[hp.address]) if hp.address in nodes else None,
            "npu_planned": len(hp.devices),
        }
        if hp.role == "head":
            row.update(vllm_pid=d.get("vllm_pid"), uptime_s=d.get("vllm_uptime_s"), health=d.get("health"), models=d.get("models"),
                       endpoint=plan.endpoint, last_log_line=d.get("last_log_line"), ray_nodes=len(nodes))
        rows.append(row)
    return StatusReport(str(inventory.path), plan, rows, time.monotonic() - started, notes)


def _plan_or_observation(inventory: Inventory) -> tuple[Plan, list[str]]:
    """The plan; or, when it does not validate (or a plugin fails to load), what `status` needs
    from the inventory alone, with the problem as notes: what runs is answerable whatever the
    inventory now says (an edit after `up`, a plugin folder gone)."""
    try:
        return _plan_for(inventory), []
    except BadInput as exc:
        from toolkit.planner.plan import observation_plan
        from toolkit.planner.plugins import load_plugins

        plugins = load_plugins([])
        try:
            runtime = plugins.runtime(inventory.spec.runtime)
        except BadInput:
            runtime = plugins.runtime(None)
        lines = exc.lines()
        first = f"{lines[0]}: hosts, Ray and vLLM are shown as found, not compared with a plan (`ascend-deploy plan` explains)"
        return observation_plan(inventory, runtime), [first, *(line.strip() for line in lines[1:])]


# ---------------------------------------------------------------------------- logs


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

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "inventory": self.inventory, "archive": self.archive, "hosts": self.hosts, "tails": self.tails, "duration": round(self.duration, 3)}


def logs(inventory: Inventory, opts: Any, *, tail: int | None = None, out_dir: Path = Path("."), emit: EventSink = _no_events,
         connect: Callable[[ResolvedHost], Connection] | None = None) -> LogsReport:
    """Collect every host's logs into one local tar.gz, or (`tail`) the last lines of each."""
    from toolkit import api

    started = time.monotonic()
    if not tail:  # before collecting anything: a bad --out fails in a second, not after the download
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"--out {out_dir}: cannot create the folder ({exc.strerror})", hint="pick a writable folder") from None
        if not out_dir.is_dir() or not os.access(out_dir, os.W_OK):
            raise BadInput(f"--out {out_dir}: not a writable folder", hint="pick a writable folder")
    name = "logs-tail" if tail else "logs"
    params = {"tail": {"lines": tail}} if tail else None
    with api.make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        run = run_playbook(load_playbook(name), inventory, executor, params=params)
    stage = run.stages[0]
    hosts: dict[str, Any] = {}
    tails: dict[str, dict[str, list[str]]] = {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as bundle:
        for host, h in stage.hosts.items():
            if h.status == "failed":
                hosts[host] = {"error": h.error.message if h.error else "failed"}
                continue
            if tail:
                tails[host] = h.data.get("tails", {})
                hosts[host] = {"error": None, "files": len(tails[host]),
                               "missing": [f for f in h.data.get("looked_for", []) if f not in tails[host]]}
                continue
            count = 0
            with tarfile.open(fileobj=io.BytesIO(h.data.get("archive", b"")), mode="r:gz") as part:
                for member in part.getmembers():
                    if not member.isfile():
                        continue
                    data = part.extractfile(member)
                    member.name = f"{host}/{member.name.lstrip('./')}"
                    bundle.addfile(member, data)
                    count += 1
            hosts[host] = {"error": None, "files": count}
    archive = None
    if not tail:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = out_dir / f"ascend-deploy-logs-{inventory.name}-{stamp}.tar.gz"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getvalue())
        archive = str(path)
    return LogsReport(str(inventory.path), archive, hosts, tails, time.monotonic() - started)


# ---------------------------------------------------------------------------- generate


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
                raise BadInput(f"{path}:{number}: not JSON ({exc})", hint='one object per line: {"prompt": "..."}') from None
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
        return {"prompts_per_s": round(self.summary.get("done", 0) / seconds, 3), "output_tokens_per_s": round(self.summary.get("output_tokens", 0) / seconds, 1)}

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "inventory": self.inventory, "results": self.results, "out": self.out, "summary": self.summary,
                "rates": self.rates(), "duration": round(self.duration, 3), "failed_stage": self.run.failed_stage, "run": self.run.to_dict()}


def generate(
    inventory: Inventory,
    opts: Any,
    prompts: list[dict[str, Any]],
    sampling: Any,
    *,
    on_result: Callable[[dict[str, Any]], None],
    stop_server: bool = False,
    timeout: float = 3600.0,
    emit: EventSink = _no_events,
    connect: Callable[[ResolvedHost], Connection] | None = None,
) -> GenerateReport:
    """Offline batch on the cluster with the plan's parallelism; results go to `on_result` as they come."""
    from toolkit import api

    _require_all_hosts(opts, "generate")
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
    with api.make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        plan = _plan_for(inventory, executor)
        if plan.backend.value == "mp":
            skip.add("ray")
        run = run_playbook(load_playbook("generate"), inventory, executor, skip_tags=skip,
                           shared={"plan": plan, "api_key": key, "prompts": prompts, "sampling": sampling, "on_result": counted, "timeout": timeout})
    stage = next(s for s in run.stages if s.name == "generate")
    head = stage.hosts.get(plan.head.name)
    summary = dict(head.data.get("summary", {})) if head else {}
    return GenerateReport(str(inventory.path), plan, run, count, summary, duration=time.monotonic() - started)
