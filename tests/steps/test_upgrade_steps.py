"""`upgrade` and `history` against the fake cluster, where no start is needed: nothing deployed is
refused with the fix; the inventory that runs is "unchanged"; `--dry-run` shows the differences and
the steps and sends no operation; `history` reads the record the `up`s wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Cluster, inventory, run, settle
from toolkit import api
from toolkit.errors import BadInput

MODEL = "Qwen2.5-7B-Instruct"


def test_upgrade_reads_the_record_and_dry_run_touches_nothing(tmp_path: Path) -> None:
    inv = inventory(tmp_path, MODEL, devices=[0])
    cluster = Cluster(inv)
    connect, _ = cluster.factory()
    with pytest.raises(BadInput, match="nothing is deployed on t to upgrade") as info:
        api.upgrade(inv, api.Options(), connect=connect)
    assert "ascend-deploy up" in (info.value.hint or "")

    plan = api.plan(inv)
    assert run(inv, cluster, plan).ok
    settle(cluster, inv, plan)
    same = api.upgrade(inv, api.Options(), connect=connect)
    assert same.outcome == "unchanged" and same.ok and same.changes == []

    seven = inventory(tmp_path, MODEL, devices=[0], serve={"max_num_seqs": 7})
    before = {name: list(host.ops) for name, host in cluster.hosts.items()}
    dry = api.upgrade(seven, api.Options(), connect=connect, dry_run=True)
    assert dry.outcome == "planned" and dry.ok and dry.changes == ["vllm --max-num-seqs: 256 -> 7"]
    assert list(dry.kinds) == ["flags"] and [s.name for s in dry.steps][-1] == "rollback"
    assert {name: list(host.ops) for name, host in cluster.hosts.items()} == before  # nothing sent

    second = api.plan(seven)
    assert run(seven, cluster, second).ok
    settle(cluster, seven, second)
    rows = api.history(seven, api.Options(), connect=connect).rows
    assert [(r["state"], r["via"]) for r in rows] == [("running", "up"), ("replaced", "up")]
    assert rows[0]["changes"] == ["vllm --max-num-seqs: 256 -> 7"] and rows[1]["changes"] == []
