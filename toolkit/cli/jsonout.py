"""`--json` output without the terminal stack: scripts that read JSON should not pay for rich's
import (about 50 ms of a short command's start-up)."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError
from toolkit.serial import plain

if TYPE_CHECKING:
    from toolkit.engine.executor import Event


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(value)
    if isinstance(value, ToolkitError):
        return value.to_dict()
    return str(value)


def print_json(data: Any) -> None:
    """One JSON document on stdout (no rich markup, no wrapping). Indented for a terminal; compact
    when piped, where the C encoder is many times faster on large reports."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, default=_json_default, sort_keys=False) + "\n")
    sys.stdout.flush()


class Quiet:
    """The event sink of a `--json` run without `-v`: shows nothing."""

    def __enter__(self) -> "Quiet":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __call__(self, event: Event) -> None:
        pass
