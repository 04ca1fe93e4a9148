"""The model folder on a host as `weights sync` and `weights status` see it: its manifest (the files a
sync verified: name, size, SHA-256), every file's size, the part files a stopped sync left, free disk,
the file system type and whether the folder is on the system disk. One command, no hashing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from toolkit.facts import Raw
from toolkit.transport.shell import q

MANIFEST = ".ascend-deploy-manifest.json"
#: the hashes a local source folder keeps of itself (never a host's manifest: a folder can be both)
SOURCE_CACHE = ".ascend-deploy-source.json"
PART = ".adpart"
#: file systems that are shared storage: every host reading the same files at load time
SHARED_FS = ("nfs", "nfs4", "cifs", "smb2", "smbfs", "lustre", "gpfs", "cephfs", "ceph", "fuse.glusterfs", "beegfs")


@dataclass(frozen=True)
class WeightsDir:
    path: str
    exists: bool
    manifest: dict[str, Any] | None  # as the last sync wrote it (None: none, or unreadable)
    files: dict[str, int] = field(default_factory=dict)  # relative name -> size (our hidden files left out)
    parts: dict[str, int] = field(default_factory=dict)  # relative name of the file -> bytes of its part file
    free_bytes: int | None = None
    fstype: str | None = None
    system_disk: bool = False  # on the same device as /

    def verified(self) -> dict[str, dict[str, Any]]:
        """The manifest's entries whose file is on disk with the manifest's size."""
        entries = (self.manifest or {}).get("files") or []
        return {
            e["name"]: e
            for e in entries
            if isinstance(e, dict) and self.files.get(str(e.get("name"))) == e.get("size") and e.get("sha256")
        }

    def complete_manifest(self) -> dict[str, Any] | None:
        """The manifest, as a sync source's, when it is complete and every file it lists is on disk
        with its size (None otherwise): a folder that can be read from without hashing."""
        m = self.manifest
        if m and m.get("complete") and len(self.verified()) == len(m["files"]):
            return {"format": 1, "files": m["files"], "complete": True}
        return None

    @property
    def shared_storage(self) -> bool:
        return (self.fstype or "").lower() in SHARED_FS


def weights_command(path: str) -> str:
    p = q(path.rstrip("/") or "/")
    # the nearest existing folder answers df and stat when the model folder does not exist yet
    return (
        f'd={p}; while [ ! -d "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done; '
        f"if [ -d {p} ]; then echo present; else echo absent; fi; echo; echo '--'; "
        f"cat {p}/{MANIFEST} 2>/dev/null; echo; echo '--'; "
        f"[ -d {p} ] && find {p} -type f -printf '%s %P\\n' 2>/dev/null; echo; echo '--'; "
        "df -Pk \"$d\" | tail -1; echo; echo '--'; stat -f -c %T \"$d\"; echo; echo '--'; "
        '[ "$(stat -c %d "$d")" = "$(stat -c %d /)" ] && echo system || echo other'
    )


def parse_weights(path: str):  # noqa: ANN201 - returns a parser
    def parse(raw: Raw) -> WeightsDir:
        parts = raw.stdout.split("\n--\n")
        parts += [""] * (6 - len(parts))
        exists = parts[0].strip() == "present"
        manifest = None
        if parts[1].strip():
            try:
                doc = json.loads(parts[1])
                manifest = doc if isinstance(doc, dict) and isinstance(doc.get("files"), list) else None
            except ValueError:
                manifest = None
        files: dict[str, int] = {}
        partial: dict[str, int] = {}
        for line in parts[2].splitlines():
            size, _, name = line.strip().partition(" ")
            if not size.isdigit() or not name:
                continue
            head, _, base = name.rpartition("/")
            if base.startswith(".") and base.endswith(PART):
                real = base[1 : -len(PART)]
                partial[f"{head}/{real}" if head else real] = int(size)
            elif not base.startswith((MANIFEST, SOURCE_CACHE)):
                files[name] = int(size)
        cols = parts[3].split()
        free = int(cols[3]) * 1024 if len(cols) >= 4 and cols[3].isdigit() else None
        fstype = parts[4].strip() or None
        return WeightsDir(path, exists, manifest, files, partial, free, fstype, parts[5].strip() == "system")

    return parse
