"""`down`: stop the deployed processes, vLLM and Ray on every host, remove the cluster's files,
verify nothing is left. Probes the live hosts: no local state is trusted (the head's record only
names what was started, so each process is stopped as its launcher stops it)."""

from __future__ import annotations

import time
from contextlib import ExitStack

from toolkit.api.context import ConnectFn, Options, make_executor, require_all_hosts
from toolkit.api.deployed import read_record, recorded_plan
from toolkit.api.reports import DownReport
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import EventSink, no_events
from toolkit.engine.lock import ClusterLocked, Held, cluster_lock
from toolkit.engine.registry import Shared
from toolkit.engine.runner import run_playbook
from toolkit.errors import HostError
from toolkit.steps import load_playbook


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
        record, problem = read_record(executor, inventory)  # what runs, to stop it process by process
        if problem:
            notes.append(problem)
        plan = recorded_plan(record) if record is not None else None
        before = (record.current or {}).get("hbm_before") if record is not None else None
        shared = Shared(plan=plan, hbm_before=before if isinstance(before, dict) else {})
        run = run_playbook(load_playbook("down"), inventory, executor, check=opts.check, shared=shared)
    report = DownReport(str(inventory.path), run, time.monotonic() - started, lock)
    report.notes.extend(notes)
    return report
