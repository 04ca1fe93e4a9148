"""The folder hasher: the manifest of a checkpoint folder (every file's name, size and SHA-256) and
each safetensors file's header check, for a `weights sync` source that is a plain folder, on this
machine (imported) or on a host (shipped by `launch/shipped.py`, stdlib only). The hashes are kept in
the folder (`.ascend-deploy-source.json`, never a host's manifest: a folder can be both) with each
file's size and modification time, so a second run hashes only what changed.

Shipped, it prints `HASH bytes` lines while it reads and one `RESULT {json}` line at the end; with
`headers` in its configuration it checks only those files' headers (no hashing)."""

import hashlib
import json
import os
import struct
import sys
import time
from typing import Any, Callable

CHUNK = 1 << 20
MANIFEST = ".ascend-deploy-manifest.json"
SOURCE_CACHE = ".ascend-deploy-source.json"
PART = ".adpart"
#: a safetensors header is a little-endian u64 length, then that much JSON (the format's own limit: 100 MB)
HEADER_LIMIT = 100_000_000


def header_problem(first: bytes, read_more: Callable[[int], bytes]) -> "str | None":
    if len(first) < 8:
        return "shorter than its 8-byte header length"
    (n,) = struct.unpack("<Q", first[:8])
    if n == 0 or n > HEADER_LIMIT:
        return f"header length {n} out of range"
    try:
        doc = json.loads(read_more(n))
    except (ValueError, UnicodeDecodeError) as e:
        return f"header is not JSON: {e}"
    return None if isinstance(doc, dict) else "header is not a JSON object"


def folder_files(folder: str) -> "list[str]":
    """The folder's files, relative, sorted; our own hidden files and part files left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".ascend-deploy"))
        for name in sorted(filenames):
            if name.startswith((MANIFEST, SOURCE_CACHE)) or name.endswith(PART):
                continue
            out.append(os.path.relpath(os.path.join(dirpath, name), folder))
    return out


def folder_manifest(folder: str, progress: "Callable[[int], None] | None" = None) -> "dict[str, Any]":
    """{"manifest": {format, files: [{name, size, sha256}], complete}, "headers": {name: problem|None}},
    hashing only the files changed since the hashes kept in the folder."""
    cache_path = os.path.join(folder, SOURCE_CACHE)
    cached: "dict[str, Any]" = {}
    try:
        with open(cache_path) as f:
            cached = {e["name"]: e for e in json.load(f).get("files", []) if "mtime_ns" in e}
    except (OSError, ValueError, AttributeError):
        pass
    files, done = [], 0
    for name in folder_files(folder):
        path = os.path.join(folder, name)
        st = os.stat(path)
        old = cached.get(name)
        if old is not None and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns:
            digest = old["sha256"]
        else:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(CHUNK), b""):  # no walrus: hosts' Python may be 3.6
                    h.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(done)
            digest = h.hexdigest()
        files.append({"name": name, "size": st.st_size, "sha256": digest, "mtime_ns": st.st_mtime_ns})
    try:
        tmp = cache_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"format": 1, "files": files, "complete": True}, f, sort_keys=True)
        os.replace(tmp, cache_path)
    except OSError:
        pass  # a read-only folder: the hashes are computed again next time
    manifest = {"format": 1, "files": [{k: e[k] for k in ("name", "size", "sha256")} for e in files], "complete": True}
    headers = folder_headers(folder, [e["name"] for e in files if e["name"].endswith(".safetensors")])
    return {"manifest": manifest, "headers": headers}


def folder_headers(folder: str, names: "list[str]") -> "dict[str, str | None]":
    """Each named safetensors file's header problem (None: it parses). Alone (`cfg["headers"]`), for a
    source whose hashes are already known: a host's model.path with a complete, verified manifest."""
    out: "dict[str, str | None]" = {}
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as f:
                out[name] = header_problem(f.read(8), f.read)
        except OSError as e:
            out[name] = "unreadable: " + (e.strerror or str(e))
    return out


def main(cfg: "dict[str, Any]") -> int:
    last = [0.0]

    def progress(n: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            print("HASH", n, flush=True)

    if not os.path.isdir(cfg["root"]):
        print("FAIL", cfg["root"], "is not a folder", flush=True)
        return 2
    if "headers" in cfg:
        print("RESULT", json.dumps({"headers": folder_headers(cfg["root"], cfg["headers"])}), flush=True)
        return 0
    print("RESULT", json.dumps(folder_manifest(cfg["root"], progress)), flush=True)
    return 0


if __name__ == "__shipped__":  # run by launch/shipped.py's bootstrap, with CFG set
    sys.exit(main(CFG))  # type: ignore[name-defined]  # noqa: F821
