"""The fault matrix on the simulated cluster with real sshd and real Ray (vLLM where a case needs
it): each case checks the exit code, one clear message naming host, stage and cause, that
`down` leaves nothing running, and that the next `up` recovers. docs/reliability.md lists them.

Ray-only runs (`up --skip-tags vllm`) keep most cases to seconds."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers import SIM_ROOT, cli, cli_json, held, held_inventory, hold, start, vllm_running, wait_for
from tests.simlab import SimLab, running_cluster

NAME = "fault"
RAY_ONLY = ["--skip-preflight", "--skip-tags", "vllm"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    with running_cluster(NAME, SIM_ROOT, tmp_path_factory.mktemp("fault") / "fault.yaml", hosts=2, devices=[0]) as lab:
        try:
            yield lab
        finally:
            cli("down", str(lab.inventory), cwd=lab.inventory.parent, timeout=300)


@pytest.fixture(autouse=True)
def isolated(lab: SimLab) -> Iterator[None]:
    """A failed case must not leave its cluster to the next one (which would then find Ray
    already up and skip the stage it means to test): clean up whatever is left."""
    yield
    leftover = lab.ssh(
        1,
        "cd; rm -f hold; pgrep -f '[r]aylet/raylet|[g]cs_server|[v]llm.entrypoints|[E]ngineCore' >/dev/null && echo "
        "yes || true",
    ).stdout.strip()
    leftover += lab.ssh(
        2, "cd; rm -f hold; pgrep -f '[r]aylet/raylet|[r]ay start' >/dev/null && echo yes || true"
    ).stdout.strip()
    if leftover:
        cli("down", str(lab.inventory), cwd=lab.inventory.parent, timeout=300)


def run(lab: SimLab, *args: str, timeout: float = 600) -> tuple[int, dict[str, Any], str]:
    return cli_json(lab, *args, timeout=timeout)


def ray_procs(lab: SimLab, index: int) -> str:
    return lab.ssh(index, "pgrep -af '[r]aylet/raylet|[g]cs_server' || true").stdout


LEFTOVERS = (
    "[r]aylet/raylet|[g]cs_server|[r]ay start|[v]llm.entrypoints|[v]llm serve|[E]ngineCore|[V]llmWorker|[R]ayWorker"
)


def clean(lab: SimLab) -> None:
    """`down`, then prove the hosts are as before any run: no Ray, starter, vLLM or engine process."""
    code, data, err = run(lab, "down", str(lab.inventory))
    assert code == 0 and data["ok"], (data, err)
    for i in (1, 2):
        left = lab.ssh(i, f"pgrep -af '{LEFTOVERS}' || true").stdout.strip()
        assert left == "", f"host {i} still runs after down: {left}"


def test_second_up_or_down_is_refused_while_one_runs_and_the_holder_is_named(lab: SimLab) -> None:
    first = start(lab, "up", str(lab.inventory), *RAY_ONLY)
    try:
        holder = f".ascend-deploy/locks/{NAME}.holder"
        wait_for("the first run's lock", lambda: lab.ssh(1, f"cd; cat {holder} 2>/dev/null").stdout.strip() != "")
        for command in (["up", str(lab.inventory), *RAY_ONLY], ["down", str(lab.inventory)]):
            code, data, _ = run(lab, *command)
            assert code == 1 and data["ok"] is False, data
            error = data["error"]
            assert error["kind"] == "locked" and error["host"] == f"{NAME}-1" and error["stage"] == "lock"
            assert f"cluster '{NAME}' is locked by `up` (pid {first.pid}" in error["message"], error
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, (out[-2000:], err[-2000:])
    finally:
        if first.poll() is None:
            first.kill()
    assert lab.ssh(1, f"cd; test -e {holder} && echo left || echo gone").stdout.strip() == "gone"
    clean(lab)


# ------------------------------------------------------------------ injection

MARK = "adinj"
PAYLOADS = [
    "$(touch /tmp/{m})",
    "`touch /tmp/{m}`",
    "x; touch /tmp/{m}",
    "x\ntouch /tmp/{m}",
    "x'; touch /tmp/{m}; echo '",
    'x"; touch /tmp/{m}; echo "',
    "x && touch /tmp/{m} #",
    "x | touch /tmp/{m}",
    "$(printf touch) /tmp/{m}",
]
SKIP = {"setup", "plugins"}  # setup lines are commands by design; plugin folders are Python the operator chose to load


def string_leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() if k not in SKIP for p in string_leaves(v, path + (k,))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in string_leaves(v, path + (i,))]
    return [path] if isinstance(data, str) else []


def with_value(data: Any, path: tuple[Any, ...], value: str) -> Any:
    import copy

    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def markers(lab: SimLab) -> list[str]:
    found = [str(p) for p in Path("/tmp").glob(f"{MARK}-*")]
    for i in (1, 2):
        found += [f"{NAME}-{i}:{p}" for p in lab.ssh(i, f"ls -d /tmp/{MARK}-* 2>/dev/null || true").stdout.split()]
    return found


def test_shell_metacharacters_in_any_inventory_string_never_run_on_a_host(lab: SimLab, tmp_path: Path) -> None:
    """Every string of the inventory (but setup lines) gets a payload that would create a marker
    file if a shell ever evaluated it; check-net, `up --check`, a real Ray-only `up`, `status`,
    `logs` and `down` run with them; no marker may appear, here or on a host."""
    import yaml

    base = yaml.safe_load(lab.inventory.read_text())
    base["known_hosts"] = str((lab.inventory.parent / base["known_hosts"]).resolve())
    base["defaults"]["env"]["EVIL"] = "v"
    base["serve"]["extra_args"] = list(base["serve"].get("extra_args", [])) + ["--uvicorn-log-level", "info"]
    base["hosts"][1]["nic"] = "auto"
    accepted: list[tuple[tuple[Any, ...], str]] = []
    for n, path in enumerate(string_leaves(base)):
        payload = PAYLOADS[n % len(PAYLOADS)].format(m=f"{MARK}-{n}")
        inv = tmp_path / f"inj-{n}.yaml"
        inv.write_text(yaml.safe_dump(with_value(base, path, payload)))
        code, data, err = run(lab, "check-net", str(inv), "--mode", "ring", timeout=180)
        assert code in (0, 1, 2), (path, code, err[-1500:])
        assert "Traceback" not in err, (path, err[-2000:])
        if code != 2:
            accepted.append((path, payload))
            code, data, err = run(lab, "up", str(inv), "--check", "--skip-preflight", timeout=180)
            assert "Traceback" not in err, (path, err[-2000:])
        assert markers(lab) == [], f"a payload in {path} ran"
    assert len(accepted) >= 8, accepted  # env values, served name, model path, extra args, ... are free text
    # all accepted payloads at once, through a real deployment (Ray only) and back
    combined = base
    for path, payload in accepted:
        combined = with_value(combined, path, payload)
    inv = tmp_path / "inj-all.yaml"
    inv.write_text(yaml.safe_dump(combined))
    for command in (
        ["up", str(inv), *RAY_ONLY],
        ["status", str(inv)],
        ["logs", str(inv), "--out", str(tmp_path / "logs")],
        ["down", str(inv)],
    ):
        code, data, err = run(lab, *command)
        assert "Traceback" not in err, (command, err[-2000:])
        assert markers(lab) == [], f"{command[0]} ran a payload"
    clean(lab)


# ------------------------------------------------------------------ faults during up


def stage_error(data: dict[str, Any], stage: str) -> dict[str, Any]:
    """The one host error of `stage` in an up report."""
    found = [h["error"] for s in data["run"]["stages"] if s["name"] == stage for h in s["hosts"].values() if h["error"]]
    assert len(found) == 1, json.dumps(data)[:3000]
    return found[0]


@pytest.mark.parametrize("victim", [2, 1], ids=["worker", "head"])
def test_sshd_killed_in_the_middle_of_up(lab: SimLab, victim: int) -> None:
    """Killed once the head's GCS runs: the lost host is named at the stage that needed it, and
    losing the head (which also carries the run's lock channel) does not hang the run."""
    proc = start(lab, "up", str(lab.inventory), *RAY_ONLY)
    try:
        wait_for("the Ray head to start", lambda: "gcs_server" in ray_procs(lab, 1))
        lab.fault(victim, "host-down")
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    try:
        assert proc.returncode == 1, (out[-2000:], err[-2000:])
        data = json.loads(out)
        assert data["failed_stage"] in ("ray-head", "ray-workers", "ray-ready"), data["failed_stage"]
        error = stage_error(data, data["failed_stage"])
        assert error["message"]
        if victim == 1:
            assert error["host"] == f"{NAME}-1", error
        else:
            assert error["host"] in (f"{NAME}-2", f"{NAME}-1"), error
        if error["host"] == f"{NAME}-{victim}":
            assert "connect" in error["message"].lower() or "connection" in error["message"].lower(), error
    finally:
        from toolkit.sim import faults

        faults.clear(lab.opts)
    clean(lab)
    code, data, err = run(lab, "up", str(lab.inventory), *RAY_ONLY)
    assert code == 0 and data["ok"], (data, err)
    clean(lab)


FAULT_KINDS = [
    ("link-down", {}),
    ("net-health", {}),
    ("ping-loss", {"peer": f"{NAME}-1"}),
    ("card-unhealthy", {}),
    ("no-ip", {}),
    ("tls-mismatch", {}),
    ("optical-absent", {}),
    ("missing-model", {}),
    ("version-skew", {}),
    ("host-down", {}),
    ("slow", {"value": "1200"}),  # ("unreachable": test_up_e2e.py::test_worker_that_cannot_reach_the_head)
    ("npu-held", {}),  # a foreign process holds the card the plan uses
    ("low-ram", {}),
    ("small-shm", {}),
    ("old-driver", {}),
]


#: the preflight check each day-one fault must trip (and nothing else)
CHECK_OF = {"npu-held": "npu-memory", "low-ram": "host-memory", "small-shm": "shm", "old-driver": "driver"}


@pytest.mark.parametrize("kind,kwargs", FAULT_KINDS, ids=[k for k, _ in FAULT_KINDS])
def test_each_sim_fault_stops_up_at_the_preflight_before_ray(lab: SimLab, kind: str, kwargs: dict[str, Any]) -> None:
    from toolkit.sim import faults

    lab.fault(2, kind, **kwargs)
    try:
        code, data, _ = run(lab, "up", str(lab.inventory), "--skip-tags", "vllm")
    finally:
        faults.clear(lab.opts)
    assert code == 1 and data["ok"] is False and data["failed_stage"] == "preflight", json.dumps(data)[:2000]
    problems = data["preflight"]["problems"]
    assert problems and all(p["observed"] and p["hint"] for p in problems)
    # the faulted host is named: as the host of a problem, or as the far end of a failing ping
    assert any(p["host"] == f"{NAME}-2" or f"{NAME}-2 " in p["observed"] for p in problems), problems
    if kind in CHECK_OF:  # the day-one checks: exactly their own problem, on that host
        assert [(p["host"], p["check"]) for p in problems] == [(f"{NAME}-2", CHECK_OF[kind])], problems
    assert data["run"] is None  # no stage of `up` ran
    assert ray_procs(lab, 1) == "" and ray_procs(lab, 2) == ""


# ------------------------------------------------------------------ Ctrl-C in every stage of up


def starting(lab: SimLab, index: int) -> bool:
    return lab.ssh(index, "pgrep -f '[r]ay start' >/dev/null && echo yes || true").stdout.strip() == "yes"


#: stage -> (extra `up` arguments, hosts held from the start, (when, host) to hold later, when to send the signal)
STAGES: dict[str, tuple[list[str], list[int], tuple[Any, int] | None, Any]] = {
    "env": (RAY_ONLY, [2], None, lambda lab: held(lab, 2)),
    "ray-head": (RAY_ONLY, [], None, lambda lab: starting(lab, 1)),
    "ray-workers": (RAY_ONLY, [], None, lambda lab: starting(lab, 2)),
    # the head is idle while the worker starts Ray: hold it then, so ray-ready's query waits on it
    "ray-ready": (RAY_ONLY, [], (lambda lab: starting(lab, 2), 1), lambda lab: held(lab, 1)),
    "vllm|ready": (["--skip-preflight", "--set", "serve.tensor_parallel_size=2"], [], None, vllm_running),
}
#: one signal per stage, the two taking turns (both go through the same handler); vLLM's start, the
#: stage with the most in flight, gets both
CASES = [
    ("env", signal.SIGINT),
    ("ray-head", signal.SIGTERM),
    ("ray-workers", signal.SIGINT),
    ("ray-ready", signal.SIGTERM),
    ("vllm|ready", signal.SIGINT),
    ("vllm|ready", signal.SIGTERM),
]
#: after these a full `up` must succeed at once (after the others the next case's `up` starts from their clean hosts)
RECOVERY_UP = {("ray-workers", signal.SIGINT), ("vllm|ready", signal.SIGTERM)}


@pytest.mark.parametrize("stage,sig", CASES, ids=[f"{s}-{g.name}" for s, g in CASES])
def test_interrupt_in_each_stage_of_up(lab: SimLab, tmp_path: Path, stage: str, sig: signal.Signals) -> None:
    extra, hold_first, hold_later, ready = STAGES[stage]
    inv = held_inventory(lab, tmp_path)
    for i in hold_first:
        hold(lab, i, True)
    proc = start(lab, "up", str(inv), *extra)
    try:
        if hold_later is not None:
            when, host = hold_later
            wait_for("the moment to hold", lambda: when(lab) or proc.poll() is not None, timeout=240)
            hold(lab, host, True)
        wait_for(f"stage {stage}", lambda: ready(lab) or proc.poll() is not None, timeout=240)
        assert proc.poll() is None, "up ended before the signal"
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        for i in (1, 2):
            hold(lab, i, False)
    assert proc.returncode == 130, (out[-2000:], err[-2000:])
    assert took < 20, f"took {took:.1f}s to stop"
    error = json.loads(out)["error"]
    assert error["kind"] == "interrupted" and "ascend-deploy down" in error["hint"]
    names = stage.split("|")
    assert any(f"({name})" in error["message"] for name in names), error["message"]
    clean(lab)  # nothing left anywhere after down, whatever was in flight: the hosts are as before the run
    if (stage, sig) in RECOVERY_UP:  # and a full `up` recovers
        code, result, err = run(lab, "up", str(lab.inventory), *RAY_ONLY)
        assert code == 0 and result["ok"], (result, err)
        clean(lab)


# ------------------------------------------------------------------ vLLM faults

TP2 = ["--set", "serve.tensor_parallel_size=2"]


def test_readiness_timeout_names_the_stage_and_shows_the_log(lab: SimLab) -> None:
    code, data, _ = run(lab, "up", str(lab.inventory), "--skip-preflight", *TP2, "--set", "serve.ready_timeout=3")
    assert code == 1 and data["failed_stage"] == "ready", json.dumps(data)[:2000]
    error = stage_error(data, "ready")
    assert error["host"] == f"{NAME}-1" and error["stage"] == "ready"
    assert "is not healthy after" in error["message"] and error["details"]
    # which timeout ran out (its value and origin), and the phase the log was in then
    assert (
        "serve.ready_timeout (3 s, --set serve.ready_timeout) ran out while the log was in phase: " in error["message"]
    )
    from toolkit.facts.phases import MARKERS

    phase = error["message"].split("in phase: ", 1)[1].split(" (log:", 1)[0]
    assert phase in {p for _, p in MARKERS} or phase.startswith("none yet"), phase
    clean(lab)


def test_missing_model_on_the_head_fails_fast_when_the_preflight_is_skipped(lab: SimLab) -> None:
    from toolkit.sim import faults

    lab.fault(1, "missing-model")
    try:
        started = time.monotonic()
        code, data, _ = run(lab, "up", str(lab.inventory), "--skip-preflight", *TP2)
        took = time.monotonic() - started
    finally:
        faults.clear(lab.opts)
    assert code == 1 and data["failed_stage"] == "ready", json.dumps(data)[:2000]
    error = stage_error(data, "ready")
    assert "vLLM exited" in error["message"] and error["details"], error
    assert took < 240  # it stopped when the server died, not at the 30-minute readiness timeout
    clean(lab)


# ------------------------------------------------------------------ a command that hangs


def test_a_command_that_hangs_on_a_host_is_cut_by_the_timeout_and_named(lab: SimLab, tmp_path: Path) -> None:
    """A host whose commands never return (held in a setup line): `up` stops at the per-command
    limit (the env stage's 30 s, not retried: the host had its whole limit), names the host,
    stage and limit, and the hung command is killed on the host too."""
    inv = held_inventory(lab, tmp_path)
    hold(lab, 2, True)
    try:
        started = time.monotonic()
        code, result, err = run(lab, "up", str(inv), *RAY_ONLY)
        took = time.monotonic() - started
        assert code == 1 and result["failed_stage"] == "env", json.dumps(result)[:2000]
        error = stage_error(result, "env")
        assert (
            error["host"] == f"{NAME}-2" and error["kind"] == "timeout" and "timed out after 30s" in error["message"]
        ), error
        assert "timeout" in error["hint"]
        assert took < 70, f"took {took:.0f}s"
        wait_for("the hung command to be killed on the host", lambda: not held(lab, 2), timeout=20)
    finally:
        hold(lab, 2, False)
    clean(lab)


def stage_statuses(result: dict[str, Any]) -> dict[str, set[str]]:
    return {s["name"]: {h["status"] for h in s["hosts"].values()} for s in result["run"]["stages"]}


# ------------------------------------------------------------------ host keys and authentication through up


def keyed_inventory(lab: SimLab, tmp_path: Path, case: str) -> Path:
    """The lab's inventory with one SSH trust or auth fault; a HOME of its own so nothing the
    machine's user trusts can leak in."""
    import subprocess as sp

    import yaml

    data = yaml.safe_load(lab.inventory.read_text())
    lines = (lab.inventory.parent / data["known_hosts"]).resolve().read_text().splitlines()
    known = tmp_path / "known_hosts"
    other = tmp_path / "other_key"
    sp.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    worker = data["hosts"][1]["address"]
    if case == "unknown":
        known.write_text("")
    elif case == "changed":  # the worker now shows a key that is not the one on record
        fake = (tmp_path / "other_key.pub").read_text().split()[:2]
        known.write_text(
            "\n".join(line if not line.startswith(worker + " ") else f"{worker} {' '.join(fake)}" for line in lines)
            + "\n"
        )
    else:  # "auth": the worker does not accept the key the inventory gives for it
        known.write_text("\n".join(lines) + "\n")
        data["hosts"][1]["key_file"] = str(other)
    data["known_hosts"] = str(known)
    inv = tmp_path / f"{case}.yaml"
    inv.write_text(yaml.safe_dump(data))
    return inv


@pytest.mark.parametrize("case", ["unknown", "changed", "auth"])
def test_host_key_and_auth_faults_stop_up_before_ray(lab: SimLab, tmp_path: Path, case: str) -> None:
    inv = keyed_inventory(lab, tmp_path, case)
    home = tmp_path / "home"
    home.mkdir()
    attempts = [[]] if case == "auth" else [[], ["--accept-new-host-keys"]]
    recorded = (tmp_path / "known_hosts").read_text()
    for extra in attempts:
        r = cli("up", str(inv), *RAY_ONLY, *extra, "--json", cwd=tmp_path, env={"HOME": str(home)}, timeout=300)
        data = json.loads(r.stdout)
        if case == "unknown" and extra:
            # the explicit opt-in records the keys and the run goes through
            assert r.returncode == 0 and data["ok"], (data, r.stderr[-2000:])
            assert len((tmp_path / "known_hosts").read_text().splitlines()) == 2
            break
        assert r.returncode == 1 and data["ok"] is False, (data, r.stderr[-2000:])
        if case == "unknown":  # the first connection is the lock on the head: nothing starts
            error = data["error"]
            assert error["kind"] == "host-key" and error["changed"] is False and error["host"] == f"{NAME}-1", error
            assert "--accept-new-host-keys" in error["hint"] and error["fingerprint"]
        else:  # the worker is refused in the first stage; the head did nothing lasting
            assert data["failed_stage"] == "env", json.dumps(data)[:2000]
            error = stage_error(data, "env")
            assert error["host"] == f"{NAME}-2", error
            if case == "changed":
                assert (
                    error["kind"] == "host-key" and error["changed"] is True and "changed" in error["message"].lower()
                ), error
                assert "--accept-new-host-keys" not in (error.get("hint") or ""), error  # no override offered
            else:
                assert error["kind"] == "auth" and "authentication failed" in error["message"], error
        assert ray_procs(lab, 1) == "" and ray_procs(lab, 2) == ""
    if case == "changed":  # a refused key is never written over, even with the opt-in
        assert (tmp_path / "known_hosts").read_text() == recorded
    clean(lab)
