"""The generic steps of a plan's processes, by start group (the playbook names the group; `up-dp`
runs "ranks"): what runs (`proc_state`), stop (`proc_stop`), start (`proc_start`) and wait for
readiness (`proc_ready`). A process whose `same` is "group" (every DP rank) restarts with all the
others of its group on every host: the decision is taken once, from what every host reported, so
ranks of two generations never meet. Each process has its own files (`proc/NAME.*`), so a host that
runs several processes of a group needs no other step. Commands come from the launcher
(`start_command`, `stop_command`, `group_hash`)."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from toolkit.engine.executor import Event, EventKind
from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts.deploy import state_fact
from toolkit.launch.server import STOP_WAIT_S, digest, parse_probe, rank_probe_command
from toolkit.planner.plan import Process
from toolkit.steps.commands import write_file_op
from toolkit.steps.deploy import deploy_env, host_plan, launch, paths, the_plan
from toolkit.steps.server import WEDGED, check_answers, log_tail_error, read_phases, wait_for_server, wedged


def group_of(ctx: StepContext) -> str:
    return str(ctx.params.get("group", "ranks"))


def my_processes(ctx: StepContext) -> list[Process]:
    """This host's processes of the stage's group, in start order."""
    return [p for p in host_plan(ctx).processes if p.group == group_of(ctx)]


@step("proc_state", read_only=True, needs_plan=True)
def proc_state(ctx: StepContext) -> Iterator[Op]:
    """What runs here now: each process of the group (pid, recorded hash), the env file's digest, and
    whether any vLLM (or an engine a dead one left) is on the host."""
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    procs = {
        p.name: {
            "running": state.proc(p.name).alive,
            "pid": state.proc(p.name).pid,
            "recorded": state.proc(p.name).hash,
        }
        for p in my_processes(ctx)
    }
    serving = [p for p in my_processes(ctx) if p.api and procs[p.name]["running"]]
    ctx.data.update(
        wedged=bool(serving) and wedged(ctx, the_plan(ctx)),
        procs=procs,
        running=bool(procs) and all(d["running"] for d in procs.values()),
        pid=next((d["pid"] for d in procs.values() if d["pid"]), None),
        env_sha256=state.env_sha256,
        env_run_sha256=state.env_run_sha256,
        left=state.vllm_left or any(d["running"] for d in procs.values()),
    )
    yield from ()


def wanted_hash(ctx: StepContext) -> str:
    """One hash for the whole group: every host's processes of it, the key, and every host's env file
    (without the start-up-only timeouts: a new value applies at the next start, restarting nothing)."""
    states = ctx.from_step(proc_state)
    written = ctx.from_step(deploy_env)  # what `env` wrote this run; else the file found on the host
    envs = {
        name: written.get(name, {}).get("env_run_sha256") or d.get("env_run_sha256")
        for name, d in sorted(states.items())
    }
    group = launch(ctx).launcher.group_hash(group_of(ctx), ctx.shared.api_key)
    return digest(json.dumps({"server": group, "env": envs}, sort_keys=True))[:16]


def restart_reasons(ctx: StepContext) -> list[str]:
    """Why every process of the group must (re)start, from all hosts' `proc_state`; empty when all run
    as planned."""
    plan = the_plan(ctx)
    states = ctx.from_step(proc_state)
    wanted = wanted_hash(ctx)
    group = group_of(ctx)
    reasons = []
    for h in plan.hosts:
        mine = [p for p in h.processes if p.group == group]
        if not mine:
            continue
        d = states.get(h.name)
        if d is None:
            reasons.append(f"no state from {h.name}")
            continue
        found: dict[str, Any] = d.get("procs", {})
        if not all(found.get(p.name, {}).get("running") for p in mine):
            reasons.append(f"not running on {h.name}")
        elif any(found.get(p.name, {}).get("recorded") != wanted for p in mine):
            recorded = any(found.get(p.name, {}).get("recorded") for p in mine)
            reasons.append(f"settings changed on {h.name}" if recorded else f"started by hand on {h.name}")
        elif d.get("wedged"):
            reasons.append(f"{WEDGED} on {h.name}")
    return reasons


@step("proc_stop", needs_plan=True)
def proc_stop(ctx: StepContext) -> Iterator[Op]:
    """Stop this host's processes of the group when any of the group must restart."""
    reasons = restart_reasons(ctx)
    ctx.data.update(restart=bool(reasons), reason=", ".join(reasons))
    if not reasons or not ctx.from_step(proc_state).get(ctx.host.name, {}).get("left"):
        return
    hp = host_plan(ctx)
    launcher = launch(ctx).launcher
    for proc in my_processes(ctx):
        yield Op(
            launcher.stop_command(hp, proc),
            f"stop vLLM: every rank restarts ({', '.join(reasons)})",
            timeout=STOP_WAIT_S + 15,
        )


