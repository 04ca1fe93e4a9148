"""Every remote shell builder (the `ray` launcher in the `host` placement, toolkit/steps/commands.py,
the generate command) against golden files (and `bash -n`), and proof that steps take every
launch command from the launcher and placement the plan names, never from a branch of their own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cluster, inventory, ops, run
from toolkit import api
from toolkit.facts.deploy import Paths
from toolkit.launch import LAUNCHERS, PLACEMENTS, launch_for
from toolkit.launch.host import HostPlacement
from toolkit.launch.server import probe_command, stop_vllm_command

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def plan(tmp_path: Path) -> Any:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"tensor_parallel_size": 2})
    return api.plan(inv)


@pytest.fixture
def dp_plan(tmp_path: Path) -> Any:
    (tmp_path / "dp").mkdir()
    return api.plan(inventory(tmp_path / "dp", "Qwen2.5-7B-Instruct", devices=[0], serve={"launcher": "dp"}))


def commands(plan: Any, dp_plan: Any) -> dict[str, str]:
    """Every remote shell builder of the steps and launchers, on one plan (ray) and a dp plan."""
    from toolkit.steps import commands as step_commands
    from toolkit.steps.generate import generate_command

    launch = launch_for(plan)
    launcher, p = launch.launcher, Paths.of(plan.cluster)
    worker = plan.hosts[1]
    env = step_commands.render_env({"A": "1 2", "B": "$x"})
    return {
        "env-write.sh": step_commands.write_file_op(p.env, env, "-").command,
        "key-write.sh": step_commands.write_stdin_command(p.api_key),
        "files-present.sh": step_commands.present_files_command({"env": p.env, "api_key": p.api_key}),
        "files-remove.sh": step_commands.remove_files_command([p.env, p.api_key]),
        "logs-tail.sh": step_commands.tail_script([p.vllm_log, p.ray_log], 20),
        "logs-collect.sh": step_commands.collect_script(plan.cluster),
        "generate.sh": generate_command(plan, {"max_tokens": 8}, None, 8),
        "ray-node-worker.sh": launcher.node_command(worker),
        "ray-stop.sh": launcher.stop_nodes_command(),
        "ray-nodes-query.sh": launcher.nodes_query({h.address: len(h.devices) for h in plan.hosts}, 30),
        "ray-snapshot.sh": launcher.snapshot_command(),
        "vllm-server.sh": launcher.server_command(),
        "vllm-stop.sh": stop_vllm_command(p.proc("vllm")),
        "vllm-probe.sh": probe_command(plan, p.proc("vllm")),
        "dp-rank-worker.sh": launch_for(dp_plan).launcher.node_command(dp_plan.hosts[1]),
        "dp-rank-head.sh": launch_for(dp_plan).launcher.server_command(),
        "image-part-size.sh": step_commands.part_size_command("/p/x.tar.part"),
        "image-append.sh": step_commands.append_stdin_command("/p/x.tar.part", 1024),
        "image-finish.sh": step_commands.image_finish_command("podman", "/p/x.tar.part", "ab" * 32, "cd" * 32),
        "image-finish-checked.sh": step_commands.image_finish_command(
            "podman", "/p/x.tar.part", "ab" * 32, "cd" * 32, checked=True
        ),
        "image-upload-hashed.sh": step_commands.upload_hashed_command("/p/x.tar.part"),
        "bench.sh": step_commands.bench_command(
            launch.placement.run,
            p,
            base_url=plan.probe_url,
            model_path=plan.model_path,
            served_name=plan.served_name.value,
            load_args=["--request-rate", "4"],
            dataset_args=["--dataset-name", "random", "--random-input-len", "16", "--random-output-len", "4"],
            num_prompts=8,
            seed=0,
            name="point-1",
        ),
    }


def test_every_command_has_a_golden_file(plan: Any, dp_plan: Any) -> None:
    container = {p.name for p in GOLDEN.glob("container-*.sh")}  # tests/unit/test_container_plan.py
    assert (
        sorted(commands(plan, dp_plan))
        == sorted(NAMES)
        == sorted(p.name for p in GOLDEN.glob("*.sh") if p.name not in container)
    )


def test_plan_names_its_launcher_and_placement(plan: Any) -> None:
    assert (plan.launcher.value, plan.placement.value) == ("ray", "host")
    assert "Ray" in plan.launcher.origin and plan.placement.origin
    launch = launch_for(plan)
    assert launch.launcher.name == "ray" and launch.placement.name == "host"


NAMES = ["ray-node-worker.sh", "ray-stop.sh", "ray-nodes-query.sh", "ray-snapshot.sh"]
NAMES += ["vllm-server.sh", "vllm-stop.sh", "vllm-probe.sh"]
NAMES += ["env-write.sh", "key-write.sh", "files-present.sh", "files-remove.sh", "logs-tail.sh", "logs-collect.sh"]
NAMES += ["generate.sh", "dp-rank-worker.sh", "dp-rank-head.sh", "bench.sh"]
NAMES += ["image-part-size.sh", "image-append.sh", "image-finish.sh", "image-finish-checked.sh"]
NAMES += ["image-upload-hashed.sh"]


@pytest.mark.parametrize("name", NAMES)
def test_launch_commands_match_their_golden_files(plan: Any, dp_plan: Any, name: str) -> None:
    """UPDATE_GOLDEN=1 rewrites the files; review the diff like code."""
    text = commands(plan, dp_plan)[name] + "\n"
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed: compare with {path} (UPDATE_GOLDEN=1 to accept)"
    check = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


class WrappedPlacement(HostPlacement):
    """A placement that runs everything inside a wrapper, as the container placement does."""

    name = "wrapped"

    def run(self, script: str) -> str:
        return "WRAPPED_RUN " + super().run(script)

    def detached(self, argv: list[str], log: str, pid_file: str) -> str:
        return "WRAPPED_DETACHED " + super().detached(argv, log, pid_file)


def test_steps_take_launch_commands_from_the_plans_placement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"tensor_parallel_size": 2})
    plan = api.plan(inv)
    monkeypatch.setitem(PLACEMENTS, "wrapped", WrappedPlacement)
    wrapped = type(plan).__new__(type(plan))
    wrapped.__dict__.update(plan.__dict__)
    object.__setattr__(wrapped, "placement", type(plan.placement)("wrapped", "test"))
    cluster = Cluster(inv)
    report = run(inv, cluster, wrapped)
    assert report.ok, report.to_dict()
    assert ops(report)["vllm"][0].startswith("n0: start vLLM")
    ran = [c for h in cluster.hosts.values() for c in h.ops]
    assert any("WRAPPED_RUN" in c and "ray start" in c for c in ran)
    assert any("WRAPPED_DETACHED setsid nohup" in c for c in ran)
    assert not any("ray start" in c and "WRAPPED_RUN" not in c for c in ran)
    assert set(LAUNCHERS) == {"ray", "dp", "mp"} and set(PLACEMENTS) == {"host", "container", "wrapped"}
