"""The steps of `up`: environment file, the launcher's nodes (Ray head and workers), the wait for
every node, the vLLM server, and its readiness. Each reads the live host first and yields only what
must change: a marker on each host holds the hash of what shaped its node and its server, so a
re-run on a healthy, unchanged cluster yields nothing. The commands come from the plan's launcher
and runtime (`toolkit.launch`).

The plan (`toolkit.planner.plan.Plan`) arrives in `ctx.shared.plan`; the API key, if any, in
`ctx.shared.api_key` (written to a 0600 file through stdin, never on a command line). What an earlier
step found is read by step (`ctx.from_step(ray_start)`), never by the playbook's stage names.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from toolkit.engine.executor import Event, EventKind
from toolkit.engine.readiness import Probe, wait_ready
from toolkit.engine.registry import Op, StepContext, step
from toolkit.errors import CommandFailed
from toolkit.facts import Fact
from toolkit.facts.deploy import Paths, nic_fact, reach_fact, state_fact
from toolkit.launch import Launch, launch_for
from toolkit.launch.ray import RAY_START_TIMEOUT, NodesMissing, parse_nodes
from toolkit.launch.server import (
    STOP_WAIT_S,
    curl_command,
    digest,
    parse_answer,
    parse_probe,
    probe_command,
    smoke_requests,
    stop_vllm_command,
)
from toolkit.planner.plan import HostPlan, Plan
from toolkit.steps.commands import remove_files_command, render_env, write_file_op, write_stdin_command
from toolkit.transport.shell import q

__all__ = ["NodesMissing", "VllmNotReady", "check_answers", "log_tail_error", "the_plan", "wait_for_server"]


def the_plan(ctx: StepContext) -> Plan:
    return ctx.shared.the_plan()


def launch(ctx: StepContext) -> Launch:
    return launch_for(the_plan(ctx))


def host_plan(ctx: StepContext) -> HostPlan:
    return next(h for h in the_plan(ctx).hosts if h.name == ctx.host.name)


def paths(ctx: StepContext) -> Paths:
    return Paths.of(ctx.inventory.name)


@step("deploy_env", needs_plan=True)
def deploy_env(ctx: StepContext) -> Iterator[Op]:
    """Write the plan's environment file (NIC resolved from the host's address) and the API key file."""
    hp = host_plan(ctx)
    p = paths(ctx)
    facts = ctx.facts([state_fact(ctx.inventory.name), nic_fact(hp.address)])
    nic = hp.nic or facts["nic"]
    if nic is None:
        raise CommandFailed(
            ctx.host.name,
            f"no network interface on {ctx.host.name} holds its address {hp.address} (nic: auto)",
            hint="fix the host's address in the inventory, or set its `nic:` explicitly",
        )
    content = render_env(hp.resolved_env(nic))
    state = facts["deploy_state"]
    ctx.data.update(nic=nic, env_sha256=digest(content))
    if state.env_sha256 != digest(content):
        yield write_file_op(p.env, content, f"write {p.env} (mode 0600, {len(hp.env)} variables, NIC {nic})")
    if hp.role != "head":
        return
    key = ctx.shared.api_key
    if key and state.key_sha256 != digest(key):
        yield Op(
            write_stdin_command(p.api_key),
            f"write {p.api_key} (mode 0600; the key itself is sent on stdin)",
            stdin=key,
        )
    elif not key and state.key_sha256:
        yield Op(remove_files_command([p.api_key]), "remove the API key file (no key configured)")


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
            yield Op(stop_vllm_command(p), "stop vLLM first (it runs on this Ray cluster)", timeout=STOP_WAIT_S + 15)
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
    ctx.data.update(vllm_hash=wanted, started=bool(reasons), reason=", ".join(reasons), pid=state.vllm_pid)
    if not reasons:
        return
    if state.vllm_pids:
        yield Op(stop_vllm_command(p), f"stop the running vLLM ({', '.join(reasons)})", timeout=STOP_WAIT_S + 15)
    elif state.vllm_left:  # the server died (OOM kill, kill -9) but its engine still holds the NPUs
        yield Op(
            stop_vllm_command(p),
            f"end the engine processes the dead vLLM left behind (pids {', '.join(map(str, state.worker_pids))})",
            timeout=STOP_WAIT_S + 15,
        )
    yield Op(
        launcher.server_command(),
        f"start vLLM: TP {plan.tp.value} x PP {plan.pp.value}, backend {plan.backend.value}",
        timeout=60,
    )
    yield write_file_op(p.vllm_hash, wanted + "\n", "record the vLLM command hash")


class VllmNotReady(CommandFailed):
    kind = "vllm-not-ready"


@step("vllm_ready", read_only=True, needs_plan=True)
def vllm_ready(ctx: StepContext) -> Iterator[Op]:
    """Wait for /health (stop at once if vLLM exits), then check /v1/models and, after a (re)start, one
    completion and one chat request."""
    plan = the_plan(ctx)
    started_now = any(d.get("started") for d in ctx.from_step(vllm_start).values())
    wait_for_server(ctx, plan, started_now)
    check_answers(ctx, plan, started_now)
    yield from ()


def log_tail_error(ctx: StepContext, what: str, hint: str | None = None) -> VllmNotReady:
    """`what` happened to this host's vLLM: the error with the log's tail and the likely cause."""
    from toolkit.checks.signatures import likely_cause

    p = paths(ctx)
    tail = ctx.session.run(
        f"tail -n 40 {q(p.vllm_log)} 2>/dev/null | sed 's/\\x1b\\[[0-9;]*m//g'",
        timeout=30,
        check=False,
        setup=False,
    ).stdout
    sig = likely_cause(tail)
    return VllmNotReady(
        ctx.host.name,
        f"vLLM {what}" + (f": {sig.cause}" if sig else "") + f" (log: ~/{p.vllm_log})",
        hint=sig.fix if sig else hint or "read the log tail below; `ascend-deploy plan` shows the exact command",
        details=tail.strip().splitlines()[-25:],
    )


def wait_for_server(ctx: StepContext, plan: Plan, started_now: bool) -> None:
    """Probe the head's server until /health answers 200; raise with the log tail if it exits or
    times out, or (another host's rank exited) once the run's rendezvous says so."""
    p = paths(ctx)
    serve = ctx.inventory.spec.serve
    meet = ctx.shared.rendezvous

    def probe() -> Any:
        return parse_probe(ctx.session.run(probe_command(plan, p), timeout=30, check=False, setup=False).stdout)

    def on_probe(elapsed: float, pr: Probe) -> None:
        state = "healthy" if pr.healthy else "starting" if pr.alive else "exited"
        ctx.session.emit(
            Event(EventKind.PROGRESS, ctx.host.name, ctx.session.stage, f"{elapsed:4.0f}s {state}: {pr.last_line}")
        )

    outcome = wait_ready(
        probe,
        timeout=float(plan.ready_timeout.value),
        initial_delay=serve.initial_delay if started_now else 0.0,
        interval=float(ctx.params.get("interval", 2.0)),
        on_probe=on_probe,
        cancelled=meet.failed.is_set,
    )
    ctx.data.update(state=outcome.state, waited_s=round(outcome.elapsed, 1))
    if outcome.state == "ready":
        ctx.data["healthy_at"] = time.time()  # wall clock, so a benchmark can compare it with its own /health poller
        meet.ready.set()
        return
    if outcome.state == "cancelled":
        raise VllmNotReady(
            ctx.host.name,
            f"stopped waiting after {outcome.elapsed:.0f}s: the vLLM rank on {meet.failed_host} exited",
            hint=f"see {meet.failed_host}'s error above; `ascend-deploy down` stops every rank",
        )
    meet.fail(ctx.host.name)
    raise log_tail_error(
        ctx,
        "exited" if outcome.state == "exited" else f"is not healthy after {outcome.elapsed:.0f}s (serve.ready_timeout)",
    )


def check_answers(ctx: StepContext, plan: Plan, started_now: bool) -> None:
    """After a (re)start: the runbook's test requests; on a no-op: the model list proves the same server."""
    p = paths(ctx)
    answers: dict[str, Any] = {}
    requests = smoke_requests(plan) if started_now or ctx.params.get("always_smoke") else smoke_requests(plan)[:1]
    for kind, path, body in requests:
        res = ctx.session.run(curl_command(plan, p, path, body), timeout=150, check=False, setup=False)
        code, answer = parse_answer(kind, res.stdout)
        if (
            code != 200
            or (kind == "models" and plan.served_name.value not in (answer or []))
            or (kind != "models" and not isinstance(answer, str))
        ):
            raise VllmNotReady(
                ctx.host.name,
                f"vLLM is healthy but {path} answered "
                + (f"HTTP {code}" if code else "nothing")
                + f": {str(answer)[:200]}",
                hint="401: the API key differs from the server's (re-run up); 404 on a model: served name mismatch; "
                "see `ascend-deploy logs --tail 40`",
            )
        answers[kind] = answer
    ctx.data.update(answers=answers)
