"""The one JSON serializer: dataclasses, tuples, dicts and string enums to JSON-ready data.

A dataclass gives its fields in order, minus the names in its `__json_skip__` (callables, secrets)
plus the computed properties in its `__json_extra__` (e.g. `ok`). No `asdict` deep copies: a
64-host report holds tens of thousands of records, so field names are cached per class.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

_SCALARS = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        skip = set(getattr(cls, "__json_skip__", ()))
        own = tuple(f.name for f in fields(cls) if f.name not in skip)
        names = _FIELD_NAMES[cls] = own + tuple(getattr(cls, "__json_extra__", ()))
    return names


def plain(value: Any) -> Any:
    """`value` as JSON-ready data (see the module's docstring for dataclasses)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _names(type(value))}
    return value
