"""The steps of the Ray launcher's `up` (playbook `up`): a Ray node per host (the head first, then
the workers, each checking it reaches the head), the wait until Ray itself lists every node with its
NPUs, the API server on the head, and its readiness. Ray's own restart rules live here: a worker
rejoins when the head restarted, the server restarts when any Ray node did, and the head's server
stops before its Ray node does. Each step reads the live host and yields only what must change."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from toolkit.engine.executor import Event, EventKind
from toolkit.engine.registry import Op, StepContext, step
from toolkit.errors import CommandFailed
from toolkit.facts import Fact
from toolkit.facts.deploy import reach_fact, state_fact
from toolkit.launch.ray import RAY_START_TIMEOUT, NodesMissing, parse_nodes, ray_stop_command
from toolkit.launch.server import STOP_WAIT_S, stop_vllm_command
from toolkit.planner.plan import Plan
from toolkit.steps.commands import write_file_op
from toolkit.steps.deploy import deploy_env, host_plan, launch, paths, the_plan
from toolkit.steps.server import WEDGED, check_answers, wait_for_server, wedged
from toolkit.transport.shell import q

__all__ = ["NodesMissing"]


@step("ray_start", needs_plan=True)
def ray_start(ctx: StepContext) -> Iterator[Op]:
    """Start this host's Ray node (head or worker) unless it already runs with the same settings."""
    plan = the_plan(ctx)
    hp = host_plan(ctx)
    p = paths(ctx)
    nic = ctx.from_step(deploy_env).get(hp.name, {}).get("nic") or hp.nic
    launcher = launch(ctx).launcher
    wanted = launcher.node_hash(hp, nic)
    head = plan.head
    wanted_facts: list[Fact[Any]] = [state_fact(ctx.inventory.name)]
    port = ctx.inventory.spec.ray.port
    if hp.role != "head":
        wanted_facts.append(reach_fact(head.address, port))
    facts = ctx.facts(wanted_facts)
    state = facts["deploy_state"]
    if hp.role != "head":
        ok, reason = facts["reach"]
        if not ok:
            raise CommandFailed(
                hp.name,
                f"{hp.name} cannot reach the Ray head {head.name} at {head.address}:{port} ({reason})",
                hint=f"check the route and firewall from {hp.name} ({hp.address}) to {head.address} port {port}; "
                "`ascend-deploy check-net` probes every host pair",
            )
    head_restarted = bool(ctx.from_step(ray_start).get(head.name, {}).get("started"))
    reasons = []
    if not state.ray_running:
        reasons.append("not running")
    elif state.ray_hash != wanted:
        reasons.append("settings changed" if state.ray_hash else "started outside ascend-deploy")
    elif hp.role != "head" and head_restarted:
        reasons.append("the head restarted")
    ctx.data.update(ray_hash=wanted, started=bool(reasons), reason=", ".join(reasons))
    if not reasons:
        return
    if state.ray_running or state.gcs_pids or state.starter_pids:  # starters: an interrupted run's `ray start`
        if hp.role == "head":
            yield Op(
                stop_vllm_command(p.proc("vllm")),
                "stop vLLM first (it runs on this Ray cluster)",
                timeout=STOP_WAIT_S + 15,
            )
        yield Op(launcher.stop_nodes_command(), f"stop Ray ({', '.join(reasons)})", timeout=90)
    role = "head" if hp.role == "head" else "worker"
    yield Op(
        launcher.node_command(hp),
        f"start Ray {role} on {hp.address} with {len(hp.devices)} NPU ({', '.join(reasons)})",
        timeout=RAY_START_TIMEOUT + 15,
    )
    yield write_file_op(p.ray_hash, wanted + "\n", "record the Ray settings hash")


def _snapshot_if_unchanged(ctx: StepContext, plan: Plan) -> dict[str, Any] | None:
    """The background snapshot's answer, if it says every node is there and no Ray node was
    (re)started since it was taken; else None (the caller asks Ray again)."""
    future = ctx.shared.ray_snapshot
    if future is None:
        return None
    nodes = ctx.from_step(ray_start)
    if set(nodes) != {h.name for h in plan.hosts} or any(d.get("started") for d in nodes.values()):
        return None
    try:
        result = future.result(timeout=90)
    except Exception:  # the snapshot is an optimisation: any failure means "ask again"
        return None
    data = parse_nodes(result.stdout)
    return data if data and data.get("ok") else None


