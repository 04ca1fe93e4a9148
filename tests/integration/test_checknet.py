"""check-net against the simulated cluster: clean passes; every fault is exactly one precise problem."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.helpers import cli
from tests.simlab import SimLab
from toolkit.sim.faults import HOLDER


def check_net(sim: SimLab, *args: str) -> tuple[int, dict]:
    out = cli("check-net", str(sim.inventory), "--json", *args, timeout=300)
    assert out.stdout, out.stderr
    return out.returncode, json.loads(out.stdout)


def test_clean_cluster_passes_in_every_mode(sim: SimLab) -> None:
    for mode, pings in (("rail", 3 * 2 * 8), ("ring", 3 * 8), ("full", 3 * 2 * 8 * 8)):
        code, data = check_net(sim, "--mode", mode)
        assert code == 0 and data["ok"] is True and data["problems"] == [], data["problems"]
        assert data["mode"] == mode and len(data["pings"]) == pings
        assert all(p["ok"] and p["sent"] == 3 and p["rtt_ms"] is not None for p in data["pings"])
    host = data["hosts"][1]
    assert host["name"] == f"{sim.name}-2" and host["reachable"] is True
    assert len(host["devices"]) == 8 and host["devices"][0]["ip"] == f"29.{sim.subnet}.0.12"
    assert {n["name"] for n in host["nics"]} >= {"enp67s0f5", "enp67s0f6"}


def test_table_output_when_clean(sim: SimLab) -> None:
    out = cli("check-net", str(sim.inventory), timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    # this 3 x 8 inventory does not plan the tiny model: what that leaves unchecked is said
    assert "host-memory and shm not checked: the inventory does not plan" in out.stderr
    planned = cli("check-net", str(sim.inventory), *PLANNED, timeout=300)
    assert planned.returncode == 0 and "not checked" not in planned.stderr, planned.stdout + planned.stderr
    assert "ping matrix (rail)" in out.stdout
    assert "check-net: all checks passed (3 hosts, 24 NPUs, 48 pings, mode rail)" in out.stdout


FAULTS = [
    # (host, fault args, expected (host index, device, check), words in observed)
    (2, ("link-down", {"card": 3}), (2, 3, "link"), "link status: DOWN"),
    (3, ("net-health", {"card": 1, "value": "Receive timeout"}), (3, 1, "net-health"), "Receive timeout"),
    (1, ("ping-loss", {"card": 2, "peer": "{name}-3", "value": "34"}), (1, 2, "ping"), "33.33% loss to {name}-3 NPU 2"),
    (2, ("card-unhealthy", {"card": 6, "value": "Alarm"}), (2, 6, "npu-health"), "health Alarm"),
    (3, ("no-ip", {"card": 7}), (3, 7, "ip"), "Get ipconf failed, because no ip was preset there!"),
    (2, ("tls-mismatch", {"card": 0}), (2, 0, "tls"), "tls switch 1"),
    (1, ("optical-absent", {"card": 4}), (1, 4, "optical"), "not present"),
    (2, ("host-down", {}), (2, None, "ssh"), "Connection refused"),
    (3, ("slow", {"value": "1200"}), (3, None, "tool-latency"), "hccn_tool answers in"),
    (2, ("missing-model", {}), (2, None, "model"), "does not exist"),
    (3, ("version-skew", {"value": "0.9.1"}), (3, None, "versions"), "cann 8.2.RC1 (others 8.0.RC2 on"),
    (1, ("npu-held", {"card": 5}), (1, 5, "npu-memory"), "NPU 5 is held by pid"),  # and its command: below
    (2, ("low-ram", {"value": "200"}), (2, None, "host-memory"), "0.20 GiB of RAM available"),
    (3, ("small-shm", {"value": "16m"}), (3, None, "shm"), "/dev/shm is 0.02 GiB"),
    (1, ("old-driver", {}), (1, None, "driver"), "driver 23.0.3 (/usr/local/Ascend/driver/version.info) with CANN"),
]
#: a layout the tiny model plans on 3 x 8 devices: the memory checks compare each host with its plan
PLANNED = ("--set", "serve.launcher=dp", "--set", "serve.tensor_parallel_size=4", "--set", "serve.data_parallel_size=6")
NEEDS_PLAN = {"low-ram", "small-shm"}


@pytest.mark.parametrize("host,fault,expected,words", FAULTS, ids=[f[1][0] for f in FAULTS])
def test_each_fault_is_exactly_one_precise_problem(
    sim: SimLab, host: int, fault: tuple, expected: tuple, words: str
) -> None:
    kind, kwargs = fault
    kwargs = {k: (v.replace("{name}", sim.name) if isinstance(v, str) else v) for k, v in kwargs.items()}
    sim.fault(host, kind, **kwargs)
    planned = PLANNED if kind in NEEDS_PLAN else ()
    code, data = check_net(sim, *planned)
    assert code == 1 and data["ok"] is False
    got = [(p["host"], p["device"], p["check"]) for p in data["problems"]]
    idx, device, check = expected
    assert got == [(f"{sim.name}-{idx}", device, check)], data["problems"]
    problem = data["problems"][0]
    assert words.replace("{name}", sim.name) in problem["observed"]
    assert problem["expected"] and problem["hint"]
    if kind == "npu-held":  # the holder named by its command line, read from the host's process list
        assert re.search(rf"held by pid \d+ \({HOLDER}\b", problem["observed"]), problem["observed"]
    if kind == "slow":  # the table is the same report; every tool call of this case costs a second
        return
    table = cli("check-net", str(sim.inventory), *planned, timeout=300)
    assert table.returncode == 1
    assert "check-net: 1 problem(s) on 1 host(s)" in table.stdout
    assert check in table.stdout and f"{sim.name}-{idx}" in table.stdout


def test_unreachable_host_while_others_are_checked(sim: SimLab) -> None:
    sim.fault(3, "host-down")
    code, data = check_net(sim)
    hosts = {h["name"]: h for h in data["hosts"]}
    assert hosts[f"{sim.name}-3"]["reachable"] is False
    assert hosts[f"{sim.name}-1"]["reachable"] and len(hosts[f"{sim.name}-1"]["devices"]) == 8
    assert {p["peer_host"] for p in data["pings"]} == {f"{sim.name}-1", f"{sim.name}-2"}
    assert all(p["ok"] for p in data["pings"])


def test_busy_devices_are_retried(sim: SimLab) -> None:
    """A device busy with someone else's short ping is retried, not reported."""
    sim.ssh(
        1,
        f"for d in 0 1 2 3; do setsid hccn_tool -i $d -ping -g address 29.{sim.subnet}.$d.12 pkt 10 >/dev/null 2>&1 & "
        "done",
    )
    code, data = check_net(sim)
    assert code == 0, data["problems"]


