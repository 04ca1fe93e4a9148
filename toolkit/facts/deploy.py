"""What a host runs of this cluster right now: markers, files, Ray and vLLM processes.

Read again at every stage (the runner's barriers), so `up` decides from the live host and
`down`/`status` never trust a local record. Process patterns carry a bracket (`[r]aylet`) so
`pgrep -f` does not match the shell that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.facts import Fact, Raw
from toolkit.remote import q

RAY_PATTERN = "[r]aylet/raylet|[g]cs_server"
VLLM_PATTERN = "[v]llm.entrypoints.openai.api_server|[v]llm serve"
WORKER_PATTERN = "[R]ayWorkerWrapper|[R]ayWorkerProc|[V]llmWorker|[E]ngineCore"


def state_dir(cluster: str) -> str:
    """Per-cluster folder on each host, relative to the SSH user's home."""
    return f".ascend-deploy/{cluster}"


@dataclass(frozen=True)
class Paths:
    """Where `up` keeps its files on a host (relative to HOME)."""

    dir: str

    @classmethod
    def of(cls, cluster: str) -> "Paths":
        return cls(state_dir(cluster))

    @property
    def env(self) -> str:
        return f"{self.dir}/env"

    @property
    def api_key(self) -> str:
        return f"{self.dir}/api-key"

    @property
    def ray_hash(self) -> str:
        return f"{self.dir}/ray.hash"

    @property
    def vllm_hash(self) -> str:
        return f"{self.dir}/vllm.hash"

    @property
    def vllm_pid(self) -> str:
        return f"{self.dir}/vllm.pid"

    @property
    def vllm_log(self) -> str:
        return f"{self.dir}/vllm.log"

    @property
    def ray_log(self) -> str:
        return f"{self.dir}/ray-start.log"


@dataclass(frozen=True)
class DeployState:
    ray_hash: str | None
    vllm_hash: str | None
    env_sha256: str | None
    key_sha256: str | None
    raylet_pids: tuple[int, ...]
    gcs_pids: tuple[int, ...]
    vllm_pid: int | None  # from the pid file, only if alive and really a vLLM server
    vllm_uptime_s: int | None
    stray_vllm_pids: tuple[int, ...]  # vLLM servers not in the pid file (lost state, manual starts)
    worker_pids: tuple[int, ...]  # Ray worker / engine processes holding NPUs

    @property
    def ray_running(self) -> bool:
        return bool(self.raylet_pids)

    @property
    def clean(self) -> bool:
        return not (self.raylet_pids or self.gcs_pids or self.vllm_pid or self.stray_vllm_pids or self.worker_pids)


def state_command(cluster: str) -> str:
    p = Paths.of(cluster)
    uid = '"$(id -u)"'
    return "; ".join([
        f"echo ray_hash=$(cat {q(p.ray_hash)} 2>/dev/null)",
        f"echo vllm_hash=$(cat {q(p.vllm_hash)} 2>/dev/null)",
        f"echo env_sha=$(sha256sum {q(p.env)} 2>/dev/null | cut -d' ' -f1)",
        f"echo key_sha=$(sha256sum {q(p.api_key)} 2>/dev/null | cut -d' ' -f1)",
        f"echo raylet=$(pgrep -u {uid} -f '[r]aylet/raylet' | tr '\\n' ' ')",
        f"echo gcs=$(pgrep -u {uid} -f '[g]cs_server' | tr '\\n' ' ')",
        f"pid=$(cat {q(p.vllm_pid)} 2>/dev/null); "
        "if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null && tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null | grep -q 'vllm'; "
        "then echo vllm=$pid $(ps -o etimes= -p $pid); else echo vllm=; fi",
        f"echo vllm_all=$(pgrep -u {uid} -f '{VLLM_PATTERN}' | tr '\\n' ' ')",
        f"echo workers=$(pgrep -u {uid} -f '{WORKER_PATTERN}' | tr '\\n' ' ')",
    ])


def _pids(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split() if t.isdigit())


def parse_state(raw: Raw) -> DeployState:
    values: dict[str, str] = {}
    for line in raw.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    vllm = values.get("vllm", "").split()
    vllm_pid = int(vllm[0]) if vllm and vllm[0].isdigit() else None
    uptime = int(vllm[1]) if len(vllm) > 1 and vllm[1].isdigit() else None
    all_vllm = _pids(values.get("vllm_all", ""))
    return DeployState(
        ray_hash=values.get("ray_hash") or None,
        vllm_hash=values.get("vllm_hash") or None,
        env_sha256=values.get("env_sha") or None,
        key_sha256=values.get("key_sha") or None,
        raylet_pids=_pids(values.get("raylet", "")),
        gcs_pids=_pids(values.get("gcs", "")),
        vllm_pid=vllm_pid,
        vllm_uptime_s=uptime,
        stray_vllm_pids=tuple(p for p in all_vllm if p != vllm_pid),
        worker_pids=_pids(values.get("workers", "")),
    )


def state_fact(cluster: str) -> Fact[DeployState]:
    return Fact("deploy_state", state_command(cluster), parse_state, setup=False)


def nic_command(address: str) -> str:
    """The interface that holds `address` (for nic: auto)."""
    return f"ip -o addr show 2>/dev/null | awk -v a={q(address)} '{{split($4, p, \"/\"); if (p[1] == a) print $2}}' | head -1"


def parse_nic(raw: Raw) -> str | None:
    text = raw.stdout.strip()
    return text.split("@")[0] if raw.exit_code == 0 and text else None


def nic_fact(address: str) -> Fact[str | None]:
    return Fact("nic", nic_command(address), parse_nic, setup=False)


def reach_command(address: str, port: int, timeout: int = 3) -> str:
    """Can this host open a TCP connection to address:port (bash's /dev/tcp, no extra tools)?"""
    return (
        f"if timeout {timeout} bash -c {q(f'exec 3<>/dev/tcp/{address}/{port}')} 2>/tmp/.ad-reach.$$; then echo open; "
        f"else echo \"closed $(tr '\\n' ' ' < /tmp/.ad-reach.$$ | sed 's/.*: //')\"; fi; rm -f /tmp/.ad-reach.$$"
    )


def parse_reach(raw: Raw) -> tuple[bool, str]:
    text = raw.stdout.strip()
    if text == "open":
        return True, ""
    reason = text[len("closed"):].strip() if text.startswith("closed") else text
    return False, reason or "timed out"


def reach_fact(address: str, port: int) -> Fact[tuple[bool, str]]:
    return Fact("reach", reach_command(address, port), parse_reach, setup=False)
