"""What is deployed, from the record on the head (`toolkit.facts.record`): the plan that runs
(rebuilt with `plan_from_dict`, so `status` looks at the recorded launcher, placement and hosts even
after the inventory changed) and whether the inventory still plans the same thing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolkit.config.inventory import Inventory
from toolkit.engine.executor import Executor
from toolkit.engine.gather import gather
from toolkit.errors import BadInput
from toolkit.facts.record import Record, record_fact
from toolkit.planner.plan import Plan, plan_to_dict
from toolkit.planner.record import differences, plan_digest
from toolkit.planner.serialize import plan_from_dict

#: differences `status` names (all of them are in --json)
SHOWN = 5


@dataclass
class Deployed:
    """The deployment the head's record describes, compared with what the inventory plans now."""

    plan_sha256: str
    deployed_at: str
    tool: str
    launcher: str
    placement: str
    matches_inventory: bool
    differences: list[str] = field(default_factory=list)
    history: int = 0  # earlier deployments kept


def read_record(executor: Executor, inventory: Inventory) -> tuple[Record | None, str | None]:
    """The head's record, or None (none there, or the head unreachable: the second value says why)."""
    head = inventory.head
    res = executor.map(lambda s: gather(s, [record_fact(inventory.name)], timeout=30), [head], stage="record")
    outcome = res.outcomes.get(head.name)
    if outcome is None or not outcome.ok or outcome.value is None:
        why = outcome.error.message if outcome is not None and outcome.error is not None else "no answer"
        return None, f"the deployment record was not read: {why}"
    record: Record | None = outcome.value["deploy_record"]
    if record is not None and record.problem:
        return None, f"the deployment record on {head.name} is unreadable ({record.problem}); shown from the inventory"
    return record, None


def recorded_plan(record: Record) -> Plan | None:
    """The plan that runs, from the record's current entry (None: nothing recorded runs)."""
    if record.current is None:
        return None
    try:
        return plan_from_dict(record.current["plan"])
    except (KeyError, TypeError, ValueError):
        return None


def compare(record: Record, inventory: Inventory, executor: Executor) -> Deployed:
    """The recorded deployment, and whether planning the inventory now gives the same deployment."""
    from toolkit.api.context import plan_for

    cur = record.current
    assert cur is not None
    doc = cur["plan"]
    try:
        now = plan_to_dict(plan_for(inventory, executor))
    except BadInput as exc:
        lines = exc.lines()
        changed = [f"the inventory does not plan now: {lines[0]}", *(line.strip() for line in lines[1:])]
    else:
        same = plan_digest(now) == cur.get("plan_sha256")
        changed = (
            []
            if same
            else differences(doc, now) or ["the plan's digest differs (the record was written by another version)"]
        )
    launch: dict[str, Any] = doc.get("launch", {})
    return Deployed(
        plan_sha256=str(cur.get("plan_sha256", "")),
        deployed_at=str(cur.get("deployed_at", "")),
        tool=str(cur.get("tool", "")),
        launcher=str(launch.get("launcher", {}).get("value", "")),
        placement=str(launch.get("placement", {}).get("value", "")),
        matches_inventory=not changed,
        differences=changed,
        history=len(record.history),
    )
