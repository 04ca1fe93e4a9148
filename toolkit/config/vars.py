"""Configuration precedence, written once: built-in default < inventory `defaults` < host entry < `--set`.

`merge_layers` is the only place values are combined; it records which level each value came
from so `show-vars` can explain every resolved setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from toolkit.config.inventory import ContainerSettings, HostSettings, Inventory, ResolvedHost
from toolkit.config.yamlsrc import did_you_mean
from toolkit.errors import BadInput

LEVELS = ("default", "defaults", "host", "--set")

BUILTIN_HOST: dict[str, Any] = {
    "user": None,
    "port": None,
    "key_file": None,
    "password_env": None,
    "key_passphrase_env": None,
    "password_file": None,
    "key_passphrase_file": None,
    "connection": "ssh",
    "nic": "auto",
    "devices": [0, 1, 2, 3, 4, 5, 6, 7],
    "setup": [],
    "env": {},
    "connect_timeout": 10.0,
    "command_timeout": 600.0,
}

CLUSTER_SECTIONS = ("model", "serve", "ray", "container")
#: sections a --set may create when the inventory has none (`--set container.image=...` moves into containers)
CREATABLE_SECTIONS: dict[str, type[BaseModel]] = {"container": ContainerSettings}
CLUSTER_SCALARS = ("hardware", "runtime")


@dataclass(frozen=True)
class Override:
    """One `--set key=value`: a dotted key and its parsed value."""

    key: tuple[str, ...]
    value: Any
    text: str


def parse_overrides(items: list[str]) -> list[Override]:
    """Parse `key=value` strings. Values are YAML (so `devices=[0,1]`, `port=2222`), except
    `env.*`, which are always literal strings."""
    out = []
    for item in items:
        if "=" not in item:
            raise BadInput(
                f"--set {item!r}: expected key=value",
                hint="e.g. --set serve.port=9000 or --set env.HCCL_CONNECT_TIMEOUT=1200",
            )
        key, raw = item.split("=", 1)
        parts = tuple(key.strip().split("."))
        if not all(parts):
            raise BadInput(f"--set {item!r}: empty key segment")
        if parts[0] == "env":
            value: Any = raw
        else:
            try:
                value = yaml.safe_load(raw) if raw != "" else ""
            except yaml.YAMLError:
                value = raw
        out.append(Override(parts, value, item))
    return out


def merge_layers(layers: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge mappings lowest level first; nested mappings merge key by key, anything else is replaced.

    Returns the merged mapping and, for every leaf (dotted key), the level it came from."""
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}

    def apply(target: dict[str, Any], source: dict[str, Any], level: str, prefix: str) -> None:
        for key, value in source.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                apply(target[key], value, level, dotted + ".")
                if not value:
                    origins.setdefault(dotted, level)
            elif isinstance(value, dict):
                target[key] = {}
                for stale in [k for k in origins if k.startswith(dotted + ".")]:
                    del origins[stale]
                origins[dotted] = level
                apply(target[key], value, level, dotted + ".")
            else:
                target[key] = value
                origins[dotted] = level

    for level, data in layers:
        apply(merged, data, level, "")
    parents = {k.rsplit(".", 1)[0] for k in origins if "." in k}
    return merged, {k: v for k, v in origins.items() if k not in parents}


def _nest(override: Override) -> dict[str, Any]:
    data: Any = override.value
    for part in reversed(override.key):
        data = {part: data}
    return data


def _split_overrides(sets: list[Override]) -> tuple[list[Override], list[Override]]:
    host_keys = set(HostSettings.model_fields)
    host, cluster = [], []
    for o in sets:
        head = o.key[0]
        if head in host_keys:
            host.append(o)
        elif head in CLUSTER_SECTIONS and len(o.key) == 2 or head in CLUSTER_SCALARS and len(o.key) == 1:
            cluster.append(o)
        else:
            choices = sorted(host_keys) + [f"{s}.<key>" for s in CLUSTER_SECTIONS] + list(CLUSTER_SCALARS)
            guess = did_you_mean(".".join(o.key), choices) or did_you_mean(head, choices)
            raise BadInput(
                f"--set {o.text!r}: unknown key '{'.'.join(o.key)}'",
                hint=f"did you mean '{guess}'?"
                if guess
                else "host keys: "
                + ", ".join(sorted(host_keys))
                + "; or serve.*, model.*, ray.*, container.*, hardware",
            )
    return host, cluster


