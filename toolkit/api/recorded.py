"""`history`: the deployments the head's record keeps (the current one and the last ones before it),
newest first: when, by which tool and how (`up`, `upgrade`, `rollback`), the plan's digest, the image
and runtime, what changed from the one before, the gate's result, whether it was rolled back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolkit.api.context import ConnectFn, Options, make_executor
from toolkit.api.deployed import read_record
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import EventSink, no_events
from toolkit.planner.record import history_rows
from toolkit.serial import plain


@dataclass
class HistoryReport:
    inventory: str
    cluster: str
    head: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # the record could not be read (why)

    __json_extra__ = ("ok",)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def history(
    inventory: Inventory, opts: Options, *, emit: EventSink = no_events, connect: ConnectFn | None = None
) -> HistoryReport:
    """Read the record on the head (one `cat`); nothing else is touched."""
    head = inventory.head
    report = HistoryReport(str(inventory.path), inventory.name, head.name)
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        record, why = read_record(executor, inventory)
    if why is not None:
        report.problem = why
    elif record is not None:
        report.rows = history_rows(record.current, list(record.history))
    return report
