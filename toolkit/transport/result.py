"""Results of remote commands, per host and per group.

A group result keeps partial success (fabric's GroupResult idea): a host that failed never
hides what the others returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Iterator, TypeVar

from toolkit.errors import HostError
from toolkit.serial import plain

__all__ = ["GroupResult", "HostOutcome", "Result", "plain"]

T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """One command on one host."""

    host: str
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, lines: int = 5) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])

    __json_round__ = {"duration": 4}

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass
class HostOutcome(Generic[T]):
    """What one host produced in a fan-out: a value or an error, and how long it took."""

    host: str
    value: T | None = None
    error: HostError | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class GroupResult(Generic[T]):
    """Outcomes by host name, in inventory order."""

    outcomes: dict[str, HostOutcome[T]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[HostOutcome[T]]:
        return iter(self.outcomes.values())

    def __getitem__(self, host: str) -> HostOutcome[T]:
        return self.outcomes[host]

    def __len__(self) -> int:
        return len(self.outcomes)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self)

    @property
    def succeeded(self) -> dict[str, T]:
        return {o.host: o.value for o in self if o.ok}  # type: ignore[misc]

    @property
    def failed(self) -> dict[str, HostError]:
        return {o.host: o.error for o in self if o.error is not None}
