"""The `dp` launcher (vLLM's own data parallel across hosts, no Ray; vllm-ascend's multi-node
recipes) and its one-host case `mp`: every host runs its planned vLLM process(es) with the same model
and flags; the head (rank 0) also serves the API, every other host adds `--headless
--data-parallel-start-rank R`. The workers start first, then the head (the recipes' order).

All ranks must agree, so a group shares one hash: a change on any host restarts every rank. Each
process has its own files (`proc/NAME.pid`, `.log`, `.hash`), so a host may run several."""

from __future__ import annotations

import json

from toolkit.facts.deploy import Paths
from toolkit.launch.base import Placement
from toolkit.launch.server import digest, stop_vllm_command
from toolkit.planner.plan import VLLM_RANK, HostPlan, Plan, Process
from toolkit.transport.shell import q


class DataParallelLauncher:
    """Every host's own vLLM process(es), workers (headless) first, then the head's API server."""

    up_playbook = "up-dp"

    def __init__(self, plan: Plan, placement: Placement) -> None:
        self.plan = plan
        self.placement = placement
        self.paths = Paths.of(plan.cluster)
        self.name = str(plan.launcher.value)
        #: why `generate` (an offline batch with vLLM's LLM API) does not run on this launcher
        self.batch_unsupported = (
            None
            if self.name == "mp"
            else "vLLM's offline data parallel runs an independent LLM per rank on its own share of the prompts "
            "(vLLM's data_parallel example); across hosts that is a program started on every host, which "
            "`generate` does not do yet. Send the batch through the served API (`ascend-deploy ask`, or any "
            "OpenAI client: the head spreads requests over every DP rank), or plan with serve.launcher: ray"
        )

    # the process seam: start, stop and compare any planned process of a host
    def start_command(self, host: HostPlan, proc: Process) -> str:
        """Start `proc` detached (log and pid file 0600 in proc/); one serving the API reads the key from
        its 0600 file into VLLM_API_KEY, never through argv."""
        p = self.paths
        f = p.proc(proc.name)
        key = (
            f'if [ -f {q(p.api_key)} ]; then VLLM_API_KEY="$(cat {q(p.api_key)})"; export VLLM_API_KEY; fi && '
            if proc.api
            else ""
        )
        exports = "".join(f"export {k}={q(v)} && " for k, v in proc.env.items())
        ranks = ", ".join(map(str, proc.ranks)) or "0"
        return f"umask 077 && mkdir -p {q(p.procs)} && " + self.placement.run(
            f"{key}{exports}"
            f'{{ echo "# ascend-deploy: vLLM ({self.name} rank(s) {ranks}) started $(date -u +%FT%TZ)"; }} '
            f"> {q(f.log)} || exit 1\n" + self.placement.detached(list(proc.argv), f.log, f.pid)
        )

    def stop_command(self, host: HostPlan, proc: Process) -> str:
        """Stop `proc` and any vLLM of this user left on the host (every rank restarts together)."""
        return stop_vllm_command(self.paths.proc(proc.name))

    def group_hash(self, group: str, api_key: str | None) -> str:
        """Every host's processes of `group` (and the key's digest): the same on every host, so a change
        anywhere restarts every rank. The key is not known on the workers; they record the hash without it."""
        data = {h.name: [list(p.argv) for p in h.processes if p.group == group] for h in self.plan.hosts}
        return digest(json.dumps({"ranks": data, "key": digest(api_key) if api_key else None}, sort_keys=True))[:16]

    # the seams the Ray-shaped steps and the snapshot ask (a dp "node" is the host's own rank)
    def rank_command(self, host: HostPlan) -> str:
        rank = host.process(VLLM_RANK)
        assert rank is not None, f"{host.name} runs no vLLM rank"
        return self.start_command(host, rank)

    def node_command(self, host: HostPlan) -> str:
        return self.rank_command(host)

    def node_hash(self, host: HostPlan, nic: str | None) -> str:
        return self.server_hash(None)

    def stop_nodes_command(self) -> str:
        return stop_vllm_command(self.paths.proc("vllm"))

    def nodes_query(self, expected: dict[str, int], wait: float) -> str:
        """No Ray: nothing to ask (the head's /metrics tells which engines answer)."""
        return "true"

    def snapshot_command(self) -> str | None:
        return None

    def server_command(self) -> str:
        return self.rank_command(self.plan.head)

    def server_hash(self, api_key: str | None) -> str:
        return self.group_hash("ranks", api_key)
