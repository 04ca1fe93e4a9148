"""What a host runs of this cluster right now: markers, files, Ray and vLLM processes.

Read again at every stage (the runner's barriers), so `up` decides from the live host and
`down`/`status` never trust a local record. Process patterns carry a bracket (`[r]aylet`) so
`pgrep -f` does not match the shell that runs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from toolkit.facts import Fact, Raw
from toolkit.transport.shell import q

RAY_PATTERN = "[r]aylet/raylet|[g]cs_server"
VLLM_PATTERN = "[v]llm.entrypoints.openai.api_server|[v]llm serve"
WORKER_PATTERN = "[R]ayWorkerWrapper|[R]ayWorkerProc|[V]llmWorker|[E]ngineCore|[V]LLM::"
#: vLLM's own processes besides the server (not Ray's): engines, workers and, titled `VLLM::NAME`
#: by vLLM, the API server and DP coordinator processes of a data-parallel head. Stopped with it.
VLLM_ENGINE_PATTERN = "[V]llmWorker|[E]ngineCore|[V]LLM::"
#: A `ray start` still in flight (e.g. its `up` was interrupted: the host finishes it on its own).
STARTER_PATTERN = "[r]ay start"
#: read only while a deployment starts (the engines' handshake, HCCL's link setup): a new value is
#: written to the env file and applies at the next start, but restarts nothing that runs
START_ONLY_VARS = ("VLLM_ENGINE_READY_TIMEOUT_S", "HCCL_CONNECT_TIMEOUT")
START_ONLY_GREP = "^export (" + "|".join(START_ONLY_VARS) + ")="


def state_dir(cluster: str) -> str:
    """Per-cluster folder on each host, relative to the SSH user's home."""
    return f".ascend-deploy/{cluster}"


@dataclass(frozen=True)
class ProcFiles:
    """One planned process's files on its host: its pid, its log, and the hash of what shaped it."""

    pid: str
    log: str
    hash: str


@dataclass(frozen=True)
class Paths:
    """Where `up` keeps its files on a host (relative to HOME): the env and key files, the record, and
    per process (`proc/NAME.pid`, `.log`, `.hash`, NAME the plan's process name)."""

    dir: str

    @classmethod
    def of(cls, cluster: str) -> "Paths":
        return cls(state_dir(cluster))

    @property
    def procs(self) -> str:
        """The processes' folder."""
        return f"{self.dir}/proc"

    def proc(self, name: str) -> ProcFiles:
        base = f"{self.procs}/{name}"
        return ProcFiles(f"{base}.pid", f"{base}.log", f"{base}.hash")

    @property
    def env(self) -> str:
        return f"{self.dir}/env"

    @property
    def api_key(self) -> str:
        return f"{self.dir}/api-key"

    # the files of the built-in launchers' processes ("ray-node", and "vllm": a rank or the Ray head's server)
    @property
    def ray_hash(self) -> str:
        return self.proc("ray-node").hash

    @property
    def vllm_hash(self) -> str:
        return self.proc("vllm").hash

    @property
    def vllm_pid(self) -> str:
        return self.proc("vllm").pid

    @property
    def vllm_log(self) -> str:
        return self.proc("vllm").log

    @property
    def ray_log(self) -> str:
        """`ray start`'s own output (the node's logs are Ray's, under its temp dir)."""
        return self.proc("ray-node").log

    @property
    def record(self) -> str:
        """The deployment record (head only): the applied plan, the inventory, and the history."""
        return f"{self.dir}/deployed.json"

    @property
    def engine(self) -> str:
        """The container engine `up` found on this host (container runtime, engine auto)."""
        return f"{self.dir}/container-engine"


