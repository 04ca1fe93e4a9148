"""Results of remote commands, per host and per group.

A group result keeps partial success (fabric's GroupResult idea): a host that failed never
hides what the others returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Generic, Iterator, TypeVar

from toolkit.errors import HostError

T = TypeVar("T")


_SCALARS = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def plain(value: Any) -> Any:
    """Dataclasses, tuples and dicts to JSON-ready data, without `asdict`'s deep copies
    (a 64-host report holds tens of thousands of records: field names are cached per class)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _names(type(value))}
    return value


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "command": self.command,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration": round(self.duration, 4),
        }


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
