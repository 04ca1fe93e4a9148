"""Shared fixtures: real sshd servers on loopback (session-scoped) and inventories for them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import ROOT, SIM_ROOT, TIERS, SshLab
from tests.simlab import SimLab, running_cluster
from tests.sshd import Sshd, free_port, keygen


def pytest_configure(config: pytest.Config) -> None:
    """Measured cold starts go to a file of this session (every CLI subprocess inherits it): a test
    never reads the machine's own history, and the plans it checks depend only on its own runs."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="ascend-deploy-startups-"))
    os.environ["ASCEND_DEPLOY_STARTUPS"] = str(folder / "startups.jsonl")
    config.stash[STARTUPS] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    folder = config.stash.get(STARTUPS, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


STARTUPS = pytest.StashKey[Path]()


#: the modules that take minutes, longest first (worker seconds in the full suite on 2 cores, 2026-12-07:
#: up ~440, faults ~430, dp ~380, container ~330, upgrade ~230). `make test` hands whole modules to its
#: two workers in collection order (`--dist loadfile --no-loadscope-reorder`; xdist's default reorder
#: puts the modules with the most tests first, so these few-test modules came last and one worker ran
#: two of them while the other idled): longest first, the many short modules fill both workers' ends.
#: A worker takes its next module when two tests of its current one are left, so a module's long test
#: comes first in it (test_dp_e2e).
SLOW_FIRST = ("test_up_e2e", "test_faults_e2e", "test_dp_e2e", "test_container_e2e", "test_upgrade_e2e")
TIER_ORDER = ("e2e", "integration", "steps", "facts", "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> tuple[int, int]:
        path = Path(str(item.fspath))
        tier = path.relative_to(ROOT / "tests").parts[0]
        slow = SLOW_FIRST.index(path.stem) if path.stem in SLOW_FIRST else len(SLOW_FIRST)
        return slow, TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)

    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(parts[0])
    items.sort(key=rank)  # stable: each module's tests stay together and in their order


@pytest.fixture(scope="session")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshLab]:
    folder = tmp_path_factory.mktemp("sshlab")
    client_key = keygen(folder / "client_ed25519", "client")
    authorized = folder / "authorized_keys"
    authorized.write_text((folder / "client_ed25519.pub").read_text())
    hosts = []
    for i in range(3):
        address = f"127.0.0.{11 + i}"
        sub = folder / f"h{i}"
        sub.mkdir()
        hosts.append(Sshd(f"h{i}", address, free_port(address), sub))
    try:
        for h in hosts:
            h.start(authorized)
        known = folder / "known_hosts"
        known.write_text("".join(h.host_key_line() + "\n" for h in hosts))
        yield SshLab(folder, hosts, client_key, known, authorized)
    finally:
        for h in hosts:
            h.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME so tests never read or write the real ~/.ssh."""
    h = tmp_path / "home"
    (h / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    return h


#: one session cluster per pytest-xdist worker (gw0, gw1: `make test` runs two), none shared
SIM_NAME = "pytest" + os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")


@pytest.fixture(scope="session")
def sim_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    """A 3-host simulated cluster for the whole session; leftovers of a crashed run are removed first."""
    with running_cluster(SIM_NAME, SIM_ROOT, tmp_path_factory.mktemp("sim") / "sim.yaml", hosts=3) as lab:
        yield lab


@pytest.fixture
def sim(sim_session: SimLab) -> Iterator[SimLab]:
    """The session cluster, with every injected fault cleared after each test."""
    from toolkit.sim import faults

    yield sim_session
    faults.clear(sim_session.opts)
