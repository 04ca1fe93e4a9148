"""End to end on the simulated cluster with real sshd, real Ray and real vLLM (CPU build) serving
the locally generated tiny model, driven through the CLI as an operator would, and checked with
the OpenAI Python client and by looking at the hosts directly over OpenSSH.

Two hosts with one NPU each: TP=2 (one rank per host, gloo over TCP across the namespaces) and
PP=2; then the failure paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from openai import AuthenticationError, OpenAI

from tests.helpers import SIM_ROOT, cli, cli_json, held, held_inventory, hold, start, vllm_running, wait_for
from tests.simlab import SimLab, running_cluster
from toolkit.planner.plan import ray_temp_dir

NAME = "e2e"
TP2 = ["--set", "serve.tensor_parallel_size=2"]
MARKER = ["--set", "env.ASCEND_DEPLOY_E2E_MARKER=upgraded"]  # an environment change `upgrade` applies
#: the CPU build's later pipeline stages need the warm-up run that eager mode skips (it allocates their
#: intermediate tensors): PP cases serve in graph mode on the simulated hosts
PP2 = [
    "--set",
    "serve.tensor_parallel_size=1",
    "--set",
    "serve.pipeline_parallel_size=2",
    "--set",
    "serve.enforce_eager=false",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    with running_cluster(NAME, SIM_ROOT, tmp_path_factory.mktemp("e2e") / "e2e.yaml", hosts=2, devices=[0]) as lab:
        # the model onto each host's own disk first (its private /tmp here): every `up` below serves the
        # weights `weights sync` put there, read from its local config.json copy for planning
        data = lab.inventory_data()
        local = Path(data["model"]["path"])
        data["model"] = {**data["model"], "path": SYNCED, "config": str(local / "config.json")}
        lab.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
        code, synced, err = cli_json(lab, "weights", "sync", str(lab.inventory), "--from-local", str(local))
        assert code == 0 and {h["result"] for h in synced["hosts"].values()} == {"complete"}, (synced, err[-2000:])
        try:
            yield lab
        finally:  # Ray and vLLM first, whatever a failed test left
            cli("down", str(lab.inventory), cwd=lab.inventory.parent, timeout=300)


KEY = "e2e-secret-7f3a9c"
SYNCED = "/tmp/models/tiny-llama"  # on each simulated host: its own /tmp


def run(lab: SimLab, *args: str, timeout: float = 900, key: bool = False) -> tuple[int, dict[str, Any], str]:
    return cli_json(lab, *args, timeout=timeout, env={"E2E_KEY": KEY} if key else None)


def stages(data: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in data["stages"]}


def host_pids(lab: SimLab, index: int, pattern: str) -> set[int]:
    out = lab.ssh(index, f"pgrep -f {pattern!r} || true").stdout
    return {int(p) for p in out.split()}


def nothing_left(lab: SimLab) -> None:
    for i in (1, 2):  # simulated hosts are NAME-1 (head) and NAME-2
        assert host_pids(lab, i, "[r]aylet/raylet|[g]cs_server|[v]llm.entrypoints|[R]ayWorker") == set(), f"host {i}"
        npu = lab.ssh(i, "source /usr/local/Ascend/ascend-toolkit/set_env.sh; npu-smi info").stdout
        assert (
            "No running processes found in NPU 0" in npu
            and "Process id" not in npu.split("No running processes")[0].split("+====")[-1]
        )


def ask(endpoint: str, key: str = "EMPTY") -> tuple[str, str]:
    client = OpenAI(base_url=endpoint, api_key=key, timeout=120, max_retries=0)
    chat = client.chat.completions.create(
        model="tiny-llama", messages=[{"role": "user", "content": "Hello, who are you?"}], max_tokens=12
    )
    comp = client.completions.create(model="tiny-llama", prompt="def main():", max_tokens=12)
    return chat.choices[0].message.content or "", comp.choices[0].text


def test_tp2_up_chat_status_noop_serve_change_down(lab: SimLab, tmp_path: Path) -> None:
    inv = str(lab.inventory)
    code, data, err = run(lab, "up", inv, *TP2)
    assert code == 0, err[-3000:]
    plan = data["plan"]
    assert (plan["parallel"]["tp"]["value"], plan["parallel"]["pp"]["value"], plan["parallel"]["backend"]["value"]) == (
        2,
        1,
        "ray",
    )
    assert stages(data)["ray-head"] == stages(data)["ray-workers"] == stages(data)["vllm"] == "changed"
    assert (
        stages(data)["ray-ready"] == stages(data)["ready"] == stages(data)["preflight"] == "ok"
    )  # verified, not "unchanged"
    assert isinstance(data["answers"]["chat"], str) and data["answers"]["models"] == ["tiny-llama"]
    assert plan["model"]["path"] == SYNCED  # served from the weights `weights sync` put on each host
    # the start-up phases the engine logged (the CPU build: weights and engine init), and the wait
    phases = data["phases"]
    assert phases["weights_s"] >= 0 and phases["engine_init_s"] > 0 and phases["ready_s"] > 0, phases
    assert any(n.startswith("start-up phases kept in ") for n in data["notes"]), data["notes"]
    assert data["plan"]["startup"]["value"] > 0, data["plan"]["startup"]  # the rule of thumb, or an earlier test's

    chat, completion = ask(data["endpoint"])
    assert chat and completion
    # one TP rank really runs on the worker host, holding its NPU
    assert "RayWorker" in lab.ssh(2, "source /usr/local/Ascend/ascend-toolkit/set_env.sh; npu-smi info").stdout

    code, status, err = run(lab, "status", *TP2)  # the recorded inventory
    assert code == 0, err
    rows = {r["host"]: r for r in status["hosts"]}
    assert all(r["ray_node"] and r["npu"] == 1 for r in rows.values())
    head = rows[f"{NAME}-1"]
    assert head["health"] == 200 and head["models"] == ["tiny-llama"] and head["ray_nodes"] == 2 and head["vllm_pid"]
    deployed = status["deployed"]  # the head's record of what `up` applied, compared with the inventory
    assert deployed["matches_inventory"] is True and deployed["launcher"] == "ray" and deployed["history"] == 0, (
        deployed
    )
    assert deployed["plan_sha256"] and deployed["tool"].startswith("ascend-deploy "), deployed
    # an inventory that no longer plans (3 ranks on 2 NPUs) still answers what runs, with the problem as a note
    code, loose, err = run(lab, "status", inv, "--set", "serve.tensor_parallel_size=3")
    assert code == 0 and "plan is not valid" in loose["notes"][1], (loose, err[-2000:])
    assert loose["deployed"]["matches_inventory"] is False  # shown as deployed: the head's record
    assert [(r["host"], r["ray_node"], r.get("health")) for r in loose["hosts"]] == [
        (r["host"], r["ray_node"], r.get("health")) for r in status["hosts"]
    ]
    # the Ray queries of up's ray-ready and of status end their drivers cleanly (they exit without
    # Ray's slow interpreter teardown): the GCS saw their jobs, and no driver die
    gcs = lab.ssh(1, f"cat {ray_temp_dir(NAME)}/session_latest/logs/gcs_server.out").stdout
    assert gcs.count("Registering job") >= 2 and "type=SYSTEM_ERROR" not in gcs, gcs[-3000:]

    # the RAM the running deployment holds is available to a start that replaces it (check-net, an
    # upgrade's staging preflight): with the head's MemAvailable cut to 7.5% of its RAM, below the 10%
    # headroom alone (above Ray's own 95% memory monitor, which would kill the engine's worker), the
    # host-memory check passes only because what the deployment holds there is counted
    from toolkit.facts import Raw
    from toolkit.facts.deploy import PS_COMMAND, parse_deployment_rss_mib
    from toolkit.sim import faults

    held_mib = parse_deployment_rss_mib(Raw(lab.ssh(1, PS_COMMAND).stdout, 0))
    total_mib = int(lab.ssh(1, "awk '/^MemTotal/ {print $2}' /proc/meminfo").stdout) // 1024
    weights_mib = int(lab.ssh(1, f"du -sm --apparent-size {SYNCED}").stdout.split()[0])
    cut = int(total_mib * 0.075)
    assert held_mib > total_mib * 0.025 + weights_mib + 256, (held_mib, total_mib)  # vLLM, its engine, Ray
    lab.fault(1, "low-ram", value=str(cut))
    try:
        code, net, err = run(lab, "check-net", inv, *TP2)
    finally:
        faults.clear(lab.opts)
    head = next(h for h in net["hosts"] if h["name"] == f"{NAME}-1")
    assert head["memory_available_mib"] == cut and head["deployment_rss_mib"] > held_mib // 2, (head, err[-2000:])
    assert [p for p in net["problems"] if p["check"] == "host-memory"] == [], net["problems"]

    raylets = [host_pids(lab, i, "[r]aylet/raylet") for i in (1, 2)]
    code, again, err = run(lab, "up", inv, *TP2)
    assert code == 0 and again["changed"] is False, err[-2000:]
    # after two `up`s, `plan` predicts the next cold start from the measured one, and says where from
    code, planned, err = run(lab, "plan", inv, *TP2)
    planned = planned["plan"]
    startup = planned["startup"]
    assert code == 0 and startup["value"] == phases["ready_s"], (startup, phases)
    assert "(same model and layout: /health after" in startup["from"], startup
    engine = planned["hosts"][0]["env"]["VLLM_ENGINE_READY_TIMEOUT_S"]
    assert engine["from"].startswith("2 x the predicted cold start: the cold start of"), engine
    table = cli("plan", inv, *TP2, cwd=lab.inventory.parent, timeout=120)
    assert "cold start" in table.stdout and "same model and layout" in table.stdout
    assert {n: s for n, s in stages(again).items() if s != "unchanged"} == {
        "preflight": "ok",
        "ray-ready": "ok",
        "ready": "ok",
    }

    # (on the same running cluster) the API server dies (kill -9, its engine orphaned) while
    # `status` runs, held on the head in its background Ray query after it read the processes:
    # status neither hangs nor crashes and its exit code matches its report; the next status
    # reports the dead server (exit 1, Ray fine)
    held_inv = str(held_inventory(lab, tmp_path))
    gcs = lab.ssh(1, "pgrep -f '[g]cs_server'").stdout.split()
    hold(lab, 1, True)
    proc = start(lab, "status", held_inv, *TP2)
    try:
        wait_for("status to be on the head", lambda: held(lab, 1) or proc.poll() is not None)
        assert proc.poll() is None, "status ended before the kill"
        lab.ssh(1, "pkill -9 -f '[v]llm.entrypoints|[v]llm serve' || true")
        wait_for("the API server to die", lambda: not vllm_running(lab))
        orphans = lab.ssh(1, "pgrep -f '[E]ngineCore' || true").stdout.split()
        hold(lab, 1, False)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        hold(lab, 1, False)
    assert "Traceback" not in err
    during = json.loads(out)
    assert proc.returncode == (0 if during["ok"] else 1), (out[-2000:], err[-2000:])
    code, report, err = run(lab, "status", held_inv, *TP2)
    dead = next(h for h in report["hosts"] if h["role"] == "head")
    assert code == 1 and report["ok"] is False, report
    assert dead["reachable"] and dead["vllm_pid"] is None and dead["health"] != 200 and dead["ray_node"] is True, dead

    # `upgrade` on the hosts' own Python, on top of the dead server: a serve change (more sequences, and
    # now an API key) and an environment change; Ray restarts with the new environment, the orphaned
    # engine is ended, the new deployment serves and stays (no gate); the record says how it came
    serve = [*TP2, "--set", "serve.max_num_seqs=32", "--set", "serve.api_key_env=E2E_KEY", *MARKER]
    code, upgraded, err = run(lab, "upgrade", held_inv, *serve, key=True)
    assert code == 0 and upgraded["outcome"] == "upgraded", (json.dumps(upgraded)[:3000], err[-3000:])
    assert list(upgraded["kinds"]) == ["environment", "flags"] and upgraded["serving"] == "new", upgraded["kinds"]
    assert "vllm --max-num-seqs: 256 -> 32" in upgraded["changes"], upgraded["changes"]
    changed = upgraded["applied"]
    st = stages(changed)
    assert st["env"] == st["ray-head"] == st["ray-workers"] == st["vllm"] == "changed", st
    assert all(host_pids(lab, i, "[r]aylet/raylet") - raylets[i - 1] for i in (1, 2))  # Ray restarted, with it
    server = lab.ssh(1, "pgrep -f '[v]llm.entrypoints' | head -1").stdout.strip()
    assert MARKER[1].split(".", 1)[1] in lab.ssh(1, f"tr '\\0' '\\n' < /proc/{server}/environ").stdout
    engines = lab.ssh(1, "pgrep -f '[E]ngineCore' || true").stdout.split()
    assert engines and not set(orphans) & set(engines), (orphans, engines)  # the orphan was ended, a new one serves
    code, hist, _ = run(lab, "history", inv)
    assert [(r["via"], r["state"]) for r in hist["rows"][:2]] == [("upgrade", "running"), ("up", "replaced")], hist
    assert "--max-num-seqs 32" in lab.ssh(1, f"tr '\\0' ' ' < /proc/{server}/cmdline").stdout
    assert all(ask(changed["endpoint"], KEY))
    with pytest.raises(AuthenticationError):
        ask(changed["endpoint"], "wrong-key")
    # the summary's Python example, pasted as is, reads the key from the variable the inventory names
    example = subprocess.run(
        [sys.executable, "-c", changed["examples"]["python"]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "E2E_KEY": KEY},
    )
    assert example.returncode == 0, example.stderr[-2000:]  # a wrong or missing key: AuthenticationError, exit 1
    assert "E2E_KEY" in changed["examples"]["python"] and "E2E_KEY" in changed["examples"]["curl"]
    assert KEY not in lab.ssh(1, "ps -eo args").stdout  # never on a command line
    assert lab.ssh(1, 'cd "$HOME" && stat -c %a .ascend-deploy/e2e/api-key .ascend-deploy/e2e/env').stdout.split() == [
        "600",
        "600",
    ]
    assert KEY not in json.dumps(upgraded) and KEY not in err
    for i in (1, 2):  # every file the tool wrote on a host (env, key, markers, logs, pid, lock) is 0600
        modes = lab.ssh(i, "cd \"$HOME\" && find .ascend-deploy -type f -exec stat -c '%a %n' {} +").stdout.splitlines()
        assert modes and all(m.startswith("600 ") for m in modes), modes
    for args in (("up", inv, *serve, "--check"), ("plan", inv, *serve), ("show-vars", inv, *serve)):
        r = cli(*args, cwd=lab.inventory.parent, timeout=300, env={"E2E_KEY": KEY})
        assert r.returncode in (0, 1) and KEY not in r.stdout + r.stderr, args
        r = cli(*args, "--json", cwd=lab.inventory.parent, timeout=300, env={"E2E_KEY": KEY})
        assert KEY not in r.stdout + r.stderr, args
    code, status, err = run(lab, "status", inv, *serve, key=True)
    assert code == 0 and status["hosts"][0]["models"] == ["tiny-llama"], err
    assert status["deployed"]["matches_inventory"] is True and status["deployed"]["history"] == 1, status["deployed"]
    # the inventory without the serve change plans something else than what runs: status says which flag
    code, older, err = run(lab, "status", inv, *TP2, key=True)
    assert code == 0 and older["deployed"]["matches_inventory"] is False, older["deployed"]
    assert "vllm --max-num-seqs: 32 -> 256" in older["deployed"]["differences"], older["deployed"]
    assert any("--max-num-seqs" in note for note in older["notes"]), older["notes"]

    # the engine stopped (SIGSTOP) while the API server lives: /health still says 200, a one-token
    # completion gets no answer; status names the server wedged (exit 1); `watch --heal` sees it,
    # runs the healing `up` (which restarts the wedged server), and then sees it serving
    before = status["hosts"][0]["vllm_pid"]
    lab.ssh(1, "pkill -STOP -f '[E]ngineCore'")
    try:
        code, wedged, err = run(lab, "status", inv, *serve, key=True)
        assert code == 1 and [(f["host"], f["check"]) for f in wedged["findings"]] == [(f"{NAME}-1", "wedged")], wedged
        assert wedged["hosts"][0]["health"] == 200 and wedged["hosts"][0]["answered"] is False
        healing = cli(
            "watch",
            inv,
            *serve,
            "--heal",
            "--count",
            "2",
            "--interval",
            "1",
            "--json",
            cwd=lab.inventory.parent,
            timeout=900,
            env={"E2E_KEY": KEY},
        )
    finally:
        lab.ssh(1, "pkill -CONT -f '[E]ngineCore' || true")
    events = [json.loads(line) for line in healing.stdout.splitlines()]
    assert healing.returncode == 0, healing.stdout + healing.stderr[-3000:]
    assert [(e["kind"], e["serving"]) for e in events] == [("state", False), ("heal", True), ("state", True)], events
    assert events[0]["summary"] == f"not healthy: wedged on {NAME}-1" and events[1]["heal_ok"] is True
    code, healed, err = run(lab, "status", inv, *serve, key=True)
    assert code == 0 and healed["findings"] == [] and healed["hosts"][0]["vllm_pid"] != before, healed

    code, tails, err = run(lab, "logs", inv, "--tail", "5")
    assert code == 0 and any(
        path.endswith("vllm.log") and lines for path, lines in tails["tails"][f"{NAME}-1"].items()
    ), err
    code, logs, err = run(lab, "logs", inv, "--out", str(lab.inventory.parent))
    assert code == 0, err
    with tarfile.open(logs["archive"]) as archive:
        names = archive.getnames()
        assert {
            f"{NAME}-1/cluster/proc/vllm.log",
            f"{NAME}-1/cluster/proc/ray-node.log",
            f"{NAME}-1/cluster/deployed.json",
            f"{NAME}-2/npu-smi-info.txt",
            f"{NAME}-1/hccn_tool.txt",
            f"{NAME}-2/versions.txt",
        } <= set(names)
        assert not any("api-key" in n for n in names)
        assert all(KEY.encode() not in archive.extractfile(m).read() for m in archive.getmembers() if m.isfile())
    assert oct(Path(logs["archive"]).stat().st_mode & 0o777) == "0o600"

    # a card still held for some seconds after the processes stop (the driver releases a killed
    # process's device late): down waits for it instead of failing
    # and on the head, HBM that no process holds but the driver has not freed yet: down waits until the
    # card is back to the level `up`'s preflight recorded (the head's deployment record, hbm_before)
    record = json.loads(lab.ssh(1, 'cat "$HOME/.ascend-deploy/e2e/deployed.json"').stdout)
    assert set(record["current"]["hbm_before"]) == {f"{NAME}-1", f"{NAME}-2"}, record["current"].get("hbm_before")
    lab.fault(2, "npu-held", card=0, value="12")  # outlives down's stopping stages (a few seconds)
    lab.fault(1, "hbm-late", card=0, value="14")
    code, down, err = run(lab, "down", inv)
    assert code == 0 and all(h["clean"] for h in down["hosts"].values()), (down, err[-2000:])
    clean = next(s for s in down["run"]["stages"] if s["name"] == "clean")
    assert clean["hosts"][f"{NAME}-2"]["data"]["released_after_s"] > 0, clean  # it waited, then found it free
    assert clean["hosts"][f"{NAME}-1"]["data"]["released_after_s"] > 0, clean  # HBM back to its level
    nothing_left(lab)
    code, down, _ = run(lab, "down", inv)  # idempotent on clean hosts
    assert code == 0


SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 0, "maximum": 99},
        "ok": {"type": "boolean"},
        "color": {"enum": ["red", "green", "blue"]},
    },
    "required": ["count", "ok", "color"],
    "additionalProperties": False,
}


def test_pp2_ask_and_generate(lab: SimLab, tmp_path: Path) -> None:
    """PP=2 across the hosts; `ask` in every mode against it; then an offline `generate` batch."""
    inv = str(lab.inventory)
    try:
        code, data, err = run(lab, "up", inv, *PP2)
        assert code == 0, err[-3000:]
        assert (data["plan"]["parallel"]["tp"]["value"], data["plan"]["parallel"]["pp"]["value"]) == (1, 2)
        assert all(ask(data["endpoint"]))
        assert "RayWorker" in lab.ssh(2, "source /usr/local/Ascend/ascend-toolkit/set_env.sh; npu-smi info").stdout

        code, a, err = run(lab, "ask", inv, *PP2, "def main():", "--max-tokens", "8")
        assert (
            code == 0 and a["mode"] == "completion" and a["usage"]["completion_tokens"] == 8 and len(a["answers"]) == 1
        ), err
        code, a, err = run(lab, "ask", inv, *PP2, "Hello", "--chat", "--max-tokens", "8")
        assert code == 0 and a["mode"] == "chat" and a["answers"][0], err
        code, a, err = run(lab, "ask", inv, *PP2, "Hello", "--chat", "--stream", "--max-tokens", "8")
        assert (
            code == 0 and a["stream"] and 0 < a["ttft_s"] <= a["latency_s"] and a["usage"]["completion_tokens"] == 8
        ), err
        code, a, err = run(lab, "ask", inv, *PP2, "x", "--n", "2", "--temperature", "0.9", "--max-tokens", "6")
        assert code == 0 and len(a["answers"]) == 2, err
        code, a, err = run(
            lab, "ask", inv, *PP2, "x", "--stop", "e", "--max-tokens", "64", "--temperature", "1", "--seed", "7"
        )
        assert code == 0 and "e" not in a["answers"][0], err
        schema = tmp_path / "schema.json"
        schema.write_text(json.dumps(SCHEMA))
        for _ in range(3):  # random weights, but the grammar must still give valid JSON
            code, a, err = run(
                lab, "ask", inv, *PP2, "JSON:", "--json-schema", str(schema), "--max-tokens", "40", "--temperature", "1"
            )
            assert code == 0 and a["ok"] and a["parsed"][0]["color"] in ("red", "green", "blue"), (a, err)
        r = cli("ask", inv, *PP2, "x", "--top-p", "0", cwd=lab.inventory.parent)
        assert r.returncode == 2 and "--top-p must be in (0, 1]" in r.stderr

        prompts = tmp_path / "prompts.txt"
        prompts.write_text("".join(f"Prompt {i}: def f{i}(\n" for i in range(20)))
        out = tmp_path / "results.jsonl"
        code, g, err = run(lab, "generate", inv, *PP2, "--prompts", str(prompts), "--max-tokens", "8")
        assert code == 1 and "holds the devices" in json.dumps(g["run"]) and "--stop-server" in json.dumps(g["run"])
        code, g, err = run(
            lab,
            "generate",
            inv,
            *PP2,
            "--prompts",
            str(prompts),
            "--out",
            str(out),
            "--max-tokens",
            "8",
            "--stop-server",
        )
        assert code == 0, err[-3000:]
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == g["results"] == 20 and sorted(r["id"] for r in rows) == list(range(1, 21))
        assert all(
            r["outputs"][0]["tokens"] == 8 and r["outputs"][0]["finish_reason"] == "length" and r["prompt_tokens"] > 0
            for r in rows
        )
        assert g["rates"]["prompts_per_s"] > 0 and g["rates"]["output_tokens_per_s"] > 0
        assert host_pids(lab, 1, "[v]llm.entrypoints") == set()  # the server was stopped, and says so in status
        code, status, _ = run(lab, "status", inv, *PP2)
        assert code == 1 and status["hosts"][0]["vllm_pid"] is None
    finally:
        code, _, err = run(lab, "down", inv)
        assert code == 0, err
    nothing_left(lab)


def test_vllm_that_exits_at_start_fails_fast_with_its_log(lab: SimLab) -> None:
    inv = str(lab.inventory)
    try:
        r = cli(
            "up",
            inv,
            *TP2,
            "--set",
            "serve.extra_args=[--bogus-flag]",
            "--skip-preflight",
            cwd=lab.inventory.parent,
            timeout=900,
        )
        assert r.returncode == 1, r.stderr[-3000:]
        assert f"{NAME}-1 [ready]: vLLM exited: vLLM rejected a command-line argument" in r.stderr
        assert "hint: fix serve.extra_args" in r.stderr
        assert any(
            "bogus-flag" in line for line in r.stderr.splitlines() if line.lstrip().startswith("|")
        )  # the log tail
        assert "ready        failed" in r.stdout or "ready" in r.stdout
    finally:
        code, _, err = run(lab, "down", inv)
        assert code == 0, err
    nothing_left(lab)


def test_worker_that_cannot_reach_the_head(lab: SimLab) -> None:
    inv = str(lab.inventory)
    lab.fault(2, "unreachable", peer=f"{NAME}-1")  # the worker loses its route to the head
    try:
        code, data, err = run(lab, "up", inv, *TP2, "--skip-preflight")
        assert code == 1 and data["failed_stage"] == "ray-workers"
        worker = next(s for s in data["run"]["stages"] if s["name"] == "ray-workers")["hosts"][f"{NAME}-2"]
        assert f"{NAME}-2 cannot reach the Ray head {NAME}-1" in worker["error"]["message"]
        code, data, err = run(lab, "up", inv, *TP2)  # the preflight sees it first
        assert code == 1 and data["failed_stage"] == "preflight"
        assert any(p["host"] == f"{NAME}-2" and "6379" in p["observed"] for p in data["preflight"]["problems"])
    finally:
        from toolkit.sim import faults

        faults.clear(lab.opts)
        code, _, err = run(lab, "down", inv)
        assert code == 0, err
    nothing_left(lab)
