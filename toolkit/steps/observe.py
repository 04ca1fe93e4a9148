"""Read-only steps for `status` and `logs`: what runs on each host, and its logs."""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable, Iterator, Mapping

from toolkit.engine.readiness import Probe
from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts import Fact, Raw
from toolkit.facts.container import container_command, parse_container
from toolkit.facts.deploy import Paths, state_fact
from toolkit.facts.metrics import metrics_command, parse_metrics
from toolkit.launch import launch_for
from toolkit.launch.server import curl_command, parse_answer, parse_probe, probe_command
from toolkit.planner.plan import Plan, ray_temp_dir
from toolkit.steps import commands
from toolkit.transport.shell import compose, q


@step("status_probe", read_only=True, needs_plan=True)
def status_probe(ctx: StepContext) -> Iterator[Op]:
    """Ray and vLLM processes on the host; on the head also Ray's node list, /health and /v1/models.
    One round trip per host: on the head the Ray query (a Ray driver, about 2 s) runs
    concurrently with the process listing and the HTTP probes."""
    plan = ctx.shared.the_plan()
    p = Paths.of(ctx.inventory.name)
    facts: list[Fact[Any]] = [state_fact(ctx.inventory.name)]
    head = ctx.host.name == plan.head.name
    if head:
        facts += [ray_nodes_fact(plan, p, ctx.host.env, ctx.host.setup), http_fact(plan, p)]
        if ctx.params.get("metrics"):  # `status --metrics`: /metrics twice, a second apart
            facts.append(Fact("metrics", metrics_command(plan.probe_url), parse_metrics, setup=False, background=True))
    c = plan.container
    if c is not None:  # the host's container: its id, image and the image's id and digests
        command = container_command(str(c.engine.value), str(c.name.value), str(c.image.value), plan.cluster)
        facts.append(Fact("container", command, lambda raw: parse_container(raw), setup=False))
    values = ctx.facts(facts)
    state = values["deploy_state"]
    if c is not None:
        found = values["container"]
        have = found.container
        ctx.data["container"] = {
            "engine": found.engine,
            "name": str(c.name.value),
            "id": have.id[:12] if have else None,
            "running": have.running if have else False,
            "image": str(c.image.value),
            "image_id": (have.image_id if have else found.image_id or "")[:12] or None,
            "digest": found.image_digests[0].rsplit("@", 1)[-1] if found.image_digests else None,
        }
    ctx.data.update(
        ray_running=state.ray_running,
        gcs_running=bool(state.gcs_pids),
        vllm_pid=state.vllm_pid,
        vllm_uptime_s=state.vllm_uptime_s,
        stray_vllm_pids=list(state.stray_vllm_pids),
        ray_hash=state.ray_hash,
        vllm_hash=state.vllm_hash,
        procs={name: {"pid": st.pid, "uptime_s": st.uptime_s, "hash": st.hash} for name, st in state.procs.items()},
    )
    if not head:
        return
    if state.gcs_pids:
        ctx.data["ray_nodes"] = values["ray_nodes"]
    if state.vllm_pid or state.stray_vllm_pids:
        probe, models, engines, answered = values["http"]
        ctx.data.update(health=probe.health, last_log_line=probe.last_line)
        if probe.health == 200:
            ctx.data.update(models=models, engines=engines, answered=answered)
    if "metrics" in values:
        ctx.data["metrics"] = values["metrics"]
    yield from ()


def ray_nodes_fact(plan: Plan, p: Paths, env: Mapping[str, str], setup: Iterable[str]) -> Fact[dict[str, float] | None]:
    """Ray's live nodes (address -> NPUs), asked only where Ray's GCS runs; runs in the background."""
    the_launch = launch_for(plan)
    query = compose(
        the_launch.placement.run(the_launch.launcher.nodes_query({}, 0)) + " 2>/dev/null",
        env=env,
        setup=setup,
    )
    command = f"pgrep -u \"$(id -u)\" -f '[g]cs_server' >/dev/null || exit 0\n{query}"

    def parse(raw: Raw) -> dict[str, float] | None:
        line = next((ln for ln in raw.stdout.splitlines() if ln.startswith("RAYWAIT ")), None)
        return json.loads(line[8:])["nodes"] if line else None

    return Fact("ray_nodes", command, parse, setup=False, background=True)