@dataclass(frozen=True)
class ProcState:
    """One planned process as its host shows it: its pid while alive (from its pid file, and found
    running), how long it has run, and the hash of the settings it was started with."""

    pid: int | None
    uptime_s: int | None
    hash: str | None
    args: str = ""

    @property
    def alive(self) -> bool:
        return self.pid is not None


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
    starter_pids: tuple[int, ...] = ()  # `ray start` commands still running
    env_run_sha256: str | None = None  # of the env file without START_ONLY_VARS
    procs: Mapping[str, ProcState] = field(default_factory=dict)  # every process with files in proc/, by name

    def proc(self, name: str) -> ProcState:
        """The process `name` (the plan's name) as found here (no files: not running, no hash)."""
        return self.procs.get(name) or ProcState(None, None, None)

    @property
    def ray_running(self) -> bool:
        return bool(self.raylet_pids)

    @property
    def vllm_pids(self) -> list[int]:
        """Every vLLM server of this user here: the recorded one, then strays."""
        return ([self.vllm_pid] if self.vllm_pid else []) + list(self.stray_vllm_pids)

    @property
    def vllm_left(self) -> bool:
        """A server, or the engine a dead one left holding the NPUs: what `stop_vllm_command` ends.
        One definition for `up` (before a start) and `down`, so the two cannot drift apart."""
        return bool(self.vllm_pids or self.worker_pids)

    @property
    def ray_pids(self) -> tuple[int, ...]:
        """Every Ray process of this user here (raylet, GCS, workers/engines, `ray start`): what `ray stop` ends."""
        return self.raylet_pids + self.gcs_pids + self.worker_pids + self.starter_pids

    @property
    def clean(self) -> bool:
        return not (self.vllm_left or self.ray_pids)


def state_command(cluster: str) -> str:
    """Every process's files (`proc/NAME.hash`, `proc/NAME.pid`), the env and key files' digests, then
    ONE process listing filtered on the host (every pattern, plus the pids in the pid files). It runs
    at every stage barrier, so it is kept to a few processes (shell builtins read the files): one pgrep
    per pattern and a file read per marker made it 70 ms per stage on a busy host, about 15 ms now."""
    p = Paths.of(cluster)
    pattern = "|".join((RAY_PATTERN, VLLM_PATTERN, WORKER_PATTERN, STARTER_PATTERN))
    procs = q(p.procs)
    return "; ".join(
        [
            "pids=x",
            f'for f in {procs}/*.hash {procs}/*.pid; do [ -r "$f" ] || continue; v=; read -r v < "$f"; '
            'n=${f##*/}; echo "${n##*.} ${n%.*} $v"; '
            'case "$n" in *.pid) case "$v" in ""|*[!0-9]*) ;; *) pids="$pids|$v";; esac;; esac; done',
            f'for f in {q(p.env)} {q(p.api_key)}; do [ -r "$f" ] && sha256sum "$f"; done 2>/dev/null | sed \'s/^/sha '
            "/'",
            # the env file without the start-up-only timeouts: what restart decisions compare
            f"[ -r {q(p.env)} ] && grep -vE {q(START_ONLY_GREP)} {q(p.env)} | sha256sum "
            "| sed 's/ .*/  env-run/;s/^/sha /'",
            f'ps -ww -u "$(id -u)" -o pid=,etimes=,args= 2>/dev/null | grep -E "^ *($pids) |{pattern}" | cut -c1-400 | '
            "sed 's/^ */proc /'",
            "true",
        ]
    )


def _pids(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split() if t.isdigit())


_RAYLET = re.compile(r"raylet/raylet")
_GCS = re.compile(r"gcs_server")
_VLLM = re.compile(VLLM_PATTERN.replace("[", "").replace("]", ""))
_WORKER = re.compile(WORKER_PATTERN.replace("[", "").replace("]", ""))
_STARTER = re.compile(STARTER_PATTERN.replace("[", "").replace("]", ""))


def is_deployment_process(args: str) -> bool:
    """A vLLM server or engine, or a Ray process: what a deployment of this toolkit runs."""
    return bool(_VLLM.search(args) or _WORKER.search(args) or _RAYLET.search(args) or _GCS.search(args))


#: every process's pid, resident memory (kB) and command line: what a running deployment holds of RAM,
#: and who holds a device npu-smi lists a process on (one `ps` for both: two facts parse it)
PS_COMMAND = "ps -eo pid=,rss=,args= 2>/dev/null | cut -c1-400"


