"""`upgrade`'s pure parts: what changed, sorted into kinds; the steps `--dry-run` prints; the record
after an upgrade (annotated, a never-recorded attempt added, a restored current entry); the history rows;
and the applied inventory read back from a record plans the very same deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import inventory
from toolkit import api
from toolkit.config.applied import inventory_from_applied
from toolkit.facts.record import Record
from toolkit.planner.plan import plan_to_dict
from toolkit.planner.record import history_rows, plan_digest
from toolkit.planner.upgrade import change_kinds, upgrade_steps
from toolkit.steps.record import inventory_as_applied

OLD = "quay.io/ascend/vllm-ascend:v0.18.0"
NEW = "quay.io/ascend/vllm-ascend:v0.23.0"


def doc(tmp_path: Path, *sets: str, **changes: Any) -> dict[str, Any]:
    changes.setdefault("devices", [0])
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=2, sets=list(sets), **changes)
    return plan_to_dict(api.plan(inv))


def test_each_change_is_sorted_into_its_kind(tmp_path: Path) -> None:
    base = doc(tmp_path, container={"image": OLD})
    assert change_kinds(base, base) == {}
    # the image alone (the runtime profile pinned): one kind
    pinned = doc(tmp_path, runtime="vllm-ascend-0.18.0", container={"image": OLD})
    assert change_kinds(pinned, doc(tmp_path, f"container.image={OLD}-hotfix", runtime="vllm-ascend-0.18.0")) == {
        "image": ["container.image"]
    }
    # a newer release's image: the plan takes its runtime profile from the tag, and says so
    newer = change_kinds(base, doc(tmp_path, f"container.image={NEW}", container={"image": OLD}))
    assert list(newer) == ["image", "runtime profile"] and "runtime.vllm_ascend" in newer["runtime profile"]
    flags = change_kinds(base, doc(tmp_path, "serve.max_num_seqs=7", container={"image": OLD}))
    assert list(flags) == ["flags"] and any("--max-num-seqs" in k for k in flags["flags"])
    # on the hosts' own Python: another runtime profile (its venv, its CANN)
    runtime = change_kinds(doc(tmp_path), doc(tmp_path, "runtime=vllm-ascend-0.13.0"))
    assert "runtime profile" in runtime and "runtime.name" in runtime["runtime profile"]
    env = change_kinds(base, doc(tmp_path, "env.MY_SETTING=1", container={"image": OLD}))
    assert env == {"environment": ["hosts[n0].env.MY_SETTING", "hosts[n1].env.MY_SETTING"]}
    layout = change_kinds(doc(tmp_path), doc(tmp_path, devices=[1]))
    assert "layout" in layout and "hosts[n0].devices" in layout["layout"]


def test_the_steps_name_the_gate_only_when_given() -> None:
    plain_steps = [s.name for s in upgrade_steps(container=False, gate=None, min_ratio=0.97, latency=False)]
    assert plain_steps == ["record", "stage", "apply", "ready", "rollback"]
    gated = upgrade_steps(container=True, gate="base.json", min_ratio=0.9, latency=True)
    gate = next(s for s in gated if s.name == "gate")
    assert "base.json" in gate.what and "0.9 x" in gate.what and "TTFT" in gate.what
    assert "`image status`" in next(s for s in gated if s.name == "stage").what
    assert [s.serving for s in gated] == ["old", "old", "none", "new", "new", "old"]


def entry(digest: str, at: str, **extra: Any) -> dict[str, Any]:
    return {"plan_sha256": digest, "deployed_at": at, "plan": {"container": {"image": {"value": digest}}}, **extra}


def attempt(outcome: str, **extra: Any) -> dict[str, Any]:
    return {"from": "old", "to": "new", "started": "2026-12-07T01:00:00Z", "outcome": outcome, **extra}


def test_the_record_after_an_upgrade_keeps_the_attempt_where_it_belongs() -> None:
    at = "2026-12-07T01:05:00Z"
    tried = entry("new", "2026-12-07T01:00:00Z")
    # it stayed: the current entry is the new plan's
    up = Record(entry("new", "2026-12-07T01:01:00Z", via="upgrade"), (entry("old", "2026-12-06T00:00:00Z"),))
    done = up.with_upgrade(attempt("upgraded"), tried, at)
    assert done.current is not None and done.current["upgrade"]["outcome"] == "upgraded" and done.history == up.history
    # rolled back after its record step: the replaced new entry carries it, the current one says it was restored
    back = Record(
        entry("old", "2026-12-07T01:04:00Z", via="rollback"),
        (entry("new", "2026-12-07T01:01:00Z", replaced_at=at), entry("old", "2026-12-06T00:00:00Z")),
    )
    done = back.with_upgrade(attempt("rolled-back"), tried, at)
    assert done.history[0]["upgrade"]["outcome"] == "rolled-back" and len(done.history) == 2
    assert done.current is not None and done.current["restored"] == {"at": at, "after": "new"}
    # it never reached its record step (the server exited at start): the attempt is added to the history
    never = Record(entry("old", "2026-12-06T00:00:00Z"), ())
    done = never.with_upgrade(attempt("rolled-back"), tried, at)
    assert [h["plan_sha256"] for h in done.history] == ["new"] and done.history[0]["replaced_at"] == at
    # an older entry of the same plan (an earlier, separate deployment) is not mistaken for this attempt
    older = Record(entry("old", "2026-12-06T00:00:00Z"), (entry("new", "2026-11-01T00:00:00Z"),))
    assert [h.get("upgrade") is not None for h in older.with_upgrade(attempt("rolled-back"), tried, at).history] == [
        True,
        False,
    ]


def test_history_rows_say_how_each_deployment_came_and_went() -> None:
    gate = {"passed": False, "min_ratio": 0.97, "verdicts": [{"ratio": 0.41}, {"ratio": 0.8}]}
    rows = history_rows(
        entry("old", "3", via="rollback", restored={"after": "new"}),
        [
            entry("new", "2", via="upgrade", upgrade=attempt("rolled-back", gate=gate, failure={"step": "gate"})),
            entry("old", "1", stopped_at="1.5"),
        ],
    )
    assert [(r["via"], r["state"], r["rolled_back"]) for r in rows] == [
        ("rollback", "running", False),
        ("upgrade", "rolled back", True),
        ("up", "stopped", False),
    ]
    assert rows[1]["gate_text"] == "failed: 0.41x the baseline (at least 0.97)"
    assert rows[1]["changes"] == ["container.image: old -> new"]
    assert rows[0]["changes"] == ["container.image: new -> old"]
    assert rows[0]["restored_after"] == "new" and rows[2]["changes"] == [] and rows[1]["image"] == "new"
    # an attempt's changes are against the deployment it tried to replace, not an attempt between them
    rows = history_rows(
        entry("old", "4"),
        [entry("b", "3", upgrade=attempt("rolled-back", to="b")), entry("new", "2", upgrade=attempt("rolled-back"))]
        + [entry("old", "1")],
    )
    assert [r["changes"] for r in rows[:2]] == [["container.image: b -> old"], ["container.image: old -> b"]]


def test_the_applied_inventory_read_back_plans_the_same_deployment(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=2, devices=[0], sets=[f"container.image={NEW}"])
    applied = inventory_as_applied(inv)
    back = inventory_from_applied(applied, inv.path)
    assert inventory_as_applied(back) == applied
    assert plan_digest(plan_to_dict(api.plan(back))) == plan_digest(plan_to_dict(api.plan(inv)))


def test_start_up_timeouts_sized_from_a_new_measurement_are_no_change(tmp_path: Path) -> None:
    import copy

    from toolkit.planner.record import differences

    old = doc(tmp_path)
    new = copy.deepcopy(old)
    env = new["hosts"][0]["env"]
    assert "VLLM_ENGINE_READY_TIMEOUT_S" in env and "HCCL_CONNECT_TIMEOUT" in env
    for key in ("VLLM_ENGINE_READY_TIMEOUT_S", "HCCL_CONNECT_TIMEOUT"):
        env[key] = {"value": "4321", "from": "2 x the predicted cold start"} if isinstance(env[key], dict) else "4321"
    assert plan_digest(new) == plan_digest(old) and differences(old, new) == [] and change_kinds(old, new) == {}
    env["HCCL_EXEC_TIMEOUT"] = "1"  # bounds collectives while serving too: a change
    assert plan_digest(new) != plan_digest(old) and change_kinds(old, new) == {
        "environment": ["hosts[n0].env.HCCL_EXEC_TIMEOUT"]
    }
