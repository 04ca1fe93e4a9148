"""What the tests share: paths, running the real CLI, inventories for the planner, the fake
cluster the steps run against, the sshd lab's record. Fixtures stay in conftest.py."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.sshd import Sshd
from toolkit.config.loader import load_inventory
from toolkit.engine.executor import Executor
from toolkit.engine.registry import Shared
from toolkit.engine.runner import RunReport, run_playbook
from toolkit.launch import not_needed
from toolkit.sim.layout import default_root
from toolkit.steps import load_playbook
from toolkit.steps.commands import render_env
from toolkit.testing import fake_factory

ROOT = Path(__file__).resolve().parent.parent
#: tests/<tier>/... -> the tier's marker (pyproject.toml declares them; `make unit` selects the rootless ones)
TIERS = ("unit", "facts", "steps", "integration", "e2e")
#: Where `ascend-deploy sim` (and `make host-env`) keep clusters and the hosts' Python for this checkout.
SIM_ROOT = default_root(ROOT)
#: config.json of real models (planner and memory tests)
MODELS = ROOT / "tests" / "unit" / "models"

#: model -> (min 64 GB cards, max-model-len) from the ModelArts table.
SIZING_TABLE = {
    "Qwen2.5-0.5B-Instruct": (1, 32768),
    "Qwen2.5-1.5B-Instruct": (1, 32768),
    "Qwen2.5-3B-Instruct": (1, 32768),
    "Qwen2.5-7B-Instruct": (1, 32768),
    "Qwen2.5-14B-Instruct": (1, 32768),
    "Qwen2.5-32B-Instruct": (2, 32768),
    "Qwen2.5-72B-Instruct": (4, 32768),
    "Qwen2-72B-Instruct": (4, 32768),
    "Qwen3-0.6B": (1, 32768),
    "Qwen3-1.7B": (1, 32768),
    "Qwen3-4B": (1, 32768),
    "Qwen3-8B": (1, 32768),
    "Qwen3-14B": (1, 32768),
    "Qwen3-30B-A3B": (2, 32768),
    "Qwen3-32B": (2, 32768),
    "QwQ-32B": (2, 32768),
    "Qwen3-235B-A22B": (16, 65536),
    "Meta-Llama-3-8B-Instruct": (1, 32768),
    "Llama-3.1-8B-Instruct": (1, 32768),
    "Meta-Llama-3-70B-Instruct": (4, 32768),
    "Llama-3.1-70B-Instruct": (4, 32768),
    "glm-4-9b-chat": (1, 32768),
    "GLM-4-9B-0414": (1, 32768),
    "DeepSeek-R1-Distill-Llama-70B": (4, 32768),
}

#: the keys `vllm bench serve --save-result --percentile-metrics ttft,tpot,itl --metric-percentiles 50,99` writes
RECORDED_BENCH = {
    "date": "20261201-080102",
    "backend": "vllm",
    "duration": 4.21,
    "completed": 20,
    "failed": 0,
    "total_input_tokens": 640,
    "total_output_tokens": 160,
    "request_throughput": 4.75,
    "output_throughput": 38.0,
    "total_token_throughput": 190.0,
    "mean_ttft_ms": 120.5,
    "median_ttft_ms": 110.0,
    "std_ttft_ms": 9.0,
    "p50_ttft_ms": 110.0,
    "p99_ttft_ms": 301.2,
    "mean_tpot_ms": 22.0,
    "median_tpot_ms": 21.0,
    "p99_tpot_ms": 40.0,
    "mean_itl_ms": 22.5,
    "median_itl_ms": 21.5,
    "p99_itl_ms": 55.0,
}


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (exit codes and stdout exactly as a user sees them)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def cli_json(
    lab: Any, *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    """The CLI with `--json` in the lab's folder: (exit code, the document, stderr)."""
    r = cli(*args, "--json", cwd=lab.inventory.parent, timeout=timeout, env=env)
    try:
        return r.returncode, json.loads(r.stdout), r.stderr
    except ValueError:
        raise AssertionError(f"not JSON (exit {r.returncode}): {r.stdout[-2000:]}\n{r.stderr[-3000:]}") from None