def _ps_rows(raw: Raw) -> Iterator[tuple[int, int, str]]:
    for line in raw.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            yield int(parts[0]), int(parts[1]), parts[2] if len(parts) > 2 else ""


def parse_deployment_rss_mib(raw: Raw) -> int:
    """The RAM (MiB) the host's deployment processes (vLLM, Ray; any user, in a container too) hold:
    a start that replaces them has it back before it loads."""
    return sum(rss for _pid, rss, args in _ps_rows(raw) if is_deployment_process(args)) // 1024


def parse_commands(raw: Raw) -> dict[int, str]:
    """pid -> command line of every process (`PS_COMMAND`)."""
    return {pid: args for pid, _rss, args in _ps_rows(raw)}


def parse_state(raw: Raw) -> DeployState:
    """Process files and processes from `state_command`'s output (lines `hash NAME VALUE`, `pid NAME
    PID`, `sha HEX PATH`, `proc PID ETIMES ARGS`). A pid file's process counts only while it runs (the
    "vllm" one only if it is a vLLM: a recycled pid is not the server)."""
    hashes: dict[str, str] = {}
    pidfiles: dict[str, int] = {}
    shas: dict[str, str] = {}
    procs: list[tuple[int, int | None, str]] = []
    for line in raw.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "proc":
            parts = rest.split(None, 2)
            if len(parts) >= 2 and parts[0].isdigit():
                procs.append(
                    (int(parts[0]), int(parts[1]) if parts[1].isdigit() else None, parts[2] if len(parts) > 2 else "")
                )
        elif kind == "sha":
            parts = rest.split(None, 1)
            if len(parts) == 2:
                shas[parts[1].strip().rsplit("/", 1)[-1]] = parts[0]
        elif kind in ("hash", "pid"):
            name, _, value = rest.strip().partition(" ")
            if kind == "hash" and value.strip():
                hashes[name] = value.strip()
            elif kind == "pid" and value.strip().isdigit():
                pidfiles[name] = int(value.strip())
    running = {pid: (etimes, args) for pid, etimes, args in procs}
    states: dict[str, ProcState] = {}
    for name in sorted(set(hashes) | set(pidfiles)):
        pid = pidfiles.get(name)
        etimes, args = running.get(pid, (None, "")) if pid is not None else (None, "")
        alive = pid in running and (name != "vllm" or "vllm" in args.lower())
        states[name] = ProcState(pid if alive else None, etimes if alive else None, hashes.get(name), args)
    vllm = states.get("vllm") or ProcState(None, None, None)
    owned = {st.pid for st in states.values() if st.pid is not None}

    def matching(rx: re.Pattern[str]) -> tuple[int, ...]:
        return tuple(pid for pid, _e, args in procs if rx.search(args))

    return DeployState(
        ray_hash=hashes.get("ray-node"),
        vllm_hash=hashes.get("vllm"),
        env_sha256=shas.get("env"),
        env_run_sha256=shas.get("env-run"),
        key_sha256=shas.get("api-key"),
        raylet_pids=matching(_RAYLET),
        gcs_pids=matching(_GCS),
        vllm_pid=vllm.pid,
        vllm_uptime_s=vllm.uptime_s,
        stray_vllm_pids=tuple(p for p in matching(_VLLM) if p not in owned),
        worker_pids=matching(_WORKER),
        starter_pids=matching(_STARTER),
        procs=states,
    )


def state_fact(cluster: str) -> Fact[DeployState]:
    return Fact("deploy_state", state_command(cluster), parse_state, setup=False)


def nic_command(address: str) -> str:
    """The interface that holds `address` (for nic: auto)."""
    return (
        f"ip -o addr show 2>/dev/null | awk -v a={q(address)} '{{split($4, p, \"/\"); if (p[1] == a) print $2}}' | "
        "head -1"
    )


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
    reason = text[len("closed") :].strip() if text.startswith("closed") else text
    return False, reason or "timed out"


def reach_fact(address: str, port: int) -> Fact[tuple[bool, str]]:
    return Fact("reach", reach_command(address, port), parse_reach, setup=False)
