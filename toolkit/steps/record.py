"""The deployment record on the head: `deploy_record` ends `up` (the applied plan, the inventory as
applied, the tool and the time; the deployment it replaces moves into the history), and
`record_stopped` ends `down` (nothing runs; the last deployment moves into the history). A re-run
that applies the same plan and inventory writes nothing. The file is 0600 and arrives on stdin."""

from __future__ import annotations

import time
from typing import Any, Iterator

from toolkit import __version__
from toolkit.config.inventory import Inventory
from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts.deploy import Paths
from toolkit.facts.record import Record, record_fact
from toolkit.planner.record import plan_digest, running_view
from toolkit.planner.serialize import plan_to_dict
from toolkit.steps.commands import write_stdin_command

TOOL = f"ascend-deploy {__version__}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def inventory_as_applied(inventory: Inventory) -> dict[str, Any]:
    """The inventory `up` applied: its file, the merged settings, each host as resolved, and which
    settings came from `--set` (references to secrets only, never a secret)."""
    return {
        "path": str(inventory.path),
        "spec": inventory.spec.model_dump(mode="json"),
        "hosts": [h.model_dump(mode="json") for h in inventory.hosts],
        "set": sorted(k for k, where in inventory.section_origins.items() if where == "--set"),
    }


@step("deploy_record", needs_plan=True)
def deploy_record(ctx: StepContext) -> Iterator[Op]:
    """Record what `up` applied on the head, unless the record already says so (what runs and the
    inventory: a plan whose explanations alone changed, e.g. timeouts now sized from a measured start
    but equal in value, is not rewritten)."""
    plan = ctx.shared.the_plan()
    doc = plan_to_dict(plan)
    applied = inventory_as_applied(ctx.inventory)
    found: Record | None = ctx.facts([record_fact(ctx.inventory.name)])["deploy_record"]
    record = found if found is not None and found.problem is None else Record(None)
    digest = plan_digest(doc)
    cur = record.current
    ctx.data.update(plan_sha256=digest, unreadable=found.problem if found is not None else None)
    if (
        cur is not None
        and cur.get("plan_sha256") == digest
        and running_view(cur.get("plan")) == running_view(doc)
        and cur.get("inventory") == applied
    ):
        ctx.data.update(deployed_at=cur.get("deployed_at"), written=False)
        return
    at = now()
    entry = {
        "plan_sha256": digest,
        "deployed_at": at,
        "tool": TOOL,
        "plan": doc,
        "inventory": applied,
        "hbm_before": hbm_before(cur, ctx.shared.hbm_before),
        **ctx.shared.record_extra,
    }
    new = (
        record.replaced_by(entry, at)
        if cur is None or cur.get("plan_sha256") != digest
        else Record({**entry, "deployed_at": cur.get("deployed_at", at)}, record.history)
    )
    ctx.data.update(deployed_at=new.current["deployed_at"] if new.current else at, written=True)
    path = Paths.of(ctx.inventory.name).record
    kept = len(new.history)
    yield Op(
        write_stdin_command(path),
        f"record the deployment in {path} (plan {digest[:12]}, {kept} earlier kept)",
        stdin=new.to_json(),
    )


def hbm_before(cur: dict[str, Any] | None, measured: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The devices' HBM before `up`: this run's preflight reading, and for a device it could not read
    (held by the deployment that runs) the reading the record already keeps."""
    kept = (cur or {}).get("hbm_before") or {}
    hosts = set(kept) | set(measured)
    return {h: {**(kept.get(h) or {}), **(measured.get(h) or {})} for h in sorted(hosts)}


@step("record_stopped")
def record_stopped(ctx: StepContext) -> Iterator[Op]:
    """After `down`: the record says nothing runs; the last deployment joins the history."""
    found: Record | None = ctx.facts([record_fact(ctx.inventory.name)])["deploy_record"]
    if found is None or found.problem is not None or found.current is None:
        return
    path = Paths.of(ctx.inventory.name).record
    yield Op(
        write_stdin_command(path),
        f"record that nothing runs (plan {str(found.current.get('plan_sha256', ''))[:12]} moves into the history)",
        stdin=found.stopped(now()).to_json(),
    )
