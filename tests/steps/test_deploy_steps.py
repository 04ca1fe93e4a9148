"""`up`/`down` steps against fake hosts that keep state: (live state, plan) -> the commands that
run. Checks idempotence (a re-run yields nothing), what a serve or env change restarts, that a
failed run resumes, and that the API key only travels on stdin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cluster, Host, inventory, ops, run, settle
from toolkit import api
from toolkit.engine.executor import Executor
from toolkit.engine.registry import Shared
from toolkit.engine.runner import RunReport, run_playbook
from toolkit.launch import not_needed
from toolkit.steps import load_playbook
from toolkit.testing import fake_factory


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Any, Cluster, Any]:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"tensor_parallel_size": 2})
    return inv, Cluster(inv), api.plan(inv)


def test_first_up_starts_everything_in_order(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    report = run(inv, cluster, plan)
    assert report.ok, report.to_dict()
    done = ops(report)
    assert [o.split(":")[0] for o in done["env"]] == ["n0", "n1"]
    assert done["ray-head"][0].startswith("n0: start Ray head on 10.0.0.1 with 1 NPU")
    assert done["ray-workers"][0].startswith("n1: start Ray worker on 10.0.0.2")
    assert any("start vLLM: TP 2 x PP 1, backend ray" in o for o in done["vllm"])
    start = next(c for c in cluster.hosts["n1"].ops if "ray start" in c)
    assert "--address 10.0.0.1:6379" in start and "--resources '{\"NPU\": 1}'" in start and "--num-gpus" not in start
    assert "set -a; . ./.ascend-deploy/t/env; set +a" in start  # env loaded before `ray start`
    answers = next(s for s in report.stages if s.name == "ready").hosts["n0"].data["answers"]
    assert answers == {"models": ["Qwen2.5-7B-Instruct"], "completion": " Paris", "chat": "hi"}


def test_rerun_on_a_healthy_cluster_changes_nothing(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    settle(cluster, inv, plan)
    again = run(inv, cluster, plan)
    assert again.ok and ops(again) == {}
    statuses = {s.name: {h.status for h in s.hosts.values()} for s in again.stages}
    assert statuses == {
        "env": {"unchanged"},
        "ray-head": {"unchanged"},
        "ray-workers": {"unchanged"},
        "ray-ready": {"ok"},
        "vllm": {"unchanged"},
        "ready": {"ok"},
        "record": {"unchanged"},
    }, statuses  # verification stages pass, change stages stay


def test_serve_change_restarts_only_vllm(setup: tuple[Any, Cluster, Any], tmp_path: Path) -> None:
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    settle(cluster, inv, plan)
    inv2 = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"tensor_parallel_size": 2, "max_num_seqs": 8})
    report = run(inv2, cluster, api.plan(inv2))
    done = ops(report)
    assert set(done) == {"vllm", "record"}  # and the head's record says what runs now
    assert done["vllm"][0] == "n0: stop the running vLLM (serve settings changed)"


def test_a_dead_server_s_orphaned_engine_is_ended_before_vllm_starts_again(setup: tuple[Any, Cluster, Any]) -> None:
    """kill -9 of the API server leaves its EngineCore holding the NPUs: a new server would wait
    for them forever. `up` ends the orphan first, and only restarts vLLM."""
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    settle(cluster, inv, plan)
    head = cluster.hosts["n0"]
    head.vllm_pid, head.engine_pid = None, 5151
    done = ops(run(inv, cluster, plan))
    assert set(done) == {"vllm"}, done
    assert done["vllm"][0] == "n0: end the engine processes the dead vLLM left behind (pids 5151)"
    assert any("start vLLM" in o for o in done["vllm"]) and head.engine_pid is None


def test_env_change_restarts_ray_everywhere_and_vllm(setup: tuple[Any, Cluster, Any], tmp_path: Path) -> None:
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    settle(cluster, inv, plan)
    inv2 = inventory(
        tmp_path,
        "Qwen2.5-7B-Instruct",
        devices=[0],
        serve={"tensor_parallel_size": 2},
        defaults={"devices": [0], "nic": "auto", "env": {"HCCL_BUFFSIZE": "512"}},
    )
    report = run(inv2, cluster, api.plan(inv2))
    done = ops(report)
    assert len(done["env"]) == 2
    assert "n0: stop vLLM first (it runs on this Ray cluster)" in done["ray-head"]
    assert any(o.startswith("n0: stop Ray (settings changed)") for o in done["ray-head"])
    assert any(o.startswith("n1: stop Ray (settings changed") for o in done["ray-workers"])
    assert any("start vLLM" in o for o in done["vllm"])


def test_a_start_up_timeout_change_is_written_but_restarts_nothing(
    setup: tuple[Any, Cluster, Any], tmp_path: Path
) -> None:
    """VLLM_ENGINE_READY_TIMEOUT_S / HCCL_CONNECT_TIMEOUT are read only while starting: a new value
    (a plan sized from a measured start) goes into the env file for the next start, nothing restarts."""
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    settle(cluster, inv, plan)
    timeouts = {"HCCL_CONNECT_TIMEOUT": "1200", "VLLM_ENGINE_READY_TIMEOUT_S": "2400"}
    inv2 = inventory(
        tmp_path,
        "Qwen2.5-7B-Instruct",
        devices=[0],
        serve={"tensor_parallel_size": 2},
        defaults={"devices": [0], "nic": "auto", "env": timeouts},
    )
    done = ops(run(inv2, cluster, api.plan(inv2)))
    assert len(done["env"]) == 2 and all("write .ascend-deploy/t/env" in o for o in done["env"])
    assert set(done) <= {"env", "record"}, done  # no Ray or vLLM stage did anything


def test_head_restart_makes_workers_rejoin(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    settle(cluster, inv, plan)
    cluster.hosts["n0"].raylet = cluster.hosts["n0"].gcs = False  # the head died
    done = ops(run(inv, cluster, plan))
    assert any("not running" in o for o in done["ray-head"])
    assert any("the head restarted" in o for o in done["ray-workers"])
    assert any("start vLLM" in o for o in done["vllm"])


def test_worker_that_cannot_reach_the_head_is_named(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    cluster.hosts["n1"].reach = False
    report = run(inv, cluster, plan)
    assert report.failed_stage == "ray-workers"
    err = next(s for s in report.stages if s.name == "ray-workers").hosts["n1"].error
    assert err is not None and "n1 cannot reach the Ray head n0 at 10.0.0.1:6379 (Connection refused)" in err.message
    assert not any("ray start" in c for c in cluster.hosts["n1"].ops)


def test_failed_up_resumes_where_it_stopped(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    cluster.hosts["n0"].launch_fails = True
    first = run(inv, cluster, plan)
    assert first.failed_stage == "vllm"
    settle(cluster, inv, plan)
    cluster.hosts["n0"].launch_fails = False
    done = ops(run(inv, cluster, plan))
    assert "ray-head" not in done and "ray-workers" not in done and any("start vLLM" in o for o in done["vllm"])


def test_api_key_travels_only_on_stdin(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    connect, made = cluster.factory()
    with Executor(inv.hosts, connect=connect) as ex:
        report = run_playbook(load_playbook("up"), inv, ex, shared=Shared(plan=plan, api_key="sk-secret-123"))
    assert report.ok
    assert all("sk-secret-123" not in s for conn in made.values() for s in conn.scripts)
    assert made["n0"].stdins.count("sk-secret-123") == 1 and "sk-secret-123" not in made["n1"].stdins
    assert "sk-secret-123" not in json.dumps(report.to_dict(), default=str)


def test_down_stops_what_runs_and_is_idempotent(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    first = ops(run(inv, cluster, plan, book="down"))  # given the deployed plan (the record's)
    assert first["processes"] == ["n0: stop vllm (pid 4242)"] and "vllm-stop" not in first
    assert first["ray-stop-workers"][0].startswith("n1: stop Ray") and first["ray-stop-head"][0].startswith(
        "n0: stop Ray"
    )
    assert not any(h.raylet or h.vllm_pid for h in cluster.hosts.values())
    second = ops(run(inv, cluster, plan, book="down"))
    assert not {"processes", "vllm-stop", "ray-stop-workers", "ray-stop-head"} & set(second)
    # without a plan (no record on the head), down finds vLLM and Ray by what runs, as before
    run(inv, cluster, plan)
    connect, _ = cluster.factory()
    with Executor(inv.hosts, connect=connect) as ex:
        blind = ops(run_playbook(load_playbook("down"), inv, ex))
    assert "processes" not in blind and any("stop vLLM (pid 4242)" in o for o in blind["vllm-stop"])
    assert not any(h.raylet or h.vllm_pid for h in cluster.hosts.values())


def test_node_that_never_joins_is_named_with_its_ray_log(setup: tuple[Any, Cluster, Any]) -> None:
    """Ray's own node list decides; the host that is missing gets the tail of its Ray log."""
    from toolkit.launch.ray import NodesMissing

    inv, cluster, plan = setup
    real = cluster.apply

    def apply(h: Host, script: str) -> tuple[int, str, str]:
        rc = real(h, script)
        if h.name == "n1" and "ray start" in script:
            h.raylet = False  # `ray start` returned, but the node never registered
        return rc

    def handler(name: str, script: str) -> tuple[int, str, str]:
        if "tail -n 12" in script and "ray-node.log" in script:
            return 0, "2026-11-25 INFO Connecting to existing Ray cluster\nraylet: failed to register with GCS\n", ""
        return cluster(name, script)

    cluster.apply = apply  # type: ignore[method-assign]
    connect, _ = fake_factory(handler)
    report = api.up(inv, api.Options(), skip_preflight=True, connect=connect)
    assert report.failed_stage == "ray-ready"
    err = next(s for s in report.run.stages if s.name == "ray-ready").hosts["n0"].error
    assert isinstance(err, NodesMissing) and err.missing == ["n1"]
    assert "1/2 nodes and 1/2 NPU; missing: n1 (10.0.0.2: not joined)" in err.message
    assert "n1: Ray log tail" in err.details and any("failed to register" in d for d in err.details)


