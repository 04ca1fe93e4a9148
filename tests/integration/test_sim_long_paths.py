"""The simulator's container engine from a clone at a long path with a space in it: podman refuses a run
root over 50 characters and a unix socket's path holds 107 bytes, while an ordinary clone's sim root is
60-90 characters long. The run folders go to /run/adsim (rundirs) and leave with the cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import ROOT, SIM_ROOT, cli
from tests.simlab import SimLab, running_cluster
from toolkit.sim import netns, rundirs
from toolkit.sim.image import Store, have_image, opened
from toolkit.sim.layout import default_root
from toolkit.sim.plugins.sim_runtime import SIM_IMAGE
from toolkit.sim.rundirs import RUNROOT_MAX

#: a folder name past the 40 characters the relocated sim root keeps of it, with spaces
LONG_NAME = "a clone with spaces in a folder whose name runs well past forty characters"


@pytest.fixture
def copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the tree at 80+ characters with a space (as a clone there would be), its default sim root
    made and removed around the test."""
    folder = tmp_path / LONG_NAME
    for part in ("toolkit", "playbooks", "plugins"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    assert len(str(folder)) >= 80 and " " in str(folder)
    root = default_root(folder)
    assert len(str(root / "images" / "run")) > RUNROOT_MAX  # the store's old run root would be refused
    try:
        yield folder
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, cwd=folder, timeout=300)


def test_the_image_stores_import_works_under_a_long_sim_root(copy: Path, tmp_path: Path) -> None:
    """What `make host-env` does with the store (import, then ask for the image), at the root a clone at
    this path gets; the store's run folders exist only while it is used."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hello").write_text("hi\n")
    archive = tmp_path / "tiny.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    store = Store(default_root(copy))
    libpod_before = Path("/run/libpod").exists()
    with opened(store):
        assert store.dirs.run.is_dir() and len(str(store.dirs.run)) <= RUNROOT_MAX
        with archive.open("rb") as stdin:  # from a pipe, as `make host-env` imports the host env
            done = subprocess.run(
                [*store.podman(), "import", "-", "localhost/adsim-long:1"], stdin=stdin, capture_output=True
            )
        assert done.returncode == 0, done.stderr.decode()
        assert have_image(store, "localhost/adsim-long:1")
    assert not store.dirs.base.exists() and not list(rundirs.owned(store.graph))
    assert Path("/run/libpod").exists() == libpod_before  # podman's default temp dir: not the store's
    with opened(store):  # used again later (the next `make host-env`): the same folders, the same database
        assert have_image(store, "localhost/adsim-long:1")


def test_sim_up_container_from_a_long_path_runs_a_container_and_down_leaves_nothing(copy: Path) -> None:
    name = "pytestlong"
    root = default_root(copy)
    root.mkdir(parents=True, exist_ok=True)
    for part in ("hostenv", "models", "images"):  # what `make host-env` builds (4 GB): lent from this checkout's
        (root / part).symlink_to(SIM_ROOT / part)
    libpod_before = Path("/run/libpod").exists()
    try:
        up = run(copy, "sim", "up", "--name", name, "--hosts", "1", "--container", "--ping-ms", "5", "--json")
        assert up.returncode == 0, up.stderr
        made = json.loads(up.stdout)
        assert Path(made["root"]) == root / name and len(made["run_dirs"]) == 1
        host_store = root / name / "hosts" / f"{name}-1" / "containers" / "storage"
        assert len(str(host_store)) > 100  # the host's store sits at the long path; its run root does not
        again = run(copy, "sim", "up", "--name", name, "--hosts", "1", "--container", "--ping-ms", "5")
        assert again.returncode == 0 and f"podman run roots: {made['run_dirs'][0]}" in again.stdout, again.stdout

        lab = SimLab(name, root, copy / "inventories" / f"sim-{name}.yaml")
        started = lab.ssh(
            1,
            f"podman run -d --name probe --net=host {SIM_IMAGE} sleep 600 && "
            "podman inspect --format '{{.State.Running}}' probe && podman info --format '{{.Store.RunRoot}}' && "
            # conmon's attach sockets sit in the container's folder at the long path (it binds them through
            # the folder's descriptor): an exec session and an attached run use them
            f"podman exec probe echo inside && podman run --rm --net=host {SIM_IMAGE} echo attached",
            timeout=120,
        )
        assert started.returncode == 0, started.stderr
        container, running, runroot, inside, attached = started.stdout.split()
        assert running == "true" and runroot == str(Path(made["run_dirs"][0]) / "run")
        assert (inside, attached) == ("inside", "attached")
    finally:
        down = run(copy, "sim", "down", "--name", name, "--json")
    assert down.returncode == 0 and not netns.netns_of(name), down.stderr
    assert json.loads(down.stdout)["run_dirs"] == made["run_dirs"]
    assert not Path(made["run_dirs"][0]).exists() and not list(rundirs.owned(root)) and not (root / name).exists()
    assert Path("/run/libpod").exists() == libpod_before  # the hosts' libpod temp dirs are theirs, not the machine's
    assert not Path("/run/runc", container).exists()  # runc's state of the killed container went with its host


#: podman's defaults for root: a simulated host must never make or use the machine's own
DEFAULT_STORES = (Path("/run/libpod"), Path("/run/containers/storage"), Path("/var/lib/containers/storage"))


def test_a_host_without_containers_probes_its_own_engine_store(tmp_path: Path) -> None:
    """`down` looks for the cluster's containers on every host, engine section or not: on a simulated host
    that probe goes to the host's own (empty) store, never the machine's default ones, and `sim down`
    removes the host's run folder with the rest."""
    before = {p: p.exists() for p in DEFAULT_STORES}
    inv = tmp_path / "plain.yaml"
    with running_cluster("pytestplain", SIM_ROOT, inv, hosts=1) as lab:
        (folder,) = [d.base for d in rundirs.owned(lab.paths.root)]
        probe = lab.ssh(1, "podman ps -a --format '{{.Names}}' && podman info --format '{{.Store.GraphRoot}}'")
        assert probe.returncode == 0 and probe.stdout.split() == [
            str(lab.paths.host("pytestplain-1") / "containers" / "storage")
        ]
        down = cli("down", str(inv), "--json", cwd=tmp_path, timeout=300)
        assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
        assert "containers" in [s["name"] for s in json.loads(down.stdout)["run"]["stages"]]
    assert {p: p.exists() for p in DEFAULT_STORES} == before
    assert not folder.exists()
