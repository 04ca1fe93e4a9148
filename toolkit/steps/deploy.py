"""The steps of `up`: environment file, Ray head and workers, the wait for every Ray node, the vLLM
server, and its readiness. Each reads the live host first and yields only what must change:
a marker on each host holds the hash of what shaped its Ray node and its vLLM server, so a
re-run on a healthy, unchanged cluster yields nothing.

The plan (`toolkit.planner.plan.Plan`) arrives in `ctx.shared["plan"]`; the API key, if any, in
`ctx.shared["api_key"]` (written to a 0600 file through stdin, never on a command line).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from typing import Any, Iterator

from toolkit.engine.executor import Event
from toolkit.engine.readiness import Probe, wait_ready
from toolkit.engine.registry import Op, StepContext, step
from toolkit.errors import CommandFailed
from toolkit.facts.deploy import (
    RAY_PATTERN,
    STARTER_PATTERN,
    VLLM_ENGINE_PATTERN,
    VLLM_PATTERN,
    Paths,
    nic_fact,
    reach_fact,
    state_fact,
)
from toolkit.planner.plan import HostPlan, Plan
from toolkit.steps.env_file import render_env, write_file_op
from toolkit.transport.shell import q

RAY_START_TIMEOUT = 120
STOP_WAIT_S = 30


def the_plan(ctx: StepContext) -> Plan:
    return ctx.shared["plan"]


def host_plan(ctx: StepContext) -> HostPlan:
    return next(h for h in the_plan(ctx).hosts if h.name == ctx.host.name)


def paths(ctx: StepContext) -> Paths:
    return Paths.of(ctx.inventory.name)


def source_env(p: Paths) -> str:
    """Load the plan's environment into a command (the file `env` writes, mode 0600)."""
    return f"set -a; . ./{q(p.env)}; set +a"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ray_hash(hp: HostPlan, nic: str) -> str:
    """What shaped this host's Ray node: its environment (read only at `ray start`) and arguments."""
    data = {"env": hp.resolved_env(nic), "ray": list(hp.ray_argv)}
    return digest(json.dumps(data, sort_keys=True))[:16]


def vllm_hash(plan: Plan, key: str | None) -> str:
    data = {"argv": plan.vllm_argv(), "key": digest(key) if key else None}
    return digest(json.dumps(data, sort_keys=True))[:16]


def stop_vllm_command(p: Paths, *, strays: bool = True) -> str:
    """TERM the server (pid file, then any vLLM server of this user) and vLLM's own engine
    processes, wait, then KILL. The engine must be named too: a server stopped while it still
    starts can leave its EngineCore behind, holding the NPUs (found by the Ctrl-C tests)."""
    find = f"cat {q(p.vllm_pid)} 2>/dev/null"
    if strays:
        find += f"; pgrep -u \"$(id -u)\" -f '{VLLM_PATTERN}|{VLLM_ENGINE_PATTERN}'"
    return (
        f"pids=$( ( {find} ) | sort -u | tr '\\n' ' '); "
        "alive=''; for p in $pids; do kill -0 $p 2>/dev/null && alive=\"$alive $p\"; done; "
        'if [ -n "$alive" ]; then kill -TERM $alive 2>/dev/null; '
        f"for i in $(seq 1 {STOP_WAIT_S * 5}); do left=''; for p in $alive; do kill -0 $p 2>/dev/null && left=\"$left $p\"; done; "
        '[ -z "$left" ] && break; sleep 0.2; done; '
        '[ -n "$left" ] && { echo "killing $left after {STOP_WAIT_S}s" >&2; kill -KILL $left 2>/dev/null; }; fi; '
        f"rm -f {q(p.vllm_pid)} {q(p.vllm_hash)}; true"
    )


