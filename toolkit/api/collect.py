"""`logs`: every host's logs and diagnostics in one local archive, or the tails of the logs."""

from __future__ import annotations

import io
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.api.context import ConnectFn, Options, make_executor
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import EventSink, no_events
from toolkit.engine.runner import HostStatus, run_playbook
from toolkit.errors import BadInput
from toolkit.steps import load_playbook


@dataclass
class LogsReport:
    inventory: str
    archive: str | None
    hosts: dict[str, Any]
    tails: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return all(v.get("error") is None for v in self.hosts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "inventory": self.inventory,
            "archive": self.archive,
            "hosts": self.hosts,
            "tails": self.tails,
            "duration": round(self.duration, 3),
        }


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
    if not tail:  # before collecting anything: a bad --out fails in a second, not after the download
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(
                f"--out {out_dir}: cannot create the folder ({exc.strerror})", hint="pick a writable folder"
            ) from None
        if not out_dir.is_dir() or not os.access(out_dir, os.W_OK):
            raise BadInput(f"--out {out_dir}: not a writable folder", hint="pick a writable folder")
    name = "logs-tail" if tail else "logs"
    params = {"logs_tail": {"lines": tail}} if tail else None
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        run = run_playbook(load_playbook(name), inventory, executor, params=params)
    stage = run.stages[0]
    hosts: dict[str, Any] = {}
    tails: dict[str, dict[str, list[str]]] = {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as bundle:
        for host, h in stage.hosts.items():
            if h.status == HostStatus.FAILED:
                hosts[host] = {"error": h.error.message if h.error else "failed"}
                continue
            if tail:
                tails[host] = h.data.get("tails", {})
                hosts[host] = {
                    "error": None,
                    "files": len(tails[host]),
                    "missing": [f for f in h.data.get("looked_for", []) if f not in tails[host]],
                }
                continue
            count = 0
            with tarfile.open(fileobj=io.BytesIO(h.data.get("archive", b"")), mode="r:gz") as part:
                for member in part.getmembers():
                    if not member.isfile():
                        continue
                    data = part.extractfile(member)
                    member.name = f"{host}/{member.name.lstrip('./')}"
                    bundle.addfile(member, data)
                    count += 1
            hosts[host] = {"error": None, "files": count}
    archive = None
    if not tail:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = out_dir / f"ascend-deploy-logs-{inventory.name}-{stamp}.tar.gz"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getvalue())
        archive = str(path)
    return LogsReport(str(inventory.path), archive, hosts, tails, time.monotonic() - started)
