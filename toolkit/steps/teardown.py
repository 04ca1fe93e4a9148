"""The steps of `down`: stop the deployed processes, then any vLLM left, remove the cluster's
markers and files, then verify nothing is left (Ray's own `ray_stop` is with the Ray steps). Every
step probes the live host, so `down` works after a partial `up`, after the control machine lost its
state, and on clean hosts."""

from __future__ import annotations

import time
from typing import Any, Iterator

from toolkit.engine.executor import Event, EventKind
from toolkit.engine.registry import Op, StepContext, step
from toolkit.errors import CommandFailed
from toolkit.facts import Fact
from toolkit.facts.container import labelled_command, parse_labelled
from toolkit.facts.deploy import Paths, state_fact
from toolkit.facts.npu import NpuInfo, NpuProcess, npu_smi_fact
from toolkit.launch.server import STOP_WAIT_S, stop_vllm_command
from toolkit.steps import commands


@step("vllm_stop")
def vllm_stop(ctx: StepContext) -> Iterator[Op]:
    """Stop every vLLM server of this user on the host: TERM, wait, then KILL."""
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    pids = state.vllm_pids
    ctx.data["vllm_pids"] = pids
    if state.vllm_left:  # also an engine left by a server stopped mid-start
        what = f"pid {', '.join(map(str, pids))}" if pids else "its engine processes"
        yield Op(
            stop_vllm_command(Paths.of(ctx.inventory.name).proc("vllm")),
            f"stop vLLM ({what})",
            timeout=STOP_WAIT_S + 15,
        )


FILES = ("env", "api_key", "engine")
#: how long `down` waits for the devices to be released after the processes stopped (the driver frees
#: a killed process's device memory with a delay: a start right after would find it "in use")
RELEASE_TIMEOUT_S = 60.0
#: HBM a device may show above its level before `up` and still count as released (the driver's own
#: allocations move a little between readings)
HBM_SLACK_MB = 256


def holding(ctx: StepContext, npu: NpuInfo | None) -> list[tuple[int, NpuProcess]]:
    """(device, process) for every process npu-smi lists on a device this host's inventory uses."""
    if npu is None:
        return []
    out = []
    for d in ctx.host.devices:
        out += [(d, p) for p in npu.processes_on(d)]
    return out


def hbm_above(ctx: StepContext, npu: NpuInfo | None) -> list[tuple[int, int, int]]:
    """(device, MB in use now, MB before `up`) for every device of this host whose HBM is still above
    its level before `up` (the deployment record's, read at its preflight) by more than HBM_SLACK_MB:
    the driver has not freed a stopped process's memory yet."""
    before = ctx.shared.hbm_before.get(ctx.host.name) or {}
    if npu is None or not before:
        return []
    out = []
    for d in ctx.host.devices:
        chip, level = npu.chip(d), before.get(str(d))
        if chip is not None and chip.hbm_used_mb is not None and level is not None:
            if chip.hbm_used_mb > level + HBM_SLACK_MB:
                out.append((d, chip.hbm_used_mb, int(level)))
    return out


def devices_released(ctx: StepContext, npu: NpuInfo | None, timeout: float) -> tuple[NpuInfo | None, float]:
    """Poll npu-smi (bounded) until no process holds a device this host uses and each one's HBM is back
    to its level before `up`; the last reading and how long it took. Progress names what it waits for."""
    started = time.monotonic()
    while ((held_now := holding(ctx, npu)) or (high := hbm_above(ctx, npu))) and time.monotonic() - started < timeout:
        held = ", ".join(
            [f"NPU {d} pid {p.pid}" for d, p in held_now]
            or [f"NPU {d} HBM {now} MB, {was} MB before up" for d, now, was in high]
        )
        ctx.session.emit(
            Event(
                EventKind.PROGRESS,
                ctx.host.name,
                ctx.session.stage,
                f"{time.monotonic() - started:4.0f}s waiting for the devices to be released ({held})",
            )
        )
        time.sleep(1.0)
        npu = ctx.facts([npu_smi_fact()])["npu_smi"]
    return npu, round(time.monotonic() - started, 1)


