"""Host network facts for preflight: the route to each peer, TCP reachability, clock."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from toolkit.facts import Raw
from toolkit.transport.shell import q


def route_command(peers: list[str]) -> str:
    """One `ip -batch` for every peer: a process per host, not per peer."""
    if not peers:
        return "true"
    lines = "\\n".join(f"route get {p}" for p in peers)
    return f"printf '{lines}\\n' | ip -batch - 2>&1"


def parse_routes(raw: Raw) -> dict[str, str | None]:
    """`10.0.0.2 dev enp67s0f5 src 10.0.0.1 uid 0` lines -> {peer: dev}."""
    routes: dict[str, str | None] = {}
    for line in raw.stdout.splitlines():
        m = re.match(r"^\s*(?:local\s+)?([0-9a-fA-F.:]+)\s+(?:via\s+\S+\s+)?dev\s+(\S+)", line)
        if m:
            routes[m.group(1)] = m.group(2)
    return routes


@dataclass(frozen=True)
class Probe:
    target: str  # "ip:port"
    state: str  # open | refused (reachable, nothing listening) | timeout | unreachable | error
    retried: bool = False  # the first try timed out and this is the second's answer (a longer bound)

    @property
    def reachable(self) -> bool:
        return self.state in ("open", "refused")


PROBE_TIMEOUT_S = 3
#: a probe that times out is tried once more with this longer bound before it counts: on a loaded
#: host (128 simulated hosts on 2 cores) a 3 s connect timed out on 4 of 127 clean paths
RETRY_TIMEOUT_S = 10


def probe_command(targets: list[tuple[str, int]], timeout: int = PROBE_TIMEOUT_S, retry: int = RETRY_TIMEOUT_S) -> str:
    """TCP connect to each target in parallel: 'refused' still proves the path is open. A try that
    times out is repeated once with `retry` seconds; the line then says `retried`."""
    if not targets:
        return "true"
    parts = []
    for ip, port in targets:
        t = f"{ip}:{port}"
        connect = q(f"exec 3<>/dev/tcp/{ip}/{port}")
        parts.append(
            f"( err=$(timeout {timeout} bash -c {connect} 2>&1); rc=$?; r=; "
            f"if [ $rc = 124 ]; then r=' retried'; err=$(timeout {retry} bash -c {connect} 2>&1); rc=$?; fi; "
            f"if [ $rc = 0 ]; then s=open; elif [ $rc = 124 ]; then s=timeout; "
            "else case $err in *refused*) s=refused ;; *unreachable*|*'No route'*) s=unreachable ;; *) s=error ;; "
            "esac; fi; "
            f'echo {q(t)} "$s$r" ) &'
        )
    return "\n".join(parts) + "\nwait"


def parse_probes(raw: Raw) -> dict[str, Probe]:
    out = {}
    for line in raw.stdout.splitlines():
        parts = line.split()
        if len(parts) in (2, 3) and ":" in parts[0]:
            out[parts[0]] = Probe(parts[0], parts[1], retried=parts[2:] == ["retried"])
    return out


BUSY_FACTOR = 8  # runnable processes per CPU above which a timing is the scheduler's
LATENCY_SAMPLES = 4


@dataclass(frozen=True)
class Latency:
    """Wall ms of one cheap hccn_tool call, and of an empty bash started the same way just before:
    on a busy host both grow together, on a slow driver only the first does."""

    tool_ms: int
    shell_ms: int
    runnable: int = 0  # processes ready to run (procs_running in /proc/stat) when measured
    cpus: int = 1
    samples: int = 1  # measurements taken: repeated (bounded) while the host was busy

    @property
    def excess_ms(self) -> int:
        return self.tool_ms - self.shell_ms

    @property
    def host_busy(self) -> bool:
        """Far more runnable processes than CPUs: any timing is the scheduler's, not the tool's."""
        return self.runnable > BUSY_FACTOR * max(1, self.cpus)


def parse_latency(raw: Raw) -> Latency | None:
    """The first sample taken on a host that was not busy, else the last one (still busy)."""
    found = [
        Latency(*(int(p) for p in parts))
        for parts in (line.split() for line in raw.stdout.splitlines())
        if len(parts) == 4 and all(p.isdigit() for p in parts)
    ]
    if raw.exit_code != 0 or not found:
        return None
    chosen = next((s for s in found if not s.host_busy), found[-1])
    return replace(chosen, samples=len(found))


def latency_command(device: int) -> str:
    """Measure, and measure again (at most LATENCY_SAMPLES times, 0.25 s apart) while the host is
    CPU-starved: a starved moment is brief on a loaded machine, a slow driver is slow every time."""
    runnable = 'while read -r k v _; do [ "$k" = procs_running ] && r=$(( v > r ? v : r )); done < /proc/stat; '
    return (
        f"n=$(nproc); for i in $(seq {LATENCY_SAMPLES}); do "
        "r=0; " + runnable + "a=$(date +%s%N); bash -c : ; b=$(date +%s%N); "
        f"hccn_tool -i {int(device)} -link -g >/dev/null 2>&1; c=$(date +%s%N); "
        + runnable
        + "echo $(( (c - b) / 1000000 )) $(( (b - a) / 1000000 )) $r $n; "
        f"[ $r -le $(( {BUSY_FACTOR} * n )) ] && break; sleep 0.25; done"
    )
