"""The simulator's podman run folders stay within podman's and the kernel's path limits wherever the
checkout (and so the sim root) lives, are stable per store, and are found again by their owner."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.sim import rundirs
from toolkit.sim.image import Store, containers_conf, storage_conf
from toolkit.sim.rundirs import RUNROOT_MAX, SOCKET_MAX, owned, remove_owned, run_dirs

LONG = Path("/root") / ("a folder with a space and a long name " * 4) / "ascend-deploy" / ".sim"


@pytest.mark.parametrize(
    "store", [Path("/x"), LONG / "images" / "storage", LONG / "c" / "hosts" / "c-1" / "containers"]
)
def test_run_folders_fit_podmans_and_the_socket_limits(store: Path) -> None:
    dirs = run_dirs(store)
    assert len(str(store)) < 50 or len(str(store / "run")) > RUNROOT_MAX  # the old layout would be refused
    assert len(str(dirs.run)) <= RUNROOT_MAX
    conmon_socket = dirs.tmp / "socket" / ("f" * 64) / "attach"
    assert len(str(conmon_socket)) <= SOCKET_MAX


def test_one_store_one_folder_and_distinct_stores_distinct_folders() -> None:
    a = run_dirs(LONG / "images" / "storage")
    assert a == run_dirs(LONG / "images" / "storage") and a.store == (LONG / "images" / "storage")
    assert a.base != run_dirs(LONG / "images" / "storage2").base
    assert a.base.parent == rundirs.RUN_HOME


def test_the_confs_name_the_short_folders(tmp_path: Path) -> None:
    host = tmp_path / ("h" * 90) / "hosts" / "c-1"
    dirs = run_dirs(host / "containers" / "storage")
    storage = storage_conf(dirs, Store(tmp_path / "sim"))
    assert f'runroot = "{dirs.run}"' in storage and f'graphroot = "{host / "containers" / "storage"}"' in storage
    conf = containers_conf(dirs)
    engine = conf.split("[engine]", 1)[1]  # libpod's temp dir is an engine setting
    assert f'tmp_dir = "{dirs.tmp}"' in engine
    image = Store(tmp_path / ("s" * 90)).podman()
    assert image[image.index("--runroot") + 1] == str(run_dirs(Store(tmp_path / ("s" * 90)).graph).run)
    assert len(image[image.index("--runroot") + 1]) <= RUNROOT_MAX and "--tmpdir" in image


def test_folders_are_found_by_owner_and_removed_with_their_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rundirs, "RUN_HOME", tmp_path / "run-home")
    cluster = tmp_path / "sim" / "c"
    mine = [run_dirs(cluster / "hosts" / f"c-{i}" / "containers" / "storage").make() for i in (1, 2)]
    other = run_dirs(tmp_path / "sim" / "c2" / "hosts" / "c2-1" / "containers" / "storage").make()
    image = run_dirs(tmp_path / "sim" / "images" / "storage").make()
    assert all(d.run.is_dir() and d.tmp.is_dir() for d in (*mine, other))
    assert {d.base for d in owned(cluster)} == {d.base for d in mine}
    assert sorted(remove_owned(cluster)) == sorted(str(d.base) for d in mine)
    assert not any(d.base.exists() for d in mine) and other.base.exists() and image.base.exists()
    other.remove()
    image.remove()
    assert not (tmp_path / "run-home").exists()  # the machine-wide folder goes with the last store