def test_check_mode_lists_what_would_run_and_changes_nothing(setup: tuple[Any, Cluster, Any]) -> None:

    inv, cluster, plan = setup
    connect, made = cluster.factory()
    report = api.up(inv, api.Options(check=True), skip_preflight=True, connect=connect)
    assert report.ok and report.changed
    would = [op.description for s in report.run.stages for h in s.hosts.values() for op in h.ops if not op.ran]
    assert any(d.startswith("start Ray head") for d in would) and any(d.startswith("start vLLM") for d in would)
    assert not any(h.ops for h in cluster.hosts.values())  # no changing command reached a host
    assert {s.name for s in report.run.stages if s.skipped_reason} == {"ray-ready", "ready"}


def test_noop_up_checks_models_but_sends_no_test_requests(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    first = run(inv, cluster, plan)
    assert set(next(s for s in first.stages if s.name == "ready").hosts["n0"].data["answers"]) == {
        "models",
        "completion",
        "chat",
    }
    settle(cluster, inv, plan)
    again = run(inv, cluster, plan)
    assert next(s for s in again.stages if s.name == "ready").hosts["n0"].data["answers"] == {
        "models": ["Qwen2.5-7B-Instruct"]
    }


def test_run_command_gives_deploy_playbooks_the_plan(setup: tuple[Any, Cluster, Any]) -> None:
    """`ascend-deploy run up INVENTORY` works like up's stages (no KeyError on the plan)."""
    inv, cluster, _ = setup
    connect, _ = cluster.factory()
    report = api.run("up", inv, api.Options(), connect=connect)
    assert report.ok and any(h.status == "changed" for s in report.stages for h in s.hosts.values())


def _snapshot(ok: bool, nodes: dict[str, int]) -> Any:
    from concurrent.futures import Future

    from toolkit.transport.result import Result

    future: Future[Any] = Future()
    future.set_result(
        Result("n0", "ray snapshot", 0, "RAYWAIT " + json.dumps({"ok": ok, "nodes": nodes}) + "\n", "", 1.5)
    )
    return future


def run_with_snapshot(inv: Any, cluster: Cluster, plan: Any, snapshot: Any) -> RunReport:
    connect, _ = cluster.factory()
    with Executor(inv.hosts, connect=connect) as ex:
        return run_playbook(load_playbook("up"), inv, ex, shared=Shared(plan=plan, ray_snapshot=snapshot))


def test_ray_ready_takes_the_background_snapshot_only_when_no_ray_node_changed(setup: tuple[Any, Cluster, Any]) -> None:
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    settle(cluster, inv, plan)
    everyone = {"10.0.0.1": 1, "10.0.0.2": 1}

    def ray_ready(report: RunReport) -> dict[str, Any]:
        return next(s for s in report.stages if s.name == "ray-ready").hosts["n0"].data

    unchanged = run_with_snapshot(inv, cluster, plan, _snapshot(True, everyone))
    assert unchanged.ok and ray_ready(unchanged).get("snapshot") is True and ray_ready(unchanged)["npu"] == 2
    # the snapshot says a node is missing: Ray is asked again (and the live fake has both nodes)
    short = run_with_snapshot(inv, cluster, plan, _snapshot(False, {"10.0.0.1": 1}))
    assert short.ok and "snapshot" not in ray_ready(short) and ray_ready(short)["npu"] == 2
    # a worker's Ray node died and is restarted in this run: the older snapshot is not trusted
    cluster.hosts["n1"].raylet = False
    restarted = run_with_snapshot(inv, cluster, plan, _snapshot(True, everyone))
    assert restarted.ok and "snapshot" not in ray_ready(restarted)
    assert any("start Ray worker" in o for o in ops(restarted)["ray-workers"])
    # a snapshot that failed (lost connection, Ray not up) is just ignored
    from concurrent.futures import Future

    from toolkit.errors import ConnectError

    broken: Future[Any] = Future()
    broken.set_exception(ConnectError("n0", "connection lost"))
    settle(cluster, inv, plan)
    again = run_with_snapshot(inv, cluster, plan, broken)
    assert again.ok and "snapshot" not in ray_ready(again)


def test_unknown_tags_are_refused_before_anything_runs(setup: tuple[Any, Cluster, Any]) -> None:
    from toolkit.engine.runner import check_tags
    from toolkit.errors import BadInput

    with pytest.raises(BadInput) as err:
        check_tags(load_playbook("up"), None, {"vlm"})
    assert (
        "--skip-tags" in err.value.message
        and "'vlm'" in err.value.message
        and "did you mean 'vllm'" in err.value.message
    )
    assert "env, ray, record, verify, vllm" in (err.value.hint or "")
    check_tags(load_playbook("up"), {"ray"}, {"vllm"})  # known tags pass


def test_logs_out_folder_is_created_or_refused_before_connecting(
    setup: tuple[Any, Cluster, Any], tmp_path: Path
) -> None:
    from toolkit.errors import BadInput, ConnectError

    inv, cluster, plan = setup
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    connect, made = cluster.factory(open_errors={h.name: ConnectError(h.name, "down") for h in inv.hosts})
    with pytest.raises(BadInput) as err:
        api.logs(inv, api.Options(), out_dir=not_a_folder / "sub", connect=connect)
    assert "--out" in err.value.message and made == {}  # refused before any connection
    nested = tmp_path / "a" / "b"
    report = api.logs(inv, api.Options(), out_dir=nested, connect=connect)
    assert nested.is_dir() and report.archive and Path(report.archive).parent == nested
    assert all(h["error"] for h in report.hosts.values())  # the unreachable hosts are named, not lost


def test_progress_log_keeps_the_order_of_events_and_shows_words_not_shell(
    setup: tuple[Any, Cluster, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a terminal (CI, `make demo | tee`): each operation is logged when it runs, before the
    readiness progress that follows it, and the summary does not repeat them. On a terminal the
    live table's `last` column shows what a step does, never the remote shell."""
    import io

    from rich.console import Console

    from toolkit.cli import console, render

    inv, cluster, plan = setup
    log, summary = io.StringIO(), io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=log, width=200))  # the progress log
    monkeypatch.setattr(render, "out", Console(file=summary, width=200))  # the summary tables
    progress = render.Progress(verbose=False, enabled=True)
    assert not progress.enabled  # StringIO is no terminal: a log, not a live table
    connect, _ = cluster.factory()
    with progress, Executor(inv.hosts, connect=connect, emit=progress) as ex:
        report = run_playbook(load_playbook("up"), inv, ex, shared=Shared(plan=plan))
    assert report.ok
    lines = log.getvalue().splitlines()
    order = [
        next(i for i, line in enumerate(lines) if marker in line)
        for marker in (
            "[n0] env: write",
            "[n0] ray-head: start Ray head",
            "[n1] ray-workers: start Ray worker",
            "[n0] ray-ready:",
            "[n0] vllm: start vLLM",
            "[n0] ready:",
        )
    ]
    assert order == sorted(order), lines
    assert progress.logged_actions
    assert all(not re.search(r"__facts|umask 077|\$\(|h\(\) \{", line) for line in lines), lines

    class Done:  # what lifecycle.up hands render_up, reduced to what it reads
        lock = None
        preflight = None
        run = report
        ok = check = changed = serving = False

        def stage_times(self) -> list[tuple[str, float, str]]:
            return []

    render.render_up(Done(), actions_logged=True)
    assert "start Ray head" not in summary.getvalue()
    render.render_up(Done())
    assert "n0 [ray-head] start Ray head" in " ".join(summary.getvalue().split())

    live = render.Progress(verbose=False, enabled=True)
    with Executor(inv.hosts, connect=connect, emit=live) as ex:
        run_playbook(load_playbook("down"), inv, ex, shared=Shared(plan=plan))
    shown = [row[3] for row in live.rows.values()]
    assert shown and not any(re.search(r"__facts|umask|\$\(|\bkill\b|ray stop", last) for last in shown), shown


def test_status_answers_when_the_inventory_no_longer_plans(setup: tuple[Any, Cluster, Any], tmp_path: Path) -> None:
    """An inventory edited after `up` into an invalid plan: status still shows what runs, with
    the plan's problems as notes (down already works without a plan)."""
    from toolkit.planner.plan import PlanInvalid

    inv, cluster, plan = setup
    run(inv, cluster, plan)
    bad = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"tensor_parallel_size": 3})
    with pytest.raises(PlanInvalid):
        api.plan(bad)
    connect, _ = cluster.factory()
    report = api.status(bad, api.Options(), connect=connect)
    rows = {r["host"]: r for r in report.hosts}
    assert set(rows) == {"n0", "n1"} and all(r["ray_node"] and r["npu"] == 1 for r in rows.values())
    assert (
        rows["n0"]["vllm_pid"] == 4242
        and rows["n0"]["health"] == 200
        and rows["n0"]["models"] == ["Qwen2.5-7B-Instruct"]
    )
    assert (  # shown as deployed (the head's record), with why the inventory does not plan now
        report.ok
        and "the inventory now plans something other than what was deployed" in report.notes[0]
        and "plan is not valid" in report.notes[1]
        and any("tensor" in n.lower() for n in report.notes[2:])
    ), report.notes
    assert report.deployed is not None and not report.deployed.matches_inventory
    assert report.to_dict()["notes"] == report.notes
    healthy = api.status(inv, api.Options(), connect=connect)
    assert healthy.ok and healthy.notes == []


