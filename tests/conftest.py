"""Shared fixtures: real sshd servers on loopback (session-scoped) and inventories for them."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.simlab import SimLab, running_cluster
from tests.sshd import Sshd, free_port, keygen
from toolkit.sim.layout import default_root

ROOT = Path(__file__).resolve().parent.parent
#: Where `ascend-deploy sim` (and `make host-env`) keep clusters and the hosts' Python for this checkout.
SIM_ROOT = default_root(ROOT)


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


@pytest.fixture(scope="session")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshLab]:
    folder = tmp_path_factory.mktemp("sshlab")
    client_key = keygen(folder / "client_ed25519", "client")
    authorized = folder / "authorized_keys"
    authorized.write_text((folder / "client_ed25519.pub").read_text())
    hosts = []
    for i in range(3):
        address = f"127.0.0.{11 + i}"
        sub = folder / f"h{i}"
        sub.mkdir()
        hosts.append(Sshd(f"h{i}", address, free_port(address), sub))
    try:
        for h in hosts:
            h.start(authorized)
        known = folder / "known_hosts"
        known.write_text("".join(h.host_key_line() + "\n" for h in hosts))
        yield SshLab(folder, hosts, client_key, known, authorized)
    finally:
        for h in hosts:
            h.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME so tests never read or write the real ~/.ssh."""
    h = tmp_path / "home"
    (h / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    return h


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


SIM_NAME = "pytest"


@pytest.fixture(scope="session")
def sim_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    """A 3-host simulated cluster for the whole session; leftovers of a crashed run are removed first."""
    with running_cluster(SIM_NAME, SIM_ROOT, tmp_path_factory.mktemp("sim") / "sim.yaml", hosts=3) as lab:
        yield lab


@pytest.fixture
def sim(sim_session: SimLab) -> Iterator[SimLab]:
    """The session cluster, with every injected fault cleared after each test."""
    from toolkit.sim import faults

    yield sim_session
    faults.clear(sim_session.opts)
