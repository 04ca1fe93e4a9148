"""End to end in containers (inventory `container:`): two simulated hosts, each with a real container
engine (podman from Debian, as a vendor host has docker) and the simulator's image (Ray, vLLM's
CPU build, the fake CANN) imported locally; Ray and vLLM run inside one container per host, TP = 2
across the hosts, driven through the CLI and checked with the OpenAI client and over OpenSSH.

One cluster for the module: the cases that only read share its running server."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from openai import OpenAI

from tests.helpers import SIM_ROOT, cli, cli_json, interrupt_when, start, vllm_running
from tests.simlab import SimLab, running_cluster
from toolkit.api.files import read_image_archive
from toolkit.sim.image import save_tarball

NAME = "ctr"
TP2 = ["--set", "serve.tensor_parallel_size=2"]
CONTAINER = f"ascend-deploy-{NAME}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    inv = tmp_path_factory.mktemp("ctr") / "ctr.yaml"
    with running_cluster(NAME, SIM_ROOT, inv, hosts=2, devices=[0], containers=True) as lab:
        try:
            yield lab
        finally:
            cli("down", str(lab.inventory), cwd=lab.inventory.parent, timeout=300)


def run(lab: SimLab, *args: str, timeout: float = 900) -> tuple[int, dict[str, Any], str]:
    return cli_json(lab, *args, timeout=timeout)


def stages(data: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in data["stages"]}


def containers(lab: SimLab, index: int) -> list[str]:
    """`podman ps -a` on the host: `NAME ID IMAGE-ID running|stopped` lines."""
    out = lab.ssh(
        index,
        "podman ps -a --format '{{.Names}} {{.ID}} {{.ImageID}}' | while read -r n i m; do "
        'echo "$n $i $m $(podman inspect --format \'{{if .State.Running}}running{{else}}stopped{{end}}\' "$n")"; done',
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def in_container(lab: SimLab, index: int, pattern: str) -> bool:
    """Whether the processes matching `pattern` run in another mount namespace than the host's shell
    (inside the container: --pid=host lets the host see them)."""
    script = (
        f'pids=$(pgrep -f {pattern!r}); [ -n "$pids" ] || {{ echo none; exit 0; }}; '
        "host=$(readlink /proc/self/ns/mnt); "
        'for p in $pids; do [ "$(readlink /proc/$p/ns/mnt)" = "$host" ] && echo host && exit 0; done; echo container'
    )
    answer = lab.ssh(index, script).stdout.strip()
    assert answer != "none", f"no {pattern} on host {index}"
    return answer == "container"


def test_tp2_in_containers_up_noop_serve_change_ctrl_c_down_then_dp_ranks(lab: SimLab) -> None:
    inv = str(lab.inventory)
    code, planned, err = run(lab, "plan", inv, *TP2)
    plan = planned["plan"]
    assert code == 0 and plan["launch"]["placement"]["value"] == "container", err
    assert plan["container"]["image"]["value"].startswith("localhost/ascend-sim/vllm-ascend:")

    code, data, err = run(lab, "up", inv, *TP2)
    assert code == 0, (json.dumps(data.get("preflight"))[-2000:], err[-3000:])
    st = stages(data)
    assert st["container"] == st["ray-head"] == st["ray-workers"] == st["vllm"] == "changed", st
    first = [containers(lab, i) for i in (1, 2)]
    assert all(len(c) == 1 and c[0].startswith(f"{CONTAINER} ") and c[0].endswith(" running") for c in first), first
    # Ray on both hosts and the TP worker run inside the containers; the host sees them (--pid=host)
    assert in_container(lab, 1, "[r]aylet/raylet") and in_container(lab, 2, "[r]aylet/raylet")
    assert in_container(lab, 1, "[v]llm.entrypoints")
    assert "RayWorker" in lab.ssh(2, "source /usr/local/Ascend/ascend-toolkit/set_env.sh; npu-smi info").stdout
    client = OpenAI(base_url=data["endpoint"], api_key="EMPTY", timeout=120, max_retries=0)
    chat = client.chat.completions.create(
        model="tiny-llama", messages=[{"role": "user", "content": "Hello"}], max_tokens=8
    )
    assert chat.choices[0].message.content

    code, again, err = run(lab, "up", inv, *TP2)
    assert code == 0 and again["changed"] is False, err[-2000:]
    assert stages(again)["container"] == "unchanged"
    assert [containers(lab, i) for i in (1, 2)] == first  # the same containers

    raylets = lab.ssh(1, "pgrep -f '[r]aylet/raylet'").stdout.split()
    serve = [*TP2, "--set", "serve.max_num_seqs=32"]
    code, changed, err = run(lab, "up", inv, *serve)
    assert code == 0, err[-3000:]
    st = stages(changed)
    assert st["vllm"] == "changed" and st["container"] == st["ray-head"] == st["ray-workers"] == "unchanged", st
    assert lab.ssh(1, "pgrep -f '[r]aylet/raylet'").stdout.split() == raylets
    assert [containers(lab, i) for i in (1, 2)] == first  # vLLM restarted inside the same container

    code, status, err = run(lab, "status", inv, *serve)
    assert code == 0 and status["hosts"][0]["health"] == 200, err

    # a container setting changes: `up` recreates the containers; Ctrl-C while vLLM starts in them,
    # then `down` leaves no container and no process
    proc = start(lab, "up", inv, *serve, "--set", "container.shm_size=2g")
    out, err = interrupt_when(
        proc,
        "vLLM starting in the new container",
        lambda: containers(lab, 1) not in ([], first[0]) and vllm_running(lab),
        300,
    )
    assert proc.returncode == 130 and json.loads(out)["error"]["kind"] == "interrupted", err[-2000:]
    code, down, err = run(lab, "down", inv)
    assert code == 0 and all(h["clean"] for h in down["hosts"].values()), (down, err[-2000:])
    for i in (1, 2):
        assert containers(lab, i) == []
        left = lab.ssh(i, "pgrep -f '[r]aylet/raylet|[g]cs_server|[v]llm.entrypoints|[R]ayWorker' || true").stdout
        assert left.strip() == "", left

    # the dp launcher in the containers: one `vllm serve` rank per host, each inside its host's container, no Ray
    dp = ["--set", "serve.launcher=dp"]
    code, data, err = run(lab, "up", inv, *dp)
    assert code == 0, err[-3000:]
    st = stages(data)
    assert st["container"] == st["workers"] == st["vllm"] == "changed" and "ray-head" not in st, st
    assert in_container(lab, 1, "[v]llm serve") and in_container(lab, 2, "[v]llm serve")
    assert all(lab.ssh(i, "pgrep -f '[r]aylet|[g]cs_server' || true").stdout.strip() == "" for i in (1, 2))
    client = OpenAI(base_url=data["endpoint"], api_key="EMPTY", timeout=120, max_retries=0)
    assert client.completions.create(model="tiny-llama", prompt="def main():", max_tokens=4).choices[0].text
    code, status, err = run(lab, "status", inv, *dp)
    rows = {r["host"]: r for r in status["hosts"]}
    assert code == 0 and [(rows[f"{NAME}-{i}"]["ranks"], bool(rows[f"{NAME}-{i}"]["vllm_pid"])) for i in (1, 2)] == [
        ([0], True),
        ([1], True),
    ], status
    assert rows[f"{NAME}-1"]["engines"] == 2 and all(rows[f"{NAME}-{i}"]["container"] for i in (1, 2)), status
    code, down, err = run(lab, "down", inv)
    assert code == 0 and all(h["clean"] for h in down["hosts"].values()), (down, err[-2000:])
    for i in (1, 2):
        assert containers(lab, i) == [] and lab.ssh(i, "pgrep -f '[v]llm serve' || true").stdout.strip() == ""


def test_a_host_without_an_engine_is_named_at_preflight_before_anything_starts(lab: SimLab) -> None:
    """podman hidden on the worker (a non-executable file over it): the preflight names the host and
    both engines' state; nothing is started on the head either."""
    lab.ssh(2, ": > /tmp/no-podman && mount --bind /tmp/no-podman /usr/bin/podman")
    try:
        code, data, err = run(lab, "up", str(lab.inventory), *TP2)
    finally:
        lab.ssh(2, "umount /usr/bin/podman")
    assert code == 1 and data["failed_stage"] == "preflight", err[-2000:]
    problems = [(p["host"], p["check"]) for p in data["preflight"]["problems"]]
    assert problems == [(f"{NAME}-2", "engine")], data["preflight"]["problems"]
    engine = data["preflight"]["problems"][0]
    # each engine's own words: here podman cannot run, docker's daemon does not answer
    assert "podman: " in engine["observed"] and "docker: " in engine["observed"], engine
    assert containers(lab, 1) == []