def test_renamed_stages_keep_restart_detection_and_the_summary(setup: tuple[Any, Cluster, Any], tmp_path: Path) -> None:
    """Steps read earlier results by step, never by stage name: a copy of up.yaml with every stage
    renamed behaves exactly like the original (restart detection, the snapshot, the summary)."""
    import yaml

    from toolkit.api import UpReport
    from toolkit.config.playbook import available

    book = yaml.safe_load(available()["up"].read_text())
    for stage in book["stages"]:
        stage["name"] = "my-" + stage["name"][::-1]
    renamed = tmp_path / "renamed-up.yaml"
    renamed.write_text(yaml.safe_dump(book))
    inv, cluster, plan = setup

    def run_renamed(p: Any, snapshot: Any = None) -> RunReport:
        connect, _ = cluster.factory()
        with Executor(inv.hosts, connect=connect) as ex:
            return run_playbook(
                load_playbook(str(renamed)),
                inv,
                ex,
                shared=Shared(plan=p, ray_snapshot=snapshot),
                not_needed=not_needed(p),
            )

    first = run_renamed(plan)
    assert first.ok and {s.name for s in first.stages} == {
        "my-vne",
        "my-daeh-yar",
        "my-srekrow-yar",
        "my-ydaer-yar",
        "my-mllv",
        "my-ydaer",
        "my-drocer",
    }
    summary = UpReport(str(inv.path), plan, run=first)
    assert (
        summary.serving
        and summary.changed
        and summary.answers == {"models": ["Qwen2.5-7B-Instruct"], "completion": " Paris", "chat": "hi"}
    )
    settle(cluster, inv, plan)
    again = run_renamed(plan, _snapshot(True, {"10.0.0.1": 1, "10.0.0.2": 1}))
    assert again.ok and ops(again) == {} and not UpReport(str(inv.path), plan, run=again).changed
    ready = next(s for s in again.stages if s.step == "ray_ready").hosts["n0"].data
    assert ready.get("snapshot") is True  # nothing restarted: the background answer is trusted
    assert UpReport(str(inv.path), plan, run=again).answers == {"models": ["Qwen2.5-7B-Instruct"]}  # no test requests
    inv2 = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"tensor_parallel_size": 2, "max_num_seqs": 8})
    changed = ops(run_renamed(api.plan(inv2)))
    assert set(changed) == {"my-mllv", "my-drocer"} and any("start vLLM" in o for o in changed["my-mllv"])
    cluster.hosts["n0"].raylet = cluster.hosts["n0"].gcs = False  # the head died: the workers rejoin
    rejoin = ops(run_renamed(api.plan(inv2)))
    assert any("the head restarted" in o for o in rejoin["my-srekrow-yar"]) and any(
        "Ray restarted" in o for o in rejoin["my-mllv"]
    )


