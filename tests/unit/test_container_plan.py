"""The container runtime's plan (inventory `container:`): what `docker run` gets and why, the
refusals (exit 2, field and fix), and the commands the runtime builds (golden files, `bash -n`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import inventory
from toolkit import api
from toolkit.facts.deploy import Paths
from toolkit.launch import launch_for
from toolkit.launch.container import host_arg, run_command
from toolkit.planner.plan import PlanInvalid, plan_to_dict

pytestmark = pytest.mark.unit
GOLDEN = Path(__file__).parent.parent / "steps" / "golden"
VENDOR = "quay.io/ascend/vllm-ascend"


def plan_with(tmp_path: Path, container: dict[str, Any] | None, **changes: Any) -> Any:
    extra = {"container": container} if container is not None else {}
    return api.plan(inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], **extra, **changes))


def issues(tmp_path: Path, container: dict[str, Any], **changes: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(PlanInvalid) as err:
        plan_with(tmp_path, container, **changes)
    return [(i.field, i.message, i.hint or "") for i in err.value.issues]


def test_the_image_and_the_runtime_follow_each_other(tmp_path: Path) -> None:
    """No image: the runtime profile's vendor image; an image of a known release, no runtime: its profile."""
    plan = plan_with(tmp_path, {})
    assert plan.placement.value == "container" and plan.container.image.value == f"{VENDOR}:v0.23.0"
    assert plan.container.image.origin == "runtime vllm-ascend-0.23.0 on 910B"
    plan = plan_with(tmp_path, {"image": f"{VENDOR}:v0.11.0rc1"})
    assert plan.runtime.name == "vllm-ascend-0.11.0" and "container.image tag" in plan.runtime_origin
    a3 = plan_with(tmp_path, {}, hardware="A3")
    assert a3.container.image.value == f"{VENDOR}:v0.23.0-a3"
    devices = next(a for a in a3.container.args if a.what == "devices").argv
    assert [d for d in devices if d != "--device"][:16] == [f"/dev/davinci{i}" for i in range(16)]
    assert (
        "/dev/davinci_manager" in devices
        and "16 devices" in next(a for a in a3.container.args if a.what == "devices").origin
    )


def test_refusals_name_the_field_and_the_fix(tmp_path: Path) -> None:
    found = issues(tmp_path, {"image": f"{VENDOR}:v0.11.0"}, hardware="A3")
    assert found[0][0] == "container.image" and "is an A2 image, but hardware A3 needs the A3 one" in found[0][1]
    assert f"{VENDOR}:v0.11.0-a3" in found[0][2]
    found = issues(tmp_path, {"image": f"{VENDOR}:v0.11.0-a3"})
    assert "is an A3 image, but hardware 910B3 needs the A2 one" in found[0][1] and f"{VENDOR}:v0.11.0 " in found[0][2]
    found = issues(tmp_path, {"image": f"{VENDOR}:v0.9.1"}, runtime="vllm-ascend-0.11.0")
    assert found == [
        ("container.image", f"{VENDOR}:v0.9.1 carries vllm-ascend 0.9.1, but the plan is for vllm-ascend-0.11.0",
         "set runtime: vllm-ascend-0.9.1")
    ]  # fmt: skip


def test_a_profile_without_an_image_is_refused_both_ways(tmp_path: Path) -> None:
    plugin = tmp_path / "plugins"
    plugin.mkdir()
    (plugin / "bare.py").write_text(
        "from toolkit.plugin_api import RuntimeProfile, hookimpl\n"
        "@hookimpl\ndef ascend_deploy_runtime_profiles():\n"
        "    return [RuntimeProfile(name='bare-1.0.0', vllm='1.0.0', vllm_ascend=None, cann=None, torch_npu=None,"
        " source='test')]\n"
    )
    common = {"runtime": "bare-1.0.0", "plugins": [str(plugin)]}
    found = issues(tmp_path, {"image": "registry.local/vllm:1"}, **common)
    assert found[0][0] == "container.image" and "is not a container runtime profile" in found[0][1]
    found = issues(tmp_path, {}, **common)
    assert found[0][:2] == ("container.image", "no image: runtime bare-1.0.0 has no vendor image")
    assert f"{VENDOR}:v0.11.0" in found[0][2]


def test_every_run_argument_has_a_reason_and_a_change_changes_the_hash(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, {"mounts": ["/data:/data:ro"], "env": {"X": 1}, "shm_size": "8g"})
    c = plan.container
    assert all(a.origin for a in c.args)
    what = {a.what: a for a in c.args}
    assert (
        what["shared memory"].argv == ("--shm-size", "8g")
        and what["shared memory"].origin == "inventory container.shm_size"
    )
    assert what["mounts"].argv == ("-v", "/data:/data:ro") and what["environment"].argv == ("-e", "X=1")
    assert "--privileged=true" not in c.run_argv and ("--net=host" in c.run_argv and "--pid=host" in c.run_argv)
    assert c.run_argv[-3:] == (c.image.value, "sleep", "infinity")
    again = plan_with(tmp_path, {"mounts": ["/data:/data:ro"], "env": {"X": 1}, "shm_size": "8g"}).container
    other = plan_with(tmp_path, {"mounts": ["/data:/data:ro"], "env": {"X": 2}, "shm_size": "8g"}).container
    assert again.config_hash == c.config_hash != other.config_hash
    assert f"ascend-deploy.hash={c.config_hash}" in c.run_argv
    doc = plan_to_dict(plan)["container"]
    assert doc["image"]["value"] == c.image.value and doc["hash"] == c.config_hash
    assert {a["what"] for a in doc["args"]} >= {"devices", "driver", "network", "processes", "cluster folder"}


