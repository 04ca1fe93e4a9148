"""A simulated cluster for tests, driven over the real OpenSSH client as an operator would."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from toolkit.sim import faults
from toolkit.sim.cluster import SimOptions, load_state
from toolkit.sim.hostenv import host_env_paths
from toolkit.sim.layout import Paths


@dataclass
class SimLab:
    name: str
    root: Path
    inventory: Path
    ping_ms: int = 20

    @property
    def opts(self) -> SimOptions:
        return SimOptions(name=self.name, root=self.root, inventory=self.inventory, ping_ms=self.ping_ms)

    @property
    def paths(self) -> Paths:
        return Paths(self.root / self.name)

    @property
    def known_hosts(self) -> Path:
        return self.paths.known_hosts

    @property
    def subnet(self) -> int:
        state = load_state(self.paths)
        assert state is not None
        return state.subnet

    def address(self, index: int) -> str:
        return f"10.213.{self.subnet}.{10 + index}"

    def inventory_data(self) -> dict[str, Any]:
        return yaml.safe_load(self.inventory.read_text())

    def ssh(
        self, index: int, command: str, timeout: float = 60, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`command` on host `index` over OpenSSH; `input` (bytes) goes to its stdin. It starts in
        sshd's folder, /root, which every simulated host shares; the host's own HOME (where the
        toolkit's relative paths point: its commands `cd "$HOME"`) is `$HOME`."""
        done = subprocess.run(
            [
                "ssh",
                "-i",
                str(self.paths.client_key),
                "-o",
                f"UserKnownHostsFile={self.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                f"root@{self.address(index)}",
                command,
            ],
            capture_output=True,
            input=input if input is not None else b"",
            timeout=timeout,
        )
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        )

    def setup_prefix(self) -> str:
        venv = host_env_paths(self.root).venv
        return f"source /usr/local/Ascend/ascend-toolkit/set_env.sh && source {venv}/bin/activate && cd $HOME &&"

    def fault(self, index: int, kind: str, **kwargs: Any) -> dict[str, Any]:
        return faults.inject(self.opts, f"{self.name}-{index}", kind, **kwargs)


@contextmanager
def running_cluster(name: str, root: Path, inventory: Path, **options: Any) -> Iterator[SimLab]:
    """Build the hosts' env, clear a crashed run's leftovers, bring the cluster up, and always
    remove it again (tests share the machine's namespaces)."""
    from toolkit.sim import cluster, hostenv

    env = hostenv.build(root, progress=lambda msg: print(f"host-env: {msg}"))
    if options.get("containers"):  # the simulator's image of that env (built once, cached in the sim root)
        from toolkit.sim.hosttree import write_cann
        from toolkit.sim.image import build_image

        build_image(root, env.venv, write_cann, lambda msg: print(f"image: {msg}"))
    lab = SimLab(name, root, inventory)
    cluster.down(lab.opts)
    try:
        cluster.up(SimOptions(name=name, root=root, inventory=inventory, ping_ms=lab.ping_ms, **options))
        yield lab
    finally:
        cluster.down(lab.opts)
