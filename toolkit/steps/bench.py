"""The serving benchmark step: one load point of vLLM's own `vllm bench serve` on the head,
against the deployed server, its progress streamed and its result JSON handed back."""

from __future__ import annotations

import json
from typing import Any, Iterator

from toolkit.engine.executor import Event, EventKind
from toolkit.engine.registry import Op, StepContext, step
from toolkit.errors import CommandFailed
from toolkit.facts.deploy import Paths
from toolkit.launch import launch_for
from toolkit.steps.commands import RESULT_MARKER, bench_command, write_stdin_command


@step("bench_serve", read_only=True, needs_plan=True)
def bench_serve(ctx: StepContext) -> Iterator[Op]:
    """Run one point (params: load args, dataset, prompts, seed, name); data: the result JSON."""
    plan = ctx.shared.the_plan()
    p = Paths.of(ctx.inventory.name)
    params = ctx.params
    dataset: list[str] = list(params.get("dataset_args") or [])
    prompts: str | None = params.get("prompts_jsonl")
    if prompts is not None:  # the user's prompts, uploaded once per point through stdin (0600)
        path = f"{p.dir}/bench/prompts.jsonl"
        ctx.session.run(write_stdin_command(path), stdin=prompts, timeout=60, setup=False)
        dataset = ["--dataset-name", "custom", "--dataset-path", path, "--skip-chat-template"]
        dataset += ["--custom-output-len", str(int(params.get("output_len", 256)))]
    command = bench_command(
        launch_for(plan).placement.run,
        p,
        base_url=plan.probe_url,
        model_path=plan.model_path,
        served_name=str(plan.served_name.value),
        load_args=list(params["load_args"]),
        dataset_args=dataset,
        num_prompts=int(params.get("num_prompts", 100)),
        seed=int(params.get("seed", 0)),
        name=str(params.get("name", "point")),
    )
    label = str(params.get("label", ""))

    def on_line(stream: str, line: str) -> None:
        text = line.strip().rsplit("\r", 1)[-1].strip()
        if text and not text.startswith(RESULT_MARKER):
            ctx.session.emit(Event(EventKind.PROGRESS, ctx.host.name, ctx.session.stage, f"{label}: {text[:160]}"))

    res = ctx.session.run(command, timeout=float(params.get("timeout", 1800)), check=False, on_output=on_line)
    out, _, result = res.stdout.partition(RESULT_MARKER)
    data: dict[str, Any] = {}
    try:
        data = json.loads(result) if result.strip() else {}
    except ValueError:
        data = {}
    ctx.data.update(result=data, exit_code=res.exit_code)
    if res.exit_code != 0 or not data:
        tail = [ln for ln in out.replace("\r", "\n").splitlines() if ln.strip()][-15:]
        raise CommandFailed(
            ctx.host.name,
            f"vllm bench serve ({label}) failed: exit {res.exit_code}" + (f": {tail[-1][:200]}" if tail else ""),
            result=res,
            hint="is the server up and answering (`ascend-deploy status`)? the benchmark's output follows",
            details=tail,
        )
    yield from ()