def test_set_moves_a_host_inventory_into_containers(tmp_path: Path) -> None:
    plan = api.plan(inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], sets=["container.engine=podman"]))
    assert plan.placement.value == "container" and plan.container.engine.value == "podman"
    assert plan.placement.origin.startswith("--set container")


def test_home_paths_stay_the_remote_users_home() -> None:
    assert host_arg("~/.cache:/root/.cache") == '"$HOME"/.cache:/root/.cache'
    assert host_arg("~/.ascend-deploy/c:~/.ascend-deploy/c") == '"$HOME"/.ascend-deploy/c:"$HOME"/.ascend-deploy/c'
    assert host_arg("/data/$x y:/d") == "'/data/$x y:/d'"
    assert host_arg("/a~/b") == "'/a~/b'"  # only a leading ~/ is the home


def container_commands(tmp_path: Path) -> dict[str, str]:
    plan = plan_with(tmp_path, {"mounts": ["/data:/data:ro"]}, serve={"tensor_parallel_size": 2})
    launch = launch_for(plan)
    (tmp_path / "dp").mkdir()
    dp_plan = plan_with(tmp_path / "dp", {}, serve={"launcher": "dp"})
    dp = launch_for(dp_plan)
    assert launch.placement.name == dp.placement.name == "container" and dp.launcher.name == "dp"
    return {
        "container-run.sh": run_command(plan.container, "docker"),
        "container-ray-node.sh": launch.launcher.node_command(plan.hosts[1]),
        "container-vllm-server.sh": launch.launcher.server_command(),
        "container-ray-stop.sh": launch.launcher.stop_nodes_command(),
        "container-probe-engine.sh": launch.placement.run("true"),
        # the dp launcher's ranks in the same containers (no Ray): each host's rank runs inside its container
        "container-dp-rank-worker.sh": dp.launcher.node_command(dp_plan.hosts[1]),
        "container-dp-rank-head.sh": dp.launcher.server_command(),
    }


@pytest.mark.parametrize(
    "name",
    ["container-run.sh", "container-ray-node.sh", "container-vllm-server.sh", "container-ray-stop.sh",
     "container-probe-engine.sh", "container-dp-rank-worker.sh", "container-dp-rank-head.sh"],
)  # fmt: skip
def test_container_commands_match_their_golden_files(tmp_path: Path, name: str) -> None:
    """UPDATE_GOLDEN=1 rewrites the files; review the diff like code."""
    text = container_commands(tmp_path)[name] + "\n"
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed: compare with {path} (UPDATE_GOLDEN=1 to accept)"
    check = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_command_through_the_container_runs_its_script_inside(tmp_path: Path) -> None:
    """With a stand-in engine (a script that runs `exec ... bash -c SCRIPT` here), the runtime's
    command reaches the script with the env file loaded, the setup lines run, and the exit status back."""
    plan = plan_with(tmp_path, {"setup": ["export FROM_SETUP=1"]})
    home = tmp_path / "home"
    p = Paths.of(plan.cluster)
    (home / p.dir).mkdir(parents=True)
    (home / p.env).write_text("FROM_ENV=2\n")
    (home / p.engine).write_text("fake-engine\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    engine = bin_dir / "fake-engine"
    # fake-engine exec -i -w DIR NAME bash -c SCRIPT
    engine.write_text('#!/bin/bash\n[ "$1" = exec ] || exit 9\ncd "$4" && shift 5 && exec "$@"\n')
    engine.chmod(0o755)
    command = launch_for(plan).placement.run('echo "$FROM_SETUP $FROM_ENV $(pwd)"; exit 3')
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", command], cwd=home, env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (3, f"1 2 {home}"), done.stderr
    (home / p.engine).unlink()
    done = subprocess.run(["bash", "-c", command], cwd=home, env=env, capture_output=True, text=True)
    assert done.returncode == 127 and "no container engine recorded here: run ascend-deploy up" in done.stderr


def facts(engine: str | None, image_id: str | None, *, answers: bool = True) -> Any:
    from toolkit.facts.container import ContainerFacts, EngineState

    states = (
        EngineState("docker", False, False, ""),
        EngineState("podman", True, answers, "4.3.1" if answers else "x"),
    )
    return ContainerFacts(states, engine, image_id)


def test_preflight_names_a_missing_engine_a_missing_image_and_a_different_one(tmp_path: Path) -> None:
    from toolkit.checks.images import container_problems

    c = plan_with(tmp_path, {}).container
    found = {
        "n0": facts("podman", "a" * 64),
        "n1": facts("podman", "b" * 64),
        "n2": facts("podman", None),
        "n3": facts(None, None, answers=False),
        "n4": "connection refused",
    }
    got = {(p.host, p.check): p for p in container_problems(c, found, "n0")}
    assert set(got) == {("n1", "image"), ("n2", "image"), ("n3", "engine"), ("n4", "container")}
    assert got[("n1", "image")].observed == f"{c.image.value} is bbbbbbbbbbbb"
    assert got[("n1", "image")].expected == "aaaaaaaaaaaa as on n0" and "image load" in got[("n1", "image")].hint
    assert got[("n2", "image")].observed == f"{c.image.value} is not on n2"
    assert "docker: not installed; podman: x" in got[("n3", "engine")].observed
    assert container_problems(c, {"n0": facts("podman", "a" * 64), "n1": facts("podman", "a" * 64)}, "n0") == []
