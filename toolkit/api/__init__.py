"""Library entry points: what the CLI calls, usable from Python too. They return reports and
raise typed errors; they never print."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from toolkit.transport.connection import Connection, connect_factory
from toolkit.errors import BadInput
from toolkit.engine.executor import EventSink, Executor, _no_events
from toolkit.config.inventory import Inventory, ResolvedHost, load_inventory
from toolkit.config.playbook import load_playbook
from toolkit.engine.runner import RunReport, run_playbook
from toolkit.config.yamlsrc import did_you_mean

if TYPE_CHECKING:
    from toolkit.checks.report import CheckNetReport
    from toolkit.planner.plan import Plan
    from toolkit.planner.plugins import Plugins


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
        matched = [h for h in inventory.hosts if fnmatch.fnmatchcase(h.name, pattern) or fnmatch.fnmatchcase(h.address, pattern)]
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
    emit: EventSink = _no_events,
    connect: Callable[[ResolvedHost], Connection] | None = None,
) -> Executor:
    known = inventory.resolve_path(inventory.spec.known_hosts) if inventory.spec.known_hosts else None
    factory = connect or connect_factory(known_hosts=known, accept_new_host_keys=opts.accept_new_host_keys)
    return Executor(select_hosts(inventory, opts.limit), forks=opts.forks, connect=factory, emit=emit, stream_output=opts.verbose)


def run(
    playbook: str,
    inventory: Inventory,
    opts: Options,
    *,
    emit: EventSink = _no_events,
    connect: Callable[[ResolvedHost], Connection] | None = None,
) -> RunReport:
    """Run a playbook (by bundled name or path) against the inventory. Playbooks whose steps act on
    the deployment (up's stages, status) get the plan and the API key, as `up` gives them."""
    from toolkit.steps import load_builtin_steps

    book = load_playbook(playbook)
    steps = load_builtin_steps()
    shared: dict = {}
    if any(steps[stage.step].needs_plan for stage in book.stages if stage.step in steps):
        from toolkit.api.lifecycle import read_api_key

        shared = {"plan": plan(inventory), "api_key": read_api_key(inventory)}
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        return run_playbook(book, inventory, executor, check=opts.check, tags=opts.tags or None, skip_tags=opts.skip_tags or None, shared=shared)


def check_net(
    inventory: Inventory,
    opts: Options,
    *,
    mode: str = "rail",
    packets: int = 3,
    emit: EventSink = _no_events,
    connect: Callable[[ResolvedHost], Connection] | None = None,
) -> "CheckNetReport":
    """NPU + network preflight (the `check-net` playbook), evaluated into problems."""
    from toolkit.checks.report import build

    book = load_playbook("check-net")
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        run = run_playbook(book, inventory, executor, params={"pings": {"mode": mode, "packets": packets}})
    return build(inventory, run, mode)


def facts(
    inventory: Inventory,
    opts: Options,
    *,
    emit: EventSink = _no_events,
    connect: Callable[[ResolvedHost], Connection] | None = None,
) -> RunReport:
    """Gather read-only facts from every selected host (the `facts` playbook)."""
    return run("facts", inventory, opts, emit=emit, connect=connect)


def plugins_for(inventory: Inventory | None) -> "Plugins":
    """Built-in plugins, entry points, and the inventory's plugin folders."""
    from toolkit.planner.plugins import load_plugins

    folders = [inventory.resolve_path(p) for p in inventory.spec.plugins] if inventory is not None else []
    return load_plugins(folders)


def read_model_config(inventory: Inventory) -> tuple[dict | None, str | None]:
    """config.json for planning: `model.config` if set, else `model.path` if it exists here.
    Returns (config, where it came from), or (None, None) when neither is readable."""
    import json

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
                raise BadInput(f"{path}: cannot read the model's config.json: {exc}", hint="point model.config at a valid copy") from None
            if not isinstance(data, dict):
                raise BadInput(f"{path}: config.json is not a JSON object")
            return data, str(path)
        if model.config and path == candidates[0]:
            raise BadInput(f"model.config {model.config!r}: {path} does not exist", hint="paths in the inventory are relative to the inventory file")
    return None, None


def plan(inventory: Inventory, config: dict | None = None, config_source: str | None = None) -> "Plan":
    """The full deployment plan (pure); `config` defaults to the locally readable config.json."""
    from toolkit.planner.plan import make_plan

    if config is None:
        config, config_source = read_model_config(inventory)
    return make_plan(inventory, plugins_for(inventory), config, config_source)
