"""`down`: stop vLLM and Ray on every host, remove the cluster's files, verify nothing is left.
Probes the live hosts: no local state is trusted."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from toolkit.api.context import ConnectFn, Options, make_executor, require_all_hosts
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import EventSink, no_events
from toolkit.engine.lock import ClusterLocked, Held, cluster_lock
from toolkit.engine.runner import HostStatus, RunReport, run_playbook
from toolkit.errors import HostError
from toolkit.steps import load_playbook


@dataclass
class DownReport:
    inventory: str
    run: RunReport
    duration: float = 0.0
    lock: Held | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.run.ok

    def hosts(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for stage in self.run.stages:
            for name, h in stage.hosts.items():
                row = out.setdefault(name, {"stopped": [], "clean": None, "error": None})
                if h.status == HostStatus.CHANGED:
                    row["stopped"].append(stage.name)
                if stage.step == "deploy_clean" and h.status != HostStatus.FAILED and h.status != HostStatus.SKIPPED:
                    row["clean"] = h.data.get("clean")
                if h.error is not None and row["error"] is None:
                    row["error"] = f"[{stage.name}] {h.error.message}"
        return out

    def to_dict(self) -> dict[str, Any]:
        notes = self.notes + (self.lock.notes if self.lock else [])
        return {
            "ok": self.ok,
            "inventory": self.inventory,
            "duration": round(self.duration, 3),
            "hosts": self.hosts(),
            "notes": notes,
            "run": self.run.to_dict(),
        }


def down(
    inventory: Inventory, opts: Options, *, emit: EventSink = no_events, connect: ConnectFn | None = None
) -> DownReport:
    """Stop vLLM and Ray everywhere, remove the cluster's files, verify nothing is left."""
    require_all_hosts(opts, "down")
    started = time.monotonic()
    lock: Held | None = None
    notes: list[str] = []
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor, ExitStack() as held:
        if not opts.check:
            try:
                lock = held.enter_context(cluster_lock(executor, inventory.head, inventory.name, "down"))
            except ClusterLocked:
                raise
            except HostError as exc:  # an unreachable head must not stop the others from being cleaned
                notes.append(f"no cluster lock: the head is unreachable ({exc.message})")
        run = run_playbook(load_playbook("down"), inventory, executor, check=opts.check)
    report = DownReport(str(inventory.path), run, time.monotonic() - started, lock)
    report.notes.extend(notes)
    return report
