"""`up`'s decisions as a table (tests/steps/cases/up.yaml): for hosts in a given state, the operations
each stage runs. A case that expects nothing where something ran, or an operation that did not run,
fails; so does a command the fake cluster does not know."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import Cluster, inventory, ops, run, settle
from toolkit import api

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "cases" / "up.yaml").read_text())
MODEL = "Qwen2.5-7B-Instruct"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_up_case(case: dict[str, Any], tmp_path: Path) -> None:
    serve = {"tensor_parallel_size": 2, **case.get("serve", {})}
    inv = inventory(tmp_path, MODEL, devices=[0], serve=serve)
    plan = api.plan(inv)
    cluster = Cluster(inv)
    book = case.get("book", "up")
    if case["start"] == "deployed":
        assert run(inv, cluster, plan, book=book).ok
        settle(cluster, inv, plan)
    for host, attrs in (case.get("hosts") or {}).items():
        for key, value in attrs.items():
            assert hasattr(cluster.hosts[host], key), key
            setattr(cluster.hosts[host], key, value)
    if case.get("change"):
        inv = inventory(tmp_path, MODEL, devices=[0], serve={**serve, **case["change"]})
        plan = api.plan(inv)
    report = run(inv, cluster, plan, book=book)
    done = ops(report)
    expected: dict[str, list[str]] = case["expect"] or {}
    assert set(done) == set(expected), done
    for stage, prefixes in expected.items():
        assert len(done[stage]) == len(prefixes), (stage, done[stage])
        for got, want in zip(done[stage], prefixes):
            assert got.startswith(want), (stage, got, want)
    assert report.ok, report.to_dict()
