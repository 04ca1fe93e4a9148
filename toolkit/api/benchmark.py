"""`bench`: vLLM's own serving benchmark against the deployed endpoint, point by point (a sweep
of rates or concurrencies, or a search for the highest rate that meets an SLO), each point's
result kept even when a later one fails; a regression gate against a stored result of the same
plan identity; results saved with that identity (JSON, markdown, and a plot with matplotlib)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.api.context import ConnectFn, Options, make_executor, plan_for, require_all_hosts
from toolkit.api.reports import BenchReport
from toolkit.client.benchmark import Load, Point, compare, parse_result, search_rate
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import EventSink, Executor, no_events
from toolkit.engine.registry import Shared
from toolkit.engine.runner import run_playbook
from toolkit.errors import BadInput, HostError
from toolkit.facts.deploy import Paths
from toolkit.launch.server import curl_command, parse_answer
from toolkit.planner.plan import Plan
from toolkit.steps import load_playbook
from toolkit.transport.shell import q


@dataclass
class BenchSettings:
    """What to send: the dataset, how many prompts, the loads (or an SLO search) and the gate."""

    loads: list[Load] = field(default_factory=lambda: [Load(rate=1.0), Load(rate=float("inf"))])
    input_len: int = 128
    output_len: int = 32
    num_prompts: int = 100
    seed: int = 0
    prompts: list[dict[str, Any]] | None = None  # a prompts file's records instead of random data
    slo: dict[str, float] | None = None  # ms per key; search the rate instead of sweeping `loads`
    max_points: int = 6
    start_rate: float = 1.0
    baseline: Path | None = None
    min_ratio: float = 0.97
    latency: bool = False
    compare_anyway: bool = False
    point_timeout: float = 1800.0


def identity(plan: Plan) -> dict[str, Any]:
    """What a result is comparable on: the model, the hardware, the layout and the software."""
    from toolkit import __version__

    rt = plan.runtime
    return {
        "cluster": plan.cluster,
        "model": plan.model_path,
        "served_name": plan.served_name.value,
        "hardware": plan.hardware.value,
        "launcher": plan.launcher.value,
        "placement": plan.placement.value,
        "tp": plan.tp.value,
        "pp": plan.pp.value,
        "dp": plan.dp.value,
        "hosts": len(plan.hosts),
        "runtime": {"name": rt.name, "vllm": rt.vllm, "vllm_ascend": rt.vllm_ascend, "cann": rt.cann},
        "tool": f"ascend-deploy {__version__}",
    }


#: identity keys that may differ between comparable runs
VOLATILE = ("cluster", "tool")


def identity_differences(
    baseline: dict[str, Any], ident: dict[str, Any], ignored: tuple[str, ...]
) -> dict[str, tuple[Any, Any]]:
    """Key -> (the baseline's value, this plan's) where they differ, but for `ignored` keys."""
    return {k: (baseline.get(k), v) for k, v in ident.items() if k not in ignored and baseline.get(k) != v}


def read_baseline(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[Point]]:
    """(identity, settings, points) of a result saved by `bench`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(
            f"--baseline {path}: {exc.strerror or exc}", hint="give a result.json that `bench` saved"
        ) from None
    except ValueError as exc:
        raise BadInput(f"--baseline {path}: not JSON ({exc})", hint="give a result.json that `bench` saved") from None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list) or "identity" not in data:
        raise BadInput(f"--baseline {path}: not a result of `ascend-deploy bench`", hint="its result.json has points")
    try:
        points = [_baseline_point(row) for row in data["points"]]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BadInput(
            f"--baseline {path}: a point is not readable ({type(exc).__name__}: {exc})",
            hint="give a result.json that `bench` saved, unedited",
        ) from None
    return data["identity"], dict(data.get("settings") or {}), points


def _baseline_point(row: dict[str, Any]) -> Point:
    load = Load(rate=row["load"].get("rate"), concurrency=row["load"].get("concurrency"))
    if load.rate is None and load.concurrency is None:
        load = Load(rate=float("inf"))
    point = Point(load, **{k: row[k] for k in ("completed", "failed", "duration_s") if k in row})
    point.request_throughput = float(row.get("request_throughput") or 0.0)
    point.output_throughput = float(row.get("output_throughput") or 0.0)
    point.total_token_throughput = float(row.get("total_token_throughput") or 0.0)
    point.latency_ms = dict(row.get("latency_ms") or {})
    return point


def check_serving(executor: Executor, plan: Plan) -> None:
    """The endpoint must answer /v1/models with the plan's served name, before any point runs."""
    p = Paths.of(plan.cluster)
    head = next(h for h in executor.hosts if h.name == plan.head.name)
    res = executor.map(
        lambda s: s.run(curl_command(plan, p, "/v1/models", None), timeout=30, check=False, setup=False),
        [head],
        stage="bench-check",
    )
    outcome = res.outcomes[head.name]
    if not outcome.ok or outcome.value is None:
        raise outcome.error or BadInput(f"cannot reach the head {head.name}")
    code, models = parse_answer("models", outcome.value.stdout)
    if code != 200:
        raise BadInput(
            f"the cluster is not serving: {plan.probe_url}/v1/models on {head.name} answered "
            + (f"HTTP {code}" if code else "nothing"),
            hint="deploy first: `ascend-deploy up` (`ascend-deploy status` shows what runs)",
        )
    if plan.served_name.value not in (models or []):
        raise BadInput(
            f"the server on {head.name} serves {', '.join(models or []) or 'no model'}, not '{plan.served_name.value}'",
            hint="set model.served_name to what the server serves, or re-run `ascend-deploy up` with this inventory",
        )


