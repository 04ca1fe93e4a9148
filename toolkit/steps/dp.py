"""The steps of `up` for launchers without Ray (`dp`: vLLM's data parallel across hosts; `mp`:
one host). Every host runs its own vLLM process; they must agree, so the decision to (re)start is
taken once for all of them from what every host reported (`dp_state`), and a change anywhere
restarts every rank: stop all, start the workers (headless), then the head, then wait on every
host at once (a rank that exits stops the wait everywhere, naming its host)."""

from __future__ import annotations

import json
import time
from typing import Iterator

from toolkit.engine.executor import Event, EventKind
from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts.deploy import state_fact
from toolkit.launch.server import STOP_WAIT_S, digest, parse_probe, rank_probe_command, stop_vllm_command
from toolkit.steps.commands import write_file_op
from toolkit.steps.deploy import (
    check_answers,
    deploy_env,
    host_plan,
    launch,
    log_tail_error,
    paths,
    the_plan,
    wait_for_server,
)


@step("dp_state", read_only=True, needs_plan=True)
def dp_state(ctx: StepContext) -> Iterator[Op]:
    """What runs here now: this cluster's vLLM (pid, recorded hash) and the env file's digest."""
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    ctx.data.update(
        running=state.vllm_pid is not None,
        pid=state.vllm_pid,
        recorded=state.vllm_hash,
        env_sha256=state.env_sha256,
        left=state.vllm_left,
    )
    yield from ()


def wanted_hash(ctx: StepContext) -> str:
    """One hash for every rank: all hosts' commands, the key, and every host's env file."""
    states = ctx.from_step(dp_state)
    written = ctx.from_step(deploy_env)  # what `env` wrote this run; else the file found on the host
    envs = {name: written.get(name, {}).get("env_sha256") or d.get("env_sha256") for name, d in sorted(states.items())}
    server = launch(ctx).launcher.server_hash(ctx.shared.api_key)
    return digest(json.dumps({"server": server, "env": envs}, sort_keys=True))[:16]


def restart_reasons(ctx: StepContext) -> list[str]:
    """Why every rank must (re)start, from all hosts' `dp_state`; empty when all run as planned."""
    plan = the_plan(ctx)
    states = ctx.from_step(dp_state)
    wanted = wanted_hash(ctx)
    reasons = []
    for h in plan.server_hosts:
        d = states.get(h.name)
        if d is None:
            reasons.append(f"no state from {h.name}")
        elif not d.get("running"):
            reasons.append(f"not running on {h.name}")
        elif d.get("recorded") != wanted:
            reasons.append(f"settings changed on {h.name}" if d.get("recorded") else f"started by hand on {h.name}")
    return reasons


@step("dp_stop", needs_plan=True)
def dp_stop(ctx: StepContext) -> Iterator[Op]:
    """Stop this host's vLLM when any rank must restart (ranks of two generations never meet)."""
    reasons = restart_reasons(ctx)
    ctx.data.update(restart=bool(reasons), reason=", ".join(reasons))
    if reasons and ctx.from_step(dp_state).get(ctx.host.name, {}).get("left"):
        yield Op(
            stop_vllm_command(paths(ctx)),
            f"stop vLLM: every rank restarts ({', '.join(reasons)})",
            timeout=STOP_WAIT_S + 15,
        )


@step("dp_start", needs_plan=True)
def dp_start(ctx: StepContext) -> Iterator[Op]:
    """Start this host's vLLM rank(s) (workers headless; the head serves the API) when any rank restarts."""
    hp = host_plan(ctx)
    reasons = restart_reasons(ctx)
    wanted = wanted_hash(ctx)
    ctx.data.update(vllm_hash=wanted, started=bool(reasons), reason=", ".join(reasons))
    if not reasons:
        return
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    if state.vllm_left:  # dp_stop skipped (--skip-tags) or a process came back
        yield Op(stop_vllm_command(paths(ctx)), "stop the vLLM still running here", timeout=STOP_WAIT_S + 15)
    launcher = launch(ctx).launcher
    ranks = ", ".join(map(str, hp.ranks)) or "0"
    role = "API server" if hp.role == "head" else "headless"
    yield Op(
        launcher.node_command(hp),
        f"start vLLM {launcher.name} rank(s) {ranks} ({role}, TP {the_plan(ctx).tp.value}): " + ", ".join(reasons),
        timeout=60,
    )
    yield write_file_op(paths(ctx).vllm_hash, wanted + "\n", "record the vLLM command hash")


@step("dp_ready", read_only=True, needs_plan=True)
def dp_ready(ctx: StepContext) -> Iterator[Op]:
    """On the head: wait for /health, then the test requests. On every other host: watch its own
    rank until the head is ready; a rank that exits fails at once with its log tail and stops the
    wait on every host."""
    plan = the_plan(ctx)
    started_now = any(d.get("started") for d in ctx.from_step(dp_start).values())
    if ctx.host.name == plan.head.name:
        wait_for_server(ctx, plan, started_now)
        check_answers(ctx, plan, started_now)
        return
    watch_rank(ctx, float(plan.ready_timeout.value), float(ctx.params.get("interval", 2.0)))
    yield from ()


def watch_rank(ctx: StepContext, timeout: float, interval: float) -> None:
    p = paths(ctx)
    meet = ctx.shared.rendezvous
    started = time.monotonic()
    while not meet.ready.is_set():
        probe = parse_probe(ctx.session.run(rank_probe_command(p), timeout=30, check=False, setup=False).stdout)
        elapsed = time.monotonic() - started
        alive = probe.alive
        ctx.session.emit(
            Event(
                EventKind.PROGRESS,
                ctx.host.name,
                ctx.session.stage,
                f"{elapsed:4.0f}s rank {'alive' if alive else 'exited'}: {probe.last_line}",
            )
        )
        if not alive:
            meet.fail(ctx.host.name)
            ctx.data.update(state="exited", waited_s=round(elapsed, 1))
            raise log_tail_error(ctx, "rank exited while the cluster started")
        if meet.failed.is_set() or elapsed >= timeout:
            ctx.data.update(state="stopped", waited_s=round(elapsed, 1))
            return  # the head names what went wrong; this rank was fine
        meet.ready.wait(interval)
    ctx.data.update(state="ready", waited_s=round(time.monotonic() - started, 1))
