"""A launcher is one module plus its playbook: a plugin folder adds `toy` (tests/steps/toy_launcher),
which the planner offers, plans and checks, and `up`'s steps start on the fake cluster, with no
toolkit module edited for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers import Cluster, inventory, ops, run
from toolkit import api
from toolkit.launch import launch_for
from toolkit.planner import launchers
from toolkit.planner.plan import PlanInvalid

TOY = Path(__file__).with_name("toy_launcher")


@pytest.fixture(autouse=True)
def forget_toy() -> Iterator[None]:
    """Plugins' launchers register for the process; the toy leaves with its test."""
    yield
    launchers.unregister("toy")


def toy_inventory(tmp_path: Path, **serve: Any) -> Any:
    return inventory(
        tmp_path, "Qwen2.5-7B-Instruct", devices=[0, 1], plugins=[str(TOY)], serve={"launcher": "toy", **serve}
    )


def test_a_plugin_launcher_plans_and_starts_on_the_fake_cluster(tmp_path: Path) -> None:
    inv = toy_inventory(tmp_path)
    plan = api.plan(inv)
    assert plan.launcher.value == "toy" and plan.launcher.origin == "inventory serve.launcher"
    assert (plan.tp.value, plan.pp.value, plan.dp.value) == (2, 1, 2) and plan.dp.origin == "toy: a replica per host"
    assert "--distributed-executor-backend" not in plan.vllm_argv()
    head, worker = plan.hosts
    assert (
        worker.server_argv[:3] == ("toy-serve", "--replica", "n1")
        and "/data/models/Qwen2.5-7B-Instruct" in worker.server_argv
    )
    assert not head.ray_argv and "RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES" not in head.env
    the_launch = launch_for(plan)
    assert the_launch.launcher.up_playbook.endswith("toy-up.yaml")

    cluster = Cluster(inv)
    report = run(inv, cluster, plan, key="sk-1", book=the_launch.launcher.up_playbook)
    assert report.ok, report.to_dict()
    done = ops(report)
    assert done["workers"][0].startswith("n1: start vLLM toy rank(s) 1 (headless")
    assert done["head"][0].startswith("n0: start vLLM toy rank(s) 0 (API server")
    started = [c for h in ("n0", "n1") for c in cluster.hosts[h].ops if "setsid nohup" in c]
    assert len(started) == 2 and all("setsid nohup toy-serve --replica" in c for c in started)
    assert not any("ray " in c for h in cluster.hosts.values() for c in h.ops)
    ready = next(s for s in report.stages if s.name == "ready")
    assert ready.hosts["n0"].data["answers"]["completion"] == " Paris"


def test_a_plugin_launcher_is_a_choice_its_refusals_are_plan_issues_and_a_typo_names_it(tmp_path: Path) -> None:
    with pytest.raises(PlanInvalid) as refused:
        api.plan(toy_inventory(tmp_path, port=9))
    assert [(i.field, i.message) for i in refused.value.issues] == [
        ("serve.port", "the toy will not serve on the discard port")
    ]
    assert "toy" in launchers.registry()
    with pytest.raises(PlanInvalid) as typo:
        api.plan(toy_inventory(tmp_path, launcher="tyo"))
    issue = typo.value.issues[0]
    assert issue.field == "serve.launcher" and issue.message == "'tyo' is not a launcher"
    assert issue.hint is not None and issue.hint.startswith("did you mean 'toy'?") and "ray, dp, mp" in issue.hint


def test_without_the_plugin_the_launcher_is_unknown(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0, 1], serve={"launcher": "toy"})
    with pytest.raises(PlanInvalid) as exc:
        api.plan(inv)
    assert [i.field for i in exc.value.issues] == ["serve.launcher"]