def test_report_documents_come_from_the_serializer(setup: Any) -> None:
    """The `--json` documents of up/down/status/generate are `serial.plain` of the reports: the keys
    the CLI has always printed, with the computed values (stages, answers, examples, plan)."""
    import json

    from toolkit.api import DownReport, GenerateReport, StatusReport, UpReport
    from toolkit.planner.plan import plan_to_dict

    inv, cluster, plan = setup
    connect, _ = cluster.factory()
    with Executor(inv.hosts, connect=connect) as ex:
        run = run_playbook(load_playbook("up"), inv, ex, shared=Shared(plan=plan))
    up = json.loads(json.dumps(UpReport(str(inv.path), plan, run=run, duration=1.23456).to_dict()))
    assert list(up) == [
        *("ok", "inventory", "check", "changed", "failed_stage", "duration", "endpoint", "served_model"),
        *("stages", "answers", "phases", "serving", "notes", "examples", "preflight", "run", "plan"),
    ]
    assert up["duration"] == 1.235 and up["served_model"] == plan.served_name.value and up["serving"]
    assert [s["name"] for s in up["stages"]] == [s.name for s in run.stages]
    assert set(up["stages"][0]) == {"name", "seconds", "status"} and up["answers"]["completion"] == " Paris"
    assert up["phases"]["weights_s"] == 1.5 and up["phases"]["engine_init_s"] == 2.25  # from the server's log
    assert up["phases"]["ready_s"] is not None
    assert set(up["examples"]) == {"curl", "python"} and up["plan"] == json.loads(json.dumps(plan_to_dict(plan)))
    failed = UpReport(str(inv.path), plan, run=run, failed_stage="vllm").to_dict()
    assert failed["ok"] is False and failed["examples"] == {} and failed["serving"] is False

    down = DownReport(str(inv.path), run, 2.0, None, ["a note"]).to_dict()
    assert list(down) == ["ok", "inventory", "duration", "hosts", "notes", "run"] and down["notes"] == ["a note"]
    assert set(down["hosts"]) == {h.name for h in inv.hosts}
    row = {"host": "n0", "reachable": True, "ray_node": True, "health": 503}
    status = StatusReport(str(inv.path), plan, [row], 0.5, ["n"]).to_dict()
    assert status == {
        "ok": False,
        "inventory": str(inv.path),
        "endpoint": plan.endpoint,
        "served_model": plan.served_name.value,
        "duration": 0.5,
        "deployed": None,
        "findings": [],
        "hosts": [row],
        "notes": ["n"],
        "metrics": None,
    }
    gen = GenerateReport(str(inv.path), plan, run, 4, {"seconds": 2.0, "done": 4, "output_tokens": 10}).to_dict()
    assert gen["rates"] == {"prompts_per_s": 2.0, "output_tokens_per_s": 5.0} and gen["failed_stage"] is None
    assert list(gen) == ["ok", "inventory", "results", "out", "summary", "rates", "duration", "failed_stage", "run"]


