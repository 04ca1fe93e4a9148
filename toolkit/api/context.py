"""What every library entry point shares: the options, the hosts they act on, the executor
(one connection per host for the whole command), the plugins and the plan, so that an entry
point is a few lines of orchestration."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from toolkit.config.inventory import Inventory, ResolvedHost
from toolkit.config.loader import load_inventory
from toolkit.config.yamlsrc import did_you_mean
from toolkit.engine.executor import EventSink, Executor, Session, no_events
from toolkit.errors import BadInput
from toolkit.planner.checkpoint import DESCRIPTION_GLOB, Description
from toolkit.transport.connection import Connection
from toolkit.transport.factory import connect_factory
from toolkit.transport.shell import q

if TYPE_CHECKING:
    from toolkit.planner.plan import Plan
    from toolkit.planner.plugins import Plugins

#: Makes a host's connection (tests pass fakes; the default verifies host keys over SSH).
ConnectFn = Callable[[ResolvedHost], Connection]


@dataclass
class Options:
    """Options every inventory-driven command shares."""

    limit: str | None = None
    forks: int | None = None
    check: bool = False
    verbose: bool = False
    accept_new_host_keys: bool = False
    overrides: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    skip_tags: set[str] = field(default_factory=set)


def load(path: Path, opts: Options) -> Inventory:
    return load_inventory(path, opts.overrides)


def select_hosts(inventory: Inventory, limit: str | None) -> list[ResolvedHost]:
    """`--limit`: comma-separated host names or globs (matched on name and address)."""
    if not limit:
        return list(inventory.hosts)
    patterns = [p.strip() for p in limit.split(",") if p.strip()]
    chosen: list[ResolvedHost] = []
    for pattern in patterns:
        matched = [
            h
            for h in inventory.hosts
            if fnmatch.fnmatchcase(h.name, pattern) or fnmatch.fnmatchcase(h.address, pattern)
        ]
        if not matched:
            guess = did_you_mean(pattern, [h.name for h in inventory.hosts])
            raise BadInput(
                f"--limit {pattern!r} matches no host in {inventory.path}",
                hint=f"did you mean '{guess}'?" if guess else "hosts: " + ", ".join(h.name for h in inventory.hosts),
            )
        chosen.extend(h for h in matched if h not in chosen)
    return [h for h in inventory.hosts if h in chosen]


def make_executor(
    inventory: Inventory,
    opts: Options,
    *,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> Executor:
    known = inventory.resolve_path(inventory.spec.known_hosts) if inventory.spec.known_hosts else None
    factory = connect or connect_factory(known_hosts=known, accept_new_host_keys=opts.accept_new_host_keys)
    return Executor(
        select_hosts(inventory, opts.limit), forks=opts.forks, connect=factory, emit=emit, stream_output=opts.verbose
    )


def plugins_for(inventory: Inventory | None) -> "Plugins":
    """Built-in plugins, entry points, and the inventory's plugin folders."""
    from toolkit.planner.plugins import load_plugins

    folders = [inventory.resolve_path(p) for p in inventory.spec.plugins] if inventory is not None else []
    return load_plugins(folders)


def read_model_config(inventory: Inventory) -> tuple[dict | None, str | None]:
    """config.json for planning: `model.config` if set, else `model.path` if it exists here.
    Returns (config, where it came from), or (None, None) when neither is readable."""
    model = inventory.spec.model
    if model is None:
        return None, None
    candidates = []
    if model.config:
        candidates.append(inventory.resolve_path(model.config))
    candidates.append(Path(model.path).expanduser() / "config.json")
    for path in candidates:
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise BadInput(
                    f"{path}: cannot read the model's config.json: {exc}", hint="point model.config at a valid copy"
                ) from None
            if not isinstance(data, dict):
                raise BadInput(f"{path}: config.json is not a JSON object")
            return data, str(path)
        if model.config and path == candidates[0]:
            raise BadInput(
                f"model.config {model.config!r}: {path} does not exist",
                hint="paths in the inventory are relative to the inventory file",
            )
    return None, None


