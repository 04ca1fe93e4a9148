"""What a plan asks of each host (RAM for the weights, /dev/shm, a driver the CANN supports) and
the preflight checks that compare it with the host's facts. Pure: synthetic facts, real plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import inventory
from toolkit import api
from toolkit.checks import driver
from toolkit.checks.resources import driver_findings, host_memory_problems, shm_problems
from toolkit.checks.view import HostView
from toolkit.facts import Raw
from toolkit.facts.host import Mount, parse_df, parse_mem_available_mib
from toolkit.facts.model import ModelDir, parse_model
from toolkit.planner.demand import GIB, MIB, PlanNeeds, host_demands, plan_needs, size_bytes, unplanned_needs

pytestmark = pytest.mark.unit


def view(plan_inv, name: str, **facts) -> HostView:
    return HostView(plan_inv.host(name), facts)


def test_tp8_maps_more_shared_memory_than_the_vendors_1g(tmp_path: Path) -> None:
    """One host, TP 8, vLLM's multiprocessing executor: 160 MiB of scheduler queue + 8 x (240 + 24)
    MiB of worker queues = 2272 MiB; a container plan sizes --shm-size to 3g and says why."""
    inv = inventory(tmp_path, "Qwen2.5-72B-Instruct", hosts=1, container={})
    plan = api.plan(inv)
    assert plan.backend.value == "mp" and plan.tp.value == 8
    demand = host_demands(plan)["n0"]
    assert demand.shm_bytes == 2272 * MIB and "8 worker(s) x 264 MiB" in demand.shm_why
    shm = next(a for a in plan.container.args if a.what == "shared memory")
    assert shm.argv == ("--shm-size", "3g") and "the vendor guide's 1g is too small" in shm.origin
    mine = api.plan(inventory(tmp_path, "Qwen2.5-72B-Instruct", hosts=1, container={"shm_size": "2g"}))
    needs = plan_needs(mine)
    assert needs.container_shm == 2 * GIB
    (problem,) = shm_problems(needs, view(inv, "n0"))
    assert problem.check == "shm" and "--shm-size 2g" in problem.observed and "2.22 GiB" in problem.expected
    assert "container.shm_size to 3g" in problem.hint


def test_ray_hosts_need_their_object_store_in_shm(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "Qwen2.5-72B-Instruct", hosts=2, ray={"object_store_memory": 500_000_000})
    plan = api.plan(inv)
    assert plan.backend.value == "ray"
    demands = host_demands(plan)
    assert all(d.shm_bytes == 500_000_000 + 8 * 24 * MIB for d in demands.values())
    needs = plan_needs(plan)
    small = view(inv, "n1", shm=Mount("/dev/shm", 256 * MIB, 200 * MIB))
    (problem,) = shm_problems(needs, small)
    assert problem.host == "n1" and "/dev/shm is 0.25 GiB (0.20 GiB free)" in problem.observed
    assert "Ray object store 0.47 GiB" in problem.expected and "remount,size=1G" in problem.hint
    assert shm_problems(needs, view(inv, "n1", shm=Mount("/dev/shm", 8 * GIB, 8 * GIB))) == []


def test_host_memory_counts_the_share_of_the_checkpoint_each_host_reads(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "Qwen2.5-72B-Instruct", hosts=2)  # TP 8 x PP 2: each host reads half
    plan = api.plan(inv)
    needs = plan_needs(plan)
    assert needs.hosts["n1"].weight_share == 0.5
    model = ModelDir("/m", True, "x" * 64, {}, 10_000, weights_bytes=140 * GIB, weight_files=37)
    tight = view(inv, "n1", model=model, mem_available_mib=60 * 1024, memory_mib=256 * 1024)
    (problem,) = host_memory_problems(needs, tight)
    assert problem.check == "host-memory" and problem.observed == "60.00 GiB of RAM available (of 256.00 GiB)"
    assert "70.00 GiB of weights (8 device(s) of one copy split 16 ways (TP x PP)" in problem.expected
    assert "140.00 GiB in 37 file(s)" in problem.expected
    roomy = view(inv, "n1", model=model, mem_available_mib=150 * 1024, memory_mib=256 * 1024)
    assert host_memory_problems(needs, roomy) == []
    # the RAM a running deployment holds comes back when it is replaced (an upgrade's staging preflight)
    serving = view(
        inv, "n1", model=model, mem_available_mib=60 * 1024, memory_mib=256 * 1024, deployment_rss_mib=40 * 1024
    )
    assert host_memory_problems(needs, serving) == []
    busier = view(
        inv, "n1", model=model, mem_available_mib=30 * 1024, memory_mib=256 * 1024, deployment_rss_mib=10 * 1024
    )
    (problem,) = host_memory_problems(needs, busier)
    assert (
        problem.observed == "40.00 GiB of RAM available (of 256.00 GiB), 10.00 GiB of it held by the running deployment"
    )
    prefetch = api.plan(
        inventory(
            tmp_path, "Qwen2.5-72B-Instruct", hosts=2, serve={"extra_args": ["--safetensors-load-strategy", "prefetch"]}
        )
    )
    assert plan_needs(prefetch).hosts["n1"].weight_share == 1.0
    (problem,) = host_memory_problems(plan_needs(prefetch), roomy)  # 140 GiB + 10% of 256 > 150
    assert "prefetch reads the whole checkpoint" in problem.expected


@pytest.mark.parametrize(
    "drv,cann,ok,known",
    [
        ("24.1.rc2", "8.0.RC2", True, True),  # the simulator's pair: the same 24.1 line
        ("25.5.1", "9.0.0", True, True),
        ("26.1.0", "9.1.0", True, True),
        ("23.0.3", "8.0.RC2", False, False),  # older than the CANN's line: a problem
        ("24.1.rc2", "9.1.0", False, False),
        ("27.0.0", "9.1.0", True, False),  # newer than any listed: a warning
        ("24.1.rc2", "8.3.RC2", True, False),  # a CANN with no published pairing: a warning
    ],
)
def test_driver_pairings_follow_the_vendors_notes(drv: str, cann: str, ok: bool, known: bool) -> None:
    verdict = driver.judge(drv, cann)
    assert (verdict.ok, verdict.known) == (ok, known)
    if driver.pairing_for(cann) is not None:
        assert "hicann/release-management" in verdict.source or "package_info.js" in verdict.source


def test_driver_findings_are_problems_or_warnings(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "Qwen2.5-72B-Instruct", hosts=2)
    needs = plan_needs(api.plan(inv))  # runtime vllm-ascend-0.23.0: CANN 9.1.0
    found, warned = driver_findings(needs, view(inv, "n0", driver="24.1.rc2"), None)
    assert warned == [] and found[0].check == "driver"
    assert "driver 24.1.rc2 (/usr/local/Ascend/driver/version.info) with CANN 9.1.0" in found[0].observed
    assert "Ascend HDK 25.5, 25.7, 26.0, 26.1" in found[0].expected
    found, warned = driver_findings(needs, view(inv, "n0", driver="27.0.0"), None)
    assert found == [] and "do not list this pairing" in warned[0].hint
    bare = unplanned_needs("no plan")  # no profile CANN: what most hosts have installed
    found, _ = driver_findings(bare, view(inv, "n0", driver="23.0.3", cann="8.2.RC1"), "8.0.RC2")
    assert "with CANN 8.0.RC2 (the CANN installed on the host)" in found[0].observed
    assert driver_findings(bare, view(inv, "n0"), None) == ([], [])


def test_the_facts_parse_real_output() -> None:
    meminfo = "MemTotal:       24566820 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\nCached: 5 kB\n"
    assert parse_mem_available_mib(Raw(meminfo, 0)) == 20000000 // 1024
    assert parse_mem_available_mib(Raw("MemTotal: 10 kB\nMemFree: 2048 kB\nCached: 1024 kB\n", 0)) == 3
    df = "tmpfs            8388608       0   8388608   0% /dev/shm\n"
    assert parse_df("/dev/shm")(Raw(df, 0)) == Mount("/dev/shm", 8 * GIB, 8 * GIB)
    assert parse_df("/dev/shm")(Raw("df: /dev/shm: No such file or directory\n", 1)) is None
    out = "present\n" + "a" * 64 + "\n--\n{}\n--\n/dev/vda 100 50 4096 50% /\n--\n3232424 2\n"
    model = parse_model("/m")(Raw(out, 0))
    assert model.weights_bytes == 3232424 and model.weight_files == 2 and model.free_mb == 4
    older = parse_model("/m")(Raw(out.rsplit("--\n", 1)[0], 0))  # a host answering the old command
    assert older.weights_bytes is None and older.free_mb == 4
    assert size_bytes("1g") == GIB and size_bytes("512m") == 512 * MIB and size_bytes("x") is None


def test_a_needs_record_without_hosts_checks_nothing_but_the_driver(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "Qwen2.5-72B-Instruct", hosts=2)
    bare: PlanNeeds = unplanned_needs("why")
    tight = view(
        inv,
        "n1",
        shm=Mount("/dev/shm", MIB, MIB),
        mem_available_mib=1,
        model=ModelDir("/m", True, None, None, 1, GIB, 1),
    )
    assert shm_problems(bare, tight) == [] and host_memory_problems(bare, tight) == []
