"""The up-dp playbook against fake hosts: workers' headless ranks first, then the head; one
decision for every rank (a change anywhere restarts all); readiness that stops on every host
when one rank exits, naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cluster, inventory, ops, run, settle
from toolkit import api
from toolkit.engine.runner import HostStatus
from toolkit.testing import fake_factory


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Any, Cluster, Any]:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"launcher": "dp"})
    return inv, Cluster(inv), api.plan(inv)


def settled(cluster: Cluster, inv: Any, plan: Any) -> None:
    settle(cluster, inv, plan)


def test_first_up_starts_the_workers_then_the_head_and_no_ray(setup: Any) -> None:
    inv, cluster, plan = setup
    report = run(inv, cluster, plan, key="sk-1", book="up-dp")
    assert report.ok, report.to_dict()
    done = ops(report)
    assert [s.name for s in report.stages] == ["env", "ranks", "stop-ranks", "workers", "vllm", "ready", "record"]
    assert done["workers"][0].startswith("n1: start vLLM dp rank(s) 1 (headless, TP 1)")
    assert done["vllm"][0].startswith("n0: start vLLM dp rank(s) 0 (API server, TP 1)")
    worker = next(c for c in cluster.hosts["n1"].ops if "setsid nohup" in c)
    head = next(c for c in cluster.hosts["n0"].ops if "setsid nohup" in c)
    assert "setsid nohup vllm serve /data/models/Qwen2.5-7B-Instruct" in worker
    assert "--data-parallel-start-rank 1 --headless" in worker and "VLLM_API_KEY" not in worker
    assert "--headless" not in head and "VLLM_API_KEY" in head and "--data-parallel-address 10.0.0.1" in head
    assert not any("ray " in c for h in cluster.hosts.values() for c in h.ops)
    ready = next(s for s in report.stages if s.name == "ready")
    assert ready.hosts["n0"].data["answers"]["completion"] == " Paris" and ready.hosts["n1"].data["state"] == "ready"


def test_rerun_changes_nothing_and_a_change_restarts_every_rank(setup: Any, tmp_path: Path) -> None:
    inv, cluster, plan = setup
    run(inv, cluster, plan, book="up-dp")
    settled(cluster, inv, plan)
    again = run(inv, cluster, plan, book="up-dp")
    assert again.ok and ops(again) == {}
    assert {s.name: {h.status for h in s.hosts.values()} for s in again.stages}["workers"] == {HostStatus.UNCHANGED}
    changed_inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"launcher": "dp", "max_num_seqs": 8})
    changed = ops(run(changed_inv, cluster, api.plan(changed_inv), book="up-dp"))
    assert sorted(changed["stop-ranks"]) == [
        "n0: stop vLLM: every rank restarts (settings changed on n0, settings changed on n1)",
        "n1: stop vLLM: every rank restarts (settings changed on n0, settings changed on n1)",
    ]
    assert changed["workers"][0].startswith("n1: start vLLM") and changed["vllm"][0].startswith("n0: start vLLM")


def test_one_rank_gone_restarts_all_of_them(setup: Any) -> None:
    inv, cluster, plan = setup
    run(inv, cluster, plan, book="up-dp")
    settled(cluster, inv, plan)
    cluster.hosts["n1"].vllm_pid = None  # the worker's rank died
    again = ops(run(inv, cluster, plan, book="up-dp"))
    assert again["stop-ranks"] == ["n0: stop vLLM: every rank restarts (not running on n1)"]  # n1 has none to stop
    assert "n1: start vLLM" in again["workers"][0] and "n0: start vLLM" in again["vllm"][0]


def test_a_rank_that_exits_during_start_stops_the_wait_on_every_host(setup: Any) -> None:
    inv, cluster, plan = setup

    def handler(name: str, script: str) -> tuple[int, str, str]:
        if name == "n0" and "/health" in script and "alive=1" in script:
            return 0, "alive=1\nhealth=000\nlast=Waiting for engines\n", ""  # the head keeps starting
        if name == "n1" and "alive=1" in script and "/health" not in script:
            return 0, "alive=0\nlast=\n", ""  # the worker's rank is gone
        if "tail -n 40" in script:
            return 0, "RuntimeError: Timed out waiting for engines to send initial message on input socket\n", ""
        return cluster(name, script)

    connect, _ = fake_factory(handler)
    from toolkit.engine.executor import Executor
    from toolkit.engine.registry import Shared
    from toolkit.engine.runner import run_playbook
    from toolkit.steps import load_playbook

    with Executor(inv.hosts, connect=connect) as ex:
        report = run_playbook(load_playbook("up-dp"), inv, ex, shared=Shared(plan=plan))
    assert report.failed_stage == "ready"
    ready = next(s for s in report.stages if s.name == "ready")
    worker, head = ready.hosts["n1"].error, ready.hosts["n0"].error
    assert worker.host == "n1" and "rank exited while the cluster started" in worker.message
    assert "Timed out waiting for engines" in worker.message or "Timed out" in " ".join(worker.details)
    assert "stopped waiting" in head.message and "the vLLM rank on n1 exited" in head.message


def test_generate_on_a_dp_plan_is_refused_with_the_reason(setup: Any) -> None:
    inv, cluster, _ = setup
    connect, _ = fake_factory(cluster)
    from toolkit.errors import BadInput

    with pytest.raises(BadInput) as exc:
        api.generate(inv, api.Options(), [{"prompt": "x"}], None, on_result=lambda r: None, connect=connect)
    assert "generate on launcher dp" in exc.value.message and "independent LLM per rank" in exc.value.message


def test_a_host_running_two_vllm_processes_needs_no_other_step(tmp_path: Path) -> None:
    """Processes are plan data: a head that runs two vLLM processes of the group (one serving the API,
    one headless) starts, records, probes and restarts both through the same steps, each with its own
    files."""
    from dataclasses import replace

    from toolkit.planner.plan import Process

    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0, 1], serve={"launcher": "dp"})
    plan = api.plan(inv)
    head = plan.head
    api_rank = head.processes[0]
    second = Process(
        "vllm-b",
        api_rank.kind,
        (*api_rank.argv, "--port", "8001"),
        group="ranks",
        ready="alive",
        same="group",
        ranks=(1,),
    )
    two = replace(plan, hosts=(replace(head, processes=(api_rank, second)),))
    cluster = Cluster(inv)
    first = run(inv, cluster, two, book="up-dp")
    assert first.ok, first.to_dict()
    started = [c for c in cluster.hosts["n0"].ops if "setsid nohup" in c]
    assert len(started) == 2 and "proc/vllm.pid" in started[0] and "proc/vllm-b.pid" in started[1]
    assert cluster.hosts["n0"].others["vllm-b"][1] == cluster.hosts["n0"].vllm_hash  # one hash for the group
    settle(cluster, inv, two)
    assert ops(run(inv, cluster, two, book="up-dp")) == {}
    cluster.hosts["n0"].others["vllm-b"] = (None, cluster.hosts["n0"].others["vllm-b"][1])  # the second one died
    again = ops(run(inv, cluster, two, book="up-dp"))
    assert again["vllm"] == [
        "n0: start vLLM dp rank(s) 0 (API server, TP 2): not running on n0",
        "n0: record the vLLM command hash",
        "n0: start vLLM dp rank(s) 1 (headless, TP 2): not running on n0",
        "n0: record the vLLM command hash",
    ]
