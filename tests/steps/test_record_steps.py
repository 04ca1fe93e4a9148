"""The deployment record on the head, against the fake cluster: `up` writes the applied plan and
inventory (a re-run writes nothing; a change keeps the previous deployment in the history, at most
five), `status` looks at the recorded deployment and names how the inventory now differs, and `down`
records that nothing runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import Cluster, inventory, ops, run, settle
from toolkit import api
from toolkit.facts.record import HISTORY
from toolkit.planner.plan import plan_to_dict
from toolkit.planner.record import plan_digest
from toolkit.planner.serialize import plan_from_dict

MODEL = "Qwen2.5-7B-Instruct"


def record(cluster: Cluster) -> dict[str, Any]:
    text = cluster.hosts["n0"].record
    assert text is not None
    return json.loads(text)


def up(tmp_path: Path, cluster: Cluster | None = None, **serve: Any) -> tuple[Any, Cluster, Any]:
    inv = inventory(tmp_path, MODEL, devices=[0], serve=serve)
    plan = api.plan(inv)
    cluster = cluster or Cluster(inv)
    report = run(inv, cluster, plan, book="up-dp" if serve.get("launcher") == "dp" else "up")
    assert report.ok, report.to_dict()
    settle(cluster, inv, plan)
    return inv, cluster, plan


def test_up_records_the_applied_plan_on_the_head_and_a_rerun_writes_nothing(tmp_path: Path) -> None:
    inv, cluster, plan = up(tmp_path)
    rec = record(cluster)
    assert cluster.hosts["n1"].record is None  # the head keeps it
    cur = rec["current"]
    assert rec["format"] == 1 and rec["history"] == []
    assert cur["plan_sha256"] == plan_digest(plan_to_dict(plan)) and cur["tool"].startswith("ascend-deploy ")
    assert plan_from_dict(cur["plan"]) == plan  # the plan that runs, rebuilt from the record
    assert cur["inventory"]["spec"]["cluster"] == "t" and [h["name"] for h in cur["inventory"]["hosts"]] == ["n0", "n1"]
    assert any(".ascend-deploy/t/deployed.json" in c and "chmod 600" in c for c in cluster.hosts["n0"].ops)
    again = run(inv, cluster, plan)
    assert ops(again) == {} and record(cluster) == rec


def test_a_change_keeps_the_previous_deployment_and_the_history_keeps_five(tmp_path: Path) -> None:
    _, cluster, first = up(tmp_path)
    _, _, second = up(tmp_path, cluster, max_num_seqs=7)
    rec = record(cluster)
    assert rec["current"]["plan_sha256"] == plan_digest(plan_to_dict(second))
    assert [h["plan_sha256"] for h in rec["history"]] == [plan_digest(plan_to_dict(first))]
    assert rec["history"][0]["replaced_at"] and plan_from_dict(rec["history"][0]["plan"]) == first
    for seqs in range(8, 8 + HISTORY + 2):
        up(tmp_path, cluster, max_num_seqs=seqs)
    assert len(record(cluster)["history"]) == HISTORY


def test_status_looks_at_what_was_deployed_and_names_what_the_inventory_changes(tmp_path: Path) -> None:
    """Deployed with launcher dp by --set; the inventory plans ray now: status shows the DP ranks
    serving (not two Ray nodes down) and says the launcher differs."""
    inv, cluster, dp_plan = up(tmp_path, launcher="dp")
    assert dp_plan.launcher.value == "dp"
    plain = inventory(tmp_path, MODEL, devices=[0])
    assert api.plan(plain).launcher.value == "ray"
    connect, _ = cluster.factory()
    report = api.status(plain, api.Options(), connect=connect)
    assert report.plan.launcher.value == "dp" and all(h["runs"] == "vllm" for h in report.hosts)
    assert [(p["name"], p["kind"], p["pid"], p["api"]) for p in report.hosts[0]["processes"]] == [
        ("vllm", "vllm-rank", 4242, True)
    ]
    assert report.ok, report.to_dict()
    deployed = report.to_dict()["deployed"]
    assert deployed["matches_inventory"] is False and deployed["launcher"] == "dp"
    assert "launch.launcher: dp -> ray" in deployed["differences"]
    assert any("the inventory now plans something other than what was deployed" in n for n in report.notes)

    same = api.status(inv, api.Options(), connect=connect).to_dict()["deployed"]
    assert same["matches_inventory"] is True and same["differences"] == []
    assert same["plan_sha256"] == plan_digest(plan_to_dict(dp_plan))


def test_without_a_record_status_plans_from_the_inventory_as_before(tmp_path: Path) -> None:
    inv = inventory(tmp_path, MODEL, devices=[0])
    cluster = Cluster(inv)
    connect, _ = cluster.factory()
    report = api.status(inv, api.Options(), connect=connect)
    assert report.deployed is None and report.plan.launcher.value == "ray" and not report.ok


def test_an_unreadable_record_is_named_and_status_goes_on(tmp_path: Path) -> None:
    inv, cluster, _ = up(tmp_path)
    cluster.hosts["n0"].record = '{"format": 1, "current": '  # a truncated file
    connect, _ = cluster.factory()
    report = api.status(inv, api.Options(), connect=connect)
    assert report.deployed is None and report.ok
    assert any("deployment record on n0 is unreadable (not JSON" in n for n in report.notes)


def test_down_records_that_nothing_runs_and_keeps_the_deployment_in_the_history(tmp_path: Path) -> None:
    inv, cluster, plan = up(tmp_path)
    digest = record(cluster)["current"]["plan_sha256"]
    report = run(inv, cluster, plan, book="down")
    assert "record" in ops(report), ops(report)
    rec = record(cluster)
    assert rec["current"] is None and rec["history"][0]["plan_sha256"] == digest and rec["history"][0]["stopped_at"]
    again = run(inv, cluster, plan, book="down")
    assert "record" not in ops(again)


def test_status_names_ranks_left_without_their_api_server(tmp_path: Path) -> None:
    """The head's API server died (kill -9) after a dp deployment: the worker's ranks wait for it and
    never recover; status names them (exit 1) and the next `up` restarts the whole group."""
    inv, cluster, plan = up(tmp_path, launcher="dp")
    cluster.hosts["n0"].vllm_pid = None  # the head's server is gone, the worker's rank runs on
    connect, _ = cluster.factory()
    report = api.status(inv, api.Options(), connect=connect)
    assert not report.ok
    [orphan] = report.findings
    assert (orphan["host"], orphan["check"]) == ("n1", "orphaned-ranks")
    assert orphan["observed"].startswith("DP rank(s) 1 run here (pid 4242) without the API server on n0")
    assert "ascend-deploy up" in orphan["fix"] and report.to_dict()["findings"] == [orphan]
    healed = ops(run(inv, cluster, plan, book="up-dp"))
    assert healed["stop-ranks"] == ["n1: stop vLLM: every rank restarts (not running on n0)"]
    assert api.status(inv, api.Options(), connect=cluster.factory()[0]).findings == []


def test_status_names_ranks_down_while_the_api_server_serves_on(tmp_path: Path) -> None:
    """A worker's ranks died while the head's API server lives: the endpoint still answers (degraded);
    status names the host and its ranks, and `up` restarts the group."""
    inv, cluster, plan = up(tmp_path, launcher="dp")
    cluster.hosts["n1"].vllm_pid = None
    report = api.status(inv, api.Options(), connect=cluster.factory()[0])
    [down] = report.findings
    assert (down["host"], down["check"]) == ("n1", "ranks-down") and not report.ok
    assert down["observed"].startswith("DP rank(s) 1 planned here do not run, while the API server on n0")
    healed = ops(run(inv, cluster, plan, book="up-dp"))
    assert healed["stop-ranks"][0].startswith("n0: stop vLLM: every rank restarts (not running on n1)")
    assert api.status(inv, api.Options(), connect=cluster.factory()[0]).findings == []


def test_status_names_a_server_that_reports_fewer_engines_than_planned(tmp_path: Path) -> None:
    from toolkit.api.supervise import findings

    inv, cluster, plan = up(tmp_path, launcher="dp")
    rows = [{"host": "n0", "reachable": True, "health": 200, "engines": 1, "engines_planned": 2, "processes": []}]
    assert findings(plan, rows) == [
        {
            "host": "n0",
            "check": "engines",
            "observed": "the API server reports 1 of the plan's 2 engines (/metrics)",
            "fix": "the missing ranks' hosts are named above if their process is gone; `ascend-deploy up` restarts "
            "the group",
        }
    ]


def test_status_names_a_wedged_server(tmp_path: Path) -> None:
    """/health says 200 but a one-token completion gets no answer in the bound: wedged, exit 1."""
    inv, cluster, plan = up(tmp_path)
    connect, _ = cluster.factory()
    assert api.status(inv, api.Options(), connect=connect).findings == []
    cluster.hosts["n0"].wedged = True
    report = api.status(inv, api.Options(), connect=connect)
    [wedged] = report.findings
    assert (wedged["host"], wedged["check"]) == ("n0", "wedged") and not report.ok
    assert wedged["observed"] == "/health answers 200 but a one-token completion got no answer within 20 s"
    assert report.hosts[0]["health"] == 200 and report.hosts[0]["answered"] is False
