"""What a plan asks of each host's memory before anything starts: the share of the checkpoint its
ranks read while loading, and the shared memory (/dev/shm) its processes map. Pure: the
preflight multiplies the share by the checkpoint it finds on disk and compares with the host.

Shared memory, from vLLM's own buffers (vllm 0.32, the engine vllm-ascend runs on):
- `v1/executor/multiproc_executor.py`: each multiprocessing executor (one per DP rank whose
  workers are on this host) broadcasts scheduler output through a `MessageQueue` of 10 chunks of
  `VLLM_MQ_MAX_CHUNK_BYTES_MB` (16) MiB, and every worker answers through its own queue of
  10 x 24 MiB (`MessageQueue(1, 1)`, `distributed/device_communicators/shm_broadcast.py`);
- `distributed/parallel_state.py`: every worker's group coordinator keeps a 6 x 4 MiB broadcaster;
- a Ray node keeps its object store in /dev/shm when it fits (`--object-store-memory`), else falls
  back to /tmp ("This will harm performance").
TP 8 on one host therefore maps 160 + 8 x (240 + 24) MiB = 2.2 GiB: the vendor guide's
`--shm-size=1g` is too small for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from toolkit.planner.types import RAY_NODE, VLLM_RANK, VLLM_SERVER, Arg, HostPlan, Plan

MIB = 1 << 20
GIB = 1 << 30
#: vLLM's defaults (see the module docstring for the source lines)
EXECUTOR_QUEUE = 10 * 16 * MIB
WORKER_QUEUE = 10 * 24 * MIB
GROUP_BROADCASTER = 6 * 4 * MIB
#: the vendor guide's container shared memory (`docker run --shm-size=1g`)
VENDOR_SHM = GIB
LOAD_STRATEGY = "--safetensors-load-strategy"
#: vLLM's `--distributed-executor-backend` values whose workers talk through shared-memory queues
MULTIPROCESSING = ("mp",)


@dataclass(frozen=True)
class HostDemand:
    """One host's needs, each with the arithmetic that produced it (shown in the problem)."""

    host: str
    weight_share: float  # of the checkpoint on disk, read into this host's memory while loading
    weight_why: str
    shm_bytes: int
    shm_why: str


def _arg(argv: tuple[str, ...], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def load_strategy(args: tuple[Arg, ...]) -> str | None:
    for arg in args:
        if arg.flag == LOAD_STRATEGY and isinstance(arg.value, str):
            return arg.value
    return None


def shm_need(backend: str, host: HostPlan) -> tuple[int, str]:
    """Bytes of /dev/shm this host's processes map (`backend`: vLLM's distributed executor), and
    how that was added up."""
    parts: list[str] = []
    total = 0
    workers = len(host.devices) if host.processes else 0
    if backend in MULTIPROCESSING:
        executors = sum(max(1, len(p.ranks)) for p in host.processes if p.kind in (VLLM_RANK, VLLM_SERVER))
        if executors:
            total += executors * EXECUTOR_QUEUE
            parts.append(f"{executors} executor queue(s) x {EXECUTOR_QUEUE // MIB} MiB")
        if workers:
            total += workers * (WORKER_QUEUE + GROUP_BROADCASTER)
            parts.append(f"{workers} worker(s) x {(WORKER_QUEUE + GROUP_BROADCASTER) // MIB} MiB")
    elif workers:
        total += workers * GROUP_BROADCASTER
        parts.append(f"{workers} worker(s) x {GROUP_BROADCASTER // MIB} MiB")
    node = host.process(RAY_NODE)
    store = _arg(node.argv, "--object-store-memory") if node else None
    if store and store.isdigit():
        total += int(store)
        parts.append(f"Ray object store {int(store) / GIB:.2f} GiB")
    return total, " + ".join(parts) or "no process of the plan maps shared memory here"


def weight_share(tp: int, pp: int, args: tuple[Arg, ...], host: HostPlan) -> tuple[float, str]:
    """The part of the checkpoint this host reads: its devices' share of one model copy (TP x PP
    split it; DP ranks on one host map the same files), or all of it under a prefetch strategy."""
    if not host.devices:
        return 0.0, "no device of the plan here"
    if load_strategy(args) == "prefetch":
        return 1.0, f"{LOAD_STRATEGY} prefetch reads the whole checkpoint into memory"
    split = tp * pp
    share = min(1.0, len(host.devices) / split)
    return share, f"{len(host.devices)} device(s) of one copy split {split} ways (TP x PP)"


def host_demands(plan: Plan) -> dict[str, HostDemand]:
    out = {}
    for host in plan.hosts:
        share, why = weight_share(int(plan.tp.value), int(plan.pp.value), plan.vllm_args, host)
        shm, shm_why = shm_need(str(plan.backend.value), host)
        out[host.name] = HostDemand(host.name, share, why, shm, shm_why)
    return out


def container_shm(backend: str, hosts: tuple[HostPlan, ...]) -> tuple[str, str]:
    """A container `--shm-size` that holds the largest host's need (whole GiB, at least the
    vendor's 1g), and why."""
    needs = [shm_need(backend, h) for h in hosts]
    need, why = max(needs, default=(0, ""), key=lambda n: n[0])
    size = max(1, math.ceil(need / GIB))
    if need <= VENDOR_SHM:
        return f"{size}g", "default: the vendor guide's 1g (holds this plan's " + f"{need / GIB:.2f} GiB: {why})"
    return f"{size}g", f"derived: the vendor guide's 1g is too small; this plan maps {need / GIB:.2f} GiB ({why})"


def size_bytes(text: str) -> int | None:
    """`1g`, `512m`, `2048k`, `1073741824` -> bytes (None when it is not a size)."""
    t = text.strip().lower().rstrip("b")
    mult = {"k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}.get(t[-1:], 1)
    digits = t[:-1] if t[-1:] in "kmgt" else t
    try:
        return int(float(digits) * mult)
    except ValueError:
        return None


@dataclass(frozen=True)
class PlanNeeds:
    """What the preflight compares each host with: the per-host demands, the CANN the deployment
    runs (None: whatever each host has installed), and the container's shared memory, if any."""

    hosts: dict[str, HostDemand]
    cann: str | None
    cann_origin: str
    container_shm: int | None = None  # bytes of the container's --shm-size
    container_shm_origin: str = ""
    unplanned: str | None = None  # why there are no per-host demands (the inventory does not plan)
    storage: str = "local"  # model.storage: where the plan says the weights live


def plan_needs(plan: Plan) -> PlanNeeds:
    shm, shm_origin = None, ""
    if plan.container is not None:
        arg = next((a for a in plan.container.args if a.what == "shared memory"), None)
        if arg is not None:
            shm, shm_origin = size_bytes(arg.argv[-1]), f"--shm-size {arg.argv[-1]} ({arg.origin})"
    cann = plan.runtime.cann
    where = "image" if plan.container is not None else "hosts"
    return PlanNeeds(
        host_demands(plan),
        cann,
        f"runtime {plan.runtime.name} ({where})" if cann else "the CANN installed on the host",
        shm,
        shm_origin,
        storage="shared" if any(a.flag == LOAD_STRATEGY for a in plan.vllm_args) else "local",
    )


def unplanned_needs(why: str) -> PlanNeeds:
    """No plan (yet): the driver is still checked against the CANN the hosts have installed."""
    return PlanNeeds({}, None, "the CANN installed on the host", unplanned=why)