def ray_stop_command() -> str:
    """End any `ray start` still in flight (it would start daemons after the stop), then `ray
    stop`, asking nicely first; `--force` only if something is still alive after it."""
    starters = f"pgrep -u \"$(id -u)\" -f '{STARTER_PATTERN}'"
    return (
        "command -v ray >/dev/null || { echo 'ray is not on PATH (check the setup lines)' >&2; exit 127; }; "
        f"s=$({starters} | tr '\\n' ' '); if [ -n \"$s\" ]; then kill -TERM $s 2>/dev/null; "
        f"for i in $(seq 1 25); do {starters} >/dev/null || break; sleep 0.2; done; "
        f"s=$({starters} | tr '\\n' ' '); [ -n \"$s\" ] && kill -KILL $s 2>/dev/null; fi; "
        "ray stop >/dev/null 2>&1; "
        f"if pgrep -u \"$(id -u)\" -f '{RAY_PATTERN}' >/dev/null; then ray stop --force >/dev/null 2>&1; fi; true"
    )


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
    key = ctx.shared.get("api_key")
    if key and state.key_sha256 != digest(key):
        tmp = f"{q(p.api_key + '.tmp')}.$$"
        yield Op(
            f"umask 077 && mkdir -p {q(p.dir)} && cat > {tmp} && chmod 600 {tmp} && mv -f {tmp} {q(p.api_key)}",
            f"write {p.api_key} (mode 0600; the key itself is sent on stdin)",
            stdin=key,
        )
    elif not key and state.key_sha256:
        yield Op(f"rm -f {q(p.api_key)}", "remove the API key file (no key configured)")


@step("ray_start", needs_plan=True)
def ray_start(ctx: StepContext) -> Iterator[Op]:
    """Start this host's Ray node (head or worker) unless it already runs with the same settings."""
    plan = the_plan(ctx)
    hp = host_plan(ctx)
    p = paths(ctx)
    nic = ctx.previous.get("env", {}).get(hp.name, {}).get("nic") or hp.nic
    wanted = ray_hash(hp, nic)
    head = plan.head
    wanted_facts = [state_fact(ctx.inventory.name)]
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
    head_restarted = any(d.get("started") for d in ctx.previous.get("ray-head", {}).values())
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
        yield Op(ray_stop_command(), f"stop Ray ({', '.join(reasons)})", timeout=90)
    role = "head" if hp.role == "head" else "worker"
    start = shlex.join(hp.ray_argv)
    yield Op(
        f"mkdir -p {q(p.dir)} && {source_env(p)} && rm -f {q(p.ray_hash)} && "
        f"(umask 077; : > {q(p.ray_log)}) && {{ timeout {RAY_START_TIMEOUT} {start} > {q(p.ray_log)} 2>&1 || {{ rc=$?; tail -n 25 {q(p.ray_log)} >&2; exit $rc; }}; }}",
        f"start Ray {role} on {hp.address} with {len(hp.devices)} NPU ({', '.join(reasons)})",
        timeout=RAY_START_TIMEOUT + 15,
    )
    yield write_file_op(p.ray_hash, wanted + "\n", "record the Ray settings hash")


RAY_WAIT_SCRIPT = r"""
import json, logging, os, sys, time
expected = json.loads(sys.argv[1]); deadline = time.time() + float(sys.argv[2]); resource = sys.argv[3]
import ray
ray.init(address=os.environ["RAY_ADDRESS"], logging_level=logging.ERROR, log_to_driver=False)
while True:
    nodes = {}
    for n in ray.nodes():
        if n.get("Alive"):
            ip = n.get("NodeManagerAddress")
            nodes[ip] = nodes.get(ip, 0) + n.get("Resources", {}).get(resource, 0)
    ok = all(nodes.get(ip, 0) >= need for ip, need in expected.items())
    print("RAYWAIT " + json.dumps({"ok": ok, "nodes": nodes}), flush=True)
    if ok or time.time() > deadline:
        break
    time.sleep(1)
try:
    ray.shutdown()
finally:
    os._exit(0)
"""


