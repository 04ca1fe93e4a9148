"""The planner's launcher decision (serve.launcher auto | ray | dp), its refusals, the recipes'
environment and the start-up timeouts sized to the job (docs/ascend-facts.md sections 4 and 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, inventory
from toolkit import api
from toolkit.planner.plan import Plan, PlanInvalid

A2X2 = {"hosts": 2, "devices": list(range(8))}


def plan(tmp_path: Path, model: str, **kw: Any) -> Plan:
    return api.plan(inventory(tmp_path, model, **kw))


def problems(tmp_path: Path, model: str, **kw: Any) -> dict[str, str]:
    with pytest.raises(PlanInvalid) as exc:
        plan(tmp_path, model, **kw)
    return {i.field: i.message + " | " + (i.hint or "") for i in exc.value.issues}


def flags(p: Plan) -> dict[str, Any]:
    return {a.flag: a.value for a in p.vllm_args}


def test_auto_moe_across_hosts_on_a_release_with_ray_ep_broken_is_dp(tmp_path: Path) -> None:
    p = plan(tmp_path, "Qwen3-235B-A22B", **A2X2)
    assert p.launcher.value == "dp" and "Ray + expert parallel as broken" in p.launcher.origin
    assert (p.tp.value, p.pp.value, p.dp.value) == (8, 1, 2)  # the published DP 2 x TP 8
    head, worker = p.hosts
    assert not head.ray_argv and not worker.ray_argv  # no Ray anywhere
    assert head.server_argv[:2] == ("vllm", "serve") and "--headless" not in head.server_argv
    w = list(worker.server_argv)
    assert w[w.index("--data-parallel-start-rank") + 1] == "1" and "--headless" in w
    assert (
        w[w.index("--data-parallel-size-local") + 1] == "1" and w[w.index("--data-parallel-address") + 1] == "10.0.0.1"
    )
    assert head.ranks == (0,) and worker.ranks == (1,)
    same = [a for a in head.server_argv if a not in ("--data-parallel-size-local", "1")]
    assert all(a in worker.server_argv for a in same)  # every rank: the same model and flags
    assert (
        "--distributed-executor-backend" not in flags(p)
        and "RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES" not in head.env
    )
    assert p.vllm_argv() == list(head.server_argv)


def test_auto_picks_mp_on_one_host_and_ray_for_dense_models_across_hosts(tmp_path: Path) -> None:
    one = plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0])
    assert one.launcher.value == "mp" and one.head.server_argv and not one.head.ray_argv
    dense = plan(tmp_path, "Qwen2.5-72B-Instruct", hosts=2, devices=[0, 1])
    assert dense.launcher.value == "ray" and flags(dense)["--distributed-executor-backend"] == "ray"
    assert dense.hosts[1].ray_argv and not dense.hosts[1].server_argv
    old = plan(tmp_path, "Qwen3-235B-A22B", runtime="vllm-ascend-0.9.1", **A2X2)  # Ray + EP not listed broken:
    assert old.launcher.value == "dp" and "published recipe" in old.launcher.origin  # the row's recipe decides
    assert plan(tmp_path, "Qwen3-235B-A22B", runtime="vllm-ascend-0.9.1", serve={"launcher": "ray"}, **A2X2).pp.value


def test_dp_derives_tp_per_host_and_dp_across_hosts(tmp_path: Path) -> None:
    p = plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=2, devices=[0, 1], serve={"launcher": "dp"})
    assert (p.tp.value, p.pp.value, p.dp.value) == (2, 1, 2) and p.launcher.origin == "inventory serve.launcher"
    four = plan(
        tmp_path, "Qwen2.5-7B-Instruct", hosts=2, devices=[0, 1], serve={"launcher": "dp", "tensor_parallel_size": 1}
    )
    assert four.dp.value == 4 and [h.ranks for h in four.hosts] == [(0, 1), (2, 3)]
    assert "--data-parallel-start-rank" in four.hosts[1].server_argv
    start = list(four.hosts[1].server_argv)
    assert start[start.index("--data-parallel-start-rank") + 1] == "2"


@pytest.mark.parametrize(
    "kw, field, words",
    [
        ({"serve": {"launcher": "ray"}}, "serve.launcher", "Ray + expert parallel as broken"),
        (
            {"serve": {"launcher": "dp", "pipeline_parallel_size": 2, "tensor_parallel_size": 8}},
            "serve.pipeline_parallel_size",
            "PP 2",
        ),
        ({"serve": {"launcher": "dp", "data_parallel_rpc_port": 8000}}, "serve.data_parallel_rpc_port", "port 8000"),
    ],
)
def test_refusals_name_the_rule_and_the_fix(tmp_path: Path, kw: dict, field: str, words: str) -> None:
    found = problems(tmp_path, "Qwen3-235B-A22B", **{**A2X2, **kw})
    assert field in found and words in found[field], found


def test_dp_ranks_must_be_whole_per_host(tmp_path: Path) -> None:
    hosts = [
        {"name": "n0", "address": "10.0.0.1", "role": "head", "devices": [0, 1]},
        {"name": "n1", "address": "10.0.0.2", "devices": [0, 1, 2]},
    ]
    found = problems(tmp_path, "Qwen2.5-7B-Instruct", hosts=hosts, serve={"launcher": "dp", "tensor_parallel_size": 2})
    assert "hosts[n1].devices" in found and "not a whole number of DP ranks" in found["hosts[n1].devices"]


def test_recipe_env_and_timeouts_sized_to_the_weights(tmp_path: Path) -> None:
    big = plan(tmp_path, "Qwen3-235B-A22B", **A2X2)
    env = big.head.env
    assert {k: env[k].value for k in ("OMP_PROC_BIND", "OMP_NUM_THREADS", "TASK_QUEUE_ENABLE")} == {
        "OMP_PROC_BIND": "false",
        "OMP_NUM_THREADS": "1",
        "TASK_QUEUE_ENABLE": "1",
    }
    assert "multi-node recipe" in env["HCCL_BUFFSIZE"].origin and "HCCL_OP_EXPANSION_MODE" not in env  # A3 only
    engine = int(env["VLLM_ENGINE_READY_TIMEOUT_S"].value)
    assert engine > 600 and "GiB of weights per host" in env["VLLM_ENGINE_READY_TIMEOUT_S"].origin
    assert int(env["HCCL_CONNECT_TIMEOUT"].value) >= 120 and int(env["HCCL_EXEC_TIMEOUT"].value) >= 1836
    assert big.ready_timeout.value >= engine + 120
    small = plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0])
    assert small.head.env["VLLM_ENGINE_READY_TIMEOUT_S"].value == "600" and "HCCL_CONNECT_TIMEOUT" not in small.head.env
    assert "OMP_PROC_BIND" not in small.head.env  # one host: no multi-node recipe settings
    short = plan(tmp_path, "Qwen3-235B-A22B", serve={"ready_timeout": 300}, **A2X2)  # the user's choice stands
    assert short.ready_timeout.value == 300 and any("may give up on a server" in n for n in short.notes)
    mine = plan(tmp_path, "Qwen3-235B-A22B", defaults={"env": {"VLLM_ENGINE_READY_TIMEOUT_S": "5000"}}, **A2X2)
    assert mine.head.env["VLLM_ENGINE_READY_TIMEOUT_S"].value == "5000" and mine.ready_timeout.value == 5120
    a3 = plan(tmp_path, "DeepSeek-R1", hosts=2, devices=list(range(16)), hardware="A3", model_section=None)
    assert a3.head.env["HCCL_OP_EXPANSION_MODE"].value == "AIV"


def test_ports_follow_the_launcher(tmp_path: Path) -> None:
    dp = plan(tmp_path, "Qwen3-235B-A22B", **A2X2)
    ray = plan(tmp_path, "Qwen2.5-72B-Instruct", hosts=2, devices=[0, 1])
    assert {u.field for u in dp.ports} == {"serve.port", "serve.data_parallel_rpc_port", "env.HCCL_IF_BASE_PORT"}
    assert {u.field for u in ray.ports} == {"serve.port", "ray.port", "env.HCCL_IF_BASE_PORT"}
    hccl = next(u for u in dp.ports if u.field == "env.HCCL_IF_BASE_PORT")
    assert (hccl.first, hccl.last) == (60000, 60015)


def test_plan_shows_ranks_and_the_launchers_reason(tmp_path: Path) -> None:
    inventory(tmp_path, "Qwen3-235B-A22B", **A2X2)
    r = cli("plan", str(tmp_path / "inv.yaml"))
    assert r.returncode == 0, r.stderr
    assert "launcher" in r.stdout and "auto: expert parallel across 2 hosts" in r.stdout
    assert "DP rank(s) 1:" in r.stdout and "--headless" in r.stdout and "ray start" not in r.stdout
    bad = cli("plan", str(tmp_path / "inv.yaml"), "--set", "serve.launcher=ray")
    assert bad.returncode == 2 and "serve.launcher" in bad.stderr and "507014" in bad.stderr


def test_each_host_plan_holds_its_processes_as_data(tmp_path: Path) -> None:
    """What every host runs is a list of processes (kind, argv, start group, readiness probe, what
    "unchanged" means, ports, the API): the launcher decides it, the steps and the record read it."""
    ray = plan(tmp_path, "Qwen2.5-72B-Instruct", hosts=2, devices=[0, 1, 2, 3])
    head, worker = ray.hosts
    assert [(p.name, p.kind, p.group, p.ready, p.same, p.api) for p in head.processes] == [
        ("ray-node", "ray-node", "nodes", "ray-nodes", "self", False),
        ("vllm", "vllm-server", "server", "http", "self", True),
    ]
    assert [p.kind for p in worker.processes] == ["ray-node"] and worker.processes[0].ports == ()
    server = head.processes[1]
    assert server.env == {"RAY_ADDRESS": "10.0.0.1:6379"} and list(server.argv) == ray.vllm_argv()
    assert head.processes[0].ports == (6379,) and server.ports == (8000,)

    dp = plan(tmp_path, "Qwen3-235B-A22B", **A2X2)
    ranks = [h.processes for h in dp.hosts]
    assert [[(p.kind, p.group, p.same, p.ranks, p.api, p.ready) for p in procs] for procs in ranks] == [
        [("vllm-rank", "ranks", "group", (0,), True, "http")],
        [("vllm-rank", "ranks", "group", (1,), False, "alive")],
    ]
    assert dp.hosts[0].processes[0].ports == (8000, 13345)
    assert [a.flag for a in dp.hosts[1].processes[0].args] == [
        "--data-parallel-size-local",
        "--data-parallel-start-rank",
        "--headless",
    ]
    one = plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0])
    assert [(p.kind, p.api, p.ranks) for p in one.head.processes] == [("vllm-rank", True, ())]
