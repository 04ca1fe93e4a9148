"""`watch`: `status`'s checks, again and again, reporting only what changed; with `heal`, a
deployment found broken (a finding of `api.supervise`, or a recorded deployment that does not serve)
is repaired by the same `up` an operator would run, once per distinct breakage.

Library code: it yields typed events and never prints; the CLI renders them (text or JSON lines)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from toolkit.api.reports import StatusReport, UpReport
from toolkit.serial import plain


@dataclass
class WatchEvent:
    """One line of `watch`: a new state ("state"), or a healing `up` ("heal") and how it ended."""

    at: str
    kind: str  # "state" | "heal"
    serving: bool
    summary: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what differs from the previous state
    heal_ok: bool | None = None
    heal_failed_stage: str | None = None
    heal_duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def state_of(report: StatusReport) -> dict[str, Any]:
    """What `watch` compares between rounds: whether it serves, the findings, and per host whether
    it answers and which of its planned processes run (pids change on restarts: not compared)."""
    head = next((h for h in report.hosts if h.get("role") == "head"), {})
    return {
        "serving": report.ok,
        "health": head.get("health"),
        "findings": sorted((f["host"], f["check"]) for f in report.findings),
        "hosts": {
            h["host"]: (
                bool(h.get("reachable")),
                tuple(sorted(p["name"] for p in h.get("processes") or [] if p.get("pid"))),
            )
            for h in report.hosts
        },
    }


def summary(report: StatusReport) -> str:
    if report.ok:
        head = next((h for h in report.hosts if h.get("role") == "head"), {})
        engines = head.get("engines")
        extra = f", {engines} engine(s)" if engines else ""
        return f"serving at {report.endpoint}{extra}"
    if report.findings:
        return "not healthy: " + "; ".join(f"{f['check']} on {f['host']}" for f in report.findings)
    down = [h["host"] for h in report.hosts if not h.get("reachable")]
    if down:
        return "not serving: unreachable " + ", ".join(down)
    if report.deployed is None:
        return "not serving: nothing deployed (or `down` ran)"
    return "not serving: the recorded deployment does not run as planned"


def changes(before: dict[str, Any] | None, now: dict[str, Any]) -> list[str]:
    if before is None:
        return []
    out = []
    if before["health"] != now["health"]:
        out.append(f"/health {before['health']} -> {now['health']}")
    for host, (reach, procs) in now["hosts"].items():
        old = before["hosts"].get(host)
        if old is None:
            continue
        if old[0] != reach:
            out.append(f"{host} {'reachable again' if reach else 'unreachable'}")
        for name in sorted(set(old[1]) - set(procs)):
            out.append(f"{host}: {name} stopped")
        for name in sorted(set(procs) - set(old[1])):
            out.append(f"{host}: {name} runs")
    gone = set(map(tuple, before["findings"])) - set(map(tuple, now["findings"]))
    out += [f"{check} on {host} cleared" for host, check in sorted(gone)]
    return out


def needs_healing(report: StatusReport) -> bool:
    """Findings (orphaned ranks, a wedged server, missing engines), or a deployment recorded as
    running that does not serve with every host reachable. Nothing recorded: nothing to heal."""
    if report.findings:
        return True
    return report.deployed is not None and not report.ok and all(h.get("reachable") for h in report.hosts)


def watch(
    read: Callable[[], StatusReport],
    heal: Callable[[], UpReport] | None = None,
    *,
    interval: float = 30.0,
    count: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[WatchEvent]:
    """Read the state every `interval` seconds (`count` rounds, None: until the caller stops), yield an
    event when it changed, and with `heal` run it once per distinct breakage (not again while the
    same findings persist after a failed heal)."""
    before: dict[str, Any] | None = None
    healed_for: Any = None
    rounds = 0
    while count is None or rounds < count:
        if rounds:
            sleep(interval)
        rounds += 1
        report = read()
        now = state_of(report)
        if now != before:
            yield WatchEvent(_now(), "state", report.ok, summary(report), list(report.findings), changes(before, now))
        before = now
        key = (tuple(map(tuple, now["findings"])), now["serving"])
        if heal is None or not needs_healing(report) or key == healed_for:
            if not needs_healing(report):
                healed_for = None
            continue
        healed_for = key
        started = time.monotonic()
        up = heal()
        yield WatchEvent(
            _now(),
            "heal",
            up.ok,
            "healed: `up` restarted what was broken"
            if up.ok
            else f"healing `up` failed at {up.failed_stage}; not retried while the same findings persist",
            list(report.findings),
            heal_ok=up.ok,
            heal_failed_stage=up.failed_stage,
            heal_duration_s=round(time.monotonic() - started, 1),
        )
        before = None  # report the state after the heal, whatever it is