@step("ray_ready", read_only=True, needs_plan=True)
def ray_ready(ctx: StepContext) -> Iterator[Op]:
    """Wait until Ray itself reports every host alive with its full NPU count."""
    plan = the_plan(ctx)
    p = paths(ctx)
    the_launch = launch(ctx)
    wait = float(ctx.params.get("timeout", 120))
    expected = {h.address: len(h.devices) for h in plan.hosts}
    names = {h.address: h.name for h in plan.hosts}
    address = plan.ray_address
    snapshot = _snapshot_if_unchanged(ctx, plan)
    if snapshot is not None:
        nodes = {ip: int(n) for ip, n in snapshot.get("nodes", {}).items()}
        ctx.data.update(
            nodes={names.get(ip, ip): n for ip, n in nodes.items()},
            npu=sum(nodes.get(ip, 0) for ip in expected),
            snapshot=True,
        )
        return
    last: dict[str, Any] = {}
    started = time.monotonic()

    def on_line(stream: str, line: str) -> None:
        if stream == "stdout" and line.startswith("RAYWAIT "):
            last.update(json.loads(line[8:]))
            nodes = last.get("nodes", {})
            npus = sum(int(nodes.get(ip, 0)) for ip in expected)
            ctx.session.emit(
                Event(
                    EventKind.PROGRESS,
                    ctx.host.name,
                    ctx.session.stage,
                    f"{len([ip for ip in expected if ip in nodes])}/{len(expected)} nodes, "
                    f"{npus}/{sum(expected.values())} NPU ({time.monotonic() - started:.0f}s)",
                )
            )

    command = f"(umask 077; : > {q(p.dir + '/ray-wait.err')}) && " + the_launch.placement.run(
        f"{the_launch.launcher.nodes_query(expected, wait)} 2>{q(p.dir + '/ray-wait.err')} "
        f"|| {{ rc=$?; tail -n 5 {q(p.dir + '/ray-wait.err')} >&2; exit $rc; }}"
    )
    result = ctx.session.run(command, timeout=wait + 60, check=False, on_output=on_line)
    for line in result.stdout.splitlines():
        if line.startswith("RAYWAIT "):
            last.update(json.loads(line[8:]))
    nodes = {ip: int(n) for ip, n in last.get("nodes", {}).items()}
    ctx.data.update(
        nodes={names.get(ip, ip): n for ip, n in nodes.items()}, npu=sum(nodes.get(ip, 0) for ip in expected)
    )
    if last.get("ok"):
        return
    if not last:
        raise CommandFailed(
            ctx.host.name,
            f"could not query Ray at {address}: {result.tail(3) or f'exit {result.exit_code}'}",
            result=result,
            hint="is the Ray head running? `ascend-deploy logs --tail 30` shows its log",
        )
    missing = [names[ip] for ip, need in expected.items() if nodes.get(ip, 0) < need]
    have = sum(nodes.get(ip, 0) for ip in expected)
    detail = ", ".join(
        f"{names[ip]} ({ip}: " + (f"{nodes[ip]}/{expected[ip]} NPU" if ip in nodes else "not joined") + ")"
        for ip in expected
        if names[ip] in missing
    )
    raise NodesMissing(
        ctx.host.name,
        f"after {wait:g}s Ray reports {len([ip for ip in expected if ip in nodes])}/{len(expected)} nodes and "
        f"{have}/{sum(expected.values())} NPU; missing: {detail}",
        missing=missing,
        hint="each missing host's Ray log follows; a host that joined with too few NPUs has the wrong `devices` or "
        "Ray started with other resources",
    )
    yield  # pragma: no cover - a generator step


@step("vllm_start", needs_plan=True)
def vllm_start(ctx: StepContext) -> Iterator[Op]:
    """Start the vLLM server on the head unless it runs with the same command on an unchanged Ray."""
    plan = the_plan(ctx)
    p = paths(ctx)
    launcher = launch(ctx).launcher
    wanted = launcher.server_hash(ctx.shared.api_key)
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    ray_restarted = [h for h, d in ctx.from_step(ray_start).items() if d.get("started")]
    reasons = []
    if state.vllm_pid is None:
        reasons.append("not running")
    elif state.vllm_hash != wanted:
        reasons.append("serve settings changed")
    if ray_restarted and state.vllm_pid is not None:
        reasons.append(f"Ray restarted on {', '.join(ray_restarted)}")
    if not reasons and wedged(ctx, plan):
        reasons.append(WEDGED)
    ctx.data.update(vllm_hash=wanted, started=bool(reasons), reason=", ".join(reasons), pid=state.vllm_pid)
    if not reasons:
        return
    if state.vllm_pids:
        yield Op(
            stop_vllm_command(p.proc("vllm")), f"stop the running vLLM ({', '.join(reasons)})", timeout=STOP_WAIT_S + 15
        )
    elif state.vllm_left:  # the server died (OOM kill, kill -9) but its engine still holds the NPUs
        yield Op(
            stop_vllm_command(p.proc("vllm")),
            f"end the engine processes the dead vLLM left behind (pids {', '.join(map(str, state.worker_pids))})",
            timeout=STOP_WAIT_S + 15,
        )
    yield Op(
        launcher.server_command(),
        f"start vLLM: TP {plan.tp.value} x PP {plan.pp.value}, backend {plan.backend.value}",
        timeout=60,
    )
    yield write_file_op(p.vllm_hash, wanted + "\n", "record the vLLM command hash")


@step("vllm_ready", read_only=True, needs_plan=True)
def vllm_ready(ctx: StepContext) -> Iterator[Op]:
    """Wait for /health (stop at once if vLLM exits), then check /v1/models and, after a (re)start, one
    completion and one chat request."""
    plan = the_plan(ctx)
    started_now = any(d.get("started") for d in ctx.from_step(vllm_start).values())
    wait_for_server(ctx, plan, started_now)
    check_answers(ctx, plan, started_now)
    yield from ()


@step("ray_stop")
def ray_stop(ctx: StepContext) -> Iterator[Op]:
    """`down`: `ray stop` when any Ray process of this user runs on the host (whatever was deployed:
    a Ray left by an earlier deployment or by hand holds the NPUs too)."""
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    running = state.ray_pids
    ctx.data["ray_pids"] = list(running)
    if running:
        yield Op(ray_stop_command(), f"stop Ray ({len(running)} processes)", timeout=90)
