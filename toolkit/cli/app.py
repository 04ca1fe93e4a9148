"""The `ascend-deploy` command line: argument parsing and rendering only.

Exit codes: 0 success; 1 a check or stage failed on some host; 2 bad input (inventory,
arguments); 130 interrupted.

No `from __future__ import annotations` here or in sim_cli.py: typer reads every command's
signature at start-up, and string annotations cost it 600 `eval`s (about 25 ms of each run).
"""

import functools
import inspect
import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Callable, NoReturn, Optional, ParamSpec, TypeVar

import typer

from toolkit import __version__, api
from toolkit.config.inventory import Inventory, InventoryFile
from toolkit.config.recorded import default_inventory
from toolkit.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BadInput, Interrupted, ToolkitError

EPILOG = (
    "Exit codes: 0 success; 1 a check or stage failed on some host; 2 bad input (inventory, "
    "arguments); 130 interrupted. Without INVENTORY, commands use the inventory the last `up` "
    "in this folder recorded."
)

app = typer.Typer(
    name="ascend-deploy",
    help=(
        "Deploy multi-node vLLM on Huawei Ascend (Atlas 800) clusters from one inventory file: "
        "NPU + network preflight, environment, Ray head and workers, vLLM, readiness.\n\n"
        "Start with `ascend-deploy facts INVENTORY` to see your hosts, `show-vars INVENTORY HOST` "
        "to see every resolved setting and where it came from."
    ),
    epilog=EPILOG,
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

# ------------------------------------------------------------------ shared options

InventoryArg = Annotated[
    Optional[Path],
    typer.Argument(help="Inventory YAML (default: the one the last `up` in this folder used).", show_default=False),
]
LimitOpt = Annotated[
    Optional[str],
    typer.Option("--limit", "-l", help="Only these hosts: comma list of names or globs (e.g. 'node-a,node-c*')."),
]
ForksOpt = Annotated[
    Optional[int],
    typer.Option("--forks", "-f", min=1, max=1024, help="Hosts worked on at once (default: all, up to 64)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Stream remote output, prefixed by host.")]
CheckOpt = Annotated[
    bool, typer.Option("--check", help="Dry run: read facts, print per host what would run, change nothing.")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a setting for this run (highest precedence), e.g. --set serve.port=9000, --set "
        "env.HCCL_CONNECT_TIMEOUT=1200. Repeatable.",
    ),
]
AcceptKeysOpt = Annotated[
    bool,
    typer.Option(
        "--accept-new-host-keys",
        help="Record host keys of hosts not yet in known_hosts (a CHANGED key is always refused).",
    ),
]


def _inventory(path: Optional[Path], overrides: Optional[list[str]]) -> Inventory:
    return api.load(path or default_inventory(), api.Options(overrides=overrides or []))


def _options(
    limit: Optional[str], forks: Optional[int], verbose: bool, check: bool, accept: bool, overrides: Optional[list[str]]
) -> api.Options:
    return api.Options(
        limit=limit, forks=forks, verbose=verbose, check=check, accept_new_host_keys=accept, overrides=overrides or []
    )


def _progress(verbose: bool, as_json: bool) -> Any:
    """Live progress on a terminal; nothing (and no rich import) for `--json` without `-v`."""
    if as_json and not verbose:
        from toolkit.cli.jsonout import Quiet

        return Quiet()
    from toolkit.cli import render

    return render.Progress(verbose=verbose, enabled=not as_json)


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


def _finish(report: Any, as_json: bool, renderer: str, **options: Any) -> NoReturn:
    """Print a report (JSON document, or the tables of `toolkit.cli.render.<renderer>`) and exit 0 if
    it is ok, else 1. The renderer is named, so `--json` never imports the terminal stack."""
    if as_json:
        from toolkit.cli.jsonout import print_json

        print_json(report.to_dict())
    else:
        from toolkit.cli import render

        getattr(render, renderer)(report, **options)
    _exit(EXIT_OK if report.ok else EXIT_FAILED)