def test_one_cluster_object_runs_up_status_and_down(setup: Any) -> None:
    """`api.Cluster` holds the inventory, options, event sink and connection factory once; its
    methods are the entry points (the CLI builds one per command)."""
    from toolkit.engine.executor import EventKind

    inv, cluster, plan = setup
    connect, made = cluster.factory()
    events: list[Any] = []
    run = api.Cluster.open(inv.path, api.Options(), emit=events.append, connect=connect)
    assert [h.name for h in run.inventory.hosts] == ["n0", "n1"] and run.plan().served_name == plan.served_name
    up = run.up(skip_preflight=True)
    assert up.ok and up.serving and up.changed
    assert {e.kind for e in events} >= {EventKind.START, EventKind.DONE, EventKind.ACTION}
    settle(cluster, inv, plan)
    status = run.status()
    assert status.served_model == plan.served_name.value and {r["host"] for r in status.hosts} == {"n0", "n1"}
    down = run.down()
    assert down.ok and set(down.hosts) == {"n0", "n1"}
    assert any("vllm" in c or "ray stop" in c for c in cluster.hosts["n0"].ops[-20:])


def test_down_waits_for_the_devices_to_be_released_and_names_a_holder_that_stays(
    setup: tuple[Any, Cluster, Any],
) -> None:
    """A killed engine's device memory is freed by the driver a little later: `down` waits (bounded)
    until npu-smi shows the host's devices free, and names the pid still holding one when time is up."""
    from toolkit.config.playbook import Playbook, Stage

    inv, cluster, plan = setup
    run(inv, cluster, plan)
    cluster.hosts["n1"].npu_held_reads = 2  # released on the third reading
    report = run(inv, cluster, plan, book="down")
    clean = next(s for s in report.stages if s.name == "clean")
    assert report.ok and clean.hosts["n1"].data["clean"] and clean.hosts["n1"].data["released_after_s"] >= 2
    assert clean.hosts["n0"].data["released_after_s"] == 0

    cluster.hosts["n1"].npu_held_reads = 1000  # never released
    book = Playbook(name="t", stages=[Stage(name="clean", step="deploy_clean", params={"release_timeout": 1.5})])
    connect, _ = cluster.factory()
    with Executor(inv.hosts, connect=connect) as ex:
        stuck = run_playbook(book, inv, ex)
    err = stuck.stages[0].hosts["n1"].error
    assert err is not None and "NPU 0 pid 777 (python3, 3000 MB)" in err.message, err
    assert "the devices were waited on for" in err.message and stuck.stages[0].hosts["n0"].error is None


