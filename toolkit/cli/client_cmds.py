"""Commands that use the served model from this machine: ask, generate, bench (and their sampling
options).

No `from __future__ import annotations`: typer reads every signature at start-up (see app.py)."""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from toolkit import api
from toolkit.cli.options import (
    EPILOG,
    AcceptKeysOpt,
    ForksOpt,
    InventoryArg,
    JsonOpt,
    SetOpt,
    VerboseOpt,
    app,
    finish,
    guarded,
    inventory_of,
    options_of,
    progress_for,
)
from toolkit.errors import BadInput

# ------------------------------------------------------------------ sampling options (ask, generate)

MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", help="Tokens to generate per answer (>= 1).")]
TemperatureOpt = Annotated[Optional[float], typer.Option("--temperature", help=">= 0; 0 = greedy.")]
TopPOpt = Annotated[Optional[float], typer.Option("--top-p", help="Nucleus sampling, in (0, 1].")]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", help="-1 = all tokens, else >= 1.")]
PresenceOpt = Annotated[Optional[float], typer.Option("--presence-penalty", help="In [-2, 2].")]
FrequencyOpt = Annotated[Optional[float], typer.Option("--frequency-penalty", help="In [-2, 2].")]
StopOpt = Annotated[Optional[list[str]], typer.Option("--stop", help="Stop string (repeatable).")]
NOpt = Annotated[int, typer.Option("--n", help="Answers per prompt, 1..10 (n > 1 needs --temperature > 0).")]
IgnoreEosOpt = Annotated[bool, typer.Option("--ignore-eos", help="Keep generating past the end-of-sequence token.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Sampling seed.")]
SchemaOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--json-schema", help="Structured output: the answer must be JSON valid against this JSON Schema file."
    ),
]


def sampling_of(
    max_tokens: int,
    temperature: Optional[float],
    top_p: Optional[float],
    top_k: Optional[int],
    presence: Optional[float],
    frequency: Optional[float],
    stop: Optional[list[str]],
    n: int,
    ignore_eos: bool,
    seed: Optional[int],
    json_schema: Optional[Path],
    beam_width: Optional[int] = None,
    stream: bool = False,
    beam: bool = True,
    structured: str = "structured_outputs",
) -> Any:
    from toolkit.client import sampling

    return sampling.make(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        presence_penalty=presence,
        frequency_penalty=frequency,
        stop=stop,
        n=n,
        ignore_eos=ignore_eos,
        seed=seed,
        json_schema=json_schema,
        beam_width=beam_width,
        stream=stream,
        beam_search_available=beam,
        structured=structured,
    )