_MODELS = "--- models"
_PING = "--- one token"


#: how long a one-token completion may take before `status` calls a healthy server wedged
ANSWER_BOUND_S = 20


def http_fact(plan: Plan, p: Paths) -> Fact[tuple[Probe, list[str] | None, int | None, bool | None]]:
    """The server's pid, /health and last log line; when healthy also /v1/models, how many engines
    its /metrics reports (data parallel: one per DP rank, the head's and the remote ones), and whether
    it answers a one-token completion within ANSWER_BOUND_S (None: not asked)."""
    models = curl_command(plan, p, "/v1/models", None)
    ping = curl_command(
        plan,
        p,
        "/v1/completions",
        {"model": plan.served_name.value, "prompt": "ping", "max_tokens": 1, "temperature": 0},
        max_s=ANSWER_BOUND_S,
    )
    metrics = q(plan.probe_url + "/metrics")
    command = (
        f"{probe_command(plan, p.proc('vllm'))}\n"
        f'if [ "$health" = 200 ]; then '
        f'echo "engines=$(curl -s -m 5 {metrics} | grep -o \'engine="[^"]*"\' | sort -u | wc -l)"; '
        f"echo {q(_MODELS)}; {models}; echo; echo {q(_PING)}; {ping}; fi"
    )

    def parse(raw: Raw) -> tuple[Probe, list[str] | None, int | None, bool | None]:
        probe_text, _, rest = raw.stdout.partition(_MODELS + "\n")
        models_text, _, ping_text = rest.partition("\n" + _PING + "\n")
        code, models = parse_answer("models", models_text.rstrip("\n")) if models_text else (None, None)
        answered = None
        if ping_text:
            ping_code, text = parse_answer("completion", ping_text)
            answered = ping_code == 200 and isinstance(text, str)
        engines = next(
            (
                int(v)
                for k, _, v in (ln.partition("=") for ln in probe_text.splitlines())
                if k == "engines" and v.isdigit()
            ),
            None,
        )
        return parse_probe(probe_text), models if code == 200 else None, engines or None, answered

    return Fact("http", command, parse, setup=False)


@step("logs_collect", read_only=True)
def logs_collect(ctx: StepContext) -> Iterator[Op]:
    """Pack the host's logs and diagnostics into a tar.gz returned to the control machine."""
    res = ctx.session.run(
        commands.collect_script(ctx.inventory.name), timeout=float(ctx.params.get("timeout", 300)), check=True
    )
    ctx.data["archive"] = base64.b64decode(res.stdout.strip() or b"")
    yield from ()


@step("logs_tail", read_only=True)
def logs_tail(ctx: StepContext) -> Iterator[Op]:
    """The last N lines of every process's log on the host (vLLM, `ray start`) and Ray's own logs."""
    n = int(ctx.params.get("lines", 20))
    p = Paths.of(ctx.inventory.name)
    ray_logs = f"{ray_temp_dir(ctx.inventory.name)}/session_latest/logs"
    files = [f"{p.procs}/*.log", f"{ray_logs}/raylet.out", f"{ray_logs}/gcs_server.out"]
    res = ctx.session.run(commands.tail_script(files, n), timeout=60, check=False, setup=False)
    tails: dict[str, list[str]] = {}
    current = None
    for line in res.stdout.splitlines():
        if line.startswith(commands.FILE_MARKER):
            current = line[len(commands.FILE_MARKER) + 1 :]
            tails[current] = []
        elif current is not None:
            tails[current].append(line)
    ctx.data["tails"] = tails
    ctx.data["looked_for"] = files
    yield from ()
