"""The cluster lock, run for real: bash + flock on this machine through LocalConnection, with
HOME pointed at a temporary folder (the lock lives under ~/.ascend-deploy/locks)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit.engine.lock import LOCK_DIR, ClusterLocked, LockInfo, acquire
from toolkit.transport.local import LocalConnection


class Session(SimpleNamespace):
    """The two things `acquire` uses of an executor session."""

    def run(self, command: str, **kwargs: object) -> object:
        return self.conn.run(command, timeout=30)


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("HOME", str(tmp_path))
    host = SimpleNamespace(name="head")
    return Session(name="head", conn=LocalConnection(host))  # type: ignore[arg-type]


def holder_file(tmp_path: Path, cluster: str = "c") -> Path:
    return tmp_path / LOCK_DIR / f"{cluster}.holder"


def test_second_run_is_refused_and_told_who_holds_the_lock(session: Session, tmp_path: Path) -> None:
    first = acquire(session, "c", "up")
    try:
        assert (tmp_path / LOCK_DIR / "c").exists() and oct(holder_file(tmp_path).stat().st_mode & 0o777) == "0o600"
        with pytest.raises(ClusterLocked) as err:
            acquire(session, "c", "down")
        msg = err.value.message
        assert "cluster 'c' is locked by `up`" in msg and f"pid {os.getpid()}" in msg and socket.gethostname() in msg
        assert err.value.stage == "lock" and err.value.host == "head" and "kill " in (err.value.hint or "")
        other = acquire(session, "other-cluster", "up")  # a lock per cluster
        other.release()
    finally:
        first.release()
    assert not holder_file(tmp_path).exists()
    again = acquire(session, "c", "down")  # released: free again, nothing stale to report
    assert again.notes == []
    again.release()


def test_lock_is_dropped_when_the_holding_process_dies(session: Session, tmp_path: Path) -> None:
    """A run killed with SIGKILL: its channel (here: the holder's stdin) closes, the lock goes."""
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from types import SimpleNamespace\n"
        "from toolkit.transport.local import LocalConnection\n"
        "from toolkit.engine.lock import acquire\n"
        "s = SimpleNamespace(name='head', conn=LocalConnection(SimpleNamespace(name='head')))\n"
        "acquire(s, 'c', 'up'); print('held', flush=True); import time; time.sleep(60)\n"
    ) % str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env={**os.environ})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with pytest.raises(ClusterLocked):
        acquire(session, "c", "down")
    proc.kill()
    proc.wait(10)
    # the holder shell sees EOF on stdin and exits: poll (bounded) until the lock is free
    for _ in range(100):
        try:
            held = acquire(session, "c", "down")
            break
        except ClusterLocked:
            subprocess.run(["sleep", "0.05"])
    else:
        pytest.fail("the lock outlived the run that held it")
    held.release()


def test_holder_file_of_a_run_that_died_is_reported_and_replaced(session: Session, tmp_path: Path) -> None:
    holder_file(tmp_path).parent.mkdir(parents=True)
    dead = LockInfo("up", "ctl-9", 4242, "ops", "2026-11-26T01:00:00+0000")
    holder_file(tmp_path).write_text("999999\n" + dead.to_json() + "\n")
    held = acquire(session, "c", "up")
    try:
        assert held.notes and "`up` (pid 4242, user ops on ctl-9" in held.notes[0] and "died" in held.notes[0]
        mine = LockInfo.parse(holder_file(tmp_path).read_text())
        assert mine is not None and mine.pid == os.getpid() and mine.command == "up"
    finally:
        held.release()


def test_lock_held_for_a_dead_run_of_this_machine_is_taken_over(session: Session, tmp_path: Path) -> None:
    """A half-open connection keeps an old holder shell alive on the head although its run (on
    this machine) is gone: the next run ends that shell and takes the lock."""
    folder = tmp_path / LOCK_DIR
    folder.mkdir(parents=True)
    gone = subprocess.run(
        ["bash", "-c", "echo $$"], capture_output=True, text=True
    ).stdout.strip()  # a pid that just ended
    info = json.dumps(
        {"command": "up", "controller": socket.gethostname(), "pid": int(gone), "user": "ops", "since": "earlier"}
    )
    orphan = subprocess.Popen(
        [
            "bash",
            "-c",
            f"exec 9>>{folder / 'c'}; flock 9; {{ echo $$; printf '%s\\n' '{info}'; }} > {folder / 'c.holder'}; echo "
            "ok; sleep 60",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert orphan.stdout is not None and orphan.stdout.readline().strip() == "ok"
    held = acquire(session, "c", "up")
    try:
        assert any("was still held" in n and f"pid {gone}" in n for n in held.notes), held.notes
        assert orphan.wait(10) != 0  # the orphaned holder was ended
    finally:
        held.release()


def test_lock_held_from_another_machine_is_never_broken(session: Session, tmp_path: Path) -> None:
    folder = tmp_path / LOCK_DIR
    folder.mkdir(parents=True)
    info = json.dumps({"command": "down", "controller": "some-other-host", "pid": 1, "user": "ops", "since": "earlier"})
    other = subprocess.Popen(
        [
            "bash",
            "-c",
            f"exec 9>>{folder / 'c'}; flock 9; {{ echo $$; printf '%s\\n' '{info}'; }} > {folder / 'c.holder'}; echo "
            "ok; sleep 60",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "ok"
        with pytest.raises(ClusterLocked) as err:
            acquire(session, "c", "up")
        assert "`down` (pid 1, user ops on some-other-host" in err.value.message and f"kill {other.pid}" in (
            err.value.hint or ""
        )
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(10)