@app.command(epilog=EPILOG)
@guarded
def ask(
    inventory: Annotated[
        Optional[Path],
        typer.Argument(
            help='Inventory (default: the last `up`\'s). May be omitted: `ask "prompt"`.', show_default=False
        ),
    ] = None,
    prompt: Annotated[Optional[str], typer.Argument(help="The prompt.", show_default=False)] = None,
    chat: Annotated[
        bool, typer.Option("--chat", help="Use /v1/chat/completions (a user message) instead of /v1/completions.")
    ] = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="Stream tokens as they come; reports time to first token.")
    ] = False,
    max_tokens: MaxTokensOpt = 16,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    top_k: TopKOpt = None,
    presence_penalty: PresenceOpt = None,
    frequency_penalty: FrequencyOpt = None,
    stop: StopOpt = None,
    n: NOpt = 1,
    ignore_eos: IgnoreEosOpt = False,
    seed: SeedOpt = None,
    json_schema: SchemaOpt = None,
    beam_width: Annotated[
        Optional[int],
        typer.Option(
            "--beam-width", help="Beam search with this many beams (2..10; no streaming, no --n/--top-p/--top-k)."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the answer.")] = 300,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Send one request to the deployed endpoint and print the answer, latency, time to first token
    (with --stream) and token counts. The API key comes from the variable serve.api_key_env names."""
    from toolkit.client import ask as ask_mod

    if prompt is None and inventory is not None and not inventory.exists():
        prompt, inventory = str(inventory), None
    if prompt is None:
        raise BadInput("no prompt given", hint='ascend-deploy ask [INVENTORY] "your prompt"')
    inv = inventory_of(inventory, set_)
    plan = api.plan(inv)
    params = sampling_of(
        max_tokens,
        temperature,
        top_p,
        top_k,
        presence_penalty,
        frequency_penalty,
        stop,
        n,
        ignore_eos,
        seed,
        json_schema,
        beam_width,
        stream,
        plan.runtime.beam_search,
        plan.runtime.structured_output,
    )
    from toolkit.config.secrets import read_api_key

    report = ask_mod.ask(
        plan.endpoint,
        plan.served_name.value,
        prompt,
        params,
        chat=chat,
        stream=stream,
        api_key=read_api_key(inv),
        timeout=timeout,
    )
    finish(report, json_, "render_ask")


@app.command(epilog=EPILOG)
@guarded
def generate(
    inventory: InventoryArg = None,
    prompts: Annotated[
        Optional[Path],
        typer.Option(
            "--prompts",
            "-p",
            help='Required. Prompts: a text file (one per line) or .jsonl ({"prompt": ...} per line).',
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Write results as JSONL here (default: stdout).")
    ] = None,
    stop_server: Annotated[
        bool,
        typer.Option("--stop-server", help="Stop the vLLM server that holds the devices first (`up` starts it again)."),
    ] = False,
    max_tokens: MaxTokensOpt = 16,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    top_k: TopKOpt = None,
    presence_penalty: PresenceOpt = None,
    frequency_penalty: FrequencyOpt = None,
    stop: StopOpt = None,
    n: NOpt = 1,
    ignore_eos: IgnoreEosOpt = False,
    seed: SeedOpt = None,
    json_schema: SchemaOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds the batch may take (model load included).")
    ] = 3600,
    forks: ForksOpt = None,
    verbose: VerboseOpt = False,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Offline batch inference with vLLM's LLM API on the cluster: the same plan as `up` (parallelism,
    max length, environment; backend ray over the running Ray cluster across hosts, mp on one host).
    Results stream back as JSONL (prompt, text, token counts, finish reason) with progress and
    throughput. Refuses while a vLLM server holds the devices unless --stop-server."""
    import json as _json

    inv = inventory_of(inventory, set_)
    params = sampling_of(
        max_tokens,
        temperature,
        top_p,
        top_k,
        presence_penalty,
        frequency_penalty,
        stop,
        n,
        ignore_eos,
        seed,
        json_schema,
        beam=False,
    )
    if prompts is None:
        raise BadInput(
            "--prompts FILE is required", hint="a text file with one prompt per line, or JSONL with a 'prompt' field"
        )
    items = api.read_prompts(prompts)
    opts = options_of(None, forks, verbose, False, accept_new_host_keys, set_)
    sink = open(out, "w", encoding="utf-8") if out is not None else None  # noqa: SIM115 - closed below
    try:

        def on_result(record: dict[str, Any]) -> None:
            line = _json.dumps(record, ensure_ascii=False) + "\n"
            if sink is not None:
                sink.write(line)
                sink.flush()
            elif not json_:
                sys.stdout.write(line)
                sys.stdout.flush()

        with progress_for(verbose, json_) as progress:
            report = api.Cluster(inv, opts, progress).generate(
                items, params, on_result=on_result, stop_server=stop_server, timeout=timeout
            )
    finally:
        if sink is not None:
            sink.close()
    report.out = str(out) if out is not None else None
    finish(report, json_, "render_generate")


@app.command(epilog=EPILOG)
@guarded
def bench(
    inventory: InventoryArg = None,
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help="random (prompts of --input-len tokens asking for --output-len), or a prompts file: one per line, "
            'or .jsonl with {"prompt": ...}.',
        ),
    ] = "random",
    input_len: Annotated[int, typer.Option("--input-len", min=1, help="random: prompt tokens.")] = 128,
    output_len: Annotated[int, typer.Option("--output-len", min=1, help="random: output tokens per request.")] = 32,
    num_prompts: Annotated[int, typer.Option("--num-prompts", "-n", min=1, help="Requests per point.")] = 100,
    rates: Annotated[
        Optional[str],
        typer.Option("--rates", help="Request rates to sweep, per second, inf = all at once (default 1,inf)."),
    ] = None,
    concurrency: Annotated[
        Optional[str], typer.Option("--concurrency", help="Fixed concurrencies to sweep instead, e.g. 1,8,32.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random dataset and the arrivals.")] = 0,
    slo: Annotated[
        Optional[str],
        typer.Option(
            "--slo",
            help="Search the highest request rate that meets these objectives instead of sweeping, e.g. "
            "ttft_p99=2s,tpot_p99=80ms (keys ttft|tpot|itl _ mean|median|p99; units ms or s).",
        ),
    ] = None,
    max_points: Annotated[
        int, typer.Option("--max-points", min=1, max=50, help="--slo: the most points the search measures.")
    ] = 6,
    start_rate: Annotated[
        float, typer.Option("--start-rate", min=0.001, help="--slo: the first rate (it doubles until one misses).")
    ] = 1.0,
    baseline: Annotated[
        Optional[Path],
        typer.Option(
            "--baseline",
            help="A result.json of an earlier run: exit 1 if a point's output throughput fell "
            "below --min-ratio x its own.",
        ),
    ] = None,
    min_ratio: Annotated[float, typer.Option("--min-ratio", min=0.01, max=10, help="--baseline: the gate.")] = 0.97,
    check_latency: Annotated[
        bool,
        typer.Option("--check-latency", help="--baseline: also gate p99 TTFT and TPOT (at most baseline / ratio)."),
    ] = False,
    compare_anyway: Annotated[
        bool, typer.Option("--compare-anyway", help="--baseline: compare with a result of another plan identity.")
    ] = False,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the results (one subfolder per run).")
    ] = Path("bench-results"),
    point_timeout: Annotated[float, typer.Option("--point-timeout", min=10, help="Seconds one point may take.")] = 1800,
    verbose: VerboseOpt = False,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """How fast is the deployed endpoint: vLLM's own serving benchmark (`vllm bench serve`, run on the
    head with the plan's model, served name, tokenizer and API key) at each load point, with progress;
    a table per point (requests/s, output and total tokens/s, TTFT/TPOT/ITL mean, p50, p99, failed
    requests) and every point's result saved with the plan's identity (result.json, summary.md, and a
    latency plot when matplotlib is installed).

    --baseline gates on an earlier result of the same plan (exit 1 naming each point below it, as
    vllm-ascend's nightly tests gate at 0.97x). --slo searches the highest request rate that meets
    the objectives (doubling, then bisecting; at most --max-points points) and reports it with the
    measured point on each side. A point that fails stops the run; the points before it are kept."""
    from toolkit.client.benchmark import parse_loads, parse_slo

    inv = inventory_of(inventory, set_)
    settings = api.BenchSettings(
        loads=parse_loads(rates, concurrency),
        input_len=input_len,
        output_len=output_len,
        num_prompts=num_prompts,
        seed=seed,
        prompts=None if dataset == "random" else api.read_prompts(Path(dataset)),
        slo=parse_slo(slo) if slo is not None else None,
        max_points=max_points,
        start_rate=start_rate,
        baseline=baseline,
        min_ratio=min_ratio,
        latency=check_latency,
        compare_anyway=compare_anyway,
        point_timeout=point_timeout,
    )
    if slo is not None and (rates or concurrency):
        raise BadInput("--slo searches the rate itself: leave out --rates and --concurrency")
    opts = options_of(None, None, verbose, False, accept_new_host_keys, set_)
    with progress_for(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).bench(settings, out_dir=out_dir)
    finish(report, json_, "render_bench")
