"""Where the simulator keeps its files by default: beside the checkout when the simulated hosts
can see it there, else a folder of its own per checkout (a clone under /tmp must just work)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.sim.layout import STATE_HOME, default_root, scratch_parent


def test_sim_beside_an_ordinary_checkout() -> None:
    assert default_root(Path("/srv/ascend-deploy"), uid=0) == Path("/srv/ascend-deploy/.sim")
    assert default_root(Path("/root/work/ad"), uid=0) == Path(
        "/root/work/ad/.sim"
    )  # root's 0700 home: root's hosts read it


@pytest.mark.parametrize(
    "folder", ["/tmp/ad", "/tmp", "/var/tmp/x/y", "/dev/shm/ad", "/srv/my checkout", "/srv/tab\there"]
)
def test_a_folder_the_hosts_cannot_use_gets_its_own_root(folder: str) -> None:
    root = default_root(Path(folder), uid=0)
    assert root.parent == STATE_HOME and scratch_parent(root) is None and " " not in str(root) and "\t" not in str(root)
    assert root == default_root(Path(folder), uid=0)  # stable: `sim down` finds what `sim up` made
    assert root != default_root(Path(folder + "2"), uid=0)  # one per checkout


def test_a_user_who_is_not_root_gets_the_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/home/u/.cache")
    assert default_root(Path("/tmp/ad"), uid=1000).parent == Path("/home/u/.cache/ascend-deploy/sim")
    monkeypatch.chdir(tmp_path)
    assert default_root(uid=0).parent == STATE_HOME  # the current folder by default (pytest's tmp_path is under /tmp)


def test_scratch_parent() -> None:
    assert scratch_parent(Path("/tmp")) == Path("/tmp") and scratch_parent(Path("/var/tmp/a")) == Path("/var/tmp")
    assert scratch_parent(Path("/tmpfoo/a")) is None and scratch_parent(Path("/var/lib/x")) is None