def read_description(inventory: Inventory, config_source: str | None) -> Description | None:
    """The checkpoint's quant_model_description*.json read here: in model.path, or beside the config.json
    copy that model.config names (`config.json` in a copied model folder, or `NAME.config.json` beside
    `NAME.quant_model_description.json`). None when there is none here."""
    model = inventory.spec.model
    if model is None:
        return None
    places = [(Path(model.path).expanduser(), "")]
    if config_source and not config_source.startswith(tuple(f"{h.name}:" for h in inventory.hosts)):
        config = Path(config_source)
        prefix = "" if config.name == "config.json" else config.name.removesuffix("config.json")
        places.insert(0, (config.parent, prefix))
    for folder, prefix in places:
        for path in sorted(folder.glob(prefix + DESCRIPTION_GLOB)) if folder.is_dir() else []:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise BadInput(
                    f"{path}: cannot read the checkpoint's quantization description: {exc}",
                    hint="fix or remove the file, or set model.quantization in the inventory",
                ) from None
            if isinstance(data, dict):
                return Description(data, str(path))
    return None


def plan(inventory: Inventory, config: dict | None = None, config_source: str | None = None) -> "Plan":
    """The full deployment plan (pure); `config` defaults to the locally readable config.json."""
    return plan_for(inventory, local=(config, config_source) if config is not None else None)


def plan_for(
    inventory: Inventory, executor: Executor | None = None, local: tuple[dict | None, str | None] | None = None
) -> Plan:
    """Plan with the local config.json (`local` when already read), else the head's (read over SSH once)."""
    from toolkit.planner.plan import make_plan

    config, source = local if local is not None else read_model_config(inventory)
    if config is None and executor is not None and inventory.spec.model is not None:
        head = inventory.head
        path = inventory.spec.model.path.rstrip("/") + "/config.json"
        res = executor.map(
            lambda s: s.run(f"cat {q(path)}", timeout=30, check=False, setup=False), [head], stage="model-config"
        )
        outcome = res.outcomes.get(head.name)
        text = outcome.value.stdout if outcome and outcome.ok and outcome.value and outcome.value.ok else ""
        try:
            config, source = (json.loads(text), f"{head.name}:{path}") if text.strip() else (None, None)
        except ValueError:
            config, source = None, None
    description = read_description(inventory, source)
    if description is None and source and source.startswith(f"{inventory.head.name}:") and executor is not None:
        description = head_description(inventory, executor)
    from toolkit.config.startups import read_startups

    return make_plan(inventory, plugins_for(inventory), config, source, description, read_startups())


def head_description(inventory: Inventory, executor: Executor) -> Description | None:
    """The description file in the head's model folder (read with its config.json, when that was not here)."""
    assert inventory.spec.model is not None
    head = inventory.head
    folder = inventory.spec.model.path.rstrip("/")
    script = f'for f in {q(folder)}/{DESCRIPTION_GLOB}; do [ -f "$f" ] && echo "$f" && cat "$f" && break; done'
    res = executor.map(lambda s: s.run(script, timeout=60, check=False, setup=False), [head], stage="model-config")
    outcome = res.outcomes.get(head.name)
    text = outcome.value.stdout if outcome and outcome.ok and outcome.value and outcome.value.ok else ""
    path, _, body = text.partition("\n")
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        return None
    return Description(data, f"{head.name}:{path}") if isinstance(data, dict) else None


def ran(s: Session, command: str, timeout: float) -> tuple[str, int]:
    """A read-only command on a host without its setup lines: (stdout, exit code), never raising on
    a non-zero exit (the caller's parser decides)."""
    res = s.run(command, timeout=timeout, check=False, setup=False)
    return res.stdout, res.exit_code


def require_all_hosts(opts: Options, command: str) -> None:
    if opts.limit:
        raise BadInput(
            f"`{command}` acts on the whole cluster; --limit is not accepted",
            hint="edit the inventory to change which hosts take part",
        )
