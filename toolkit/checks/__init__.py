"""Preflight checks: pure functions from facts to Problems. Each problem names the host, the
device (if any), the check, what was seen, what was expected, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.serial import plain


@dataclass(frozen=True)
class Problem:
    host: str
    device: int | None
    check: str
    observed: str
    expected: str
    hint: str

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))

    def render(self) -> str:
        where = self.host + (f" NPU {self.device}" if self.device is not None else "")
        return f"{where} [{self.check}]: {self.observed} (expected {self.expected}) -> {self.hint}"
