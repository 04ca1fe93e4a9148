"""DeployState's derived answers: what `up` (before a start) and `down` both decide from it."""

from __future__ import annotations

from toolkit.facts.deploy import DeployState


def state(**kw: object) -> DeployState:
    base: dict[str, object] = dict(
        ray_hash=None,
        vllm_hash=None,
        env_sha256=None,
        key_sha256=None,
        raylet_pids=(),
        gcs_pids=(),
        vllm_pid=None,
        vllm_uptime_s=None,
        stray_vllm_pids=(),
        worker_pids=(),
    )
    base.update(kw)
    return DeployState(**base)  # type: ignore[arg-type]


def test_nothing_running_leaves_no_vllm() -> None:
    s = state()
    assert s.vllm_pids == [] and not s.vllm_left and s.clean


def test_recorded_server_comes_before_strays() -> None:
    s = state(vllm_pid=41, stray_vllm_pids=(7, 9))
    assert s.vllm_pids == [41, 7, 9] and s.vllm_left and not s.clean


def test_an_orphaned_engine_alone_still_counts_as_vllm_left() -> None:
    s = state(worker_pids=(300, 301))  # the API server was killed; its EngineCore holds the NPUs
    assert s.vllm_pids == [] and s.vllm_left


def test_ray_alone_is_not_vllm() -> None:
    s = state(raylet_pids=(5,), gcs_pids=(6,), starter_pids=(8,))
    assert not s.vllm_left and s.ray_running and not s.clean and s.ray_pids == (5, 6, 8)


def test_an_engine_counts_for_ray_stop_too() -> None:
    assert state(worker_pids=(300,)).ray_pids == (300,)


HOLD_64_MIB = "b = bytes([1]) * (64 << 20); print(1, flush=True); input()"


def test_the_ram_a_deployment_holds_is_read_from_ps_for_real() -> None:
    """PS_COMMAND in a local bash, with a process named as vLLM's engine holding 64 MiB: its resident
    memory counts; this machine's other processes (not vLLM, not Ray) do not. The same output names
    each pid's command (npu-smi's holders)."""
    import subprocess
    import sys

    from toolkit.facts import Raw
    from toolkit.facts.deploy import PS_COMMAND, parse_commands, parse_deployment_rss_mib

    before = parse_deployment_rss_mib(
        Raw(subprocess.run(["bash", "-c", PS_COMMAND], capture_output=True, text=True).stdout, 0)
    )
    holder = subprocess.Popen(
        [
            "bash",
            "-c",
            f'exec -a "VLLM::EngineCore" {sys.executable} -c "{HOLD_64_MIB}"',
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "1"  # the memory is touched
        out = subprocess.run(["bash", "-c", PS_COMMAND], capture_output=True, text=True).stdout
        assert "VLLM::EngineCore" in out
        assert parse_deployment_rss_mib(Raw(out, 0)) - before >= 64
        assert parse_commands(Raw(out, 0))[holder.pid].startswith("VLLM::EngineCore -c")
    finally:
        holder.kill()
        holder.wait()
    assert parse_deployment_rss_mib(Raw("  7 1234 /usr/bin/python3 train.py\n  8 2048 ray::IDLE\n", 0)) == 0
    table = Raw(" 9 4096 /x/raylet/raylet --node\n 10 8192 vllm serve /m\nbad line\n 11 0\n", 0)
    assert parse_deployment_rss_mib(table) == 12
    assert parse_commands(table) == {9: "/x/raylet/raylet --node", 10: "vllm serve /m", 11: ""}
