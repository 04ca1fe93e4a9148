"""Warm multiplexed OpenSSH connections from the control machine to simulated hosts: what the
baselines of the benchmarks use (the best a shell script can do)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path


class Ssh:
    """Warm multiplexed OpenSSH connections (what the baselines use)."""

    def __init__(self, ctl: str, key: str, known: Path) -> None:
        self.key, self.known = key, known
        self.base = ["ssh", "-i", key, "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes"]
        self.base += ["-o", f"ControlPath={ctl}/%h"]
        self.opened: list[str] = []

    def open(self, address: str) -> None:
        subprocess.run([*self.base, "-o", "ControlMaster=yes", "-o", "ControlPersist=600", "-fN", f"root@{address}"])
        self.opened.append(address)

    def run(self, address: str, script: str) -> subprocess.CompletedProcess[str]:
        """`script` from the user's home (a simulated host's sshd starts in /root, its HOME is its own)."""
        return subprocess.run(
            [*self.base, f"root@{address}", f'cd "$HOME" && {script}'], capture_output=True, text=True
        )

    def scp(self) -> str:
        return shlex.join(
            ["scp", "-q", "-i", self.key, "-o", f"UserKnownHostsFile={self.known}", "-o", "BatchMode=yes"]
        )

    def close(self) -> None:
        for address in self.opened:
            subprocess.run([*self.base, "-O", "exit", f"root@{address}"], capture_output=True)
