"""The one JSON serializer: dataclasses, tuples, dicts and string enums to JSON-ready data.

A dataclass gives its computed properties named in `__json_extra__` first (e.g. `ok`), then its
fields in order minus the names in `__json_skip__` (callables, secrets, what an extra renames);
`__json_as__` (key -> attribute) gives a key its value from another attribute (a document view of a
field); floats named in `__json_round__` (name -> digits) are rounded. Other objects with a `to_dict`
(typed errors) give that. No `asdict` deep copies: a 64-host report holds tens of thousands of
records, so the names are cached per class.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

_SCALARS = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[tuple[str, str, int | None], ...]] = {}


def _names(cls: type) -> tuple[tuple[str, str, int | None], ...]:
    """(key, attribute, digits to round to or None) for each value the class serializes, in order."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        skip = set(getattr(cls, "__json_skip__", ()))
        rounding: dict[str, int] = dict(getattr(cls, "__json_round__", {}))
        views: dict[str, str] = dict(getattr(cls, "__json_as__", {}))
        own = [f.name for f in fields(cls) if f.name not in skip]
        ordered = [*getattr(cls, "__json_extra__", ()), *own]
        names = _FIELD_NAMES[cls] = tuple((key, views.get(key, key), rounding.get(key)) for key in ordered)
    return names


def _rounded(value: Any, digits: int | None) -> Any:
    return round(value, digits) if digits is not None and isinstance(value, float) else value


def plain(value: Any) -> Any:
    """`value` as JSON-ready data (see the module's docstring for dataclasses)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {key: plain(_rounded(getattr(value, attr), digits)) for key, attr, digits in _names(type(value))}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return to_dict()
    return value
