"""The control machine's memory of measured cold starts: one JSON line per `up` that (re)started the
server, with the model, layout, hardware and runtime it ran and the phases its engine logged.
`plan` predicts the next start from the closest one (`planner.startup`).

Where: `$XDG_STATE_HOME/ascend-deploy/startups.jsonl` (default `~/.local/state/...`), or the file
`ASCEND_DEPLOY_STARTUPS` names. Bounded (the newest KEEP lines); a line that does not parse is skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

KEEP = 500
ENV = "ASCEND_DEPLOY_STARTUPS"


def history_path() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "ascend-deploy" / "startups.jsonl"


def read_startups(path: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded start, oldest first ([] when there is no file or it cannot be read)."""
    target = path or history_path()
    try:
        text = target.read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("ready_s"), (int, float)):
            out.append(item)
    return out


def append_startup(record: dict[str, Any], path: Path | None = None) -> Path:
    """Add one start (0600, written whole and renamed: a concurrent reader never sees half a line)."""
    target = path or history_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, sort_keys=True) for r in read_startups(target)[-(KEEP - 1) :]]
    lines.append(json.dumps(record, sort_keys=True))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, target)
    return target
