"""Real OpenSSH servers for tests: one `sshd` per fake host on its own loopback address and
port, key-only auth, its own host key, VERBOSE logging (to count handshakes)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def require_sshd() -> None:
    if not os.path.exists(SSHD):
        raise RuntimeError(
            "OpenSSH server not installed: run `make test` (it installs openssh-server) or apt-get install "
            "openssh-server"
        )


def keygen(path: Path, comment: str = "test") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_listening(address: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"sshd on {address}:{port} did not listen within {timeout}s")


@dataclass
class Sshd:
    name: str
    address: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    #: more sshd_config lines (e.g. `RekeyLimit 1M`)
    extra: tuple[str, ...] = ()

    def host_key_line(self) -> str:
        kind, key = (self.folder / "host_ed25519.pub").read_text().split()[:2]
        return f"[{self.address}]:{self.port} {kind} {key}"

    def fingerprint(self) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-lf", str(self.folder / "host_ed25519.pub")], capture_output=True, text=True, check=True
        )
        return out.stdout.split()[1]

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def log(self) -> Path:
        return self.folder / "sshd.log"

    def handshakes(self) -> int:
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def runs(self, needle: str) -> bool:
        """A process of one of this server's sessions has `needle` in its command line: a command the
        test started is on the host (and not some other test's process of the same name)."""
        todo = [self.proc.pid] if self.proc is not None else []
        while todo:
            pid = todo.pop()
            try:
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
                args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # it ended meanwhile
                continue
            if needle in args:
                return True
        return False

    def start(self, authorized_keys: Path) -> None:
        require_sshd()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        if not (self.folder / "host_ed25519").exists():
            keygen(self.folder / "host_ed25519", f"host-{self.name}")
        (self.folder / "home").mkdir(exist_ok=True)
        config = self.folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.address}",
                    f"HostKey {self.folder / 'host_ed25519'}",
                    f"PidFile {self.folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized_keys}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "LogLevel VERBOSE",
                    "MaxSessions 64",
                    "MaxStartups 200",
                    # each fake host its own HOME: hermetic (no root dotfiles, no shared state) and fast
                    f"SetEnv HOME={self.folder / 'home'}",
                    *self.extra,
                    "",
                ]
            )
        )
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.address, self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
