"""Readiness loop (fake clock), failure signatures, and the parsers behind up/status."""

from __future__ import annotations

import pytest

from toolkit.checks.signatures import likely_cause
from toolkit.engine.readiness import Probe, wait_ready
from toolkit.facts import Raw
from toolkit.facts.deploy import parse_nic, parse_reach, parse_state
from toolkit.launch.server import parse_answer, parse_probe


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def scripted(*probes: Probe):  # type: ignore[no-untyped-def]
    items = list(probes)
    return lambda: items.pop(0) if len(items) > 1 else items[0]


def test_ready_after_initial_delay_and_probes() -> None:
    clock = Clock()
    seen = []
    out = wait_ready(
        scripted(Probe(True, None), Probe(True, 503), Probe(True, 200)),
        timeout=60,
        initial_delay=10,
        interval=2,
        on_probe=lambda e, p: seen.append((e, p.health)),
        clock=clock,
        sleep=clock.sleep,
    )
    assert out.state == "ready" and out.probes == 3
    assert clock.sleeps[0] == 10 and seen == [(10, None), (12, 503), (14, 200)]


def test_exit_stops_waiting_at_once() -> None:
    clock = Clock()
    out = wait_ready(
        scripted(Probe(True, None), Probe(False, None, "ValueError: bad")),
        timeout=1800,
        interval=2,
        clock=clock,
        sleep=clock.sleep,
    )
    assert out.state == "exited" and out.elapsed == 2 and out.probe.last_line == "ValueError: bad"


def test_timeout_is_bounded() -> None:
    clock = Clock()
    out = wait_ready(lambda: Probe(True, None), timeout=7, interval=2, clock=clock, sleep=clock.sleep)
    assert out.state == "timeout" and clock.now == 7 and out.probes == 5


@pytest.mark.parametrize(
    "log, cause",
    [
        ("foo\nvllm: error: unrecognized arguments: --bogus-flag\n", "vLLM rejected a command-line argument"),
        ("RuntimeError: Gloo connectFullMesh failed with ...", "Gloo could not connect the ranks"),
        (
            "ValueError: Current node has no NPU available. ... {'GPU': 8.0}",
            "Ray has no NPU resource for vLLM's workers",
        ),
        ("[ERROR] EI0006: wait socket establish timeout", "HCCL could not connect between NPUs (EI0006)"),
        (
            "ValueError: No available memory for the cache blocks.",
            "not enough device memory for the weights and the KV cache",
        ),
    ],
)
def test_failure_signatures(log: str, cause: str) -> None:
    sig = likely_cause(log)
    assert sig is not None and sig.cause == cause


def test_latest_error_wins_and_unknown_is_none() -> None:
    assert likely_cause("Gloo connectFullMesh failed\nlater: error: unrecognized arguments: --x").cause.startswith(
        "vLLM rejected"
    )
    assert likely_cause("all good\n") is None


def test_parse_state_and_helpers() -> None:
    # captured from a simulated head running Ray and vLLM (TP 2), arguments cut as the host cuts them
    raw = Raw(
        "hash ray-node abc\npid vllm 300\npid toy 302\nhash toy t1\n"
        "sha e1  .ascend-deploy/c/env\n"
        "proc 10     320 /venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet "
        "--raylet_socket_name=/tmp/ray-c/s\n"
        "proc 11     320 /venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet "
        "--raylet_socket_name=/tmp/ray-d/s\n"
        "proc 12     321 /venv/lib/python3.11/site-packages/ray/core/src/ray/gcs/gcs_server --log_dir=/tmp/ray-c/logs\n"
        "proc 300     95 python3 -m vllm.entrypoints.openai.api_server --model /m --served-model-name m\n"
        "proc 301     12 /venv/bin/python3 /venv/bin/vllm serve /m --port 8001\n"
        "proc 302     40 /venv/bin/python3 /venv/bin/vllm serve /m --port 8002\n"
        "proc 400     90 ray::RayWorkerProc.run\nproc 401 88 VLLM::EngineCore\n"
        "proc 500      3 timeout 120 /venv/bin/python3 /venv/bin/ray start --head --port 6379\n",
        0,
    )
    st = parse_state(raw)
    assert (st.ray_hash, st.vllm_hash, st.raylet_pids, st.gcs_pids, st.vllm_pid, st.vllm_uptime_s) == (
        "abc",
        None,
        (10, 11),
        (12,),
        300,
        95,
    )
    assert (st.env_sha256, st.key_sha256) == ("e1", None) and st.starter_pids == (500,)
    assert st.stray_vllm_pids == (301,) and st.worker_pids == (400, 401) and st.ray_running and not st.clean
    # every process with files is known by its name: a second server's pid file makes it no stray
    assert (st.proc("toy").pid, st.proc("toy").uptime_s, st.proc("toy").hash) == (302, 40, "t1")
    assert st.proc("ray-node").hash == "abc" and not st.proc("ray-node").alive and not st.proc("absent").alive
    empty = parse_state(Raw("", 0))
    assert empty.clean and empty.vllm_pid is None
    # a stale pid file whose pid now belongs to something else is not a server
    reused = parse_state(Raw("pid vllm 300\nproc 300 5 sleep 100\n", 0))
    assert reused.vllm_pid is None and reused.clean
    assert parse_nic(Raw("enp67s0f5@if12\n", 0)) == "enp67s0f5" and parse_nic(Raw("", 0)) is None
    assert parse_reach(Raw("open\n", 0)) == (True, "")
    assert parse_reach(Raw("closed Connection refused\n", 0)) == (False, "Connection refused")
    assert parse_reach(Raw("closed\n", 0)) == (False, "timed out")


def test_probe_and_answer_parsers() -> None:
    assert parse_probe("alive=1\nhealth=200\nlast=INFO ok\n") == Probe(True, 200, "INFO ok")
    assert parse_probe("alive=0\nhealth=000\nlast=\n") == Probe(False, None, "")
    assert parse_answer("models", '{"data": [{"id": "m"}]}\nHTTP 200') == (200, ["m"])
    assert parse_answer("chat", '{"choices": [{"message": {"content": "hi"}}]}\nHTTP 200') == (200, "hi")
    assert parse_answer("completion", "Unauthorized\nHTTP 401") == (401, "Unauthorized")


def test_data_parallel_failure_signatures() -> None:
    engines = "ERROR [core.py:123] RuntimeError: Timed out waiting for engines to send initial message on input socket."
    assert "data-parallel engines" in likely_cause(engines).cause
    assert "HCCL_IF_BASE_PORT" in likely_cause("EI0019: Communication_Error_Bind_IP_Port(EI0019)").fix
    assert "data_parallel_rpc_port" in likely_cause("OSError: [Errno 98] Address already in use").fix


def test_a_cancelled_wait_stops_at_the_next_probe() -> None:
    from toolkit.engine.readiness import Probe, Rendezvous, wait_ready

    meet = Rendezvous()
    probes = []

    def probe() -> Probe:
        probes.append(1)
        if len(probes) == 2:
            meet.fail("n1")
        return Probe(True, None, "starting")

    out = wait_ready(probe, timeout=100, interval=0, cancelled=meet.failed.is_set, sleep=lambda s: None)
    assert (out.state, out.probes, meet.failed_host) == ("cancelled", 2, "n1")
    meet.fail("n2")  # the first host to fail is the one named
    assert meet.failed_host == "n1"
