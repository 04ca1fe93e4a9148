"""Executor behaviour that only shows across threads: an interrupted run stops its host threads."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from toolkit.config.loader import load_inventory
from toolkit.engine.executor import Executor, Session
from toolkit.errors import HostError, Interrupted
from toolkit.testing import fake_factory


def test_ctrl_c_stops_a_step_still_looping_in_a_pool_thread(tmp_path: Path) -> None:
    """A readiness-style loop in a host thread ends right after Ctrl-C instead of reconnecting
    and polling on (the interpreter joins pool threads at exit, so `up` could not exit)."""
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text(
        "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head}\n  - {name: b, address: 10.0.0.2}\n"
    )
    hosts = load_inventory(inv_file).hosts
    calls = {"n": 0}

    def handler(host: str, script: str) -> tuple[int, str, str]:
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while both hosts are polling
        return 0, "starting\n", ""

    connect, _ = fake_factory(handler)
    ended: list[str] = []

    def poll_forever(s: Session) -> None:
        try:
            while True:
                s.run("probe", setup=False)
                time.sleep(0.02)
        except HostError as exc:
            ended.append(exc.message)
            raise

    ex = Executor(hosts, connect=connect)
    with pytest.raises(Interrupted) as info:
        try:
            ex.map(poll_forever, stage="ready")
        except KeyboardInterrupt:  # delivered before map's own handler was reached: not this test's case
            pytest.fail("map let a raw KeyboardInterrupt escape")
    assert "(ready)" in info.value.message
    deadline = time.monotonic() + 5
    while (
        any(t.name.startswith("host") and t.is_alive() for t in threading.enumerate()) and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("host") and t.is_alive()]
    assert sorted(ended) == ["cancelled: the run was interrupted"] * 2
    polls = calls["n"]
    time.sleep(0.1)
    assert calls["n"] == polls  # nothing polls any more
