"""The vLLM server as every launcher's readiness sees it: the wait for /health (stopping at once when
it exits, or when another host's rank did), the runbook's test requests, and the error that carries
the log's tail and the likely cause. Used by the Ray steps and the generic process steps."""

from __future__ import annotations

import time
from typing import Any

from toolkit.engine.executor import Event, EventKind
from toolkit.engine.readiness import Probe, wait_ready
from toolkit.engine.registry import StepContext
from toolkit.errors import CommandFailed
from toolkit.facts.deploy import ProcFiles
from toolkit.facts.phases import parse_phases, phase_at, phase_command, phases_command
from toolkit.launch.server import curl_command, parse_answer, parse_probe, probe_command, smoke_requests
from toolkit.planner.plan import Plan
from toolkit.steps.deploy import host_plan, paths
from toolkit.transport.shell import q


class VllmNotReady(CommandFailed):
    kind = "vllm-not-ready"


def log_tail_error(
    ctx: StepContext, what: str, hint: str | None = None, files: ProcFiles | None = None
) -> VllmNotReady:
    """`what` happened to this host's vLLM (`files`: its process's, default the "vllm" one): the error
    with the log's tail and the likely cause."""
    from toolkit.checks.signatures import likely_cause

    f = files or paths(ctx).proc("vllm")
    tail = ctx.session.run(
        f"tail -n 40 {q(f.log)} 2>/dev/null | sed 's/\\x1b\\[[0-9;]*m//g'",
        timeout=30,
        check=False,
        setup=False,
    ).stdout
    sig = likely_cause(tail)
    cause = f": {sig.cause}" if sig else ""
    if sig is not None and sig.setting:  # which timeout fired, as this plan set it
        value = host_plan(ctx).env.get(sig.setting)
        cause += f" [{sig.setting}=" + (f"{value.value} s: {value.origin}]" if value else "its default]")
    return VllmNotReady(
        ctx.host.name,
        f"vLLM {what}{cause} (log: ~/{f.log})",
        hint=sig.fix if sig else hint or "read the log tail below; `ascend-deploy plan` shows the exact command",
        details=tail.strip().splitlines()[-25:],
    )


def wait_for_server(ctx: StepContext, plan: Plan, started_now: bool, files: ProcFiles | None = None) -> None:
    """Probe the head's server (`files`: its process's, default the "vllm" one) until /health answers
    200; raise with the log tail if it exits or times out, or (another host's rank exited) once the
    run's rendezvous says so."""
    f = files or paths(ctx).proc("vllm")
    serve = ctx.inventory.spec.serve
    meet = ctx.shared.rendezvous

    def probe() -> Any:
        return parse_probe(ctx.session.run(probe_command(plan, f), timeout=30, check=False, setup=False).stdout)

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
        if started_now:  # the phases of this start, as the engine logged them
            read_phases(ctx, f.log)
        return
    if outcome.state == "cancelled":
        raise VllmNotReady(
            ctx.host.name,
            f"stopped waiting after {outcome.elapsed:.0f}s: the vLLM rank on {meet.failed_host} exited",
            hint=f"see {meet.failed_host}'s error above; `ascend-deploy down` stops every rank",
        )
    meet.fail(ctx.host.name)
    if outcome.state == "exited":
        raise log_tail_error(ctx, files=f, what="exited")
    phase = phase_at(ctx.session.run(phase_command(f.log), timeout=30, check=False, setup=False).stdout)
    raise log_tail_error(
        ctx,
        files=f,
        what=f"is not healthy after {outcome.elapsed:.0f}s: serve.ready_timeout "
        f"({float(plan.ready_timeout.value):g} s, {plan.ready_timeout.origin}) ran out while the log was in phase: "
        + (phase or "none yet (importing, starting the worker processes or connecting the ranks)"),
        hint="a start slower than planned: raise serve.ready_timeout (and VLLM_ENGINE_READY_TIMEOUT_S), or see the "
        "phase above and the log tail",
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


def read_phases(ctx: StepContext, log: str) -> None:
    """The start-up phases `log` reports (`facts.phases`), into the step's data (`up`'s summary)."""
    res = ctx.session.run(phases_command(log), timeout=30, check=False, setup=False)
    phases = parse_phases(res.stdout)
    if phases.found:
        ctx.data["phases"] = {k: v for k, v in vars(phases).items() if v is not None}


def wedged(ctx: StepContext, plan: Plan) -> bool:
    """The server runs and /health says 200, but a one-token completion gets no answer within
    `observe.ANSWER_BOUND_S`: running and unchanged, yet it must restart (`up` heals it)."""
    from toolkit.steps.observe import http_fact

    probe, _models, _engines, answered = ctx.facts([http_fact(plan, paths(ctx))])["http"]
    return probe.health == 200 and answered is False


WEDGED = "wedged: /health answers 200 but a one-token completion does not"
