"""Playbook runner with fake connections: check mode, barriers, partial success, retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.config.loader import load_inventory
from toolkit.config.playbook import Playbook, Stage
from toolkit.engine.executor import Executor
from toolkit.engine.runner import run_playbook
from toolkit.errors import ConnectError
from toolkit.steps import load_builtin_steps
from toolkit.steps.commands import render_env
from toolkit.testing import fake_factory

INV = """\
cluster: c1
defaults: {env: {A: "1"}}
hosts:
  - {name: a, address: 10.0.0.1, role: head}
  - {name: b, address: 10.0.0.2}
  - {name: c, address: 10.0.0.3}
"""


@pytest.fixture(autouse=True)
def steps_registered() -> None:
    """The playbooks here name built-in steps: registered by importing their modules, whatever ran before."""
    load_builtin_steps()


@pytest.fixture
def inventory(tmp_path: Path):
    f = tmp_path / "inv.yaml"
    f.write_text(INV)
    return load_inventory(f)


def env_book(**stage: object) -> Playbook:
    return Playbook(name="t", stages=[Stage(name="env", step="env_file", **stage)])


def digest_handler(existing: dict[str, str]):
    """Hosts whose env file already has `content` report its digest; writes always succeed."""
    import hashlib

    def handle(host: str, script: str):
        if "sha256sum" in script:
            if host in existing:
                digest = hashlib.sha256(existing[host].encode()).hexdigest()
                marker = script.split("echo '")[1].split(" ")[0]
                return 0, f"{marker} digest\n{digest}  .ascend-deploy/c1/env\n{marker} rc=0\n", ""
            return 0, "", ""
        return 0, "", ""

    return handle


def test_check_mode_reports_ops_and_runs_nothing_that_changes(inventory) -> None:
    make, made = fake_factory(digest_handler({"b": render_env({"A": "1"})}))
    with Executor(inventory.hosts, connect=make) as ex:
        report = run_playbook(env_book(), inventory, ex, check=True)
    assert report.ok
    hosts = report.stages[0].hosts
    assert hosts["a"].status == "would-change" and hosts["c"].status == "would-change"
    assert hosts["b"].status == "unchanged" and hosts["b"].ops == []
    assert "export A=1" in hosts["a"].ops[0].command and not hosts["a"].ops[0].ran
    for conn in made.values():  # only the read-only digest fact ran
        assert all("sha256sum" in s for s in conn.scripts)


def test_real_mode_runs_only_needed_ops(inventory) -> None:
    make, made = fake_factory(digest_handler({"b": render_env({"A": "1"})}))
    with Executor(inventory.hosts, connect=make) as ex:
        report = run_playbook(env_book(), inventory, ex)
    statuses = {h: r.status for h, r in report.stages[0].hosts.items()}
    assert statuses == {"a": "changed", "b": "unchanged", "c": "changed"}
    assert any("umask 077" in s for s in made["a"].scripts)
    assert not any("umask 077" in s for s in made["b"].scripts)


def test_failed_stage_keeps_partial_success_and_stops(inventory) -> None:
    def handle(host: str, script: str):
        if host == "b" and "umask" in script:
            return 1, "", "disk full"
        return 0, "", ""

    make, _ = fake_factory(handle)
    book = Playbook(name="t", stages=[Stage(name="env", step="env_file"), Stage(name="facts", step="gather_facts")])
    with Executor(inventory.hosts, connect=make) as ex:
        report = run_playbook(book, inventory, ex)
    assert report.failed_stage == "env"
    assert len(report.stages) == 1  # the barrier stopped before 'facts'
    hosts = report.stages[0].hosts
    assert hosts["a"].status == "changed" and hosts["c"].status == "changed"
    assert hosts["b"].status == "failed"
    assert "disk full" in hosts["b"].error.message and hosts["b"].error.host == "b"
    assert hosts["b"].error.stage == "env"


def test_retries_then_succeeds(inventory) -> None:
    calls = {"n": 0}

    def handle(host: str, script: str):
        if "umask" in script and host == "a":
            calls["n"] += 1
            if calls["n"] < 3:
                return 1, "", "busy"
        return 0, "", ""

    make, _ = fake_factory(handle)
    with Executor(inventory.hosts, connect=make) as ex:
        report = run_playbook(env_book(retries=2, delay=0), inventory, ex)
    assert report.ok
    assert report.stages[0].hosts["a"].attempts == 3


def test_unreachable_host_is_not_retried_and_others_report(inventory) -> None:
    make, made = fake_factory(
        lambda h, s: (0, "", ""), {"b": ConnectError("b", "cannot connect to root@10.0.0.2:22: refused")}
    )
    with Executor(inventory.hosts, connect=make) as ex:
        report = run_playbook(env_book(retries=5, delay=0), inventory, ex)
    hosts = report.stages[0].hosts
    assert hosts["b"].status == "failed" and hosts["b"].attempts == 1
    assert "refused" in hosts["b"].error.message
    assert hosts["a"].status == "changed"


def test_a_timed_out_command_is_not_retried(inventory) -> None:
    """A hung host already had the stage's whole limit: a retry would only double the wait."""
    from toolkit.errors import CommandTimeout

    def handle(host: str, script: str):
        if "umask" in script and host == "c":
            return CommandTimeout("c", "command timed out after 60s: write env")
        return 0, "", ""

    make, made = fake_factory(handle)
    with Executor(inventory.hosts, connect=make) as ex:
        report = run_playbook(env_book(retries=3, delay=0), inventory, ex)
    hosts = report.stages[0].hosts
    assert hosts["c"].status == "failed" and hosts["c"].attempts == 1 and "timed out" in hosts["c"].error.message
    assert sum("umask" in s for s in made["c"].scripts) == 1
    assert hosts["a"].status == "changed"


def test_stage_host_selection_and_tags(inventory) -> None:
    make, made = fake_factory(lambda h, s: (0, "", ""))
    book = Playbook(
        name="t",
        stages=[
            Stage(name="head-only", step="env_file", hosts="head"),
            Stage(name="workers-only", step="env_file", hosts="workers", tags=["w"]),
        ],
    )
    with Executor(inventory.hosts, connect=make) as ex:
        report = run_playbook(book, inventory, ex, skip_tags={"w"})
    assert list(report.stages[0].hosts) == ["a"]
    assert report.stages[1].skipped_reason == "in --skip-tags"


def test_one_connection_per_host_per_run(inventory) -> None:
    make, made = fake_factory(lambda h, s: (0, "", ""))
    book = Playbook(name="t", stages=[Stage(name="one", step="env_file"), Stage(name="two", step="env_file")])
    with Executor(inventory.hosts, connect=make) as ex:
        run_playbook(book, inventory, ex)
    for conn in made.values():
        assert len(conn.scripts) == 4  # 2 stages x (digest fact + write)
    assert all(c.closed == 1 for c in made.values())
