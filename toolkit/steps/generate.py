"""The `generate` step: an offline batch with vLLM's `LLM` API on the head, with the plan's engine
arguments (parsed by vLLM's own argument parser, so the batch and the server agree exactly),
over the running Ray cluster when the model spans hosts. Prompts go in on stdin; results come
back line by line while the batch runs."""

from __future__ import annotations

import json
from typing import Any, Iterator

from toolkit.engine.executor import Event, EventKind
from toolkit.engine.registry import Op, StepContext, step
from toolkit.errors import CommandFailed
from toolkit.facts.deploy import Paths, state_fact
from toolkit.launch import launch_for
from toolkit.planner.plan import Plan
from toolkit.steps.deploy import the_plan
from toolkit.transport.shell import q

#: Server-only flags: the offline engine has no HTTP side.
SERVER_ONLY = ("--host", "--port")

GENERATE_SCRIPT = r"""
import dataclasses, json, sys, time
argv, sampling, schema = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
batch = int(sys.argv[4])
prompts = [json.loads(line) for line in sys.stdin if line.strip()]
def emit(**event):
    print("GEN " + json.dumps(event), flush=True)
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
from vllm import LLM, SamplingParams
from vllm.engine.arg_utils import EngineArgs
parser = EngineArgs.add_cli_args(FlexibleArgumentParser())
ns = parser.parse_args(argv)
base = parser.parse_args(["--model", ns.model])
names = {f.name for f in dataclasses.fields(EngineArgs)}
kwargs = {k: v for k, v in vars(ns).items() if k in names and v != getattr(base, k, None)}
kwargs["model"] = ns.model
started = time.time()
llm = LLM(**kwargs)
emit(event="loaded", seconds=round(time.time() - started, 2))
if schema is not None:
    try:
        from vllm.sampling_params import StructuredOutputsParams
        sampling["structured_outputs"] = StructuredOutputsParams(json=schema)
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams
        sampling["guided_decoding"] = GuidedDecodingParams(json=schema)
params = SamplingParams(**sampling)
done = out_tokens = in_tokens = 0
t0 = time.time()
for start in range(0, len(prompts), batch):
    chunk = prompts[start:start + batch]
    for p, o in zip(chunk, llm.generate([p["prompt"] for p in chunk], params, use_tqdm=False)):
        outs = [{"text": c.text, "tokens": len(c.token_ids), "finish_reason": c.finish_reason} for c in o.outputs]
        out_tokens += sum(c["tokens"] for c in outs)
        in_tokens += len(o.prompt_token_ids or [])
        emit(event="result", id=p["id"], prompt=p["prompt"], prompt_tokens=len(o.prompt_token_ids or []), outputs=outs)
    done += len(chunk)
    emit(event="progress", done=done, total=len(prompts), seconds=round(time.time() - t0, 3), output_tokens=out_tokens)
emit(event="done", done=done, seconds=round(time.time() - t0, 3), prompt_tokens=in_tokens, output_tokens=out_tokens)
"""


def engine_argv(plan: Plan) -> list[str]:
    """The plan's vLLM arguments without the interpreter, the module and server-only flags."""
    argv = plan.vllm_argv()[3:]
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in SERVER_ONLY:
            skip = True
            continue
        out.append(arg)
    return out


class ServerRunning(CommandFailed):
    kind = "server-running"


def generate_command(plan: Plan, sampling: dict[str, Any], schema: Any, batch: int) -> str:
    """The offline batch on the head: the generate script with the plan's engine arguments, in the
    plan's runtime, its log in the cluster folder (prompts arrive on stdin)."""
    p = Paths.of(plan.cluster)
    return launch_for(plan).placement.run(
        f"export RAY_ADDRESS={q(plan.ray_address)} && "
        f"python3 -c {q(GENERATE_SCRIPT)} {q(json.dumps(engine_argv(plan)))} {q(json.dumps(sampling))} "
        f"{q(json.dumps(schema))} {batch} 2> {q(p.dir + '/generate.log')}"
    )


def refuse_while_serving(ctx: StepContext) -> None:
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    running = ([state.vllm_pid] if state.vllm_pid else []) + list(state.stray_vllm_pids)
    if running:
        raise ServerRunning(
            ctx.host.name,
            f"a vLLM server (pid {', '.join(map(str, running))}) holds the devices",
            hint="re-run with --stop-server to stop it first (`ascend-deploy up` starts it again)",
        )


@step("server_free", read_only=True)
def server_free(ctx: StepContext) -> Iterator[Op]:
    """Before `generate` touches the environment or Ray: a running server refuses the batch (without
    --stop-server). Asked first, because the Ray stages of a plan that differs from what runs (another
    environment, e.g. after an `upgrade --set env...`) would restart Ray and the server with it."""
    refuse_while_serving(ctx)
    yield from ()


@step("generate_run", read_only=True, needs_plan=True)
def generate_run(ctx: StepContext) -> Iterator[Op]:
    """Run the offline batch on the head; refuse while a vLLM server holds the devices (asked again:
    one may have started since the first stage)."""
    plan = the_plan(ctx)
    p = Paths.of(ctx.inventory.name)
    refuse_while_serving(ctx)
    on_result = ctx.shared.on_result or (lambda record: None)
    summary: dict[str, Any] = {}
    total = len(ctx.shared.prompts)

    def on_line(stream: str, line: str) -> None:
        if stream != "stdout" or not line.startswith("GEN "):
            return
        event = json.loads(line[4:])
        kind = event.pop("event")
        if kind == "result":
            on_result(event)
        elif kind == "loaded":
            summary["load_s"] = event["seconds"]
            ctx.session.emit(
                Event(
                    EventKind.PROGRESS,
                    ctx.host.name,
                    ctx.session.stage,
                    f"model loaded in {event['seconds']:.0f}s; 0/{total} prompts",
                )
            )
        elif kind == "progress":
            rate = event["done"] / event["seconds"] if event["seconds"] else 0.0
            ctx.session.emit(
                Event(
                    EventKind.PROGRESS,
                    ctx.host.name,
                    ctx.session.stage,
                    f"{event['done']}/{event['total']} prompts, {rate:.1f} prompts/s, "
                    f"{event['output_tokens'] / max(event['seconds'], 1e-9):.0f} tokens/s",
                )
            )
        elif kind == "done":
            summary.update(event)

    sampling = ctx.shared.sampling
    command = generate_command(plan, sampling.offline(), sampling.json_schema, int(ctx.params.get("batch", 8)))
    stdin = "".join(json.dumps(item) + "\n" for item in ctx.shared.prompts)
    result = ctx.session.run(command, timeout=ctx.shared.timeout, check=False, stdin=stdin, on_output=on_line)
    ctx.data.update(summary=summary)
    if result.exit_code != 0 or "done" not in summary:
        from toolkit.checks.signatures import likely_cause

        tail = ctx.session.run(f"tail -n 30 {q(p.dir + '/generate.log')}", timeout=30, check=False, setup=False).stdout
        sig = likely_cause(tail)
        raise CommandFailed(
            ctx.host.name,
            f"the offline batch failed (exit {result.exit_code})"
            + (f": {sig.cause}" if sig else "")
            + f" (log: ~/{p.dir}/generate.log)",
            hint=sig.fix if sig else "read the log tail below",
            details=tail.strip().splitlines()[-20:],
            result=None,
        )
    yield from ()
