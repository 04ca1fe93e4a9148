"""What `upgrade` and `history` print on a terminal: the differences and steps of a dry run; where a
rollback came from, with the log tail and the gate's numbers; one row per recorded deployment."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from toolkit.api.recorded import HistoryReport
from toolkit.api.rollout import UpgradeReport
from toolkit.cli import render_upgrade
from toolkit.planner.upgrade import upgrade_steps


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> Console:
    console = Console(record=True, width=200, color_system=None)
    monkeypatch.setattr(render_upgrade, "out", console)
    monkeypatch.setattr(render_upgrade, "err", console)
    return console


def report(**kw: Any) -> UpgradeReport:
    r = UpgradeReport("inv.yaml", from_plan="a" * 64, to_plan="b" * 64, changes=["container.image: x:1 -> x:2"])
    r.kinds = {"image": ["container.image"]}
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_a_dry_run_prints_the_differences_and_the_steps(screen: Console) -> None:
    render_upgrade.render_upgrade(
        report(steps=upgrade_steps(container=True, gate="b.json", min_ratio=0.97, latency=False))
    )
    text = screen.export_text()
    assert "plan aaaaaaaaaaaa -> bbbbbbbbbbbb" in text and "what changes: image" in text
    assert "container.image: x:1 -> x:2" in text
    assert [
        line.split()[0]
        for line in text.splitlines()
        if line.split() and line.split()[0] in ("record", "stage", "apply", "ready", "gate", "rollback")
    ] == ["record", "stage", "apply", "ready", "gate", "rollback"]
    assert "dry run: nothing was touched" in text


def test_a_rollback_prints_where_it_failed_the_gate_and_that_the_old_one_serves(screen: Console) -> None:
    gate = {
        "baseline": "b.json",
        "min_ratio": 0.97,
        "verdicts": [
            {
                "label": "rate inf",
                "what": "output tokens/s",
                "measured": 49.3,
                "baseline": 3754.6,
                "ratio": 0.013,
                "passed": False,
            }
        ],
    }
    failure = {
        "step": "gate",
        "message": "the gate failed: rate inf output tokens/s 49.3 against 3754.6",
        "log": ["last line"],
    }
    render_upgrade.render_upgrade(
        report(outcome="rolled-back", failure=failure, gate=gate, timings={"apply_s": 20.1, "rollback_s": 18.9})
    )
    text = screen.export_text()
    assert "failed at gate: the gate failed: rate inf" in text and "last line" in text
    assert "rate inf" in text and "49.3" in text and "3754.6" in text and "0.01x" in text and "below 0.97" in text
    assert "apply 20.1 s, rollback 18.9 s" in text and "rolled back: the previous deployment serves again" in text


def test_history_prints_a_row_per_deployment(screen: Console) -> None:
    rows = [
        {
            "deployed_at": "T2",
            "via": "rollback",
            "plan_sha256": "a" * 64,
            "image": "x:1",
            "runtime": "r",
            "state": "running",
            "changes": ["container.image: x:2 -> x:1"],
            "gate_text": None,
            "rolled_back": False,
            "failure": None,
        },
        {
            "deployed_at": "T1",
            "via": "upgrade",
            "plan_sha256": "b" * 64,
            "image": "x:2",
            "runtime": "r",
            "state": "rolled back",
            "changes": ["container.image: x:1 -> x:2"],
            "gate_text": "failed: 0.01x the baseline",
            "rolled_back": True,
            "failure": {"step": "gate"},
        },
    ]
    render_upgrade.render_history(HistoryReport("inv.yaml", "c", "h", rows))
    lines = [line for line in screen.export_text().splitlines() if line.strip()]
    assert lines[1].split()[:5] == ["T2", "rollback", "aaaaaaaaaaaa", "x:1", "running"]
    assert "rolled back (gate)" in lines[2] and "failed: 0.01x the baseline" in lines[2]
