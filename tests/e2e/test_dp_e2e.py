"""Launcher dp end to end on the simulated cluster, in the shape of vllm-ascend's DeepSeek recipe: DP 4
with two ranks per host across two hosts (two devices each, TP 1 here where the recipe has TP 4), no Ray
(`vllm serve --headless --data-parallel-size-local 2 --data-parallel-start-rank 2` on the worker, the
API server and ranks 0-1 on the head), real sshd, the CPU build and the tiny model; checked with the
OpenAI client, vLLM's own metrics and by looking at the hosts over OpenSSH. Then the faults the recipes'
bug reports describe: the DP RPC port taken on a worker, the worker's ranks killed during start and
while serving (named by status, healed by the next up), Ctrl-C during start."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from openai import OpenAI

from tests.helpers import SIM_ROOT, cli, cli_json, interrupt_when, start, wait_for
from tests.simlab import SimLab, running_cluster

NAME = "dpe"
#: DP 4 = 2 hosts x 2 devices at TP 1: two ranks per host, as the DeepSeek recipe runs them
DP = ["--set", "serve.launcher=dp", "--set", "serve.tensor_parallel_size=1"]
RANKS = "[v]llm serve|[E]ngineCore|[V]LLM::|[r]aylet|[g]cs_server"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    with running_cluster(NAME, SIM_ROOT, tmp_path_factory.mktemp("dp") / "dp.yaml", hosts=2, devices=[0, 1]) as lab:
        try:
            yield lab
        finally:
            cli("down", str(lab.inventory), cwd=lab.inventory.parent, timeout=300)


def run(lab: SimLab, *args: str, timeout: float = 900) -> tuple[int, dict[str, Any], str]:
    return cli_json(lab, *args, timeout=timeout)


def pids(lab: SimLab, index: int, pattern: str = RANKS) -> set[int]:
    return {int(p) for p in lab.ssh(index, f"pgrep -f {pattern!r} || true").stdout.split()}


def rank_started(lab: SimLab, index: int) -> bool:
    return bool(pids(lab, index, "[v]llm serve"))


def down_leaves_nothing(lab: SimLab) -> None:
    code, data, err = run(lab, "down", str(lab.inventory))
    assert code == 0 and all(h["clean"] for h in data["hosts"].values()), (data, err[-2000:])
    for i in (1, 2):
        assert pids(lab, i) == set(), f"host {i}"
        npu = lab.ssh(i, "source /usr/local/Ascend/ascend-toolkit/set_env.sh; npu-smi info").stdout
        assert "No running processes found in NPU 0" in npu and "No running processes found in NPU 1" in npu


# the long test first: with loadfile, a worker takes its next module when two tests of this one are
# left (tests/conftest.py SLOW_FIRST); run last, it let this worker also take the upgrade e2e
def test_dp_up_chat_spread_over_ranks_status_logs_noop_down(lab: SimLab, tmp_path: Path) -> None:
    inv = str(lab.inventory)
    code, data, err = run(lab, "up", inv, *DP)
    assert code == 0, err[-3000:]
    plan = data["plan"]
    assert plan["launch"]["launcher"]["value"] == "dp" and plan["parallel"]["dp"]["value"] == 4
    assert plan["parallel"]["tp"]["value"] == 1
    # every host's ranks logged their own start: the slowest counts, each host's is shown
    by_host = data["phases"]["hosts"]
    assert set(by_host) == {f"{NAME}-1", f"{NAME}-2"} and all(p.get("engine_init_s") for p in by_host.values()), data[
        "phases"
    ]
    assert data["phases"]["engine_init_s"] == max(p["engine_init_s"] for p in by_host.values())
    assert [s["name"] for s in data["stages"]] == [
        "preflight",
        "env",
        "ranks",
        "stop-ranks",
        "workers",
        "vllm",
        "ready",
        "record",
    ]
    assert data["answers"]["models"] == ["tiny-llama"] and isinstance(data["answers"]["chat"], str)
    assert pids(lab, 1, "[r]aylet|[g]cs_server") == pids(lab, 2, "[r]aylet|[g]cs_server") == set()  # no Ray
    assert "--headless" in lab.ssh(2, "ps -ww -o args= -C python3 -C vllm | grep '[v]llm serve' || true").stdout

    client = OpenAI(base_url=data["endpoint"], api_key="EMPTY", timeout=120, max_retries=0)
    for i in range(12):  # the head spreads requests over the ranks: the worker's engines answer some
        chat = client.chat.completions.create(
            model="tiny-llama", messages=[{"role": "user", "content": f"Hello {i}"}], max_tokens=4
        )
        assert chat.choices[0].message.content is not None
    assert client.completions.create(model="tiny-llama", prompt="def main():", max_tokens=4).choices[0].text
    metrics = lab.ssh(1, "curl -s http://127.0.0.1:8000/metrics").stdout
    served = {
        line.split('engine="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("vllm:request_success_total{") and 'finished_reason="length"' in line
    }
    on_head, on_worker = served.get("0", 0) + served.get("1", 0), served.get("2", 0) + served.get("3", 0)
    assert on_head > 0 and on_worker > 0, served
    for i in (1, 2):  # each rank holds its own device, as on NPUs (npu-smi lists a process on both)
        npu = lab.ssh(i, "source /usr/local/Ascend/ascend-toolkit/set_env.sh; npu-smi info").stdout
        assert "No running processes found in NPU 0" not in npu and "No running processes found in NPU 1" not in npu, (
            npu
        )

    # a plain `status` (the inventory plans launcher ray) looks at what was deployed (the head's record):
    # the DP ranks serving, not two Ray nodes "down"; it says the inventory plans something else
    code, status, err = run(lab, "status", inv)
    assert code == 0, err
    rows = {r["host"]: r for r in status["hosts"]}
    assert [(rows[h]["runs"], rows[h]["ranks"], bool(rows[h]["vllm_pid"])) for h in (f"{NAME}-1", f"{NAME}-2")] == [
        ("vllm", [0, 1], True),
        ("vllm", [2, 3], True),
    ]
    assert rows[f"{NAME}-1"]["health"] == 200 and rows[f"{NAME}-1"]["engines"] == 4
    assert status["deployed"]["launcher"] == "dp" and status["deployed"]["matches_inventory"] is False
    assert "launch.launcher: dp -> ray" in status["deployed"]["differences"], status["deployed"]

    code, logs, err = run(lab, "logs", inv, "--out", str(tmp_path))
    assert code == 0, err
    with tarfile.open(logs["archive"]) as tar:
        names = tar.getnames()
    assert all(any(n.startswith(f"{h}/") and n.endswith("vllm.log") for n in names) for h in rows), names

    bench_against_the_running_server(lab, inv, tmp_path)

    # the head's API server killed (kill -9): the worker's ranks live on without it and never recover;
    # status names them as orphans (exit 1) and the next `up` restarts the whole group
    lab.ssh(1, "pkill -KILL -f '[v]llm serve'")
    wait_for("the head's server to die", lambda: not rank_started(lab, 1), timeout=60)
    code, orphaned, err = run(lab, "status", inv, *DP)
    assert code == 1 and orphaned["ok"] is False, (orphaned, err[-2000:])
    assert [(f["host"], f["check"]) for f in orphaned["findings"]] == [(f"{NAME}-2", "orphaned-ranks")], orphaned
    assert "DP rank(s) 2, 3 run here" in orphaned["findings"][0]["observed"]
    code, healed, err = run(lab, "up", inv, *DP)
    assert code == 0 and healed["changed"] is True, (json.dumps(healed.get("stages"))[-3000:], err[-3000:])
    code, status, err = run(lab, "status", inv, *DP)
    assert code == 0 and status["findings"] == [] and status["hosts"][0]["engines"] == 4, status
    assert {r["host"]: r["ranks"] for r in status["hosts"]} == {f"{NAME}-1": [0, 1], f"{NAME}-2": [2, 3]}

    code, again, err = run(lab, "up", inv, *DP)  # its preflight sees the ports held by this deployment: fine
    assert code == 0 and again["changed"] is False, (json.dumps(again.get("preflight"))[-3000:], err[-2000:])
    assert {s["name"] for s in again["stages"] if s["status"] not in ("unchanged", "ok")} == set()

    # the worker's ranks killed (kill -9 of its `vllm serve`) while serving: status names the host and its
    # ranks (exit 1) while the endpoint still answers on the head's ranks (a degraded deployment, named as
    # such); `down` cleans what is left. (That the next `up` restarts every rank: the orphan case above
    # for real, this one on the fake cluster, tests/steps/cases/up.yaml "dp, one rank gone".)
    lab.ssh(2, "pkill -KILL -f '[v]llm serve'")
    wait_for("the worker's ranks to die", lambda: not rank_started(lab, 2), timeout=60)
    code, broken, err = run(lab, "status", inv, *DP)
    worker = next(r for r in broken["hosts"] if r["host"] == f"{NAME}-2")
    assert code == 1 and broken["ok"] is False and worker["vllm_pid"] is None and worker["ranks"] == [2, 3], (
        worker,
        err[-2000:],
    )
    assert [(f["host"], f["check"]) for f in broken["findings"]] == [(f"{NAME}-2", "ranks-down")], broken["findings"]
    assert "DP rank(s) 2, 3 planned here do not run" in broken["findings"][0]["observed"]
    down_leaves_nothing(lab)


def test_preflight_names_a_taken_rpc_port_and_a_killed_worker_rank_fails_up(lab: SimLab) -> None:
    inv = str(lab.inventory)
    lab.ssh(2, "setsid nohup python3 -m http.server 13345 >/dev/null 2>&1 < /dev/null &")
    try:
        wait_for("the port taker", lambda: "13345" in lab.ssh(2, "ss -H -ltn").stdout, timeout=30)
        code, data, err = run(lab, "up", inv, *DP)
        assert code == 1 and data["failed_stage"] == "preflight", err[-2000:]
        found = [p for p in data["preflight"]["problems"] if p["check"] == "ports"]
        assert [(p["host"], p["expected"]) for p in found] == [(f"{NAME}-2", "port 13345 free")]
        assert "http.server" in found[0]["observed"] and "serve.data_parallel_rpc_port" in found[0]["hint"]
        assert not rank_started(lab, 1) and not rank_started(lab, 2)  # nothing started
    finally:
        lab.ssh(2, "pkill -f '[h]ttp.server 13345' || true")

    proc = start(lab, "up", inv, *DP, "--skip-preflight")
    try:
        wait_for("the worker's rank", lambda: rank_started(lab, 2) or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, proc.communicate()
        lab.ssh(2, "pkill -KILL -f '[v]llm serve'")  # the rank dies while the cluster starts
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    data = json.loads(out)
    assert proc.returncode == 1 and data["failed_stage"] == "ready", err[-2000:]
    ready = next(s for s in data["run"]["stages"] if s["name"] == "ready")
    worker = ready["hosts"][f"{NAME}-2"]["error"]
    assert "rank exited while the cluster started" in worker["message"] and worker["details"], worker
    assert f"the vLLM rank on {NAME}-2 exited" in ready["hosts"][f"{NAME}-1"]["error"]["message"]
    down_leaves_nothing(lab)  # the head's rank and the orphaned engine on the worker too


def test_generate_refuses_a_dp_plan_with_the_reason(lab: SimLab, tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("Hello\n")
    r = cli("generate", str(lab.inventory), *DP, "--prompts", str(prompts), cwd=lab.inventory.parent)
    assert r.returncode == 2 and "generate on launcher dp" in r.stderr and "independent LLM per rank" in r.stderr
    assert not rank_started(lab, 1) and not rank_started(lab, 2)


def test_ctrl_c_during_dp_start_then_down_cleans_every_host(lab: SimLab) -> None:
    proc = start(lab, "up", str(lab.inventory), *DP, "--skip-preflight")
    out, err = interrupt_when(proc, "both ranks", lambda: rank_started(lab, 1) and rank_started(lab, 2), 120)
    assert proc.returncode == 130 and json.loads(out)["error"]["kind"] == "interrupted", err[-2000:]
    down_leaves_nothing(lab)


METRICS = [f"{m}_{s}" for m in ("ttft", "tpot", "itl") for s in ("mean", "median", "p99")]


def bench_against_the_running_server(lab: SimLab, inv: str, tmp_path: Path) -> None:
    """vLLM's own benchmark against the running DP endpoint (it only reads: no cluster of its own):
    a sweep, the baseline gate both ways, an SLO search within its bound, and `status --metrics`
    seeing a concurrent benchmark's requests, which Ctrl-C then stops on the head too."""
    small = ["--num-prompts", "8", "--input-len", "16", "--output-len", "4", "--out", str(tmp_path / "bench")]
    # the sweep gated both ways in the same run (one `vllm bench` per point, not a second sweep): against a
    # baseline whose paced point was far slower (it passes) and whose unpaced one was 1000 times faster than
    # any CPU run (it fails and is named); a baseline of no plan identity needs --compare-anyway
    baseline = {
        "identity": {},
        "settings": {},
        "points": [
            {"load": {"rate": 4.0}, "completed": 8, "output_throughput": 0.001},
            {"load": {"rate": None}, "completed": 8, "output_throughput": 1e9},
        ],
    }
    (tmp_path / "gate.json").write_text(json.dumps(baseline))
    gate = ["--baseline", str(tmp_path / "gate.json"), "--min-ratio", "0.3", "--compare-anyway"]
    code, sweep, err = run(lab, "bench", inv, *DP, "--rates", "4,inf", *small, *gate)
    assert code == 1 and [v["passed"] for v in sweep["verdicts"]] == [True, False], (sweep.get("verdicts"), err[-2000:])
    assert [r.split(":")[0] for r in sweep["regressions"]] == ["rate inf"], sweep
    ratio = re.search(r"vs baseline [\d.]+ \(([\d.]+)x\)", sweep["regressions"][0])
    assert ratio and float(ratio.group(1)) < 0.3, sweep["regressions"]
    assert "compared with a result of another plan (--compare-anyway)" in sweep["notes"], sweep["notes"]
    assert sweep["identity"]["launcher"] == "dp" and sweep["identity"]["dp"] == 4
    for point in sweep["points"]:
        assert point["ok"] and point["completed"] == 8 and point["failed"] == 0 and point["output_throughput"] > 0
        assert all(key in point["latency_ms"] for key in METRICS), point
    assert [p["label"] for p in sweep["points"]] == ["rate 4/s", "rate inf"]
    assert (Path(sweep["saved"]) / "summary.md").read_text().count("| rate ") == 2

    code, slo, err = run(lab, "bench", inv, *DP, "--slo", "ttft_p99=60s", "--max-points", "1", *small)
    assert code == 0 and len(slo["points"]) == 1 and slo["search"]["best"]["label"] == "rate 1/s", err[-2000:]

    # a fixed concurrency keeps requests running for minutes and the server answering /metrics: with all
    # 2000 at once (rate inf) its API server is too busy to answer status for most of the run
    many = ["--concurrency", "16", "--num-prompts", "2000", "--output-len", "64"]
    proc = start(lab, "bench", inv, *DP, *many, *small[6:])
    seen: list[dict] = []

    def busy() -> bool:
        code, status, _ = run(lab, "status", inv, *DP, "--metrics")
        load = status.get("metrics") or []
        seen[:] = load
        return bool(load) and load[0]["running"] + load[0]["waiting"] > 0

    out, err = interrupt_when(proc, "the concurrent benchmark's requests in status --metrics", busy, 180)
    assert seen[0]["engines"] == 4 and seen[0]["kv_cache_usage"] is not None, seen  # read while it ran
    assert proc.returncode == 130, err[-2000:]
    wait_for("the benchmark on the head to stop", lambda: not pids(lab, 1, "[v]llm bench serve"), timeout=30)