P = ParamSpec("P")
R = TypeVar("R")


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn Ctrl-C inside a command into our Interrupted error (exit 130), not the CLI library's generic
    "Aborted!" (exit 1)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted() from None

    return wrapper


# ------------------------------------------------------------------ commands


@app.command(epilog=EPILOG)
@guarded
def facts(
    inventory: InventoryArg = None,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
    check: CheckOpt = False,
    set_: SetOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
) -> None:
    """Gather read-only facts from every host: hostname, OS, kernel, CPU/memory, NICs with addresses,
    Python and package versions (vllm, vllm-ascend, torch, torch_npu, ray), Ascend driver/CANN versions
    and NPU count. One SSH connection and one round trip per host."""
    from toolkit.cli import render

    inv = _inventory(inventory, set_)
    opts = _options(limit, forks, verbose, check, accept_new_host_keys, set_)
    with _progress(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).facts()
    if json_:
        stage = report.stages[0]
        render.print_json(
            {
                "ok": report.ok,
                "hosts": {
                    name: {
                        "ok": h.error is None,
                        "facts": h.data.get("facts"),
                        "error": h.error.to_dict() if h.error else None,
                    }
                    for name, h in stage.hosts.items()
                },
            }
        )
    else:
        render.render_facts(report)
        for name, host in report.stages[0].hosts.items():
            if host.error:
                render.render_error(host.error, as_json=False)
    _exit(EXIT_OK if report.ok else EXIT_FAILED)


@app.command(epilog=EPILOG)
@guarded
def run(
    playbook: Annotated[
        str, typer.Argument(help="Bundled playbook name (facts, env, ...) or a path to a playbook YAML.")
    ],
    inventory: InventoryArg = None,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
    check: CheckOpt = False,
    set_: SetOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    tags: Annotated[
        Optional[str], typer.Option("--tags", help="Only stages with one of these tags (comma list).")
    ] = None,
    skip_tags: Annotated[
        Optional[str], typer.Option("--skip-tags", help="Skip stages with one of these tags (comma list).")
    ] = None,
) -> None:
    """Run a playbook: its stages in order, a barrier after each, stopping at the first stage that fails
    on any host. With --check, facts are read but nothing is changed, and each host's would-be commands
    are printed."""

    inv = _inventory(inventory, set_)
    opts = _options(limit, forks, verbose, check, accept_new_host_keys, set_)
    opts.tags = {t.strip() for t in (tags or "").split(",") if t.strip()}
    opts.skip_tags = {t.strip() for t in (skip_tags or "").split(",") if t.strip()}
    with _progress(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).run(playbook)
    _finish(report, json_, "render_report")


@app.command("check-net", epilog=EPILOG)
@guarded
def check_net(
    inventory: InventoryArg = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            "-m",
            help="rail: device i of every host pings device i of every other host (default); ring: device i pings "
            "device i of the next host, O(N), for large clusters; full: every device pair across hosts.",
        ),
    ] = "rail",
    packets: Annotated[int, typer.Option("--packets", min=1, max=100, help="Packets per ping.")] = 3,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
    set_: SetOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
) -> None:
    """NPU + network preflight in seconds: per NPU (npu-smi health, hccn_tool IP, link, net_health,
    optical, TLS switch, LLDP), card-to-card pings across hosts, the NIC that owns each host's address,
    routes and reachability of the head's Ray port, versions, model directory and clock on every host.
    Each problem names host, NPU, check, what was seen, what was expected and what to do. Exit 0 when
    clean, 1 when any problem is found."""
    from toolkit.checks.pings import MODES

    if mode not in MODES:
        raise BadInput(f"--mode {mode!r} is not one of {', '.join(MODES)}")
    inv = _inventory(inventory, set_)
    opts = _options(limit, forks, verbose, False, accept_new_host_keys, set_)
    with _progress(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).check_net(mode=mode, packets=packets)
    _finish(report, json_, "render_check_net")


