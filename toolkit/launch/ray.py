"""The `ray` launcher (the seed's recipe): a Ray node on every host (the head first, then the
workers, each with its NPUs as Ray's `NPU` resource), a wait until Ray reports every node, then
the vLLM API server on the head with `--distributed-executor-backend ray`."""

from __future__ import annotations

import json
import shlex
from typing import Any

from toolkit.errors import CommandFailed
from toolkit.facts.deploy import RAY_PATTERN, STARTER_PATTERN, Paths
from toolkit.launch.base import Placement
from toolkit.launch.server import digest, server_hash, stop_vllm_command
from toolkit.planner.plan import RAY_NODE, VLLM_SERVER, HostPlan, Plan, Process
from toolkit.transport.shell import q

RAY_START_TIMEOUT = 120


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


class NodesMissing(CommandFailed):
    """Ray did not register every host: `missing` names them, so `up` can fetch their Ray logs."""

    def __init__(self, host: str, message: str, *, missing: list[str], hint: str) -> None:
        super().__init__(host, message, hint=hint)
        self.missing = missing

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "missing": self.missing}


class RayLauncher:
    """Ray head, then workers, then the server on the head (backend ray)."""

    name = "ray"
    up_playbook = "up"
    batch_unsupported: str | None = None

    def __init__(self, plan: Plan, placement: Placement) -> None:
        self.plan = plan
        self.placement = placement
        self.paths = Paths.of(plan.cluster)

    def node_hash(self, host: HostPlan, nic: str | None) -> str:
        """What shaped this host's Ray node: its environment (read only at `ray start`; start-up
        timeouts left out, they restart nothing) and arguments."""
        data = {"env": host.running_env(nic), "ray": list(host.ray_argv)}
        return digest(json.dumps(data, sort_keys=True))[:16]

    def node_command(self, host: HostPlan) -> str:
        """`ray start` in the plan's environment, its output in the Ray log (the tail on failure)."""
        p = self.paths
        start = shlex.join(host.ray_argv)
        return f"mkdir -p {q(p.procs)} && " + self.placement.run(
            f"rm -f {q(p.ray_hash)} && "
            f"(umask 077; : > {q(p.ray_log)}) && {{ timeout {RAY_START_TIMEOUT} {start} > {q(p.ray_log)} 2>&1 "
            f"|| {{ rc=$?; tail -n 25 {q(p.ray_log)} >&2; exit $rc; }}; }}"
        )

    def stop_nodes_command(self) -> str:
        return self.placement.run(ray_stop_command())

    def nodes_query(self, expected: dict[str, int], wait: float) -> str:
        """Ask Ray itself (a driver on this host) which nodes are alive with how many NPUs, polling up
        to `wait` seconds until `expected` (address -> NPUs) holds; prints `RAYWAIT {json}` lines.
        Callers load the environment first and decide where stderr goes.

        The driver ends with an explicit `ray.shutdown()` (the job ends cleanly in the GCS) and then
        `os._exit`: left to the interpreter, Ray's exit hook sleeps 0.5 s "for log messages" (this
        driver prints none) and module teardown takes longer still (docs/timing-history.md)."""
        plan = self.plan
        return (
            f"RAY_ADDRESS={q(plan.ray_address)} python3 -c {q(RAY_WAIT_SCRIPT)} "
            f"{q(json.dumps(expected))} {wait:g} {q(plan.runtime.ray_resource)}"
        )

    def snapshot_command(self) -> str | None:
        """Ray's node list right now, asked only if a GCS runs here (else nothing is printed): `up`
        starts it at once, in the background, so that on an unchanged cluster `ray-ready` finds the
        answer waiting instead of paying the Ray driver's start after the earlier stages."""
        expected = {h.address: len(h.devices) for h in self.plan.hosts}
        return (
            "pgrep -u \"$(id -u)\" -f '[g]cs_server' >/dev/null || exit 0\n"
            + self.placement.run(self.nodes_query(expected, 0))
            + " 2>/dev/null"
        )

    def server_command(self) -> str:
        """Start vLLM detached, log and pid file (0600) in the cluster folder; the key comes from its
        0600 file into VLLM_API_KEY, never through argv."""
        p, plan = self.paths, self.plan
        server = plan.head.process(VLLM_SERVER)
        env = dict(server.env) if server is not None else {"RAY_ADDRESS": plan.ray_address}
        exports = "".join(f"export {k}={q(v)} && " for k, v in env.items())
        return f"umask 077 && mkdir -p {q(p.procs)} && " + self.placement.run(
            exports
            + f'if [ -f {q(p.api_key)} ]; then VLLM_API_KEY="$(cat {q(p.api_key)})"; export VLLM_API_KEY; fi && '
            f'{{ echo "# ascend-deploy: vLLM started $(date -u +%FT%TZ)"; }} > {q(p.vllm_log)} || exit 1\n'
            + self.placement.detached(plan.vllm_argv(), p.vllm_log, p.vllm_pid)
        )

    def server_hash(self, api_key: str | None) -> str:
        return server_hash(self.plan, api_key)

    # the process seam: the node is `ray start`, the head's API server is `server_command`
    def start_command(self, host: HostPlan, proc: Process) -> str:
        return self.node_command(host) if proc.kind == RAY_NODE else self.server_command()

    def stop_command(self, host: HostPlan, proc: Process) -> str:
        return self.stop_nodes_command() if proc.kind == RAY_NODE else stop_vllm_command(self.paths.proc(proc.name))

    def group_hash(self, group: str, api_key: str | None) -> str:
        return self.server_hash(api_key)


def parse_nodes(stdout: str) -> dict[str, Any] | None:
    """The last `RAYWAIT {json}` line of a nodes query, or None."""
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith("RAYWAIT ")), None)
    return json.loads(line[8:]) if line else None
