"""What loading needs of each host, checked before a start: RAM for the weights its ranks read,
/dev/shm (or the container's --shm-size) for the queues its processes map, and a driver the CANN
in use supports. Each is one problem with the numbers; an unknown driver pairing is a warning."""

from __future__ import annotations

from toolkit.checks import Problem
from toolkit.checks import driver as compat
from toolkit.checks.view import HostView
from toolkit.planner.demand import GIB, PlanNeeds

#: what a host keeps besides the weights while loading (the OS, the runtime's own allocations);
#: a share of the RAM, never a made-up model number
RAM_HEADROOM = 0.10


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def host_memory_problems(needs: PlanNeeds, v: HostView) -> list[Problem]:
    demand = needs.hosts.get(v.host.name)
    model = v.facts.get("model")
    available = v.facts.get("mem_available_mib")
    if demand is None or not demand.weight_share or model is None or model.weights_bytes is None or available is None:
        return []
    need = model.weights_bytes * demand.weight_share
    # what a running deployment (vLLM, Ray) holds comes back when the start replaces it (an upgrade's
    # staging, a re-run of `up`), and nothing loads when it stays: counted as available
    held = (v.facts.get("deployment_rss_mib") or 0) * (1 << 20)
    have = available * (1 << 20) + held
    total = (v.facts.get("memory_mib") or 0) * (1 << 20)
    if need <= have - total * RAM_HEADROOM:
        return []
    return [
        Problem(
            v.host.name,
            None,
            "host-memory",
            f"{_gib(have)} of RAM available"
            + (f" (of {_gib(total)})" if total else "")
            + (f", {_gib(held)} of it held by the running deployment" if held else ""),
            f"at least {_gib(need + total * RAM_HEADROOM)}: {_gib(need)} of weights ({demand.weight_why}, of "
            f"{_gib(model.weights_bytes)} in {model.weight_files} file(s)) + {RAM_HEADROOM:.0%} headroom",
            "free memory on the host (other jobs, page cache of other models: `free -g`, `ps aux --sort=-rss`), "
            "or spread the model over more hosts; loading beyond RAM swaps or is killed by the OOM killer",
        )
    ]


def shm_problems(needs: PlanNeeds, v: HostView) -> list[Problem]:
    """/dev/shm (or, in a container, its --shm-size) against what the host's processes map."""
    demand = needs.hosts.get(v.host.name)
    if demand is None or demand.shm_bytes == 0:
        return []
    size = max(1, -(-demand.shm_bytes // GIB))
    if needs.container_shm is not None:
        have = needs.container_shm
        observed = f"the container's {needs.container_shm_origin}"
        fix = f"set container.shm_size to {size}g or more (or leave it unset: the plan sizes it)"
    else:
        shm = v.facts.get("shm")
        if shm is None:
            return []
        have = shm.size_bytes
        observed = f"/dev/shm is {_gib(shm.size_bytes)} ({_gib(shm.available_bytes)} free)"
        fix = f"grow it: `mount -o remount,size={size}G /dev/shm` (and in /etc/fstab)"
    if have >= demand.shm_bytes:
        return []
    return [
        Problem(
            v.host.name,
            None,
            "shm",
            observed,
            f"at least {_gib(demand.shm_bytes)} ({demand.shm_why})",
            fix + "; workers that cannot map their queues die with 'Bus error'",
        )
    ]


def driver_findings(needs: PlanNeeds, v: HostView, installed: str | None) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings): the host's driver against the CANN the deployment runs: the runtime
    profile's, else `installed` (what most hosts have: a host that differs is the versions check's)."""
    driver = v.facts.get("driver")
    cann = needs.cann or installed
    if not driver or not cann:
        return [], []
    verdict = compat.judge(str(driver), str(cann))
    if verdict.known:
        return [], []
    finding = Problem(
        v.host.name,
        None,
        "driver",
        f"driver {driver} (/usr/local/Ascend/driver/version.info) with CANN {cann} ({needs.cann_origin})",
        f"{verdict.wanted} ({verdict.source})",
        "install an Ascend HDK (driver + firmware) release the CANN supports, or run a runtime whose CANN supports "
        "this driver (`runtime:`, or another image)"
        if not verdict.ok
        else "the vendor's notes do not list this pairing: it may work; if the start fails in the driver "
        "(rtSetDevice, aclInit), install a listed HDK release",
    )
    return ([finding], []) if not verdict.ok else ([], [finding])


def storage_warnings(needs: PlanNeeds, v: HostView) -> list[Problem]:
    """The model folder's file system against where the plan says the weights are (a warning: both work)."""
    st = v.facts.get("weights")
    if st is None or not st.exists or needs.unplanned:
        return []
    if st.shared_storage and needs.storage == "local":
        return [
            Problem(
                v.host.name,
                None,
                "storage",
                f"{st.path} is on shared storage ({st.fstype})",
                "the weights on local disk (model.storage: local)",
                "every rank of every host reads it at load time: `ascend-deploy weights sync` it to local disk, or "
                "set model.storage: shared (vLLM then prefetches it where the runtime can)",
            )
        ]
    if not st.shared_storage and needs.storage == "shared":
        return [
            Problem(
                v.host.name,
                None,
                "storage",
                f"{st.path} is on {st.fstype or 'a local file system'}",
                "shared storage (model.storage: shared)",
                "set model.storage: local (prefetching a local disk only costs RAM)",
            )
        ]
    return []
