"""Commands that operate the deployment: up, down, status, watch, logs.

No `from __future__ import annotations`: typer reads every signature at start-up (see app.py)."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from toolkit import api
from toolkit.cli.options import (
    EPILOG,
    AcceptKeysOpt,
    CheckOpt,
    ForksOpt,
    InventoryArg,
    JsonOpt,
    SetOpt,
    VerboseOpt,
    app,
    exit_with,
    finish,
    guarded,
    inventory_of,
    options_of,
    progress_for,
)
from toolkit.errors import EXIT_FAILED, EXIT_OK


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

    inv = inventory_of(inventory, set_)
    opts = options_of(None, forks, verbose, check, accept_new_host_keys, set_)
    opts.tags = {t.strip() for t in (tags or "").split(",") if t.strip()}
    opts.skip_tags = {t.strip() for t in (skip_tags or "").split(",") if t.strip()}
    with progress_for(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).up(skip_preflight=skip_preflight, record=record_inventory)
    finish(report, json_, "render_up", actions_logged=getattr(progress, "logged_actions", False))


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

    inv = inventory_of(inventory, None)
    opts = options_of(None, forks, verbose, check, accept_new_host_keys, None)
    with progress_for(verbose, json_) as progress:
        report = api.Cluster(inv, opts, progress).down()
    finish(report, json_, "render_down")


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

    inv = inventory_of(inventory, set_)
    opts = options_of(None, None, False, False, accept_new_host_keys, set_)
    with progress_for(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).status(metrics=metrics)
    finish(report, json_, "render_status")


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

    inv = inventory_of(inventory, None)
    opts = options_of(host, None, False, False, accept_new_host_keys, None)
    with progress_for(False, json_) as progress:
        report = api.Cluster(inv, opts, progress).logs(tail=tail, out_dir=out_dir)
    finish(report, json_, "render_logs")


@app.command(epilog=EPILOG)
@guarded
def watch(
    inventory: InventoryArg = None,
    interval: Annotated[
        float, typer.Option("--interval", min=1.0, max=86400.0, help="Seconds between two checks.")
    ] = 30.0,
    heal: Annotated[
        bool,
        typer.Option(
            "--heal",
            help="When a check finds the deployment broken (orphaned ranks, a wedged server, missing engines, or a "
            "recorded deployment that does not serve), run `up` to repair it, and say so. Once per breakage: a "
            "heal that fails is not retried until the findings change.",
        ),
    ] = False,
    count: Annotated[
        Optional[int], typer.Option("--count", min=1, help="Stop after this many checks (default: until Ctrl-C).")
    ] = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Run `status`'s checks every --interval seconds and print each change of state: serving, a
    finding (orphaned ranks, wedged, engines), a host unreachable, a process that stopped or came
    back. Nothing is restarted unless --heal. With --json, one JSON object per line (an event).

    Exit: Ctrl-C ends it (0); with --count, 0 when the last check found it serving, else 1."""
    from toolkit.cli import render

    inv = inventory_of(inventory, set_)
    opts = options_of(None, None, False, False, accept_new_host_keys, set_)
    serving = False
    try:
        for event in api.Cluster(inv, opts).watch(interval=interval, heal=heal, count=count):
            serving = event.serving
            if json_:
                print(json.dumps(event.to_dict()), flush=True)
            else:
                render.render_watch(event)
    except KeyboardInterrupt:
        exit_with(EXIT_OK)
    exit_with(EXIT_OK if serving else EXIT_FAILED)
