"""SSH host key verification: known keys are checked, unknown keys need an explicit opt-in,
changed keys are always refused (never overridden by --accept-new-host-keys)."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

import paramiko

from toolkit.errors import HostKeyError

USER_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
_write_lock = threading.Lock()


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class VerifyingPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only when no key is known for the host."""

    def __init__(self, host: str, *, accept_new: bool, record_to: Path) -> None:
        self.host = host
        self.accept_new = accept_new
        self.record_to = record_to

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        fp = fingerprint(key)
        if not self.accept_new:
            raise HostKeyError(
                self.host,
                f"unknown host key for {hostname} ({key.get_name()} {fp})",
                fingerprint=fp,
                changed=False,
                hint="check the fingerprint out of band, then re-run with --accept-new-host-keys to record it in "
                f"{self.record_to}",
            )
        record_host_key(self.record_to, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


def record_host_key(path: Path, hostname: str, key: paramiko.PKey) -> None:
    """Append one known_hosts line (file 0600, folder 0700), safe across threads."""
    path = path.expanduser()
    with _write_lock:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def changed_key_error(host: str, exc: paramiko.BadHostKeyException, files: list[Path]) -> HostKeyError:
    got, expected = fingerprint(exc.key), fingerprint(exc.expected_key)
    where = ", ".join(str(f) for f in files)
    return HostKeyError(
        host,
        f"HOST KEY CHANGED for {exc.hostname}: server offers {got}, known_hosts has {expected}",
        fingerprint=got,
        changed=True,
        hint="possible man-in-the-middle or a reinstalled host; if the change is legitimate, remove the old line "
        f"from {where} (ssh-keygen -R)",
    )


_PARSED: dict[tuple[str, int, int], paramiko.HostKeys] = {}
_PARSED_LOCK = threading.Lock()


def _parsed(path: Path) -> paramiko.HostKeys:
    """A known_hosts file parsed once per run (per content), not once per connection: parsing
    every key of a 64-line file for each of 64 hosts cost more CPU than the key exchanges."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _PARSED_LOCK:
        found = _PARSED.get(key)
        if found is None:
            found = paramiko.HostKeys(str(path))
            _PARSED[key] = found
        return found


def known_keys(paths: list[Path], hostname: str, port: int) -> tuple[str, dict[str, paramiko.PKey]]:
    """The name paramiko looks a server up by, and its known keys by type (later files win, as
    with paramiko's own loading). Raises OSError/SSHException for an unreadable file."""
    name = hostname if port == 22 else f"[{hostname}]:{port}"
    keys: dict[str, paramiko.PKey] = {}
    for path in paths:
        if path.is_file():
            entry = _parsed(path).lookup(name)
            if entry is not None:
                keys.update({kind: entry[kind] for kind in entry.keys()})
    return name, keys