def ray_nodes_command(plan: Plan, expected: dict[str, int], wait: float) -> str:
    """Ask Ray itself (a driver on this host) which nodes are alive with how many NPUs, polling up
    to `wait` seconds until `expected` (address -> NPUs) holds; prints `RAYWAIT {json}` lines.
    Callers load the env file first and decide where stderr goes.

    The driver ends with an explicit `ray.shutdown()` (the job ends cleanly in the GCS) and then
    `os._exit`: left to the interpreter, Ray's exit hook sleeps 0.5 s "for log messages" (this
    driver prints none) and module teardown takes another 0.25 s. Measured on the simulated head:
    1.7-1.9 s -> 0.85 s (import ray 0.5 s, connect 0.05 s, shutdown 0.25 s)."""
    return (
        f"RAY_ADDRESS={q(plan.ray_address)} python3 -c {q(RAY_WAIT_SCRIPT)} "
        f"{q(json.dumps(expected))} {wait:g} {q(plan.runtime.ray_resource)}"
    )


def ray_snapshot_command(plan: Plan, p: Paths) -> str:
    """Ray's node list right now, asked only if a GCS runs here (else nothing is printed): `up`
    starts it at once, in the background, so that on an unchanged cluster `ray-ready` finds the
    answer waiting instead of paying the Ray driver's 1.5-2 s start after the earlier stages."""
    expected = {h.address: len(h.devices) for h in plan.hosts}
    return (
        f"pgrep -u \"$(id -u)\" -f '[g]cs_server' >/dev/null || exit 0\n"
        f"{source_env(p)} 2>/dev/null && {ray_nodes_command(plan, expected, 0)} 2>/dev/null"
    )


def _snapshot_if_unchanged(ctx: StepContext, plan: Plan) -> dict[str, Any] | None:
    """The background snapshot's answer, if it says every node is there and no Ray node was
    (re)started since it was taken; else None (the caller asks Ray again)."""
    future = ctx.shared.get("ray_snapshot")
    if future is None:
        return None
    ray_stages = [ctx.previous.get(name) for name in ("ray-head", "ray-workers")]
    seen = {host for stage in ray_stages if stage for host in stage}
    if any(stage is None for stage in ray_stages) or seen != {h.name for h in plan.hosts}:
        return None
    if any(d.get("started") for stage in ray_stages if stage for d in stage.values()):
        return None
    try:
        result = future.result(timeout=90)
    except Exception:  # the snapshot is an optimisation: any failure means "ask again"
        return None
    line = next((ln for ln in reversed(result.stdout.splitlines()) if ln.startswith("RAYWAIT ")), None)
    data = json.loads(line[8:]) if line else None
    return data if data and data.get("ok") else None


class NodesMissing(CommandFailed):
    """Ray did not register every host: `missing` names them, so `up` can fetch their Ray logs."""

    def __init__(self, host: str, message: str, *, missing: list[str], hint: str) -> None:
        super().__init__(host, message, hint=hint)
        self.missing = missing

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "missing": self.missing}


@step("ray_ready", read_only=True, needs_plan=True)
def ray_ready(ctx: StepContext) -> Iterator[Op]:
    """Wait until Ray itself reports every host alive with its full NPU count."""
    plan = the_plan(ctx)
    p = paths(ctx)
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
                    "progress",
                    ctx.host.name,
                    ctx.session.stage,
                    f"{len([ip for ip in expected if ip in nodes])}/{len(expected)} nodes, {npus}/{sum(expected.values())} NPU ({time.monotonic() - started:.0f}s)",
                )
            )

    command = (
        f"(umask 077; : > {q(p.dir + '/ray-wait.err')}) && {source_env(p)} && {ray_nodes_command(plan, expected, wait)} 2>{q(p.dir + '/ray-wait.err')} "
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
        f"after {wait:g}s Ray reports {len([ip for ip in expected if ip in nodes])}/{len(expected)} nodes and {have}/{sum(expected.values())} NPU; missing: {detail}",
        missing=missing,
        hint="each missing host's Ray log follows; a host that joined with too few NPUs has the wrong `devices` or Ray started with other resources",
    )
    yield  # pragma: no cover - a generator step


