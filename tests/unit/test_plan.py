"""The planner: every value with its origin, and every validation rule passing and failing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, inventory
from toolkit import api
from toolkit.planner.plan import Plan, PlanInvalid, plan_to_dict


def plan(tmp_path: Path, model: str | None = "Qwen2.5-72B-Instruct", **kw: Any) -> Plan:
    return api.plan(inventory(tmp_path, model, **kw))


def invalid(tmp_path: Path, model: str | None = "Qwen2.5-72B-Instruct", **kw: Any) -> PlanInvalid:
    with pytest.raises(PlanInvalid) as exc:
        plan(tmp_path, model, **kw)
    return exc.value


def arg(p: Plan, flag: str) -> Any:
    return next(a for a in p.vllm_args if a.flag == flag)


# ------------------------------------------------------------------ the plan itself


def test_two_hosts_env_ray_and_vllm_commands(tmp_path: Path) -> None:
    p = plan(
        tmp_path,
        serve={"api_key_env": "MY_KEY"},
        defaults={"devices": list(range(8)), "nic": "auto", "env": {"HCCL_CONNECT_TIMEOUT": 1200}},
    )
    head, worker = p.hosts
    assert (p.tp.value, p.pp.value, p.backend.value) == (8, 2, "ray")
    assert "rule of thumb" in p.tp.origin
    env = worker.resolved_env("eth7")
    assert env["HCCL_IF_IP"] == env["VLLM_HOST_IP"] == "10.0.0.2"
    assert env["GLOO_SOCKET_IFNAME"] == env["TP_SOCKET_IFNAME"] == env["HCCL_SOCKET_IFNAME"] == "eth7"
    assert env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"
    assert env["RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES"] == "1"
    assert (
        env["HCCL_CONNECT_TIMEOUT"] == "1200" and worker.env["HCCL_CONNECT_TIMEOUT"].origin == "inventory defaults env"
    )
    assert head.ray_argv[:5] == ("ray", "start", "--head", "--port", "6379")
    assert "--num-gpus" not in head.ray_argv and json.loads(head.ray_argv[head.ray_argv.index("--resources") + 1]) == {
        "NPU": 8
    }
    assert worker.ray_argv[2:4] == ("--address", "10.0.0.1:6379")
    assert worker.ray_argv[worker.ray_argv.index("--node-ip-address") + 1] == "10.0.0.2"
    argv = p.vllm_argv()
    assert argv[:3] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert (
        argv[argv.index("--tensor-parallel-size") + 1] == "8"
        and argv[argv.index("--pipeline-parallel-size") + 1] == "2"
    )
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    assert "--api-key" not in argv and p.api_key == "local $MY_KEY"
    assert arg(p, "--max-model-len").value == 32768 and arg(p, "--max-model-len").origin == "plugin row 910B"
    assert "--trust-remote-code" not in argv and "--enforce-eager" not in argv
    assert p.memory is not None and p.memory.min_devices == 4 and p.memory.per_device.fits
    assert any("uses 4 devices; the inventory gives 16" in n for n in p.notes)


def test_nic_auto_is_shown_as_resolved_at_run_time(tmp_path: Path) -> None:
    p = plan(tmp_path)
    assert p.hosts[0].nic is None
    assert p.hosts[0].env["GLOO_SOCKET_IFNAME"].value == "<NIC owning 10.0.0.1>"
    assert "resolved at run time" in p.hosts[0].env["GLOO_SOCKET_IFNAME"].origin
    with pytest.raises(ValueError, match="not resolved"):
        p.hosts[0].resolved_env()


def test_single_host_uses_mp_and_the_plugin_row(tmp_path: Path) -> None:
    p = plan(tmp_path, hosts=1, devices=[0, 1, 2, 3])
    assert (p.tp.value, p.pp.value, p.backend.value) == (4, 1, "mp")
    assert p.tp.origin == "plugin qwen2.5 row 910B"


def test_origins_follow_the_precedence_levels(tmp_path: Path) -> None:
    p = plan(tmp_path, serve={"max_model_len": 4096}, sets=["serve.max_num_seqs=64"])
    assert arg(p, "--max-model-len").origin == "inventory serve.max_model_len"
    assert (arg(p, "--max-num-seqs").value, arg(p, "--max-num-seqs").origin) == (64, "--set serve.max_num_seqs")
    assert arg(p, "--gpu-memory-utilization").origin == "default (vLLM)"


def test_row_length_is_capped_to_the_model_window(tmp_path: Path) -> None:
    p = plan(tmp_path, "Meta-Llama-3-8B-Instruct", hosts=1, devices=[0])
    assert arg(p, "--max-model-len").value == 8192 and "capped" in arg(p, "--max-model-len").origin


def test_qwen3_235b_plans_the_benchmarked_40960_and_64k_with_yarn_when_picked(tmp_path: Path) -> None:
    """The nightly's layout (with a benchmark baseline) is planned; the sizing table's 64K on the same layout is
    listed, and its `--set` options bring its YaRN rope scaling with it."""
    p = plan(tmp_path, "Qwen3-235B-A22B")
    assert arg(p, "--max-model-len").value == 40960 and not any(a.flag == "--hf-overrides" for a in p.vllm_args)
    assert "--enable-expert-parallel" in p.vllm_argv()
    assert p.tp.origin == "plugin qwen3-moe row 910B" and p.row is not None and p.row.baseline
    (alt,) = p.alternatives
    sizes = {"tensor_parallel_size": alt.tp, "pipeline_parallel_size": alt.pp, "data_parallel_size": alt.dp}
    picked = plan(tmp_path, "Qwen3-235B-A22B", serve={**sizes, "max_model_len": alt.max_model_len})
    assert arg(picked, "--max-model-len").value == 65536
    assert json.loads(arg(picked, "--hf-overrides").value)["rope_scaling"]["factor"] == 2.0


def test_without_config_json_plans_from_the_name_and_says_what_was_skipped(tmp_path: Path) -> None:
    inv = inventory(tmp_path, None, model_section={"path": "/nowhere/Qwen2.5-32B-Instruct"}, hosts=1, devices=[0, 1])
    p = api.plan(inv)
    assert p.memory is None and p.family == "qwen2.5" and p.tp.value == 2
    assert any("config.json not available" in n for n in p.notes)


def test_plan_json_carries_commands_and_origins(tmp_path: Path) -> None:
    data = plan_to_dict(plan(tmp_path))
    assert data["vllm"]["argv"][0] == "python3" and data["parallel"]["tp"] == {
        "value": 8,
        "from": "rule of thumb: TP = NPUs per node, PP = nodes",
    }
    assert data["hosts"][1]["ray_command"].startswith("ray start --address 10.0.0.1:6379")
    assert data["memory"]["min_devices"] == 4
    json.dumps(data)


def test_markers_change_with_what_shaped_each_part(tmp_path: Path) -> None:
    """The hashes `up` keeps on each host. An env change also restarts vLLM, through Ray's restart
    (tests/steps: test_env_change_restarts_ray_everywhere_and_vllm)."""
    from toolkit.launch import launch_for

    def ray_hash(h: Any, nic: str) -> str:
        return launch_for(plan(tmp_path)).launcher.node_hash(h, nic)

    def vllm_hash(p: Plan, key: str | None) -> str:
        return launch_for(p).launcher.server_hash(key)

    def marks(p: Plan) -> dict[str, str]:
        return {**{h.name: ray_hash(h, "eth0") for h in p.hosts}, "vllm": vllm_hash(p, None)}

    base = marks(plan(tmp_path))
    serve = marks(plan(tmp_path, serve={"max_num_seqs": 8}))
    env = marks(plan(tmp_path, defaults={"devices": list(range(8)), "nic": "auto", "env": {"X": "1"}}))
    assert serve["n0"] == base["n0"] and serve["vllm"] != base["vllm"]
    assert env["n0"] != base["n0"] and env["n1"] != base["n1"]
    assert vllm_hash(plan(tmp_path), "key-1") != vllm_hash(plan(tmp_path), "key-2") != base["vllm"]


# ------------------------------------------------------------------ validation: pass and fail


def test_tp_pp_must_equal_devices(tmp_path: Path) -> None:
    err = invalid(tmp_path, serve={"tensor_parallel_size": 4, "pipeline_parallel_size": 2})
    assert "TP 4 x PP 2 x DP 1 = 8, but the hosts give 16 devices" in err.issues[0].message
    assert plan(tmp_path, serve={"tensor_parallel_size": 4, "pipeline_parallel_size": 4}).pp.value == 4


def test_dp_counts_in_the_product(tmp_path: Path) -> None:
    p = plan(tmp_path, "Qwen2.5-72B-Instruct", serve={"tensor_parallel_size": 8, "data_parallel_size": 2})
    assert (p.tp.value, p.pp.value, p.dp.value) == (8, 1, 2)
    assert "--data-parallel-size" in p.vllm_argv() and "--data-parallel-backend" in p.vllm_argv()
    err = invalid(
        tmp_path,
        "Qwen2.5-7B-Instruct",
        serve={"tensor_parallel_size": 4, "pipeline_parallel_size": 2, "data_parallel_size": 3},
    )
    assert "x DP 3 = 24" in err.issues[0].message


def test_heads_must_divide_by_tp(tmp_path: Path) -> None:
    err = invalid(tmp_path, "Qwen2.5-0.5B-Instruct", hosts=1, devices=[0, 1, 2, 3])  # 14 heads
    issue = next(i for i in err.issues if "heads" in i.message)
    assert (
        issue.field == "serve.tensor_parallel_size" and "14 attention heads are not divisible by TP 4" in issue.message
    )
    assert "1, 2" in (issue.hint or "")
    assert plan(tmp_path, "Qwen2.5-0.5B-Instruct", hosts=1, devices=[0, 1]).tp.value == 2


def test_max_len_within_the_model_window(tmp_path: Path) -> None:
    err = invalid(tmp_path, "Meta-Llama-3-8B-Instruct", hosts=1, devices=[0], serve={"max_model_len": 16384})
    assert err.issues[0].field == "serve.max_model_len" and "exceeds the model's limit of 8192" in err.issues[0].message
    assert (
        arg(
            plan(tmp_path, "Meta-Llama-3-8B-Instruct", hosts=1, devices=[0], serve={"max_model_len": 8192}),
            "--max-model-len",
        ).value
        == 8192
    )


def test_batched_tokens_vs_max_len_without_chunked_prefill(tmp_path: Path) -> None:
    err = invalid(
        tmp_path,
        "Qwen2.5-7B-Instruct",
        hosts=1,
        devices=[0],
        serve={"max_num_batched_tokens": 4096, "enable_chunked_prefill": False},
    )
    assert err.issues[0].field == "serve.max_num_batched_tokens" and "chunked prefill off" in err.issues[0].message
    ok = plan(
        tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], serve={"max_num_batched_tokens": 4096}
    )  # chunked prefill on by default
    assert arg(ok, "--max-num-batched-tokens").value == 4096
    off = plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], serve={"enable_chunked_prefill": False})
    assert arg(off, "--max-num-batched-tokens").value == 32768 and "--no-enable-chunked-prefill" in off.vllm_argv()


def test_memory_must_fit_and_says_what_would(tmp_path: Path) -> None:
    err = invalid(tmp_path, "Qwen2.5-72B-Instruct", hosts=1, devices=[0, 1])
    issue = next(i for i in err.issues if "GiB per device" in i.message)
    assert "4 devices hold it at max-model-len 32768" in (issue.hint or "")
    err = invalid(
        tmp_path, "Qwen2.5-32B-Instruct", hosts=1, devices=[0, 1], hardware="910B4", serve={"max_model_len": 32768}
    )
    issue = next(i for i in err.issues if "GiB per device" in i.message)
    assert issue.field == "hosts[].devices" and "4 devices hold it" in (issue.hint or "")
    tight = {"gpu_memory_utilization": 0.55}
    err = invalid(tmp_path, "Qwen2.5-14B-Instruct", hosts=1, devices=[0], serve=tight)
    issue = next(i for i in err.issues if "GiB per device" in i.message)
    assert issue.field == "serve.max_model_len" and "fits on these 1 devices" in (issue.hint or "")
    fits = int(issue.hint.split("max-model-len ")[-1].split()[0])
    assert 16384 < fits < 32768
    assert plan(
        tmp_path, "Qwen2.5-14B-Instruct", hosts=1, devices=[0], serve={**tight, "max_model_len": fits}
    ).memory.per_device.fits


def test_removed_vllm_flags_are_refused_with_the_replacement(tmp_path: Path) -> None:
    extra = {"extra_args": ["--num-scheduler-steps=8"]}
    err = invalid(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], serve=extra)
    assert "--num-scheduler-steps does not exist in vLLM 0.23.0" in err.issues[0].message and "Aug 2025" in (
        err.issues[0].hint or ""
    )
    old = plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], serve=extra, runtime="vllm-ascend-0.9.1")
    assert "--num-scheduler-steps=8" in old.vllm_argv()


def test_torchair_graph_config_refused_from_0_12(tmp_path: Path) -> None:
    extra = {"extra_args": ["--additional-config", '{"torchair_graph_config": {"enabled": true}}']}
    err = invalid(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], serve=extra, runtime="0.13.0")
    assert "--compilation-config" in (err.issues[0].hint or "")
    assert (
        plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], serve=extra, runtime="0.11.0").runtime.vllm
        == "0.11.0"
    )


def test_extra_args_pair_each_flag_with_its_value(tmp_path: Path) -> None:
    config = '{"backend": "xgrammar", "disable_fallback": true}'
    extra = {
        "extra_args": ["--structured-outputs-config", config, "--seed=3", "--enable-prefix-caching", "--offset", "-1"]
    }
    p = plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], serve=extra)
    rows = {a.flag: a.value for a in p.vllm_args if a.origin == "inventory serve.extra_args"}
    assert rows == {
        "--structured-outputs-config": config,
        "--seed": "3",
        "--enable-prefix-caching": None,
        "--offset": "-1",
    }
    assert p.vllm_argv()[-6:] == extra["extra_args"]
    shown = plan_to_dict(p)["vllm"]["args"]
    assert {
        "flag": "--structured-outputs-config",
        "value": config,
        "from": "inventory serve.extra_args",
        "inline": False,
    } in (shown)
    assert not any(a["flag"].startswith("{") for a in shown)
    out = cli("plan", str(tmp_path / "inv.yaml"))
    row = next(line for line in out.stdout.splitlines() if line.startswith("--structured-outputs-config"))
    assert '"xgrammar"' in row and not any(line.startswith("{") for line in out.stdout.splitlines())


def test_ray_num_gpus_is_refused(tmp_path: Path) -> None:
    err = invalid(tmp_path, ray={"extra_args": ["--num-gpus=8"]})
    assert err.issues[0].field == "ray.extra_args" and "NPU" in (err.issues[0].hint or "")
    assert "--block" not in plan(tmp_path, ray={"extra_args": ["--log-style=record"]}).hosts[1].ray_argv[:-1]


def test_planner_managed_flags_and_env_are_refused(tmp_path: Path) -> None:
    err = invalid(tmp_path, serve={"extra_args": ["--tensor-parallel-size", "4", "--api-key=abc"]})
    fields = {i.hint for i in err.issues}
    assert "set serve.tensor_parallel_size instead" in fields and any("api_key_env" in (h or "") for h in fields)
    err = invalid(tmp_path, defaults={"devices": list(range(8)), "env": {"ASCEND_RT_VISIBLE_DEVICES": "0,1"}})
    assert err.issues[0].field == "defaults env.ASCEND_RT_VISIBLE_DEVICES" and "devices" in (err.issues[0].hint or "")


def test_300i_duo_cannot_span_hosts(tmp_path: Path) -> None:
    err = invalid(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], hardware="300I-Duo")
    assert err.issues[0].field == "hardware" and "cannot span hosts" in err.issues[0].message
    assert plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0, 1], hardware="300I-Duo").backend.value == "mp"


def test_uneven_devices_need_explicit_sizes(tmp_path: Path) -> None:
    data_hosts = [
        {"name": "n0", "address": "10.0.0.1", "role": "head", "devices": [0, 1, 2, 3]},
        {"name": "n1", "address": "10.0.0.2", "devices": [0, 1]},
    ]
    err = invalid(tmp_path, "Qwen2.5-7B-Instruct", hosts=data_hosts)
    assert any("different device counts" in i.message for i in err.issues)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    err = invalid(
        tmp_path,
        "Meta-Llama-3-8B-Instruct",
        serve={"max_model_len": 100000, "extra_args": ["--num-scheduler-steps", "8"]},
        ray={"extra_args": ["--num-gpus", "8"]},
    )
    assert len(err.issues) >= 3


# ------------------------------------------------------------------ CLI


@pytest.mark.parametrize(
    "name, launcher, command",
    [
        ("example.yaml", "ray", "python3 -m vllm.entrypoints.openai.api_server"),
        ("deepseek-r1-a3.yaml", "mp", "vllm serve /data/models/DeepSeek-R1-w8a8"),  # one A3 host: no Ray
        ("qwen3-235b-2xa2.yaml", "dp", "vllm serve /data/models/Qwen3-235B-A22B"),  # the published DP 2 x TP 8
    ],
)
def test_plan_cli_on_the_example_inventories(name: str, launcher: str, command: str) -> None:
    r = cli("plan", f"inventories/{name}", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["plan"]
    assert data["memory"]["fits"] and data["model"]["config"] and data["launch"]["launcher"]["value"] == launcher
    table = cli("plan", f"inventories/{name}")
    assert table.returncode == 0 and "vLLM on" in table.stdout and command in table.stdout
    assert ("ray start" in table.stdout) == (launcher == "ray")


def test_plan_cli_invalid_exits_2_listing_problems(tmp_path: Path) -> None:
    inventory(tmp_path, "Qwen2.5-72B-Instruct", hosts=1, devices=[0])
    r = cli("plan", str(tmp_path / "inv.yaml"))
    assert r.returncode == 2
    assert "the deployment plan is not valid" in r.stderr and "hint:" in r.stderr and "4 devices hold it" in r.stderr
    j = cli("plan", str(tmp_path / "inv.yaml"), "--json")
    assert j.returncode == 2 and json.loads(j.stdout)["error"]["issues"][0]["field"]


@pytest.mark.parametrize(
    "serve, reads",
    [
        ({}, None),
        ({"api_key_env": "MY_SERVING_KEY"}, "MY_SERVING_KEY"),
        ({"api_key_file": "secrets/key.txt"}, "secrets/key.txt"),
    ],
)
def test_usage_examples_read_the_key_from_where_the_inventory_says(
    tmp_path: Path, serve: dict, reads: str | None
) -> None:
    import ast

    from toolkit.api.reports import usage_examples

    ex = usage_examples(plan(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0], serve=serve))
    tree = ast.parse(ex["python"])
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert imported <= used, f"unused import in {ex['python']}"
    if reads is None:
        assert 'api_key="EMPTY"' in ex["python"] and "Authorization" not in ex["curl"]
    elif reads.isupper():
        assert (
            f"os.environ['{reads}']" in ex["python"]
            and f"Bearer ${reads}" in ex["curl"]
            and "VLLM_API_KEY" not in ex["python"]
        )
    else:
        assert (
            str(tmp_path / reads) in ex["python"]
            and f"$(cat {tmp_path / reads})" in ex["curl"]
            and "EMPTY" not in ex["python"]
        )
