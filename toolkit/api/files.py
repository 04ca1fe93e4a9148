"""Files on the control machine that entry points read or write: prompt files for `generate`,
the log archive of `logs` (its folder checked before anything is collected; written 0600)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

from toolkit.errors import BadInput


def read_prompts(path: Path) -> list[dict[str, Any]]:
    """Prompts from a text file (one per line) or JSONL ({"prompt": ..., "id": ...} per line)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BadInput(f"--prompts {path}: {exc.strerror or exc}") from None
    items: list[dict[str, Any]] = []
    jsonl = path.suffix == ".jsonl"
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if jsonl:
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise BadInput(
                    f"{path}:{number}: not JSON ({exc})", hint='one object per line: {"prompt": "..."}'
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) or not record["prompt"]:
                raise BadInput(f"{path}:{number}: expected an object with a non-empty string 'prompt'")
            items.append({"id": record.get("id", number), "prompt": record["prompt"]})
        else:
            items.append({"id": number, "prompt": line})
    if not items:
        raise BadInput(f"--prompts {path} has no prompts", hint="one prompt per line, or JSONL with a 'prompt' field")
    return items


def ensure_out_dir(out_dir: Path) -> None:
    """Create the archive's folder, or refuse it, before anything is collected: a bad --out fails
    in a second, not after the download."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(
            f"--out {out_dir}: cannot create the folder ({exc.strerror})", hint="pick a writable folder"
        ) from None
    if not out_dir.is_dir() or not os.access(out_dir, os.W_OK):
        raise BadInput(f"--out {out_dir}: not a writable folder", hint="pick a writable folder")


class LogArchive:
    """One tar.gz of every host's logs, each host's files under its name."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.bundle = tarfile.open(fileobj=self.buffer, mode="w:gz")

    def add_host(self, host: str, archive: bytes) -> int:
        """Add a host's own tar.gz; returns how many files it held."""
        count = 0
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as part:
            for member in part.getmembers():
                if not member.isfile():
                    continue
                data = part.extractfile(member)
                member.name = f"{host}/{member.name.lstrip('./')}"
                self.bundle.addfile(member, data)
                count += 1
        return count

    def write(self, out_dir: Path, cluster: str) -> Path:
        """Write the archive (mode 0600) with a UTC time stamp in its name."""
        self.bundle.close()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = out_dir / f"ascend-deploy-logs-{cluster}-{stamp}.tar.gz"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.buffer.getvalue())
        return path


class ImageArchive:
    """An image tarball (`docker save` / `podman save`, optionally gzipped) as `image load` sends it.

    Its SHA-256 (what the host verifies) is taken when first asked, once, whichever host's thread
    asks: a re-run where every host has the image reads a plain tarball's headers only. A gzipped
    one has no index, so finding its manifest reads it all, and hashes it in the same pass."""

    def __init__(self, path: Path, size: int, image_id: str, tags: tuple[str, ...], sha256: str | None = None):
        self.path, self.size, self.image_id, self.tags = path, size, image_id, tags
        self._sha256 = sha256
        self._lock = threading.Lock()
        self._hashing: threading.Thread | None = None

    @property
    def part_name(self) -> str:
        """The upload's file name on a host: known before the checksum is (resuming needs no hash)."""
        return f"{self.image_id[:16]}-{self.size}.tar.part"

    def start_hashing(self) -> None:
        """Take the checksum in the background (hashlib leaves the GIL), while the bytes go out."""
        with self._lock:
            if self._sha256 is None and self._hashing is None:
                self._hashing = threading.Thread(target=lambda: self.sha256, name="image-sha256", daemon=True)
                self._hashing.start()

    @property
    def sha256(self) -> str:
        with self._lock:
            if self._sha256 is None:
                digest = hashlib.sha256()
                with self.path.open("rb") as fh:
                    while block := fh.read(4 << 20):
                        digest.update(block)
                self._sha256 = digest.hexdigest()
            return self._sha256

    @property
    def sha256_known(self) -> str | None:
        """The checksum if it has been taken (None: no host needed the bytes)."""
        return self._sha256


def read_image_archive(path: Path, chunk: int = 1 << 20) -> ImageArchive:
    """Find the image in the file (manifest.json of a docker-archive): a plain tarball by its headers
    (seeking past the layers), a gzipped one in one read that also checksums it."""
    import gzip

    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256()

    class Hashing(io.RawIOBase):
        """The file, hashed as tarfile reads it (then the rest, to the end)."""

        def __init__(self, raw: Any) -> None:
            self.raw = raw

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            data = self.raw.read(len(buffer))
            digest.update(data)
            buffer[: len(data)] = data
            return len(data)

    manifest: Any = None
    with path.open("rb") as raw:
        hashing = io.BufferedReader(Hashing(raw), chunk)
        try:
            with (
                tarfile.open(fileobj=gzip.GzipFile(fileobj=hashing), mode="r|")
                if gzipped
                else tarfile.open(fileobj=raw, mode="r:")
            ) as tar:
                for member in tar:
                    if member.name.lstrip("./") == "manifest.json":
                        extracted = tar.extractfile(member)
                        manifest = json.loads(extracted.read()) if extracted else None
                        if not gzipped:
                            break
        except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError) as exc:
            raise BadInput(
                f"{path} is not an image archive ({exc})", hint="make one with `docker save IMAGE | gzip > FILE.tar.gz`"
            ) from None
        if gzipped:
            while hashing.read(chunk):  # the rest of the file (gzip's trailer, tar's padding)
                pass
    if not isinstance(manifest, list) or not manifest or "Config" not in manifest[0]:
        raise BadInput(
            f"{path} has no docker-archive manifest.json",
            hint="save it with `docker save` or `podman save --format docker-archive` (OCI layouts are not read)",
        )
    config = str(manifest[0]["Config"])
    image_id = config.rsplit("/", 1)[-1].removesuffix(".json").removeprefix("sha256:")
    tags = tuple(manifest[0].get("RepoTags") or ())
    return ImageArchive(path, size, image_id, tags, digest.hexdigest() if gzipped else None)
