"""The source of a `weights sync`: a folder on the control machine (its manifest computed once and
kept in the folder, reused while sizes and modification times are unchanged) or a host that holds a
complete verified copy; and the safetensors headers checked before a byte moves."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any, Iterator

from toolkit.facts.weights import MANIFEST, PART, SOURCE_CACHE
from toolkit.transport.shell import q

#: a safetensors header is a little-endian u64 length, then that much JSON (the format's own limit: 100 MB)
HEADER_LIMIT = 100_000_000
CHUNK = 1 << 20


def header_problem(first: bytes, read_more: Any) -> str | None:
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


def local_files(folder: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".ascend-deploy"))
        for name in sorted(filenames):
            if name.startswith((MANIFEST, SOURCE_CACHE)) or name.endswith(PART):
                continue
            out.append(str((Path(dirpath) / name).relative_to(folder)))
    return out


def local_manifest(folder: Path) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The folder's manifest (hashing only the files changed since the one kept there) and each
    safetensors file's header problem (None: it parses)."""
    cache_path = folder / SOURCE_CACHE
    cached: dict[str, Any] = {}
    try:
        doc = json.loads(cache_path.read_text())
        cached = {f["name"]: f for f in doc.get("files", []) if "mtime_ns" in f}
    except (OSError, ValueError):
        pass
    files, headers = [], {}
    for name in local_files(folder):
        path = folder / name
        st = path.stat()
        old = cached.get(name)
        if old is not None and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns:
            digest = old["sha256"]
        else:
            h = hashlib.sha256()
            with path.open("rb") as f:
                while block := f.read(CHUNK):
                    h.update(block)
            digest = h.hexdigest()
        files.append({"name": name, "size": st.st_size, "sha256": digest, "mtime_ns": st.st_mtime_ns})
        if name.endswith(".safetensors"):
            with path.open("rb") as f:
                headers[name] = header_problem(f.read(8), f.read)
    manifest = {"format": 1, "files": files, "complete": True}
    try:
        tmp = cache_path.with_name(cache_path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, sort_keys=True))
        os.replace(tmp, cache_path)
    except OSError:
        pass  # a read-only source folder: the hashes are computed again next time
    return {"format": 1, "files": [{k: f[k] for k in ("name", "size", "sha256")} for f in files], "complete": True}, (
        headers
    )


def local_stream(folder: Path, stream: list[dict[str, Any]], sent: Any) -> Iterator[bytes]:
    """The bytes of the run, file after file from each one's offset (`sent(n)` after each chunk)."""
    for f in stream:
        with (folder / f["name"]).open("rb") as src:
            src.seek(int(f["offset"]))
            left = int(f["size"]) - int(f["offset"])
            while left > 0:
                block = src.read(min(CHUNK, left))
                if not block:
                    raise OSError(f"{folder / f['name']} is shorter than its manifest says")
                left -= len(block)
                yield block
                sent(len(block))


_HEADERS_PY = (
    "import json,struct,sys\n"
    "for n in json.loads(sys.argv[2]):\n"
    "    try:\n"
    "        f=open(sys.argv[1]+'/'+n,'rb'); b=f.read(8); m=struct.unpack('<Q',b)[0] if len(b)==8 else 0\n"
    "        ok=0<m<=100000000 and isinstance(json.loads(f.read(m)),dict)\n"
    "        print(n, 'ok' if ok else 'bad header')\n"
    "    except Exception as e: print(n, 'bad', type(e).__name__)\n"
)


def headers_command(root: str, names: list[str]) -> str:
    return f"python3 -c {q(_HEADERS_PY)} {q(root)} {q(json.dumps(names))}"


def parse_headers(text: str, names: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {n: "not checked (no answer)" for n in names}
    lines = text.splitlines()
    for n in names:
        mine = [ln for ln in lines if ln.startswith(n + " ")]
        if mine:
            found[n] = None if mine[-1] == f"{n} ok" else mine[-1][len(n) + 1 :]
    return found
