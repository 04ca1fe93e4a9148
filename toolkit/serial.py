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


def restore(cls: Any, data: Any) -> Any:
    """`plain`'s inverse for plain-data dataclasses (a record read back): `data` rebuilt as `cls`, lists
    as the tuples the type names, nested dataclasses, mappings and optionals by the field types. Keys
    that are not fields (a document's extra views) are ignored."""
    import collections.abc
    import types
    import typing
    from dataclasses import MISSING

    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if data is None or cls is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return restore(kinds[0], data) if len(kinds) == 1 else data
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(restore(args[0], v) for v in data)
        return tuple(restore(a, v) for a, v in zip(args, data))
    if origin in (dict, collections.abc.Mapping) or cls is dict:
        value_type = args[1] if len(args) == 2 else Any
        return {k: restore(value_type, v) for k, v in data.items()}
    if isinstance(cls, type) and is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        given = {}
        for f in fields(cls):
            if f.name in data:
                given[f.name] = restore(hints[f.name], data[f.name])
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{cls.__name__}: {f.name} is missing")
        return cls(**given)
    return data