@dataclass
class SshLab:
    """Three sshd 'hosts' on 127.0.0.11-13, a client key, and a known_hosts file for them."""

    folder: Path
    hosts: list[Sshd]
    client_key: Path
    known_hosts: Path
    authorized_keys: Path

    def inventory(
        self, path: Path, *, known_hosts: bool = True, extra_hosts: list[dict] | None = None, **changes: object
    ) -> Path:
        data: dict = {
            "cluster": "lab",
            "defaults": {"user": "root", "key_file": str(self.client_key), "connect_timeout": 5, "devices": [0]},
            "hosts": [
                {"name": h.name, "address": h.address, "port": h.port, **({"role": "head"} if i == 0 else {})}
                for i, h in enumerate(self.hosts)
            ]
            + (extra_hosts or []),
        }
        if known_hosts:
            data["known_hosts"] = str(self.known_hosts)
        for key, value in changes.items():
            data[key] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


# ---------------------------------------------------------------- planner inventories


def inventory(
    tmp_path: Path,
    model: str | None = "Qwen2.5-72B-Instruct",
    *,
    hosts: Any = 2,
    devices: list[int] | None = None,
    sets: list[str] | None = None,
    model_section: dict | None = None,
    **changes: Any,
) -> Any:
    data: dict[str, Any] = {
        "cluster": "t",
        "hardware": "910B3",
        "defaults": {"devices": devices if devices is not None else list(range(8)), "nic": "auto"},
        "hosts": hosts
        if isinstance(hosts, list)
        else [
            {"name": f"n{i}", "address": f"10.0.0.{i + 1}", **({"role": "head"} if i == 0 else {})}
            for i in range(hosts)
        ],
    }
    if model_section is not None:
        data["model"] = model_section
    if model is not None:
        shutil.copy(MODELS / f"{model}.json", tmp_path / "config.json")
        data["model"] = {"path": f"/data/models/{model}", "config": "config.json"}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_inventory(path, sets or [])


