"""Programs shipped to a host for one run (the weight relay, the folder hasher): stdlib-only modules
sent as text on the SSH session's stdin, never installed, gone when the session ends. A shipped
module runs its job under `if __name__ == SHIPPED:` with `CFG` (its configuration) and `STDIN` (the
rest of the session's input) set; imported here it is a plain module."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from toolkit.transport.shell import q

SHIPPED = "__shipped__"

#: what the SSH session runs: it reads the program and its configuration from stdin, then (a relay
#: fed by the control machine) the data
BOOTSTRAP = (
    "import sys,json; i=sys.stdin.buffer; n=int(i.readline()); src=i.read(n); cfg=json.loads(i.readline()); "
    f"exec(compile(src, cfg.get('program', 'shipped'), 'exec'), {{'__name__': {SHIPPED!r}, 'CFG': cfg, 'STDIN': i}})"
)

COMMAND = f"python3 -u -c {q(BOOTSTRAP)}"


def payload(program: ModuleType, cfg: dict[str, Any]) -> bytes:
    """The session's first bytes: the program's text and its configuration."""
    text = Path(str(program.__file__)).read_bytes()
    name = program.__name__.rpartition(".")[2]
    return f"{len(text)}\n".encode() + text + json.dumps({"program": name, **cfg}).encode() + b"\n"


def on_lines(handlers: dict[str, Callable[[str], None]]) -> Callable[[str, str], None]:
    """An `on_output` for a shipped program's stdout, whose lines are `WORD rest`: each word's handler
    gets the rest (other words, and stderr, are ignored)."""

    def on_output(stream: str, line: str) -> None:
        word, _, rest = line.partition(" ")
        handler = handlers.get(word) if stream == "stdout" else None
        if handler is not None:
            handler(rest)

    return on_output