def stop_remote(executor: Executor, plan: Plan) -> None:
    """Ctrl-C: end the benchmark process on the head (closing our connection alone would not)."""
    head = next(h for h in executor.hosts if h.name == plan.head.name)
    pattern = f"[v]llm bench serve.*--result-dir {Paths.of(plan.cluster).dir}/bench"
    try:
        executor.map(lambda s: s.run(f"pkill -f {q(pattern)}; true", timeout=15, check=False, setup=False), [head])
    except Exception:  # best effort on the way out of an interrupt
        pass


def bench(
    inventory: Inventory,
    opts: Options,
    settings: BenchSettings,
    *,
    out_dir: Path | None = Path("bench-results"),
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> BenchReport:
    """Measure every point (or search the SLO's rate); gate on the baseline; save the results."""
    require_all_hosts(opts, "bench")
    started = time.monotonic()
    base = read_baseline(settings.baseline) if settings.baseline else None
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        plan = plan_for(inventory, executor)
        ident = identity(plan)
        report = BenchReport(str(inventory.path), ident, settings_dict(settings), slo=settings.slo)
        if base is not None:
            differs = identity_differences(base[0], ident, VOLATILE)
            if differs and not settings.compare_anyway:
                raise BadInput(
                    f"--baseline {settings.baseline} is a result of another plan: "
                    + "; ".join(f"{k} {a} there, {b} here" for k, (a, b) in differs.items()),
                    hint="compare results of the same model, hardware, layout and versions, or pass --compare-anyway",
                )
            if differs:
                report.notes.append("compared with a result of another plan (--compare-anyway)")
            report.baseline = str(settings.baseline)
        check_serving(executor, plan)
        measure_loads(inventory, executor, plan, settings, report)
    if base is not None:
        report.verdicts = compare(report.points, base[2], min_ratio=settings.min_ratio, latency=settings.latency)
        matched = {v.label for v in report.verdicts}
        missing = [p.label for p in report.points if p.ok and p.label not in matched]
        if missing:
            report.notes.append(f"not in the baseline, not compared: {', '.join(missing)}")
    report.duration = time.monotonic() - started
    if out_dir is not None and report.points:
        from toolkit.api.results import save

        report.saved, note = save(report, out_dir)
        if note:
            report.notes.append(note)
    return report


def measure_loads(
    inventory: Inventory, executor: Executor, plan: Plan, settings: BenchSettings, report: BenchReport
) -> None:
    """Each load of `settings` (or the SLO search) against the serving endpoint, into `report.points`;
    a point that fails ends the run with `report.failure` and keeps the points before it. `bench`
    runs it, and `upgrade`'s gate runs it with the baseline's loads."""
    book = load_playbook("bench")
    count = 0

    def measure(load: Load) -> Point:
        nonlocal count
        count += 1
        params = {
            "load_args": load.args(),
            "label": load.label,
            "name": f"point-{count}",
            "num_prompts": settings.num_prompts,
            "seed": settings.seed,
            "timeout": settings.point_timeout,
            "dataset_args": [
                "--dataset-name",
                "random",
                "--random-input-len",
                str(settings.input_len),
                "--random-output-len",
                str(settings.output_len),
            ],
        }
        if settings.prompts is not None:
            params["output_len"] = settings.output_len
            params["prompts_jsonl"] = "".join(json.dumps({"prompt": r["prompt"]}) + "\n" for r in settings.prompts)
        run = run_playbook(book, inventory, executor, params={"bench_serve": params}, shared=Shared(plan=plan))
        host = run.stages[0].hosts.get(plan.head.name)
        if host is None or host.error is not None:
            message = host.error.message if host is not None and host.error else "the head did not run the point"
            point = Point(load, error=message)
            report.points.append(point)
            raise PointFailed(message)
        point = parse_result(load, host.data.get("result") or {})
        report.points.append(point)
        return point

    try:
        if settings.slo:
            report.search = search_rate(
                measure, settings.slo, start=settings.start_rate, max_points=settings.max_points
            )
        else:
            for load in settings.loads:
                measure(load)
    except PointFailed as exc:
        report.failure = str(exc)
    except HostError as exc:
        report.failure = exc.message
    except KeyboardInterrupt:
        stop_remote(executor, plan)
        raise


class PointFailed(Exception):
    """A point could not be measured: the run stops, the points before it are kept."""


def settings_dict(s: BenchSettings) -> dict[str, Any]:
    return {
        "dataset": "prompts file" if s.prompts is not None else "random",
        "input_len": s.input_len,
        "output_len": s.output_len,
        "num_prompts": s.num_prompts,
        "seed": s.seed,
        "loads": [x.label for x in s.loads] if not s.slo else None,
        "slo_ms": s.slo,
        "max_points": s.max_points if s.slo else None,
        "min_ratio": s.min_ratio,
    }
