"""Run one `ascend-deploy` command in this process and record when each phase ended, for
lifecycle_bench.py's "where the time goes" table.

Usage: TRACE_T0=<time.time() just before the exec> TRACE_OUT=<file> python bench/trace_cli.py ARGS...

Marks (seconds after TRACE_T0), in order:
  interpreter  the exec and Python's own start-up
  libraries    bench/floor.py: pydantic (one model built), typer, paramiko + invoke, fabric, PyYAML
  toolkit      the toolkit's own modules (its pydantic models are built here)
  exit         the command returned
plus every SSH connect and remote command per host (start, end). The CLI itself imports paramiko
later, on its first connection; importing it first here moves time between phases, not the total.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Callable

T0 = float(os.environ["TRACE_T0"])
MARKS: dict[str, float] = {}
SPANS: list[dict[str, Any]] = []
_lock = threading.Lock()


def now() -> float:
    return time.time() - T0


MARKS["interpreter"] = now()
import floor  # noqa: E402,F401  (bench/ is this script's folder)

MARKS["libraries"] = now()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import toolkit.cli.app  # noqa: E402
import toolkit.transport.ssh  # noqa: E402

MARKS["toolkit"] = now()


def spanned(kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = now()
        try:
            return method(self, *args, **kwargs)
        finally:
            with _lock:
                SPANS.append({"kind": kind, "host": self.name, "start": start, "end": now()})

    return wrapper


toolkit.transport.ssh.SSHConnection._open = spanned("connect", toolkit.transport.ssh.SSHConnection._open)  # type: ignore[method-assign]
toolkit.transport.ssh.SSHConnection.run = spanned("run", toolkit.transport.ssh.SSHConnection.run)  # type: ignore[method-assign]

sys.argv = ["ascend-deploy", *sys.argv[1:]]
code: object = 0
try:
    toolkit.cli.app.main()
except SystemExit as exc:
    code = exc.code
finally:
    MARKS["exit"] = now()
    with open(os.environ["TRACE_OUT"], "w") as out:
        json.dump({"marks": MARKS, "spans": SPANS, "exit_code": code}, out)
sys.exit(code)
