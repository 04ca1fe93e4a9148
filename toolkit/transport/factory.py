"""Which connection a host gets. The SSH stack is imported only when a host needs it, so
commands that never connect (`plan`, `ask`, `--help`) start fast."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from toolkit.config.inventory import ResolvedHost
from toolkit.transport.connection import Connection
from toolkit.transport.local import LocalConnection


def connect_factory(
    *, known_hosts: Path | None = None, accept_new_host_keys: bool = False, ssh_config_path: str | None = None
) -> Callable[[ResolvedHost], Connection]:
    """The default way the executor makes connections (tests pass their own factory)."""

    def make(host: ResolvedHost) -> Connection:
        if host.connection == "local":
            return LocalConnection(host)
        from toolkit.transport.ssh import SSHConnection

        return SSHConnection(
            host, known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys, ssh_config_path=ssh_config_path
        )

    return make
