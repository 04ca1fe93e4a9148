"""The `dp` launcher (vLLM's own data parallel across hosts, no Ray; vllm-ascend's multi-node
recipes) and its one-host case `mp`: every host runs one `vllm serve` process with the same model
and flags; the head (rank 0) also serves the API, every other host adds `--headless
--data-parallel-start-rank R`. The workers start first, then the head (the recipes' order).

All ranks must agree, so they share one hash: a change on any host restarts every rank."""

from __future__ import annotations

import json

from toolkit.facts.deploy import Paths
from toolkit.launch.base import Placement
from toolkit.launch.server import digest, stop_vllm_command
from toolkit.planner.plan import HostPlan, Plan
from toolkit.transport.shell import q


class DataParallelLauncher:
    """One vLLM process per host, workers (headless) first, then the head's API server."""

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

    # the node seam: a dp "node" is the host's own vLLM process
    def node_command(self, host: HostPlan) -> str:
        return self.rank_command(host)

    def node_hash(self, host: HostPlan, nic: str | None) -> str:
        return self.server_hash(None)

    def stop_nodes_command(self) -> str:
        return stop_vllm_command(self.paths)

    def nodes_query(self, expected: dict[str, int], wait: float) -> str:
        """No Ray: nothing to ask (the head's /metrics tells which engines answer)."""
        return "true"

    def snapshot_command(self) -> str | None:
        return None

    def rank_command(self, host: HostPlan) -> str:
        """Start this host's vLLM process detached (log and pid file 0600 in the cluster folder);
        the head's reads the API key from its 0600 file into VLLM_API_KEY, never through argv."""
        p = self.paths
        key = (
            f'if [ -f {q(p.api_key)} ]; then VLLM_API_KEY="$(cat {q(p.api_key)})"; export VLLM_API_KEY; fi && '
            if host.role == "head"
            else ""
        )
        ranks = ", ".join(map(str, host.ranks)) or "0"
        return f"umask 077 && mkdir -p {q(p.procs)} && " + self.placement.run(
            f"{key}"
            f'{{ echo "# ascend-deploy: vLLM ({self.name} rank(s) {ranks}) started $(date -u +%FT%TZ)"; }} '
            f"> {q(p.vllm_log)} || exit 1\n" + self.placement.detached(list(host.server_argv), p.vllm_log, p.vllm_pid)
        )

    def server_command(self) -> str:
        return self.rank_command(self.plan.head)

    def server_hash(self, api_key: str | None) -> str:
        """Every host's command (and the key's digest): the same on every host, so a change anywhere
        restarts every rank. The key is not known on the workers; they record the hash without it."""
        data = {h.name: list(h.server_argv) for h in self.plan.hosts}
        return digest(json.dumps({"ranks": data, "key": digest(api_key) if api_key else None}, sort_keys=True))[:16]
