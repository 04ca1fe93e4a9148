"""What one planning pass holds and every rule reads: the inventory, the plugins' answers
about the model (`ModelFacts`), the issues found so far, and how a value's origin is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from toolkit.config.inventory import Inventory
from toolkit.planner import checkpoint, memory
from toolkit.planner.plugins import Plugins
from toolkit.planner.types import (
    PlanIssue,
    Value,
)
from toolkit.plugin_api import (
    ModelInfo,
    ModelProfile,
    Row,
)


@dataclass(frozen=True)
class ModelFacts:
    """What the plugins and config.json say about the model."""

    info: ModelInfo
    profile: ModelProfile
    plugin_name: str
    row: Row | None
    merged_config: dict[str, Any]
    shape: memory.Shape | None
    limit: int | None
    quantization: Value


def row_origin(family: str, row: Row) -> str:
    """How a value that comes from a plugin row is attributed: the row's layout and where it is published."""
    return f"plugin {family} row {row.layout()}" + (f" ({row.source})" if row.source else "")


def origin_of(inventory: Inventory, key: str) -> str:
    where = inventory.section_origins.get(key, "default")
    return f"inventory {key}" if where == "inventory" else f"--set {key}" if where == "--set" else "default"


def flags_in(args: list[str] | tuple[str, ...], flags: Mapping[str, str]) -> list[tuple[str, str]]:
    found = []
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in flags:
            found.append((flag, flags[flag]))
    return found


class PlannerState:
    """The pass's inputs and the issues it collects; the rule mixins read these."""

    def __init__(
        self,
        inventory: Inventory,
        plugins: Plugins,
        config: Mapping[str, Any] | None,
        config_source: str | None,
        description: checkpoint.Description | None = None,
        startups: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.inv = inventory
        self.startups = startups  # measured cold starts (`config.startups`): the next one is predicted
        self.spec = inventory.spec
        self.serve = inventory.spec.serve
        self.plugins = plugins
        self.config = config
        self.config_source = config_source
        self.description = description
        self.issues: list[PlanIssue] = []
        self.notes: list[str] = []

    @property
    def total_devices(self) -> int:
        """The devices every host offers, together (what TP x PP x DP must equal)."""
        return sum(len(h.devices) for h in self.inv.hosts)

    def issue(self, field_: str, message: str, hint: str | None = None) -> None:
        self.issues.append(PlanIssue(field_, message, hint))

    def ep_args(self, m: ModelFacts) -> list[str]:
        return list(m.profile.extra_args) + list(m.row.extra_args if m.row else ()) + list(self.serve.extra_args)
