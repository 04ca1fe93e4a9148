"""The preflight rules: facts of every host -> problems. Pure (no I/O). `evaluate` runs every rule;
the rules live by subject (cards.py, hostnet.py, consistency.py) over `view.HostView`.

One root cause gives one problem: a card whose link is down is not also reported for its
health, LLDP or pings; a lossy path is one problem per pair of cards, not one per direction;
a version or TLS setting that differs is reported on the hosts or cards in the minority.
Hints follow the reference's "first checks" table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.checks import Problem
from toolkit.config.inventory import Inventory
from toolkit.facts.net import BUSY_FACTOR
from toolkit.planner.types import PortUse

if TYPE_CHECKING:
    pass

from toolkit.checks.cards import (
    device_problems,
    hccn_conf_problems,
    npu_memory_problems,
    npu_problems,
    tls_problems,
)
from toolkit.checks.consistency import (  # noqa: F401
    clock_problems,
    model_consistency_problems,
    model_disk_problems,
    runtime_problems,
    version_problems,
    weights_problems,
)
from toolkit.checks.hostnet import bridge_or_tunnel, host_network_problems, ping_problems, port_problems  # noqa: F401
from toolkit.checks.view import HostView, device_ok  # noqa: F401  (kept importable from here)

TOOL_LATENCY_LIMIT_MS = 1000


def tool_latency_findings(v: HostView) -> list[Problem]:
    """A driver slow to answer (check `tool-latency`, a problem), or, when every sample was taken on a
    CPU-starved host, the same timing left unjudged (check `tool-latency-unjudged`, a warning)."""
    latency = v.facts.get("tool_latency")
    if latency is None or latency.excess_ms <= TOOL_LATENCY_LIMIT_MS:
        return []
    if latency.tool_ms <= 10 * max(1, latency.shell_ms):  # everything is slow there, not the driver
        return []
    observed = f"hccn_tool answers in {latency.tool_ms} ms (an empty shell starts in {latency.shell_ms} ms)"
    if latency.host_busy:
        return [
            Problem(
                v.host.name,
                None,
                "tool-latency-unjudged",
                f"{observed}, but {latency.runnable} processes were runnable on {latency.cpus} CPUs "
                f"in each of {latency.samples} samples",
                f"a host not CPU-starved (at most {BUSY_FACTOR} runnable per CPU) to judge the driver",
                "run check-net again when the host is idle (`uptime` there); if it stays slow, check dmesg and npu-smi",
            )
        ]
    return [
        Problem(
            v.host.name,
            None,
            "tool-latency",
            observed,
            f"under {TOOL_LATENCY_LIMIT_MS} ms",
            "the NPU driver is slow to answer; check dmesg and the driver (npu-smi info) before deploying",
        )
    ]


def evaluate(inventory: Inventory, views: list[HostView], ports: tuple[PortUse, ...] = ()) -> list[Problem]:
    """Every problem the facts show; `ports`: what the deployment will bind (checked free)."""
    problems: list[Problem] = []
    reachable = [v for v in views if v.data is not None]
    for v in views:
        if v.data is None:
            err = v.error
            problems.append(
                Problem(
                    v.host.name,
                    None,
                    "ssh",
                    getattr(err, "message", str(err)),
                    "reachable over SSH",
                    getattr(err, "hint", None)
                    or "check that the host is up and sshd runs; the other hosts were still checked",
                )
            )
    for v in reachable:
        problems += npu_problems(inventory, v)
        problems += device_problems(v)
        problems += npu_memory_problems(v)
        problems += hccn_conf_problems(v)
        problems += host_network_problems(inventory, v)
        problems += model_disk_problems(inventory, v)
        problems += port_problems(v, ports)
        problems += [p for p in tool_latency_findings(v) if p.check == "tool-latency"]
    problems += tls_problems(reachable)
    problems += version_problems(reachable)
    weights = weights_problems(reachable)
    problems += weights  # one root cause: a host whose checkpoint differs is not also named for config.json
    problems += [p for p in model_consistency_problems(inventory, reachable) if p.host not in {w.host for w in weights}]
    problems += clock_problems(reachable)
    problems += ping_problems(reachable)
    return problems