def recipe_inventory(recipe: dict[str, Any], folder: Path) -> Path:
    """The inventory a published recipe (tests/unit/recipes/*.yaml) is planned from, with its config.json."""
    shutil.copy(MODELS / f"{recipe['config']}.json", folder / "config.json")
    if recipe.get("description"):  # the checkpoint's ModelSlim description marks its quantization
        (folder / "quant_model_description.json").write_text(json.dumps({"model_quant_type": recipe["description"]}))
    data = {
        "cluster": "recipe",
        "hardware": recipe["hardware"],
        "defaults": {"devices": list(range(recipe["devices"])), "nic": "eth0"},
        "hosts": [
            {"name": f"n{i}", "address": f"10.0.0.{i + 1}", **({"role": "head"} if i == 0 else {})}
            for i in range(recipe["hosts"])
        ],
        "model": {"path": recipe["path"], "config": "config.json"},
        "serve": recipe["serve"],
    }
    (folder / "inv.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "inv.yaml"


# ---------------------------------------------------------------- a fake cluster for the steps


NONCE = re.compile(r"echo '@@([0-9a-f]+)@@ (\w+)'")


@dataclass
class Host:
    name: str
    address: str
    nic: str = "eth0"
    reach: bool = True
    raylet: bool = False
    gcs: bool = False
    ray_hash: str | None = None
    vllm_pid: int | None = None
    vllm_hash: str | None = None
    env_sha: str | None = None
    key_sha: str | None = None
    launch_fails: bool = False
    engine_pid: int | None = None  # a vLLM EngineCore (left behind when the server is killed -9)
    record: str | None = None  # the deployment record file (the head's), as written
    npu_held_reads: int = 0  # how many more npu-smi reads still show NPU 0 held (then it is released)
    wedged: bool = False  # /health says 200, a completion gets no answer
    others: dict[str, tuple[int | None, str | None]] = field(default_factory=dict)  # name -> (pid, hash)
    ops: list[str] = field(default_factory=list)


IDLE_NPU_SMI = (Path(__file__).parent / "facts" / "golden" / "npu-smi-info.a2").read_text()
#: the same cards with a process holding NPU 0 (a killed engine the driver has not released yet)
BUSY_NPU_SMI = IDLE_NPU_SMI.replace(
    "| No running processes found in NPU 0                                                            |",
    "| 0       0                 | 777           | python3                  | 3000                    |",
    1,
)
#: what `Cluster.apply` knows how to apply (each a regex on the command); anything else fails
KNOWN_COMMANDS = (
    r"kill -TERM",  # stopping vLLM (stop_vllm_command)
    r"ray stop",
    r"ray start",
    r"setsid nohup",  # a detached start (placement.detached)
    r"printf '%s' '[0-9a-f]{16}\n' > \.ascend-deploy/t/proc/[\w-]+\.hash",
    r"/env\.tmp",
    r"api-key\.tmp",
    r"deployed\.json\.tmp",
)


class Cluster:
    """Answers fact batches from each host's state and applies the commands that change it."""

    def __init__(self, inv: Any) -> None:
        self.hosts = {h.name: Host(h.name, h.address) for h in inv.hosts}
        self.env_content: dict[str, str] = {}
        self.connections: dict[str, Any] = {}  # host -> its FakeConnection (what arrived on stdin)
        self.unknown: list[tuple[str, str]] = []  # (host, command) this fake did not recognise

    def factory(self, open_errors: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """A connection factory answered by this cluster (what arrives on stdin is kept for `apply`)."""
        connect, self.connections = fake_factory(self, open_errors)
        return connect, self.connections

    def npu_smi(self, h: Host) -> str:
        if h.npu_held_reads > 0:
            h.npu_held_reads -= 1
            return BUSY_NPU_SMI
        return IDLE_NPU_SMI

    def state_lines(self, h: Host) -> str:
        lines = [f"hash ray-node {h.ray_hash}"] if h.ray_hash else []
        lines += [f"hash vllm {h.vllm_hash}"] if h.vllm_hash else []
        lines += [f"pid vllm {h.vllm_pid}"] if h.vllm_pid else []
        for name, (pid, digest) in sorted(h.others.items()):  # a plugin launcher's processes
            lines += [f"hash {name} {digest}"] if digest else []
            lines += [f"pid {name} {pid}", f"proc {pid} 12 {name}-serve"] if pid else []
        lines += [
            f"sha {sha}  .ascend-deploy/c/{name}" for sha, name in ((h.env_sha, "env"), (h.key_sha, "api-key")) if sha
        ]
        if h.raylet:
            lines.append(
                "proc 100 40 /venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet "
                "--raylet_socket_name=/tmp/x"
            )
        if h.gcs:
            lines.append(
                "proc 101 41 /venv/lib/python3.11/site-packages/ray/core/src/ray/gcs/gcs_server --log_dir=/tmp/x"
            )
        if h.vllm_pid:
            lines.append(f"proc {h.vllm_pid} 30 python3 -m vllm.entrypoints.openai.api_server --model /m")
        if h.engine_pid:
            lines.append(f"proc {h.engine_pid} 29 VLLM::EngineCore")
        return "\n".join(lines)

    def __call__(self, name: str, script: str) -> tuple[int, str, str]:
        h = self.hosts[name]
        if "flock -n 9" in script:  # the cluster lock (tests/unit/test_lock.py runs it for real)
            return 0, "LOCKED\n", ""
        facts = NONCE.findall(script)
        if facts:
            out = []
            for nonce, fact in facts:
                nodes = {x.address: 1 for x in self.hosts.values() if x.raylet}
                ping = "\nHTTP 000" if h.wedged else json.dumps({"choices": [{"text": " pong"}]}) + "\nHTTP 200"
                http = (
                    "alive=1\nhealth=200\nlast=ready\n--- "
                    f"models\n{json.dumps({'data': [{'id': 'Qwen2.5-7B-Instruct'}]})}\nHTTP 200\n"
                    f"--- one token\n{ping}"
                )
                text = {
                    "deploy_state": self.state_lines(h),
                    "nic": h.nic,
                    "reach": "open" if h.reach else "closed Connection refused",
                    "files": "",
                    "ray_nodes": "RAYWAIT " + json.dumps({"ok": True, "nodes": nodes}) if h.gcs else "",
                    "http": http if h.vllm_pid else "alive=0\nhealth=\nlast=\n",
                    "deploy_record": f"present\n{h.record}" if h.record is not None else "absent",
                    "labelled": "",  # no container of the cluster's
                    "npu_smi": self.npu_smi(h) if fact == "npu_smi" else "",  # captured: idle, or NPU 0 held
                }.get(fact)
                if text is None:  # a fact this fake cannot answer: failed, never an empty success
                    self.unknown.append((h.name, f"fact {fact}"))
                    out += [f"@@{nonce}@@ {fact}", f"fake cluster: no answer for fact {fact}", f"@@{nonce}@@ rc=127"]
                    continue
                out += [f"@@{nonce}@@ {fact}", text, f"@@{nonce}@@ rc=0"]
            return 0, "\n".join(out) + "\n", ""
        if "weights took|Model loading took" in script:  # the start-up phases from a vLLM log
            return (
                0,
                "Loading weights took 1.50 seconds\ninit engine (profile, create kv cache, warmup model) took 2.25 s\n",
                "",
            )
        if "RAYWAIT" in script:
            nodes = {x.address: 1 for x in self.hosts.values() if x.raylet}
            expected = json.loads(shlex.split(script.split("python3 -c", 1)[1])[1])
            ok = all(nodes.get(ip, 0) >= n for ip, n in expected.items())
            return 0, "RAYWAIT " + json.dumps({"ok": ok, "nodes": nodes}) + "\n", ""
        probed = re.search(r"cat \.ascend-deploy/t/proc/([\w-]+)\.pid", script) if "alive=1" in script else None
        if probed is not None:  # a process's liveness (and /health for one serving the API)
            name = probed.group(1)
            alive = bool(h.vllm_pid if name == "vllm" else h.others.get(name, (None, None))[0])
            if "/health" not in script:  # a headless rank: no HTTP
                return 0, ("alive=1\nlast=engine ready\n" if alive else "alive=0\nlast=\n"), ""
            return 0, ("alive=1\nhealth=200\nlast=ready\n" if alive else "alive=0\nhealth=\nlast=\n"), ""
        if "curl -s -m 120" in script:
            if "/v1/models" in script:
                return 0, json.dumps({"data": [{"id": "Qwen2.5-7B-Instruct"}]}) + "\nHTTP 200", ""
            if "/chat/" in script:
                return 0, json.dumps({"choices": [{"message": {"content": "hi"}}]}) + "\nHTTP 200", ""
            return 0, json.dumps({"choices": [{"text": " Paris"}]}) + "\nHTTP 200", ""
        return self.apply(h, script)

    def apply(self, h: Host, script: str) -> tuple[int, str, str]:
        """A command that changes the host: applied to its state. One this fake does not know fails
        (exit 127, named in `unknown`), so a changed command cannot pass a test by being ignored."""
        command = script
        h.ops.append(command)
        if not any(re.search(pattern, command) for pattern in KNOWN_COMMANDS):
            self.unknown.append((h.name, command))
            return 127, "", f"fake cluster: unknown command on {h.name}: {command[:200]}"
        if "kill -TERM" in command:
            h.vllm_pid = None
            h.vllm_hash = None
            if "[E]ngineCore" in command:
                h.engine_pid = None
        if "ray stop" in command:
            h.raylet = h.gcs = False
        if "ray start" in command:
            h.ray_hash = None
            h.raylet = True
            h.gcs = "--head" in command
        if "setsid nohup" in command:
            if h.launch_fails:
                return 1, "", "launch failed"
            started = re.search(r"echo \$! > \.ascend-deploy/t/proc/([\w-]+)\.pid", command)
            name = started.group(1) if started else "vllm"
            if name == "vllm":
                h.vllm_pid = 4242
            else:
                h.others[name] = (4243 + len(h.others), h.others.get(name, (None, None))[1])
        m = re.search(r"printf '%s' '([0-9a-f]{16})\n' > \.ascend-deploy/t/proc/([\w-]+)\.hash", command)
        if m and m.group(2) in ("ray-node", "vllm"):
            setattr(h, {"ray-node": "ray_hash", "vllm": "vllm_hash"}[m.group(2)], m.group(1))
        elif m:
            h.others[m.group(2)] = (h.others.get(m.group(2), (None, None))[0], m.group(1))
        if "/env.tmp" in command:
            h.env_sha = "written"
        if "api-key.tmp" in command:
            h.key_sha = "written"
        if "deployed.json.tmp" in command:
            h.record = self.connections[h.name].stdins[-1]
        return 0, "", ""


def run(inv: Any, cluster: Cluster, plan: Any, key: str | None = None, book: str = "up") -> RunReport:
    connect, _ = cluster.factory()
    with Executor(inv.hosts, connect=connect) as ex:
        report = run_playbook(
            load_playbook(book), inv, ex, shared=Shared(plan=plan, api_key=key), not_needed=not_needed(plan)
        )
    assert not cluster.unknown, f"commands the fake cluster does not know: {cluster.unknown}"
    return report


def ops(report: RunReport) -> dict[str, list[str]]:
    """stage -> 'host: description' for every op that ran."""
    out: dict[str, list[str]] = {}
    for s in report.stages:
        for name, h in s.hosts.items():
            for op in h.ops:
                out.setdefault(s.name, []).append(f"{name}: {op.description}")
    return out


def settle(cluster: Cluster, inv: Any, plan: Any) -> None:
    """Make env_sha match what the step computes, as a real host would after the write."""
    for hp in plan.hosts:
        content = render_env(hp.resolved_env(cluster.hosts[hp.name].nic))
        if cluster.hosts[hp.name].env_sha == "written":
            cluster.hosts[hp.name].env_sha = hashlib.sha256(content.encode()).hexdigest()


# ---------------------------------------------------------------- holding a simulated host's commands

#: a setup line: every command on that host waits while $HOME/hold exists
HOLD = 'while [ -e "$HOME/hold" ]; do sleep 0.1; done'


def start(lab: Any, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The CLI in the background (--json), as a second terminal would run it: with Ctrl-C's
    default meaning even when the test run itself was started with SIGINT ignored (a background
    job of a non-interactive shell), which the child would otherwise inherit."""
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", *args, "--json"],
        cwd=lab.inventory.parent,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )


def wait_for(what: str, check: Any, timeout: float = 120, every: float = 0.2, most: float = 1.0) -> None:
    """Poll `check` until it is true, or fail naming `what` (a bounded wait, never a bare sleep). The
    interval grows from `every` to `most`: most checks are an SSH connection to a simulated host, and
    at 5 a second through a minute-long wait they took CPU from the start they waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
        every = min(every * 1.5, max(most, every))
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def interrupt_when(
    proc: subprocess.Popen[str],
    what: str,
    ready: Any,
    timeout: float,
    *,
    sig: int = signal.SIGINT,
    wait: float = 60,
    most: float = 1.0,
) -> tuple[str, str]:
    """Ctrl-C at a chosen moment: wait (bounded) until `ready()` while the command still runs, signal
    it, and return what it printed (stdout, stderr); it is killed on the way out whatever happened."""
    try:
        wait_for(what, lambda: ready() or proc.poll() is not None, timeout, most=most)
        assert proc.poll() is None, f"the command ended (exit {proc.returncode}) before {what}"
        proc.send_signal(sig)
        return proc.communicate(timeout=wait)
    finally:
        if proc.poll() is None:
            proc.kill()


def held_inventory(lab: Any, tmp_path: Path, **defaults: Any) -> Path:
    """The lab's inventory with the HOLD setup line (a no-op while no hold file exists)."""
    import yaml

    data = yaml.safe_load(lab.inventory.read_text())
    data["known_hosts"] = str((lab.inventory.parent / data["known_hosts"]).resolve())
    data["defaults"]["setup"] = [*data["defaults"]["setup"], HOLD]
    data["defaults"].update(defaults)
    inv = tmp_path / "held.yaml"
    inv.write_text(yaml.safe_dump(data))
    return inv


def hold(lab: Any, index: int, on: bool) -> None:
    lab.ssh(index, 'cd "$HOME" && ' + ("touch hold" if on else "rm -f hold"))


def vllm_running(lab: Any) -> bool:
    return lab.ssh(1, "pgrep -f '[v]llm.entrypoints' >/dev/null && echo yes || true").stdout.strip() == "yes"


def held(lab: Any, index: int) -> bool:
    """A command on that host is waiting in the HOLD setup line."""
    return lab.ssh(index, "pgrep -f '[H]OME/hold' >/dev/null && echo yes || true").stdout.strip() == "yes"