def test_limit_checks_only_those_hosts(sim: SimLab) -> None:
    code, data = check_net(sim, "--limit", f"{sim.name}-1,{sim.name}-3")
    assert code == 0
    assert [h["name"] for h in data["hosts"]] == [f"{sim.name}-1", f"{sim.name}-3"]
    assert {p["peer_host"] for p in data["pings"]} == {f"{sim.name}-1", f"{sim.name}-3"}


def test_bad_mode_is_bad_input(sim: SimLab) -> None:
    out = cli("check-net", str(sim.inventory), "--mode", "star")
    assert out.returncode == 2 and "--mode 'star'" in out.stderr


def test_one_connection_per_host_for_the_whole_check(sim: SimLab) -> None:
    """Facts and 384 pings go over one SSH connection per host (counted in sshd's log)."""
    logs = [sim.paths.host(f"{sim.name}-{i}") / "sshd.log" for i in (1, 2, 3)]
    before = [log.read_text().count("Accepted publickey") for log in logs]
    started = time.monotonic()
    code, data = check_net(sim, "--mode", "full")
    assert code == 0
    after = [log.read_text().count("Accepted publickey") for log in logs]
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1]  # one connection per host
    assert len(data["pings"]) == 384 and time.monotonic() - started < 120


def test_a_stale_or_missing_hccn_conf_is_named(sim: SimLab) -> None:
    """/etc/hccn.conf is read on the host for real: a stale card entry is named with both values,
    an emptied file is one problem per card."""
    conf = sim.paths.host(f"{sim.name}-2") / "hccn.conf"  # bind-mounted over the host's /etc/hccn.conf
    original = conf.read_text()
    try:
        conf.write_text(re.sub(r"^address_3=.*$", "address_3=29.254.3.99", original, flags=re.M))
        code, data = check_net(sim)
        got = [(p["host"], p["device"], p["check"]) for p in data["problems"]]
        assert code == 1 and got == [(f"{sim.name}-2", 3, "hccn-conf")], data["problems"]
        assert "address_3=29.254.3.99, hccn_tool -ip -g says 29." in data["problems"][0]["observed"]
        conf.write_text("")  # emptied: every card's entry is gone
        code, data = check_net(sim)
        assert {(p["host"], p["check"]) for p in data["problems"]} == {(f"{sim.name}-2", "hccn-conf")}
        assert len(data["problems"]) == 8  # one per card of that host
    finally:
        conf.write_text(original)
    code, data = check_net(sim)
    assert code == 0 and data["ok"], data["problems"]