def test_down_waits_for_hbm_back_to_its_level_before_up(setup: tuple[Any, Cluster, Any]) -> None:
    """No process holds the device, but its HBM is still above the level `up`'s preflight read (the
    deployment record's `hbm_before`): `down` waits, and says so by device and numbers when time is up."""
    from toolkit.config.playbook import Playbook, Stage
    from toolkit.engine.registry import Shared

    inv, cluster, plan = setup
    run(inv, cluster, plan)
    for h in cluster.hosts.values():  # what down's stopping stages leave: nothing runs
        h.raylet = h.gcs = False
        h.vllm_pid = h.engine_pid = None
    book = Playbook(name="t", stages=[Stage(name="clean", step="deploy_clean", params={"release_timeout": 1.5})])
    connect, _ = cluster.factory()
    before = {"n0": {"0": 3300}, "n1": {"0": 2000}}  # n1's NPU 0 reads 3300 MB now: 1300 above, no process
    with Executor(inv.hosts, connect=connect) as ex:
        stuck = run_playbook(book, inv, ex, shared=Shared(plan=plan, hbm_before=before))
    err = stuck.stages[0].hosts["n1"].error
    assert err is not None and err.message.startswith("devices not released after down: "), err
    assert "NPU 0 HBM 3300 MB in use, 2000 MB before up (no process holds it" in err.message
    assert "reset the device" in (err.hint or "") and stuck.stages[0].hosts["n0"].error is None
    within = {"n0": {"0": 3300}, "n1": {"0": 3100}}  # within the slack: released
    with Executor(inv.hosts, connect=connect) as ex:
        fine = run_playbook(book, inv, ex, shared=Shared(plan=plan, hbm_before=within))
    assert fine.ok and fine.stages[0].hosts["n1"].data["clean"]


def test_generate_refuses_a_running_server_before_its_env_and_ray_stages(setup: tuple[Any, Cluster, Any]) -> None:
    """A server runs with other settings than the inventory's (here another environment variable, as
    after `upgrade --set env...`): without --stop-server, `generate` stops at its first stage, before
    the env and Ray stages that would restart Ray and the server with it; nothing runs on any host."""
    inv, cluster, plan = setup
    run(inv, cluster, plan)
    settle(cluster, inv, plan)
    connect, _ = fake_factory(cluster)
    before = {name: len(h.ops) for name, h in cluster.hosts.items()}
    changed = api.Options(overrides=["env.GENERATE_MARKER=1"])
    report = api.generate(
        api.load(inv.path, changed), changed, [{"prompt": "x"}], None, on_result=lambda r: None, connect=connect
    )
    assert not report.run.ok and [s.name for s in report.run.stages if s.hosts][0] == "server-check"
    error = report.run.stages[0].hosts["n0"].error
    assert error is not None and "holds the devices" in error.message and "--stop-server" in (error.hint or "")
    assert {name: len(h.ops) for name, h in cluster.hosts.items()} == before  # no env written, no Ray restarted
    assert not cluster.unknown
