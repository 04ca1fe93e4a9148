"""The weight relay: the program `weights sync` runs on each host for one transfer (stdlib only; it is
sent as text on the SSH session's stdin, never installed, and ends with the run).

One process per host: it listens on its own cluster address at the run's port for exactly one
connection (its parent's address, proving the run's one-time token), connects to its children, and
streams the files of the run in the order of its configuration: every chunk goes to the children
first, then to this host's disk (a hidden part file), hashed as it is written. A file whose SHA-256
equals the manifest's is renamed into place and added to the host's manifest; a part file stays for
the next run to resume from. The data of the root comes from stdin (a folder on the control machine)
or from this host's own disk (role "send": a host that already holds the checkpoint, in `root` or in
another folder `src`, whose files this host writes into `root` as well where `have` lacks them).

Output, one line each: LISTEN, PROG bytes, FILE ok|bad name, LOST child why, FAIL why, DONE ok|bad bytes.
"""

import hashlib
import hmac
import json
import os
import socket
import sys
import time
from typing import IO, Any

CHUNK = 1 << 20
DEAD_PEER_S = 20
MANIFEST = ".ascend-deploy-manifest.json"
PART = ".adpart"


def say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()  # a closed session (Ctrl-C on the control machine) ends the program here


def part_path(root: str, name: str) -> str:
    head, base = os.path.split(os.path.join(root, name))
    return os.path.join(head, "." + base + PART)


def write_manifest(root: str, manifest: dict[str, Any], verified: dict[str, dict[str, Any]]) -> None:
    files = [f for f in manifest["files"] if f["name"] in verified]
    doc = {"format": 1, "files": files, "complete": len(files) == len(manifest["files"])}
    tmp = os.path.join(root, MANIFEST + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, sort_keys=True)
    os.replace(tmp, os.path.join(root, MANIFEST))


def dead_peer_bound(sock: socket.socket) -> None:
    """A peer whose link died (no ACK, nothing refused) is a lost connection after DEAD_PEER_S: TCP
    keepalive probes while idle, TCP_USER_TIMEOUT for what is not acknowledged (as the SSH sessions
    of toolkit/transport/ssh.py; Linux options, skipped where missing)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 3), ("TCP_KEEPCNT", 5)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, DEAD_PEER_S * 1000)


def connect(addr: str, port: int, token: bytes, wait: float, idle: float) -> socket.socket:
    deadline = time.monotonic() + wait
    while True:
        try:
            s = socket.create_connection((addr, port), timeout=30)
            dead_peer_bound(s)
            s.sendall(b"ADR1 " + token + b"\n")
            # a live child that does not read (re-hashing a long part file first) is waited for as long
            # as a child waits for its parent; a dead one is found by dead_peer_bound within its bound
            s.settimeout(idle)
            return s
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def accept(cfg: dict[str, Any], token: bytes) -> IO[bytes]:
    """The parent's connection: its address, with the token; then nothing listens any more."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((cfg["listen"], cfg["port"]))
    listener.listen(4)
    listener.settimeout(float(cfg.get("accept_timeout", 120)))
    say("LISTEN", cfg["listen"], cfg["port"])
    try:
        while True:
            conn, peer = listener.accept()
            conn.settimeout(60)
            line = b""
            while not line.endswith(b"\n") and len(line) < 200:
                got = conn.recv(1)
                if not got:
                    break
                line += got
            if peer[0] == cfg["parent"] and hmac.compare_digest(line, b"ADR1 " + token + b"\n"):
                conn.settimeout(float(cfg.get("idle_timeout", 300)))
                dead_peer_bound(conn)
                return conn.makefile("rb")
            say("REFUSED", peer[0])
            conn.close()
    finally:
        listener.close()


def relay(cfg: dict[str, Any], stdin: IO[bytes]) -> int:
    token = cfg["token"].encode()
    root = cfg["root"]
    os.umask(0o077)
    os.makedirs(root, exist_ok=True)
    have = set(cfg["have"])
    verified = {f["name"]: f for f in cfg["manifest"]["files"] if f["name"] in have}
    source: IO[bytes] | None = None
    if cfg["role"] == "recv":
        source = accept(cfg, token) if cfg.get("parent") else stdin
    children = []
    wait, idle = float(cfg.get("connect_timeout", 60)), float(cfg.get("idle_timeout", 300))
    for addr, port in cfg["children"]:
        try:
            children.append((addr, connect(addr, int(port), token, wait, idle)))
        except OSError as e:
            say("LOST", addr, "connect:", e)
    total, last, ok = 0, 0.0, True
    for f in cfg["files"]:
        name, size, offset = f["name"], int(f["size"]), int(f["offset"])
        write = name not in have
        disk = open(os.path.join(cfg.get("src") or root, name), "rb") if source is None else None
        if disk is not None:
            disk.seek(offset)
        out, digest = None, hashlib.sha256()
        if write:
            path = part_path(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            out = open(path, "r+b" if os.path.exists(path) else "w+b")
            out.truncate(offset)
            out.seek(0)
            left = offset
            while left:
                block = out.read(min(CHUNK, left))
                if not block:
                    say("FAIL", "the part file of", name, "is shorter than", offset)
                    return 2
                digest.update(block)
                left -= len(block)
            out.seek(offset)
        left = size - offset
        while left:
            reader = disk if disk is not None else source
            assert reader is not None
            try:
                block = reader.read(min(CHUNK, left))
            except OSError as e:
                block, why = b"", str(e)
            else:
                why = "closed"
            if not block:
                say("FAIL", "upstream", why, "in", name, "with", left, "bytes left")
                return 3
            for child in list(children):
                try:
                    child[1].sendall(block)
                except OSError as e:
                    children.remove(child)
                    say("LOST", child[0], e)
            if out is not None:
                out.write(block)
                digest.update(block)
            left -= len(block)
            total += len(block)
            now = time.monotonic()
            if now - last >= 0.5:
                say("PROG", total)
                last = now
        if disk is not None:
            disk.close()
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
            out.close()
            if digest.hexdigest() == f["sha256"]:
                os.replace(part_path(root, name), os.path.join(root, name))
                verified[name] = f
                write_manifest(root, cfg["manifest"], verified)
                say("FILE", "ok", name)
            else:
                os.unlink(part_path(root, name))
                ok = False
                say("FILE", "bad", name, digest.hexdigest())
    for _addr, s in children:
        try:
            s.shutdown(socket.SHUT_WR)
            s.settimeout(float(cfg.get("idle_timeout", 300)))
            while s.recv(65536):  # the child closes when it has written everything
                pass
        except OSError:
            pass
        s.close()
    if ok:
        write_manifest(root, cfg["manifest"], verified)
    say("DONE", "ok" if ok else "bad", total)
    return 0 if ok else 1


if __name__ == "__shipped__":  # run by launch/shipped.py's bootstrap, with CFG and STDIN set
    sys.exit(relay(CFG, STDIN))  # type: ignore[name-defined]  # noqa: F821
