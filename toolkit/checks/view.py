"""What the rules read: one host's preflight facts (`HostView`), and the helpers every rule uses."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from toolkit.checks.pings import PingResult
from toolkit.config.inventory import ResolvedHost
from toolkit.facts.hccn import DeviceFacts

if TYPE_CHECKING:
    pass


@dataclass
class HostView:
    """What one host's preflight produced (or why it could not)."""

    host: ResolvedHost
    data: dict[str, Any] | None  # None: unreachable
    error: Any = None
    pings: list[PingResult] = field(default_factory=list)

    @property
    def facts(self) -> dict[str, Any]:
        """The facts of a reachable host (empty for an unreachable one: its checks find nothing)."""
        return self.data if self.data is not None else {}

    @property
    def devices(self) -> dict[int, DeviceFacts]:
        return self.facts.get("devices") or {}


def device_ok(dev: DeviceFacts) -> bool:
    return bool(dev.ip) and dev.link == "UP" and "ip" not in dev.errors


def majority(values: Iterable[Any], prefer: Any = None) -> Any:
    """The most common value (None counts: 'missing' can be the norm); ties go to `prefer`
    (the head's value), so with two hosts the worker is the one reported."""
    counts = Counter(values)
    if not counts:
        return None
    best = max(counts.values())
    tied = [v for v, n in counts.items() if n == best]
    return prefer if prefer in tied else tied[0]