@step("proc_start", needs_plan=True)
def proc_start(ctx: StepContext) -> Iterator[Op]:
    """Start this host's processes of the group (workers headless; the head serves the API) when any
    of the group restarts, recording the group's hash beside each."""
    hp = host_plan(ctx)
    reasons = restart_reasons(ctx)
    wanted = wanted_hash(ctx)
    ctx.data.update(vllm_hash=wanted, started=bool(reasons), reason=", ".join(reasons))
    if not reasons:
        return
    launcher = launch(ctx).launcher
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    procs = my_processes(ctx)
    if state.vllm_left and procs:  # proc_stop skipped (--skip-tags) or a process came back
        yield Op(launcher.stop_command(hp, procs[0]), "stop the vLLM still running here", timeout=STOP_WAIT_S + 15)
    tp = the_plan(ctx).tp.value
    for proc in procs:
        ranks = ", ".join(map(str, proc.ranks)) or "0"
        role = "API server" if proc.api else "headless"
        yield Op(
            launcher.start_command(hp, proc),
            f"start vLLM {launcher.name} rank(s) {ranks} ({role}, TP {tp}): " + ", ".join(reasons),
            timeout=60,
        )
        yield write_file_op(paths(ctx).proc(proc.name).hash, wanted + "\n", "record the vLLM command hash")


@step("proc_ready", read_only=True, needs_plan=True)
def proc_ready(ctx: StepContext) -> Iterator[Op]:
    """Each process of the group here: one serving the API waits for /health, then the test requests;
    any other is watched until the API is ready. A process that exits fails at once with its log tail
    and stops the wait on every host."""
    plan = the_plan(ctx)
    started_now = any(d.get("started") for d in ctx.from_step(proc_start).values())
    for proc in my_processes(ctx):
        files = paths(ctx).proc(proc.name)
        if proc.ready == "http":
            wait_for_server(ctx, plan, started_now, files)
            check_answers(ctx, plan, started_now)
        else:
            watch(ctx, proc, float(plan.ready_timeout.value), float(ctx.params.get("interval", 2.0)))
            if started_now and ctx.data.get("state") == "ready":  # this rank's own start, as its log says
                read_phases(ctx, files.log)
    yield from ()


def watch(ctx: StepContext, proc: Process, timeout: float, interval: float) -> None:
    """Probe `proc` (alive, its log's last line) until the cluster is ready, it exits, or the wait ends."""
    files = paths(ctx).proc(proc.name)
    meet = ctx.shared.rendezvous
    started = time.monotonic()
    while not meet.ready.is_set():
        probe = parse_probe(ctx.session.run(rank_probe_command(files), timeout=30, check=False, setup=False).stdout)
        elapsed = time.monotonic() - started
        ctx.session.emit(
            Event(
                EventKind.PROGRESS,
                ctx.host.name,
                ctx.session.stage,
                f"{elapsed:4.0f}s rank {'alive' if probe.alive else 'exited'}: {probe.last_line}",
            )
        )
        if not probe.alive:
            meet.fail(ctx.host.name)
            ctx.data.update(state="exited", waited_s=round(elapsed, 1))
            raise log_tail_error(ctx, "rank exited while the cluster started", files=files)
        if meet.failed.is_set() or elapsed >= timeout:
            ctx.data.update(state="stopped", waited_s=round(elapsed, 1))
            return  # the API's host names what went wrong; this rank was fine
        meet.ready.wait(interval)
    ctx.data.update(state="ready", waited_s=round(time.monotonic() - started, 1))
