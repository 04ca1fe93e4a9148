"""The deployment record on the head: what `up` applied (its plan as `plan_to_dict` wrote it, the
inventory as applied, the tool and the time) and the last deployments before it. Read as a fact
(one `cat`); written by the `deploy_record` step; the plan inside is rebuilt by
`toolkit.planner.serialize.plan_from_dict`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from toolkit.facts import Fact, Raw
from toolkit.facts.deploy import Paths
from toolkit.transport.shell import q

FORMAT = 1
#: deployments kept before the current one
HISTORY = 5


@dataclass(frozen=True)
class Record:
    """The record file: the deployment that runs (None after `down`) and those before it, newest first."""

    current: dict[str, Any] | None
    history: tuple[dict[str, Any], ...] = ()
    problem: str | None = None  # the file exists but cannot be read as a record (why)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "current": self.current, "history": list(self.history)}, indent=1)

    def replaced_by(self, entry: dict[str, Any], at: str) -> "Record":
        """`entry` deployed now; the current one (if any) moves into the history, marked replaced."""
        older = ({**self.current, "replaced_at": at},) if self.current else ()
        return Record(entry, (older + self.history)[:HISTORY])

    def stopped(self, at: str) -> "Record":
        """`down`: nothing runs; the last deployment moves into the history, marked stopped."""
        if self.current is None:
            return self
        return Record(None, (({**self.current, "stopped_at": at},) + self.history)[:HISTORY])

    def with_upgrade(self, attempt: dict[str, Any], tried: dict[str, Any], at: str) -> "Record":
        """After an `upgrade` (`attempt`: from, to, changes, gate, outcome, failure): the entry of the plan
        it tried carries the attempt; a plan that never reached its record step (it failed to start) is
        added to the history as `tried`; a current entry restored by a rollback says so."""
        to, cur, history = attempt.get("to"), self.current, list(self.history)
        if cur is not None and cur.get("plan_sha256") == to:
            cur = {**cur, "upgrade": attempt}
        else:
            index = next(
                (
                    i
                    for i, h in enumerate(history)
                    if h.get("plan_sha256") == to and str(h.get("deployed_at", "")) >= str(attempt.get("started", ""))
                ),
                None,
            )
            if index is not None:
                history[index] = {**history[index], "upgrade": attempt}
            else:
                history.insert(0, {**tried, "upgrade": attempt, "replaced_at": at})
            if cur is not None and cur.get("plan_sha256") == attempt.get("from"):
                cur = {**cur, "restored": {"at": at, "after": to}}
        return Record(cur, tuple(history[:HISTORY]))


def record_command(cluster: str) -> str:
    path = Paths.of(cluster).record
    return f"if [ -r {q(path)} ]; then echo present; cat {q(path)}; else echo absent; fi"


def parse_record(raw: Raw) -> Record | None:
    """None when there is no record; a Record with `problem` when it cannot be read (a hand edit, a
    truncated write): `status` says so and goes on as if none were there."""
    first, _, body = raw.stdout.partition("\n")
    if first.strip() != "present":
        return None
    try:
        data = json.loads(body)
    except ValueError as exc:
        return Record(None, (), f"not JSON ({exc})")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return Record(None, (), f"not a format-{FORMAT} record")
    current = data.get("current")
    history = data.get("history") or []
    if (current is not None and not isinstance(current, dict)) or not isinstance(history, list):
        return Record(None, (), "its current entry or history has the wrong shape")
    return Record(current, tuple(h for h in history if isinstance(h, dict)))


def record_fact(cluster: str) -> Fact[Record | None]:
    return Fact("deploy_record", record_command(cluster), parse_record, setup=False)