def files_fact(p: Paths) -> Fact[list[str]]:
    """The cluster's files `down` removes that exist: the env, key and engine files by name, and every
    process's pid and settings hash in proc/ by path (its log stays for `logs`)."""
    named = commands.present_files_command({f: getattr(p, f) for f in FILES})
    globs = " ".join(commands.shell_words(f"{p.procs}/*.{ext}") for ext in ("pid", "hash"))
    procs = f'for f in {globs}; do [ -e "$f" ] && echo "$f"; done; true'
    return Fact("files", f"{named}; {procs}", lambda r: r.stdout.split(), setup=False)


@step("proc_down")
def proc_down(ctx: StepContext) -> Iterator[Op]:
    """Stop the deployed plan's processes on this host that still run, last started first (the plan
    `down` was given: the head's record; without one, the steps after this clean by pattern)."""
    plan = ctx.shared.plan
    hp = next((h for h in plan.hosts if h.name == ctx.host.name), None) if plan is not None else None
    if plan is None or hp is None or not hp.processes:
        return
    from toolkit.launch import launch_for

    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    launcher = launch_for(plan).launcher
    running = [p for p in reversed(hp.processes) if state.proc(p.name).alive]
    ctx.data["stopped"] = [p.name for p in running]
    for proc in running:
        yield Op(
            launcher.stop_command(hp, proc),
            f"stop {proc.name} (pid {state.proc(proc.name).pid})",
            timeout=STOP_WAIT_S + 15,
        )


@step("deploy_clean")
def deploy_clean(ctx: StepContext) -> Iterator[Op]:
    """Remove the cluster's markers, env and key files (logs stay for `logs`), then verify that no
    vLLM or Ray process is left and `npu-smi` shows no process on the NPUs."""
    p = Paths.of(ctx.inventory.name)
    present = ctx.facts([files_fact(p)])["files"]
    if present:
        paths = [f if "/" in f else getattr(p, f) for f in present]
        shown = [f.rsplit("/", 1)[-1] if "/" in f else f for f in present]
        yield Op(commands.remove_files_command(paths), f"remove {', '.join(shown)}")
    if ctx.check:
        return
    facts = ctx.facts(
        [
            state_fact(ctx.inventory.name),
            npu_smi_fact(),
            Fact("labelled", labelled_command(ctx.inventory.name), parse_labelled, setup=False),
        ]
    )
    state, npu = facts["deploy_state"], facts["npu_smi"]
    left: dict[str, list[Any]] = {
        "vLLM": state.vllm_pids,
        "Ray": list(state.ray_pids),
        "container": [f"{name} ({engine})" for engine, name in facts["labelled"]],
    }
    npu, waited = devices_released(ctx, npu, float(ctx.params.get("release_timeout", RELEASE_TIMEOUT_S)))
    held = holding(ctx, npu)
    busy = [f"NPU {d} pid {p.pid} ({p.name}, {p.memory_mb} MB)" for d, p in held]
    if not held:
        busy += [
            f"NPU {d} HBM {now} MB in use, {was} MB before up (no process holds it: the driver has not freed it)"
            for d, now, was in hbm_above(ctx, npu)
        ]
    ctx.data.update(clean=not any(left.values()) and not busy, npu_checked=npu is not None, released_after_s=waited)
    problems = [
        f"{kind} {'pids ' if kind != 'container' else ''}{', '.join(map(str, pids))}"
        for kind, pids in left.items()
        if pids
    ] + busy
    if problems:
        running = any(left.values()) or held
        raise CommandFailed(
            ctx.host.name,
            ("still running after down: " if running else "devices not released after down: ")
            + "; ".join(problems)
            + (f" (the devices were waited on for {waited:g}s)" if busy else ""),
            hint="run `ascend-deploy down` again; if it stays, kill the processes by hand (they may belong to another "
            "user or cluster)"
            if running
            else "the driver still holds memory no process owns: wait and run `ascend-deploy down` again; if it "
            "stays, check `npu-smi info` and reset the device (`npu-smi set -t reset -i CARD -c CHIP`) before a start",
        )