def launch_command(plan: Plan, p: Paths) -> str:
    """Start vLLM detached (setsid + nohup), log and pid file (0600) in the cluster folder; the key
    comes from its 0600 file into VLLM_API_KEY, never through argv. The server is started as a
    simple background command (the tail of an `&&` list would background a whole subshell) so
    that `$!`, the pid file, is the server itself."""
    return (
        f"umask 077 && mkdir -p {q(p.dir)} && {source_env(p)} && export RAY_ADDRESS={q(plan.ray_address)} && "
        f'if [ -f {q(p.api_key)} ]; then VLLM_API_KEY="$(cat {q(p.api_key)})"; export VLLM_API_KEY; fi && '
        f'{{ echo "# ascend-deploy: vLLM started $(date -u +%FT%TZ)"; }} > {q(p.vllm_log)} || exit 1\n'
        f"setsid nohup {shlex.join(plan.vllm_argv())} >> {q(p.vllm_log)} 2>&1 < /dev/null &\n"
        f"echo $! > {q(p.vllm_pid)}; echo started $!"
    )


@step("vllm_start", needs_plan=True)
def vllm_start(ctx: StepContext) -> Iterator[Op]:
    """Start the vLLM server on the head unless it runs with the same command on an unchanged Ray."""
    plan = the_plan(ctx)
    p = paths(ctx)
    wanted = vllm_hash(plan, ctx.shared.get("api_key"))
    state = ctx.facts([state_fact(ctx.inventory.name)])["deploy_state"]
    ray_restarted = [
        h for stage in ("ray-head", "ray-workers") for h, d in ctx.previous.get(stage, {}).items() if d.get("started")
    ]
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
        launch_command(plan, p),
        f"start vLLM: TP {plan.tp.value} x PP {plan.pp.value}, backend {plan.backend.value}",
        timeout=60,
    )
    yield write_file_op(p.vllm_hash, wanted + "\n", "record the vLLM command hash")


def probe_command(plan: Plan, p: Paths) -> str:
    return (
        f'pid=$(cat {q(p.vllm_pid)} 2>/dev/null); if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo alive=1; else echo alive=0; fi; '
        f"health=$(curl -s -m 5 -o /dev/null -w '%{{http_code}}' {q(plan.probe_url + '/health')} 2>/dev/null); echo health=$health; "
        f"echo \"last=$(tail -n 1 {q(p.vllm_log)} 2>/dev/null | sed 's/\\x1b\\[[0-9;]*m//g' | cut -c1-200)\""
    )


def parse_probe(stdout: str) -> Probe:
    values = dict(line.partition("=")[::2] for line in stdout.splitlines() if "=" in line)
    code = values.get("health", "").strip()
    return Probe(
        values.get("alive", "0").strip() == "1",
        int(code) if code.isdigit() and code != "000" else None,
        values.get("last", "").strip(),
    )


def curl_command(plan: Plan, p: Paths, path: str, body: dict[str, Any] | None) -> str:
    """A curl to the server whose Authorization header comes from the key file via stdin config
    (`-K -`), so the key is in no process's argv."""
    data = f"-H 'Content-Type: application/json' -d {q(json.dumps(body))}" if body is not None else ""
    return (
        f'{{ if [ -f {q(p.api_key)} ]; then printf \'header = "Authorization: Bearer %s"\\n\' "$(cat {q(p.api_key)})"; fi; }} | '
        f"curl -s -m 120 -K - -w '\\nHTTP %{{http_code}}' {data} {q(plan.probe_url + path)}"
    )


