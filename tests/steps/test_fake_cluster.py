"""The fake cluster the steps tests run on cannot be passed vacuously: a command it does not know
fails (exit 127) and is named, and so does a fact it cannot answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Cluster, inventory, run
from toolkit import api
from toolkit.engine.executor import Executor
from toolkit.engine.gather import gather
from toolkit.facts import Fact, Raw


def test_an_unknown_command_fails_and_is_named(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0])
    cluster = Cluster(inv)
    assert cluster("n0", "systemctl restart vllm") == (
        127,
        "",
        "fake cluster: unknown command on n0: systemctl restart vllm",
    )
    assert cluster.unknown == [("n0", "systemctl restart vllm")]
    with pytest.raises(AssertionError, match="commands the fake cluster does not know"):
        run(inv, cluster, api.plan(inv))  # a run on a fake that saw one fails, whatever its report says


def test_a_fact_it_cannot_answer_fails(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0])
    cluster = Cluster(inv)
    connect, _ = cluster.factory()
    with Executor(inv.hosts, connect=connect) as ex:
        values = gather(ex.session(inv.head), [Fact("mystery", "true", lambda raw: raw, setup=False)])
    raw = values["mystery"]
    assert isinstance(raw, Raw) and raw.exit_code == 127 and cluster.unknown == [("n0", "fact mystery")]
