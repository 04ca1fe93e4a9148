"""`logs`: every host's logs and diagnostics in one local archive, or the tails of the logs."""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path
from typing import Any

from toolkit.api.context import ConnectFn, Options, make_executor
from toolkit.api.files import LogArchive, ensure_out_dir
from toolkit.api.reports import LogsReport
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import EventSink, no_events
from toolkit.engine.runner import HostStatus, run_playbook
from toolkit.steps import load_playbook


def logs(
    inventory: Inventory,
    opts: Options,
    *,
    tail: int | None = None,
    out_dir: Path = Path("."),
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> LogsReport:
    """Collect every host's logs into one local tar.gz, or (`tail`) the last lines of each."""
    started = time.monotonic()
    if not tail:
        ensure_out_dir(out_dir)
    name = "logs-tail" if tail else "logs"
    params = {"logs_tail": {"lines": tail}} if tail else None
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        run = run_playbook(load_playbook(name), inventory, executor, params=params)
    stage = run.stages[0]
    hosts: dict[str, Any] = {}
    tails: dict[str, dict[str, list[str]]] = {}
    bundle = LogArchive()
    for host, h in stage.hosts.items():
        if h.status == HostStatus.FAILED:
            hosts[host] = {"error": h.error.message if h.error else "failed"}
        elif tail:
            tails[host] = h.data.get("tails", {})
            hosts[host] = {
                "error": None,
                "files": len(tails[host]),
                "missing": [
                    f for f in h.data.get("looked_for", []) if not any(fnmatch.fnmatch(t, f) for t in tails[host])
                ],
            }
        else:
            hosts[host] = {"error": None, "files": bundle.add_host(host, h.data.get("archive", b""))}
    archive = None if tail else str(bundle.write(out_dir, inventory.name))
    return LogsReport(str(inventory.path), archive, hosts, tails, time.monotonic() - started)