def smoke_requests(plan: Plan) -> list[tuple[str, str, dict[str, Any] | None]]:
    """The runbook's test requests: the model list, one completion, one chat completion."""
    name = plan.served_name.value
    return [
        ("models", "/v1/models", None),
        (
            "completion",
            "/v1/completions",
            {"model": name, "prompt": "The capital of France is", "max_tokens": 16, "temperature": 0},
        ),
        (
            "chat",
            "/v1/chat/completions",
            {
                "model": name,
                "messages": [{"role": "user", "content": "Hello! Who are you?"}],
                "max_tokens": 16,
                "temperature": 0,
            },
        ),
    ]


def parse_answer(kind: str, text: str) -> tuple[int | None, Any]:
    body, _, status = text.rpartition("\nHTTP ")
    code = int(status.strip()) if status.strip().isdigit() else None
    try:
        data = json.loads(body)
    except ValueError:
        return code, body.strip()[:300]
    if kind == "models":
        return code, [m.get("id") for m in data.get("data", [])] if isinstance(data, dict) else data
    if isinstance(data, dict) and data.get("choices"):
        choice = data["choices"][0]
        return code, choice.get("text") if kind == "completion" else (choice.get("message") or {}).get("content")
    return code, data


class VllmNotReady(CommandFailed):
    kind = "vllm-not-ready"


@step("vllm_ready", read_only=True, needs_plan=True)
def vllm_ready(ctx: StepContext) -> Iterator[Op]:
    """Wait for /health (stop at once if vLLM exits), then check /v1/models and, after a (re)start, one completion and one chat request."""
    from toolkit.checks.signatures import likely_cause

    plan = the_plan(ctx)
    p = paths(ctx)
    serve = ctx.inventory.spec.serve
    started_now = any(d.get("started") for d in ctx.previous.get("vllm", {}).values())

    def probe() -> Any:
        return parse_probe(ctx.session.run(probe_command(plan, p), timeout=30, check=False, setup=False).stdout)

    def on_probe(elapsed: float, pr: Any) -> None:
        state = "healthy" if pr.healthy else "starting" if pr.alive else "exited"
        ctx.session.emit(
            Event("progress", ctx.host.name, ctx.session.stage, f"{elapsed:4.0f}s {state}: {pr.last_line}")
        )

    outcome = wait_ready(
        probe,
        timeout=serve.ready_timeout,
        initial_delay=serve.initial_delay if started_now else 0.0,
        interval=float(ctx.params.get("interval", 2.0)),
        on_probe=on_probe,
    )
    ctx.data.update(state=outcome.state, waited_s=round(outcome.elapsed, 1))
    if outcome.state == "ready":
        ctx.data["healthy_at"] = time.time()  # wall clock, so a benchmark can compare it with its own /health poller
    if outcome.state != "ready":
        tail = ctx.session.run(
            f"tail -n 40 {q(p.vllm_log)} 2>/dev/null | sed 's/\\x1b\\[[0-9;]*m//g'",
            timeout=30,
            check=False,
            setup=False,
        ).stdout
        sig = likely_cause(tail)
        what = (
            "exited"
            if outcome.state == "exited"
            else f"is not healthy after {outcome.elapsed:.0f}s (serve.ready_timeout)"
        )
        raise VllmNotReady(
            ctx.host.name,
            f"vLLM {what}" + (f": {sig.cause}" if sig else "") + f" (log: ~/{p.vllm_log})",
            hint=sig.fix if sig else "read the log tail below; `ascend-deploy plan` shows the exact command",
            details=tail.strip().splitlines()[-25:],
        )
    answers: dict[str, Any] = {}
    # after a (re)start: the runbook's test requests; on a no-op: the model list proves the same server
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
                hint="401: the API key differs from the server's (re-run up); 404 on a model: served name mismatch; see `ascend-deploy logs --tail 40`",
            )
        answers[kind] = answer
    ctx.data.update(answers=answers)
    yield from ()