def small_image(tmp_path: Path) -> tuple[str, Path]:
    """A small image (64 MiB of random bytes in one layer), saved as a tarball with a private store:
    what a vendor tarball is to `image load`, at a size a test can send."""
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "data.bin").write_bytes(os.urandom(64 << 20))
    name = "localhost/ascend-sim/small:1"
    return name, save_tarball(tmp_path / "rootfs", name, tmp_path / "small.tar")


def test_image_load_resumes_skips_and_fixes_a_skewed_host_that_preflight_refused(lab: SimLab, tmp_path: Path) -> None:
    """`image load`: a host with half an upload resumes it, a re-run sends nothing; then the worker's
    name for the image points at another image (skew): `up`'s preflight refuses before anything
    starts, naming host and ids; `image load` again renames it (nothing sent) and `image status` agrees."""
    inv = str(lab.inventory)
    name, archive = small_image(tmp_path)
    use = ["--set", f"container.image={name}"]
    data = archive.read_bytes()
    part = f"$HOME/.ascend-deploy/{NAME}/images/{read_image_archive(archive).part_name}"  # sshd starts in /root
    half = len(data) // 2
    seeded = lab.ssh(
        2, f'mkdir -p "{os.path.dirname(part)}" && cat > "{part}" && stat -c %s "{part}"', input=data[:half]
    )
    assert seeded.stdout.strip() == str(half)

    code, loaded, err = run(lab, "image", "load", inv, str(archive))
    assert code == 0 and loaded["ok"], (loaded, err[-2000:])
    hosts = loaded["hosts"]
    assert (hosts[f"{NAME}-1"]["had"], hosts[f"{NAME}-1"]["resumed_from"], hosts[f"{NAME}-1"]["sent"]) == (
        False, 0, len(data))  # fmt: skip
    assert (hosts[f"{NAME}-2"]["resumed_from"], hosts[f"{NAME}-2"]["sent"]) == (half, len(data) - half)
    assert lab.ssh(2, f'ls "{part}" 2>/dev/null || echo gone').stdout.strip() == "gone"  # loaded, then removed
    code, again, err = run(lab, "image", "load", inv, str(archive))
    assert code == 0 and all(h["had"] and h["sent"] == 0 for h in again["hosts"].values()), again

    lab.ssh(2, f"echo other > /tmp/other && tar -C /tmp -cf - other | podman import - {name}")  # another image now
    code, data_up, err = run(lab, "up", inv, *TP2, *use)
    assert code == 1 and data_up["failed_stage"] == "preflight", err[-2000:]
    problems = data_up["preflight"]["problems"]
    assert [(p["host"], p["check"]) for p in problems] == [(f"{NAME}-2", "image")], problems
    assert (
        problems[0]["expected"] == f"{loaded['image_id'][:12]} as on {NAME}-1" and "image load" in problems[0]["hint"]
    )
    assert containers(lab, 1) == [] and containers(lab, 2) == []  # nothing started
    code, status, _ = run(lab, "image", "status", inv, *use)
    assert code == 1 and [p["host"] for p in status["problems"]] == [f"{NAME}-2"]

    code, fixed, err = run(lab, "image", "load", inv, str(archive))
    assert code == 0 and fixed["hosts"][f"{NAME}-2"]["retagged"] == [name] and fixed["hosts"][f"{NAME}-2"]["sent"] == 0
    code, status, err = run(lab, "image", "status", inv, *use)
    assert code == 0 and status["ok"] and {h["image_id"] for h in status["hosts"].values()} == {loaded["image_id"][:12]}
