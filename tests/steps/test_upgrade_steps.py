"""`upgrade` and `history` against the fake cluster, where no start is needed: nothing deployed is
refused with the fix; the inventory that runs is "unchanged"; `--dry-run` shows the differences and
the steps and sends no operation; `history` reads the record the `up`s wrote."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cluster, inventory, run, settle
from toolkit import api
from toolkit.errors import BadInput

MODEL = "Qwen2.5-7B-Instruct"


def test_upgrade_reads_the_record_and_dry_run_touches_nothing(tmp_path: Path) -> None:
    inv = inventory(tmp_path, MODEL, devices=[0])
    cluster = Cluster(inv)
    connect, _ = cluster.factory()
    with pytest.raises(BadInput, match="nothing is deployed on t to upgrade") as info:
        api.upgrade(inv, api.Options(), connect=connect)
    assert "ascend-deploy up" in (info.value.hint or "")

    plan = api.plan(inv)
    assert run(inv, cluster, plan).ok
    settle(cluster, inv, plan)
    same = api.upgrade(inv, api.Options(), connect=connect)
    assert same.outcome == "unchanged" and same.ok and same.changes == []

    seven = inventory(tmp_path, MODEL, devices=[0], serve={"max_num_seqs": 7})
    before = {name: list(host.ops) for name, host in cluster.hosts.items()}
    dry = api.upgrade(seven, api.Options(), connect=connect, dry_run=True)
    assert dry.outcome == "planned" and dry.ok and dry.changes == ["vllm --max-num-seqs: 256 -> 7"]
    assert list(dry.kinds) == ["flags"] and [s.name for s in dry.steps][-1] == "rollback"
    assert {name: list(host.ops) for name, host in cluster.hosts.items()} == before  # nothing sent

    second = api.plan(seven)
    assert run(seven, cluster, second).ok
    settle(cluster, seven, second)
    rows = api.history(seven, api.Options(), connect=connect).rows
    assert [(r["state"], r["via"]) for r in rows] == [("running", "up"), ("replaced", "up")]
    assert rows[0]["changes"] == ["vllm --max-num-seqs: 256 -> 7"] and rows[1]["changes"] == []


class _Staged:
    problems: list = []
    views: list = []


def _deployed(tmp_path: Path) -> tuple[Any, Cluster, Any]:
    inv = inventory(tmp_path, MODEL, devices=[0])
    cluster = Cluster(inv)
    plan = api.plan(inv)
    assert run(inv, cluster, plan).ok
    settle(cluster, inv, plan)
    connect, _ = cluster.factory()  # after `run`, which makes its own: the fake reads the latest's stdin
    return inv, cluster, connect


def test_ctrl_c_while_applying_restores_the_recorded_plan_and_keeps_the_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interrupt's own path (the e2e presses Ctrl-C for real): the recorded plan is restored on
    fresh connections under the lock again, the report says where it was interrupted, and the record
    keeps the attempt, rolled back."""
    upgrade_mod = importlib.import_module("toolkit.api.rollout")

    inv, cluster, connect = _deployed(tmp_path)
    restored: list[str] = []

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    def restore(inventory: Any, executor: Any, current: dict[str, Any], report: Any) -> None:
        restored.append(current["plan_sha256"])
        report.outcome, report.serving = "rolled-back", "old"

    monkeypatch.setattr(upgrade_mod, "preflight", lambda *a: _Staged())
    monkeypatch.setattr(upgrade_mod, "apply", interrupted)
    monkeypatch.setattr(upgrade_mod, "_restore", restore)
    seven = inventory(tmp_path, MODEL, devices=[0], serve={"max_num_seqs": 7})
    report = api.upgrade(seven, api.Options(), connect=connect)
    assert report.outcome == "rolled-back" and not report.ok and report.serving == "old"
    assert report.failure == {"step": "apply", "message": "interrupted (Ctrl-C): restoring the recorded deployment"}
    record = json.loads(cluster.hosts["n0"].record or "{}")
    assert restored == [record["current"]["plan_sha256"]] and record["current"]["restored"]["after"] == report.to_plan
    (tried,) = [h for h in record["history"] if h["plan_sha256"] == report.to_plan]
    assert tried["via"] == "upgrade" and tried["upgrade"]["outcome"] == "rolled-back"


def test_ctrl_c_twice_stops_the_rollback_too_and_says_what_may_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade_mod = importlib.import_module("toolkit.api.rollout")
    from toolkit.errors import Interrupted

    inv, cluster, connect = _deployed(tmp_path)

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(upgrade_mod, "preflight", lambda *a: _Staged())
    monkeypatch.setattr(upgrade_mod, "apply", interrupted)  # the apply, then the rollback's own apply
    seven = inventory(tmp_path, MODEL, devices=[0], serve={"max_num_seqs": 7})
    with pytest.raises(Interrupted, match="interrupted twice: the rollback was stopped too") as info:
        api.upgrade(seven, api.Options(), connect=connect)
    assert "ascend-deploy status" in (info.value.hint or "")


def test_a_rollback_that_fails_too_says_what_runs_now_host_by_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade_mod = importlib.import_module("toolkit.api.rollout")
    inv, cluster, connect = _deployed(tmp_path)

    def failed_start(inventory: Any, executor: Any, up_report: Any, *args: Any, **kwargs: Any) -> None:
        up_report.failed_stage = "ready"  # the new server never answered

    def restore(inventory: Any, executor: Any, current: dict[str, Any], report: Any) -> None:
        report.outcome = "rollback-failed"

    monkeypatch.setattr(upgrade_mod, "preflight", lambda *a: _Staged())
    monkeypatch.setattr(upgrade_mod, "apply", failed_start)
    monkeypatch.setattr(upgrade_mod, "_restore", restore)
    seven = inventory(tmp_path, MODEL, devices=[0], serve={"max_num_seqs": 7})
    report = api.upgrade(seven, api.Options(), connect=connect)
    assert report.outcome == "rollback-failed" and not report.ok
    assert report.failure == {"step": "apply", "stage": "ready", "message": "stage ready failed"}
    assert [line.split(":")[0] for line in report.running_now[:2]] == ["n0", "n1"], report.running_now
    assert "Ray running" in report.running_now[0] and "/health" in report.running_now[0], report.running_now
