"""`watch`'s loop on scripted status reports: an event per change only, a heal once per breakage."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from toolkit.api.watch import needs_healing, watch

pytestmark = pytest.mark.unit


def report(ok: bool, findings: list[dict[str, Any]] | None = None, vllm: bool = True, deployed: bool = True) -> Any:
    procs = [{"name": "ray-node", "pid": 10}] + ([{"name": "vllm", "pid": 11}] if vllm else [])
    return SimpleNamespace(
        ok=ok,
        endpoint="http://h:8000/v1",
        findings=findings or [],
        deployed=object() if deployed else None,
        hosts=[
            {"host": "h1", "role": "head", "reachable": True, "health": 200 if vllm else None, "processes": procs},
            {"host": "h2", "role": "worker", "reachable": True, "processes": [{"name": "ray-node", "pid": 12}]},
        ],
    )


WEDGED = {"host": "h1", "check": "wedged", "observed": "no answer", "fix": "up"}


def test_only_changes_are_reported() -> None:
    script = iter([report(True), report(True), report(False, vllm=False), report(False, vllm=False), report(True)])
    events = list(watch(lambda: next(script), interval=0, count=5, sleep=lambda s: None))
    assert [e.serving for e in events] == [True, False, True]
    assert events[0].summary == "serving at http://h:8000/v1" and events[0].changes == []
    assert events[1].summary == "not serving: the recorded deployment does not run as planned"
    assert events[1].changes == ["/health 200 -> None", "h1: vllm stopped"]
    assert events[2].changes == ["/health None -> 200", "h1: vllm runs"]


def test_heal_runs_once_per_breakage_and_reports_the_state_after() -> None:
    script = iter([report(False, [WEDGED]), report(True), report(True)])
    heals: list[int] = []

    def heal() -> Any:
        heals.append(1)
        return SimpleNamespace(ok=True, failed_stage=None)

    events = list(watch(lambda: next(script), heal, interval=0, count=3, sleep=lambda s: None))
    assert [e.kind for e in events] == ["state", "heal", "state"]
    assert events[0].summary == "not healthy: wedged on h1" and events[0].findings == [WEDGED]
    assert events[1].heal_ok is True and events[1].summary.startswith("healed")
    assert events[2].serving is True and len(heals) == 1


def test_a_failed_heal_is_not_retried_while_the_findings_stay() -> None:
    script = iter([report(False, [WEDGED])] * 3 + [report(True), report(False, [WEDGED])])
    heals: list[int] = []

    def heal() -> Any:
        heals.append(1)
        return SimpleNamespace(ok=False, failed_stage="ready")

    events = list(watch(lambda: next(script), heal, interval=0, count=5, sleep=lambda s: None))
    assert len(heals) == 2  # the first breakage, then again only after it had cleared and came back
    failed = [e for e in events if e.kind == "heal"]
    assert failed[0].heal_failed_stage == "ready" and "not retried" in failed[0].summary


def test_nothing_deployed_is_not_healed() -> None:
    assert needs_healing(report(False, vllm=False, deployed=False)) is False
    assert needs_healing(report(False, vllm=False)) is True
    assert needs_healing(report(False, [WEDGED])) is True