@app.command("show-vars", epilog=EPILOG)
@guarded
def show_vars(
    inventory: InventoryArg = None,
    host: Annotated[Optional[str], typer.Argument(help="Host name (default: every host).", show_default=False)] = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Print every resolved setting of a host and the level it came from: default < defaults (inventory)
    < host (inventory entry) < --set."""
    from toolkit.cli import render
    from toolkit.config.vars import cluster_vars, host_vars
    from toolkit.config.yamlsrc import did_you_mean

    if inventory is not None and host is None and not inventory.exists() and inventory.suffix not in (".yaml", ".yml"):
        host, inventory = str(inventory), None  # `show-vars HOST` with the recorded inventory
    inv = _inventory(inventory, set_)
    names = [h.name for h in inv.hosts]
    if host is not None and host not in names:
        guess = did_you_mean(host, names)
        raise BadInput(
            f"no host named '{host}' in {inv.path}",
            hint=f"did you mean '{guess}'?" if guess else f"hosts: {', '.join(names)}",
        )
    chosen = [host] if host else names
    if json_:
        render.print_json(
            {
                "inventory": str(inv.path),
                "hosts": {n: {k: {"value": v, "from": o} for k, v, o in host_vars(inv, n)} for n in chosen},
                "cluster": {k: {"value": v, "from": o} for k, v, o in cluster_vars(inv)},
            }
        )
        return
    for name in chosen:
        render.render_vars(name, host_vars(inv, name), cluster_vars(inv) if name == chosen[-1] else [])


@app.command(epilog=EPILOG)
@guarded
def schema(
    playbook: Annotated[
        bool, typer.Option("--playbook", help="Print the playbook schema instead of the inventory schema.")
    ] = False,
) -> None:
    """Print the JSON Schema of the inventory (for editor completion and validation), e.g. `ascend-
    deploy schema > inventory.schema.json`."""
    from toolkit.config.playbook import Playbook

    model = Playbook if playbook else InventoryFile
    data = model.model_json_schema()
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "ascend-deploy playbook" if playbook else "ascend-deploy inventory"
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@app.command(epilog=EPILOG)
@guarded
def plan(
    inventory: InventoryArg = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Print the full deployment without touching a host: roles, each host's environment and `ray start`
    command, the exact vLLM command, the memory estimate, and where every value came from (plugin row,
    inventory, default). Invalid combinations (TP x PP vs devices, max length vs the model, memory,
    flags removed in the target vLLM) fail here with exit 2, before anything starts."""
    from toolkit.cli import render
    from toolkit.planner.plan import plan_to_dict

    inv = _inventory(inventory, set_)
    result = api.plan(inv)
    if json_:
        render.print_json({"ok": True, "inventory": str(inv.path), "plan": plan_to_dict(result)})
    else:
        render.render_plan(result, str(inv.path))


@app.command(epilog=EPILOG)
@guarded
def plugins(
    inventory: Annotated[
        Optional[Path], typer.Argument(help="Also load the plugin folders this inventory lists.", show_default=False)
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List every plugin (built-in `plugins/`, entry points in group `ascend_deploy.plugins`, inventory
    `plugins:` folders), where it was loaded from, the models it claims and the runtime profiles it adds."""
    from toolkit.cli import render

    inv = api.load(inventory, api.Options()) if inventory is not None else None
    infos = api.plugins_for(inv).describe()
    if json_:
        render.print_json({"ok": True, "plugins": infos})
    else:
        render.render_plugins(infos)


@app.command(epilog=EPILOG)
@guarded
def up(
    inventory: InventoryArg = None,
    skip_preflight: Annotated[
        bool, typer.Option("--skip-preflight", help="Skip the check-net preflight (NPU links, IPs, pings, versions).")
    ] = False,
    forks: ForksOpt = None,
    verbose: VerboseOpt = False,
    check: CheckOpt = False,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
    tags: Annotated[
        Optional[str],
        typer.Option(
            "--tags", help="Only the `up` stages with one of these tags (env, ray, vllm, verify; comma list)."
        ),
    ] = None,
    skip_tags: Annotated[
        Optional[str],
        typer.Option(
            "--skip-tags", help="Skip the `up` stages with these tags: `--skip-tags vllm` brings up Ray only."
        ),
    ] = None,
) -> None:
    """Deploy: preflight (check-net), env file on every host, then the plan's launcher. ray: Ray head
    then workers (NPU resource, never --num-gpus), wait until Ray reports every node and NPU, vLLM on
    the head. dp: every host's own `vllm serve` (the workers headless, then the head), one decision
    for all ranks. Then readiness (/health, /v1/models, one completion, one chat); with dp every host
    watches its rank and the first rank to exit stops the wait, named.

    Idempotent: a re-run on a healthy cluster changes nothing; a serve change restarts only vLLM; an
    env or Ray change restarts Ray and vLLM; after a failure, the next `up` resumes. Records the
    inventory so `status`, `logs` and `down` can omit it. Stops at the first failed stage with the
    host, the cause and the log tail."""
    from toolkit.config.recorded import record_inventory

    inv = _inventory(inventory, set_)
    opts = _options(None, forks, verbose, check, accept_new_host_keys, set_)
    opts.tags = {t.strip() for t in (tags or "").split(",") if t.strip()}
    opts.skip_tags = {t.strip() for t in (skip_tags or "").split(",") if t.strip()}
    with _progress(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).up(skip_preflight=skip_preflight, record=record_inventory)
    _finish(report, json_, "render_up", actions_logged=getattr(progress, "logged_actions", False))


@app.command(epilog=EPILOG)
@guarded
def down(
    inventory: InventoryArg = None,
    forks: ForksOpt = None,
    verbose: VerboseOpt = False,
    check: CheckOpt = False,
    accept_new_host_keys: AcceptKeysOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Stop vLLM (TERM, wait, KILL), `ray stop` on the workers then the head, remove the cluster's
    markers, env and key files, and verify nothing is left: no vLLM or Ray process, no process on
    the NPUs (npu-smi). Probes the live hosts (works after a partial `up`, lost local state, or on
    clean hosts); idempotent; an unreachable host is reported and the others are still cleaned."""

    inv = _inventory(inventory, None)
    opts = _options(None, forks, verbose, check, accept_new_host_keys, None)
    with _progress(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).down()
    _finish(report, json_, "render_down")


@app.command(epilog=EPILOG)
@guarded
def status(
    inventory: InventoryArg = None,
    metrics: Annotated[
        bool,
        typer.Option(
            "--metrics",
            help="Also the server's load per served model from its /metrics (read twice, a second apart): "
            "running and waiting requests, KV-cache usage, prompt and generation tokens/s, preemptions.",
        ),
    ] = False,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Per host: reachable, Ray running, Ray node alive with its NPU count; on the head the vLLM pid,
    uptime, /health, served models and the endpoint. Exit 1 unless every node is alive and vLLM is healthy.

    Answers whatever the inventory now says: when its plan does not validate, the hosts, Ray and
    vLLM are shown as found and the plan's problems as notes."""

    inv = _inventory(inventory, set_)
    opts = _options(None, None, False, False, accept_new_host_keys, set_)
    with _progress(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).status(metrics=metrics)
    _finish(report, json_, "render_status")


@app.command(epilog=EPILOG)
@guarded
def logs(
    inventory: InventoryArg = None,
    tail: Annotated[
        Optional[int],
        typer.Option(
            "--tail",
            "-n",
            min=1,
            max=100000,
            help="Print the last N lines of each host's vLLM and Ray logs instead of writing an archive.",
        ),
    ] = None,
    host: Annotated[
        Optional[str], typer.Option("--host", help="Only these hosts (names or globs, comma-separated).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the archive.")] = Path("."),
    accept_new_host_keys: AcceptKeysOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Collect from every host the vLLM log, Ray logs, env file, `npu-smi info`, `hccn_tool` outputs
    and versions into one local tar.gz (mode 0600; the API key is never included)."""

    inv = _inventory(inventory, None)
    opts = _options(host, None, False, False, accept_new_host_keys, None)
    with _progress(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).logs(tail=tail, out_dir=out_dir)
    _finish(report, json_, "render_logs")


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


def _sampling(
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
    inv = _inventory(inventory, set_)
    plan = api.plan(inv)
    params = _sampling(
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
    _finish(report, json_, "render_ask")


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

    inv = _inventory(inventory, set_)
    params = _sampling(
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
    opts = _options(None, forks, verbose, False, accept_new_host_keys, set_)
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

        with _progress(verbose, json_) as progress:
            report = api.Cluster(inv, opts, progress).generate(
                items, params, on_result=on_result, stop_server=stop_server, timeout=timeout
            )
    finally:
        if sink is not None:
            sink.close()
    report.out = str(out) if out is not None else None
    _finish(report, json_, "render_generate")


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

    inv = _inventory(inventory, set_)
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
    opts = _options(None, None, verbose, False, accept_new_host_keys, set_)
    with _progress(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).bench(settings, out_dir=out_dir)
    _finish(report, json_, "render_bench")


from toolkit.cli.sim import sim_app  # noqa: E402

image_app = typer.Typer(
    help=(
        "Container images on the hosts (inventory `container:`): `status` lists each host's engine and the plan's "
        "image id; `load` sends an image tarball (docker save | gzip) to every host that lacks it, for air-gapped "
        "clusters."
    ),
    no_args_is_help=True,
)


@image_app.command("load", epilog=EPILOG)
@guarded
def image_load(
    inventory: InventoryArg = None,
    archive: Annotated[
        Optional[Path],
        typer.Argument(
            help="The image tarball: `docker save IMAGE | gzip > IMAGE.tar.gz` (or .tar, podman save).",
            show_default=False,
        ),
    ] = None,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Send an image tarball to every host that does not have its image id, all hosts at once over their
    SSH connections, with progress per host; the host verifies the checksum, then `docker load` (or
    `podman load`) and the image id is checked. An interrupted run resumes where each host stopped; a host
    that already has the image is sent nothing. Exit 1 if any host failed (named, with the fix)."""
    if archive is None:
        raise BadInput("image load needs the tarball: ascend-deploy image load INVENTORY IMAGE.tar.gz")
    inv = _inventory(inventory, set_)
    opts = _options(limit, forks, False, False, accept_new_host_keys, set_)
    with _progress(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).image_load(archive)
    _finish(report, json_, "render_image_load")


@image_app.command("status", epilog=EPILOG)
@guarded
def image_status(
    inventory: InventoryArg = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Per host: the container engine, the plan's image id and digests, the cluster's container. Exit 1 if a
    host lacks the image, has another id than the head, or has no engine (as `up`'s preflight would refuse)."""
    inv = _inventory(inventory, set_)
    opts = _options(None, None, False, False, accept_new_host_keys, set_)
    with _progress(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).image_status()
    _finish(report, json_, "render_image_status")


app.add_typer(sim_app, name="sim")
app.add_typer(image_app, name="image")


def reflow(text: str) -> str:
    """A docstring as help paragraphs: its source line breaks are not the reader's (the help
    formatter wraps each paragraph to the terminal; kept breaks cut sentences in two)."""
    paragraphs = [" ".join(line.strip() for line in block.splitlines()) for block in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def _reflow_help(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        doc = info.help or inspect.getdoc(info.callback)
        if doc:
            info.help = reflow(doc)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


_reflow_help(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ascend-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    pass


# ------------------------------------------------------------------ entry point


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: maps typed errors and signals to exit codes."""
    args = sys.argv[1:] if argv is None else argv
    as_json = _wants_json(args)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        app(args=args, prog_name="ascend-deploy")
        code = EXIT_OK
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_FAILED)
    except ToolkitError as exc:
        from toolkit.cli import render

        render.render_error(exc, as_json=as_json)
        code = exc.exit_code
    except KeyboardInterrupt:
        from toolkit.cli import render

        render.render_error(Interrupted(), as_json=as_json)
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        _exit_promptly(code)
    sys.exit(code)


def _exit_promptly(code: int, grace: float = 5.0) -> None:
    """After Ctrl-C/SIGTERM the report is out; a host thread still inside a remote call (it was
    told to stop, but a channel read may take a moment) must not keep the process alive, since
    the interpreter joins pool threads at exit."""
    import os
    import threading

    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
