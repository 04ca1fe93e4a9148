"""Loading an inventory: the file as written (schema, cross-field rules), every precedence
level merged (`toolkit.config.vars`), then the rules that need resolved hosts."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from toolkit.config.hardware import DEFAULT_KIND, KINDS
from toolkit.config.inventory import Inventory, InventoryFile, issues_from_validation
from toolkit.config.vars import parse_overrides, resolve
from toolkit.config.yamlsrc import Document, format_path, load_file
from toolkit.errors import InputIssue, InvalidFile


def cross_checks(spec: InventoryFile, doc: Document) -> list[InputIssue]:
    """Rules that span several fields: one head, unique names and endpoints."""
    file = doc.source.file
    issues: list[InputIssue] = []
    heads = [i for i, h in enumerate(spec.hosts) if h.role == "head"]
    if not heads:
        issues.append(
            InputIssue(
                file,
                doc.source.line_of(("hosts",)),
                "hosts",
                "no host has role: head",
                "mark exactly one host with 'role: head' (the Ray head)",
            )
        )
    for extra in heads[1:]:
        first = spec.hosts[heads[0]].name
        issues.append(
            InputIssue(
                file,
                doc.source.line_of(("hosts", extra, "role")),
                f"hosts[{extra}].role",
                f"second head; '{first}' is already the head",
                "exactly one host may be the head",
            )
        )
    seen_names: dict[str, int] = {}
    seen_endpoints: dict[tuple[str, int | None], int] = {}
    for i, host in enumerate(spec.hosts):
        if host.name in seen_names:
            issues.append(
                InputIssue(
                    file,
                    doc.source.line_of(("hosts", i, "name")),
                    f"hosts[{i}].name",
                    f"duplicate host name '{host.name}'",
                    f"already used by hosts[{seen_names[host.name]}]",
                )
            )
        seen_names.setdefault(host.name, i)
        port = host.port if host.port is not None else spec.defaults.port
        endpoint = (host.address, port)
        if endpoint in seen_endpoints:
            issues.append(
                InputIssue(
                    file,
                    doc.source.line_of(("hosts", i, "address")),
                    f"hosts[{i}].address",
                    f"duplicate address {host.address}" + (f" port {port}" if port else ""),
                    f"already used by hosts[{seen_endpoints[endpoint]}]",
                )
            )
        seen_endpoints.setdefault(endpoint, i)
    return issues


def load_inventory(path: str | Path, overrides: list[str] | None = None) -> Inventory:
    """Load, validate and resolve an inventory file; `overrides` are `--set key=value` strings."""
    doc = load_file(path)
    file = doc.source.file
    if doc.data is None:
        raise InvalidFile(
            file, [InputIssue(file, None, "", "the inventory is empty", "start from inventories/example.yaml")]
        )
    if not isinstance(doc.data, dict):
        raise InvalidFile(
            file,
            [
                InputIssue(
                    file,
                    doc.source.line_of(()),
                    "",
                    f"the inventory must be a mapping of keys, got a {type(doc.data).__name__}",
                )
            ],
        )
    try:
        spec = InventoryFile.model_validate(doc.data)
    except ValidationError as exc:
        raise InvalidFile(file, issues_from_validation(exc, doc, InventoryFile)) from None
    issues = cross_checks(spec, doc)
    if issues:
        raise InvalidFile(file, issues)
    sets = parse_overrides(overrides or [])
    inventory = resolve(Path(path), spec, sets)
    issues = _device_issues(inventory, doc)
    if issues:
        raise InvalidFile(file, issues)
    return inventory


def _device_issues(inventory: Inventory, doc: Document) -> list[InputIssue]:
    """Device ids the hardware does not have (e.g. 8 on an 8-NPU A2 host), per host, at the line
    the ids came from: a plan for NPUs that do not exist would only fail on the hosts."""
    kind = inventory.spec.hardware or DEFAULT_KIND
    count = KINDS[kind].devices
    issues = []
    for i, host in enumerate(inventory.hosts):
        beyond = [d for d in host.devices if d >= count]
        if not beyond:
            continue
        level = inventory.origins[host.name].get("devices", "default")
        path: tuple[str | int, ...] = ("hosts", i, "devices") if level == "host" else ("defaults", "devices")
        where = "--set devices" if level == "--set" else format_path(path)
        issues.append(
            InputIssue(
                doc.source.file,
                None if level == "--set" else doc.source.line_of(path),
                where,
                f"host '{host.name}': device id{'s' if len(beyond) > 1 else ''} {', '.join(map(str, beyond))} "
                f"beyond the {count} NPUs of a {kind} host (ids 0..{count - 1})",
                f"list ids 0..{count - 1}, or set `hardware` to the hosts' NPU kind",
            )
        )
    return issues