def _validation_text(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    msg = err["msg"]
    return msg[len("Value error, ") :] if msg.startswith("Value error, ") else msg


def _set_origins(model: BaseModel, prefix: str, out: dict[str, str]) -> None:
    for name in type(model).model_fields:
        getattr(model, name)
        out[prefix + name] = "inventory" if name in model.model_fields_set else "default"


def resolve(path: Path, spec: Any, sets: list[Override]) -> Any:
    """Resolve every host through the four levels and apply cluster-level overrides."""
    host_sets, cluster_sets = _split_overrides(sets)
    set_layer: dict[str, Any] = {}
    for o in host_sets:
        set_layer = merge_layers([("x", set_layer), ("x", _nest(o))])[0]
        try:
            HostSettings.model_validate(_nest(o))
        except ValidationError as exc:
            raise BadInput(f"--set {o.text!r}: {_validation_text(exc)}") from None

    hosts = []
    origins: dict[str, dict[str, str]] = {}
    defaults = spec.defaults.model_dump(exclude_none=True, exclude_unset=True)
    for entry in spec.hosts:
        own = entry.model_dump(exclude_none=True, exclude_unset=True, exclude={"name", "address", "role", "ssh_host"})
        merged, where = merge_layers(
            [("default", BUILTIN_HOST), ("defaults", defaults), ("host", own), ("--set", set_layer)]
        )
        merged.update(name=entry.name, address=entry.address, role=entry.role, ssh_host=entry.ssh_host)
        for key in ("name", "address", "role", "ssh_host"):
            where[key] = "host" if key in entry.model_fields_set else "default"
        hosts.append(ResolvedHost.model_validate(merged))
        origins[entry.name] = where

    section_origins: dict[str, str] = {}
    updates: dict[str, Any] = {}
    for section in CLUSTER_SECTIONS:
        model = getattr(spec, section)
        if model is not None:
            _set_origins(model, section + ".", section_origins)
            section_origins[section] = "inventory"
    for scalar in CLUSTER_SCALARS:
        section_origins[scalar] = "inventory" if scalar in spec.model_fields_set else "default"
    for o in cluster_sets:
        head = o.key[0]
        if head in CLUSTER_SCALARS:
            updates[head] = o.value
            section_origins[head] = "--set"
            continue
        current = updates.get(head) or getattr(spec, head)
        if current is None and head in CREATABLE_SECTIONS:
            current = CREATABLE_SECTIONS[head]()
            section_origins[head] = "--set"
        if current is None:
            raise BadInput(f"--set {o.text!r}: the inventory has no '{head}' section to override")
        model_cls = type(current)
        if o.key[1] not in model_cls.model_fields:
            guess = did_you_mean(o.key[1], list(model_cls.model_fields))
            raise BadInput(
                f"--set {o.text!r}: unknown key '{'.'.join(o.key)}'",
                hint=f"did you mean '{head}.{guess}'?" if guess else None,
            )
        try:
            updates[head] = model_cls.model_validate({**current.model_dump(exclude_unset=True), o.key[1]: o.value})
        except ValidationError as exc:
            raise BadInput(f"--set {o.text!r}: {_validation_text(exc)}") from None
        section_origins[".".join(o.key)] = "--set"
    if updates:
        try:
            spec = type(spec).model_validate(
                {
                    **spec.model_dump(exclude_unset=True),
                    **{
                        k: v.model_dump(exclude_unset=True) if isinstance(v, BaseModel) else v
                        for k, v in updates.items()
                    },
                }
            )
        except ValidationError as exc:
            raise BadInput(f"--set: {_validation_text(exc)}") from None
    return Inventory(path=path, spec=spec, hosts=hosts, origins=origins, section_origins=section_origins)


def host_vars(inv: Inventory, name: str) -> list[tuple[str, Any, str]]:
    """(dotted key, value, level) for every resolved setting of one host, for `show-vars`."""
    host = inv.host(name)
    rows: list[tuple[str, Any, str]] = []
    where = inv.origins[name]
    data = host.model_dump()
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, subval in value.items():
                rows.append((f"{key}.{sub}", subval, where.get(f"{key}.{sub}", "default")))
            if not value:
                rows.append((key, {}, where.get(key, "default")))
        else:
            rows.append((key, list(value) if isinstance(value, tuple) else value, where.get(key, "default")))
    return rows


def cluster_vars(inv: Inventory) -> list[tuple[str, Any, str]]:
    rows: list[tuple[str, Any, str]] = [("cluster", inv.spec.cluster, "inventory")]
    for scalar in CLUSTER_SCALARS:
        rows.append((scalar, getattr(inv.spec, scalar), inv.section_origins.get(scalar, "default")))
    for section in CLUSTER_SECTIONS:
        model = getattr(inv.spec, section)
        if model is None:
            continue
        for key in type(model).model_fields:
            dotted = f"{section}.{key}"
            rows.append((dotted, getattr(model, key), inv.section_origins.get(dotted, "default")))
    return rows
