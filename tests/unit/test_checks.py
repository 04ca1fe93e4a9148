"""Preflight rules and ping planning on synthetic facts (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.checks import pings
from toolkit.checks.pings import PingResult
from toolkit.checks.rules import HostView, evaluate
from toolkit.config.loader import load_inventory
from toolkit.errors import ConnectError
from toolkit.facts.hccn import DeviceFacts
from toolkit.facts.host import Nic
from toolkit.facts.model import ModelDir
from toolkit.facts.net import Latency, Probe
from toolkit.facts.npu import Chip, NpuInfo

INV = """\
cluster: c
hardware: 910B3
defaults: {devices: [0, 1]}
hosts:
  - {name: a, address: 10.0.0.1, role: head}
  - {name: b, address: 10.0.0.2}
  - {name: c, address: 10.0.0.3}
model: {path: /m}
"""


@pytest.fixture
def inventory(tmp_path: Path):
    f = tmp_path / "inv.yaml"
    f.write_text(INV)
    return load_inventory(f)


def healthy(inventory, name: str, **changes) -> HostView:
    host = inventory.host(name)
    idx = [h.name for h in inventory.hosts].index(name) + 11
    devices = {
        d: DeviceFacts(
            d,
            ip=f"29.1.{d}.{idx}",
            netmask="255.255.0.0",
            link="UP",
            health="Success",
            netdetect="29.1.0.1",
            gateway="29.1.0.1",
            tls_switch=0,
            optical="present",
            lldp_port="x",
        )
        for d in (0, 1)
    }
    chips = tuple(Chip(d, 0, d, "910B3", "OK", None, 3000, 65536) for d in range(8))
    data = {
        "devices": devices,
        "npu_smi": NpuInfo(chips, (), False),
        "nics": [Nic("enp67s0f5", "UP", None, (f"{host.address}/24",))],
        "routes": {h.address: "enp67s0f5" for h in inventory.hosts if h.name != name},
        "hccn_conf": {d: f"29.1.{d}.{idx}" for d in (0, 1)},
        "probes": {"10.0.0.1:6379": Probe("10.0.0.1:6379", "refused")} if name != "a" else {},
        "driver": "24.1",
        "cann": "8.0",
        "packages": {"vllm": "0.11.0", "ray": "2.60.0"},
        "model": ModelDir("/m", True, "f" * 64, {}, 100000),
        "clock_offset_s": 0.01,
        "tool_latency": Latency(20, 3, 1, 8),
    }
    data.update(changes)
    return HostView(host, data)


def ping_all(views: list[HostView]) -> None:
    ips = {v.host.name: {d: dev.ip for d, dev in v.devices.items()} for v in views}
    for v in views:
        for t in pings.plan(ips, "rail")[v.host.name]:
            v.pings.append(PingResult(v.host.name, t.device, t.peer_host, t.peer_device, t.peer_ip, 3, 3, 0.0, 0.1))


def test_clean_cluster_has_no_problems(inventory) -> None:
    views = [healthy(inventory, n) for n in "abc"]
    ping_all(views)
    assert evaluate(inventory, views) == []


def test_link_down_is_one_problem_even_with_failed_pings(inventory) -> None:
    views = [healthy(inventory, n) for n in "abc"]
    ping_all(views)
    views[1].devices[1].link = "DOWN"
    views[1].devices[1].health = "Fault"
    for v in views:
        for p in v.pings:
            if (p.host, p.device) == ("b", 1) or (p.peer_host, p.peer_device) == ("b", 1):
                p.received, p.loss_pct = 0, 100.0
    problems = evaluate(inventory, views)
    assert [(p.host, p.device, p.check) for p in problems] == [("b", 1, "link")]


def test_lossy_pair_is_one_problem(inventory) -> None:
    views = [healthy(inventory, n) for n in "abc"]
    ping_all(views)
    for v in views:
        for p in v.pings:
            if {(p.host, p.device), (p.peer_host, p.peer_device)} == {("a", 0), ("c", 0)}:
                p.received, p.loss_pct = 2, 33.33
    problems = evaluate(inventory, views)
    assert [(p.host, p.device, p.check) for p in problems] == [("a", 0, "ping")]
    assert "33.33% loss to c NPU 0" in problems[0].observed


def test_unreachable_host_and_minorities(inventory) -> None:
    a = healthy(inventory, "a")
    b = healthy(inventory, "b", cann="8.2", packages={"vllm": "0.9.1", "ray": "2.60.0"})
    c = HostView(inventory.host("c"), None, ConnectError("c", "cannot connect to root@10.0.0.3:22: Connection refused"))
    b.devices[0].tls_switch = 1
    problems = {(p.host, p.device, p.check): p for p in evaluate(inventory, [a, b, c])}
    assert set(problems) == {("c", None, "ssh"), ("b", None, "versions"), ("b", 0, "tls")}
    assert "cann 8.2 (others 8.0 on a)" in problems[("b", None, "versions")].observed
    assert "Connection refused" in problems[("c", None, "ssh")].observed


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"npu_smi": None}, ("b", None, "npu-smi")),
        ({"nics": [Nic("eth9", "UP", None, ("192.168.0.2/24",))]}, ("b", None, "nic")),
        (  # the node address on a container bridge: named, though it "works" locally
            {
                "nics": [Nic("docker0", "UP", None, ("10.0.0.2/16",))],
                "routes": {"10.0.0.1": "docker0", "10.0.0.3": "docker0"},
            },
            ("b", None, "node-address"),
        ),
        ({"routes": {"10.0.0.1": "eth1", "10.0.0.3": "enp67s0f5"}}, ("b", None, "route")),
        ({"probes": {"10.0.0.1:6379": Probe("10.0.0.1:6379", "timeout")}}, ("b", None, "reach-head")),
        ({"model": ModelDir("/m", False, None, None, 100000)}, ("b", None, "model")),
        ({"model": ModelDir("/m", True, "e" * 64, {}, 100000)}, ("b", None, "model-config")),
        ({"model": ModelDir("/m", True, "f" * 64, {}, 10)}, ("b", None, "disk")),
        ({"clock_offset_s": 5.0}, ("b", None, "clock")),
        ({"hccn_conf": None}, ("b", None, "hccn-conf")),  # the file is missing
        ({"tool_latency": Latency(2500, 4, 2, 8)}, ("b", None, "tool-latency")),
        ({"tool_latency": Latency(2500, 1900, 2, 8)}, None),  # everything is slow, not the driver
        ({"tool_latency": Latency(2500, 90, 120, 2)}, None),  # 120 runnable on 2 CPUs: timing means nothing
        (
            {"tool_latency": Latency(2500, 5, 12, 2)},
            ("b", None, "tool-latency"),
        ),  # busy-ish, but the driver is the slow part
        ({"clock_offset_s": 1.5, "clock_uncertainty_s": 0.8}, None),  # within the measurement error
    ],
)
def test_each_host_rule(inventory, change: dict, expected: tuple | None) -> None:
    views = [healthy(inventory, "a"), healthy(inventory, "b", **change), healthy(inventory, "c")]
    assert [(p.host, p.device, p.check) for p in evaluate(inventory, views)] == ([expected] if expected else [])


def test_a_slow_tool_timed_only_on_a_starved_host_is_a_warning_not_silence(inventory) -> None:
    from toolkit.checks.rules import tool_latency_findings

    starved = healthy(inventory, "b", tool_latency=Latency(2500, 90, 120, 2, samples=4))
    (w,) = tool_latency_findings(starved)
    assert w.check == "tool-latency-unjudged"
    assert "120 processes were runnable on 2 CPUs in each of 4 samples" in w.observed
    assert tool_latency_findings(healthy(inventory, "b", tool_latency=Latency(300, 90, 120, 2))) == []
    assert [p.check for p in tool_latency_findings(healthy(inventory, "b", tool_latency=Latency(2500, 4, 2, 8)))] == [
        "tool-latency"
    ]


@pytest.mark.parametrize(
    "field,value,check",
    [("health", "Socket fail", "net-health"), ("optical", "not present", "optical"), ("ip", None, "ip")],
)
def test_each_device_rule(inventory, field: str, value: object, check: str) -> None:
    views = [healthy(inventory, n) for n in "abc"]
    setattr(views[2].devices[0], field, value)
    assert [(p.host, p.device, p.check) for p in evaluate(inventory, views)] == [("c", 0, check)]


def test_npu_rules(inventory) -> None:
    sick = tuple(Chip(d, 0, d, "910B3", "Critical" if d == 1 else "OK", None, 3000, 65536) for d in range(8))
    wrong_kind = tuple(Chip(d, 0, d, "910B4", "OK", None, 3000, 32768) for d in range(8))
    views = [
        healthy(inventory, "a", npu_smi=NpuInfo(sick, (), False)),
        healthy(inventory, "b", npu_smi=NpuInfo(wrong_kind, (), False)),
        healthy(inventory, "c", npu_smi=NpuInfo(sick[:1], (), False)),
    ]
    got = [(p.host, p.device, p.check) for p in evaluate(inventory, views)]
    assert got == [("a", 1, "npu-health"), ("b", None, "hardware"), ("c", 1, "npu-present")]


def test_ping_plans() -> None:
    ips = {h: {d: f"29.1.{d}.{i}" for d in range(2)} for i, h in enumerate("abcd")}
    rail = pings.plan(ips, "rail")
    assert len(rail["a"]) == 2 * 3 and all(t.device == t.peer_device for t in rail["a"])
    ring = pings.plan(ips, "ring")
    assert [(t.peer_host, t.device) for t in ring["d"]] == [("a", 0), ("a", 1)]
    full = pings.plan(ips, "full")
    assert len(full["b"]) == 2 * 3 * 2
    assert all(t.peer_host != "b" for t in full["b"])
    assert pings.plan(ips, "full", only="b") == {"b": full["b"]}
    partial = pings.plan({"a": {0: "x"}, "b": {1: "y"}}, "rail")
    assert partial == {"a": [], "b": []}
    with pytest.raises(ValueError):
        pings.plan(ips, "star")


@pytest.mark.parametrize(
    "nic,address,flagged",
    [
        ("docker0", "10.0.0.2", True),
        ("tun0", "10.8.0.2", True),
        ("enp67s0f5", "172.17.0.2", True),  # docker's default bridge range
        ("eth0", "198.19.0.1", True),  # the proxy/TUN benchmark range 198.18.0.0/15
        ("enp67s0f5", "10.213.1.11", False),
        ("bond0", "172.18.0.5", False),
    ],
)
def test_bridge_or_tunnel_addresses(nic: str, address: str, flagged: bool) -> None:
    from toolkit.checks.rules import bridge_or_tunnel

    assert bridge_or_tunnel(nic, address) is flagged


def test_hccn_conf_must_hold_each_cards_ip(inventory) -> None:
    views = [healthy(inventory, n) for n in "abc"]
    views[1].facts["hccn_conf"] = {0: "29.1.0.12", 1: "29.9.9.9"}  # card 1's entry is stale
    views[2].facts["hccn_conf"] = {0: "29.1.0.13"}  # card 1 has no entry
    found = {(p.host, p.device, p.check): p for p in evaluate(inventory, views)}
    assert set(found) == {("b", 1, "hccn-conf"), ("c", 1, "hccn-conf")}
    assert "address_1=29.9.9.9, hccn_tool -ip -g says 29.1.1.12" in found[("b", 1, "hccn-conf")].observed
    assert "no address_1" in found[("c", 1, "hccn-conf")].observed


def test_hccn_conf_parser() -> None:
    from toolkit.facts import Raw
    from toolkit.facts.hccn import NO_CONF, parse_hccn_conf

    text = "address_0=29.1.137.205\nnetmask_0=255.255.0.0\n# comment\n address_12 = 29.1.1.1 \ngarbage\n"
    assert parse_hccn_conf(Raw(text, 0)) == {0: "29.1.137.205", 12: "29.1.1.1"}
    assert parse_hccn_conf(Raw(NO_CONF + "\n", 0)) is None


def test_a_port_the_plan_binds_held_by_another_program_is_named(inventory) -> None:
    from toolkit.facts.ports import Listener
    from toolkit.planner.plan import ports_for

    ports = ports_for("dp", inventory)
    views = [
        healthy(
            inventory,
            "b",
            listeners=[
                Listener(13345, "0.0.0.0", 4242, "python3 -m http.server 13345"),
                Listener(8000, "0.0.0.0", 157, "/venv/bin/python3 /venv/bin/vllm serve /m --port 8000"),  # ours
                Listener(8000, "0.0.0.0", 160, "VLLM::ApiServer_0"),  # ours: a DP head's API server process
                Listener(13345, "10.0.0.1", 161, "VLLM::DPCoordinator"),  # ours
                Listener(60003, "0.0.0.0", None, ""),  # a process of another user, in HCCL's range
                Listener(6379, "0.0.0.0", 99, "redis-server *:6379"),  # Ray's port: not used by dp
            ],
        )
    ]
    found = [(p.host, p.check, p.observed) for p in evaluate(inventory, views, ports)]
    assert [(h, c) for h, c, _ in found] == [("b", "ports"), ("b", "ports")]
    assert (
        "port 13345 (the data-parallel RPC port)" in found[0][2] and "pid 4242: python3 -m http.server" in found[0][2]
    )
    assert "port 60003 (HCCL's base port range)" in found[1][2] and "another user" in found[1][2]
    assert evaluate(inventory, views) == []  # check-net without a plan's ports: nothing to compare
    unknown = [healthy(inventory, "b", listeners=None)]  # no `ss` on the host
    assert evaluate(inventory, unknown, ports) == []


def test_a_path_that_only_times_out_says_the_host_may_be_loaded_not_only_a_firewall(inventory) -> None:
    """A probe that timed out twice (3 s, then 10 s) is a problem that names both causes; a refusal or
    an unreachable route still names the firewall or route alone."""
    from toolkit.facts.net import Latency, Probe

    timeout = {"10.0.0.1:6379": Probe("10.0.0.1:6379", "timeout", retried=True)}
    [quiet] = evaluate(inventory, [healthy(inventory, "a"), healthy(inventory, "b", probes=timeout)])
    assert quiet.check == "reach-head" and "no answer within 3 s, nor within 10 s when tried again" in quiet.observed
    assert (quiet.hint or "").startswith("only timeouts, no refusal: either a firewall drops the packets, or b or")
    assert "too loaded to answer in time" in (quiet.hint or "")
    busy = healthy(inventory, "b", probes=timeout, tool_latency=Latency(300, 200, 40, 2))
    [loaded] = evaluate(inventory, [healthy(inventory, "a"), busy])
    assert "(b was busy: 40 runnable processes on 2 CPUs)" in loaded.observed
    unreachable = {"10.0.0.1:6379": Probe("10.0.0.1:6379", "unreachable")}
    [route] = evaluate(inventory, [healthy(inventory, "a"), healthy(inventory, "b", probes=unreachable)])
    assert route.observed.endswith(": unreachable") and (route.hint or "").startswith("open the firewall")


def test_a_device_held_by_a_foreign_process_is_named_with_pid_command_and_hbm(inventory) -> None:
    """Before a start, a device the plan uses must be free: a process that is not a deployment's
    (vLLM, Ray) is named with its pid, command and memory; a deployment's own (a re-run of `up`) is not."""
    from toolkit.facts.npu import Chip, NpuInfo, NpuProcess

    chips = tuple(Chip(d, 0, d, "910B3", "OK", None, 3300 + (6000 if d == 1 else 0), 65536) for d in range(8))
    held = NpuInfo(chips, (NpuProcess(1, 0, 4711, "python3", 6000), NpuProcess(2, 0, 99, "python3", 3000)), False)
    holders = {4711: "python3 train.py --epochs 3", 99: "/venv/bin/python3 /venv/bin/vllm serve /m"}
    b = healthy(inventory, "b", npu_smi=held, npu_holders=holders)
    [problem] = evaluate(inventory, [healthy(inventory, "a"), b])
    assert (problem.host, problem.device, problem.check) == ("b", 1, "npu-memory")
    assert (
        problem.observed
        == "NPU 1 is held by pid 4711 (python3 train.py --epochs 3, 6000 MB); HBM 9300 of 65536 MB in use"
    )
    assert "kill 4711" in (problem.hint or "") and "free memory on device is less than desired" in (problem.hint or "")
    gone = healthy(inventory, "b", npu_smi=held, npu_holders={99: holders[99]})  # 4711's command unreadable
    [unnamed] = evaluate(inventory, [healthy(inventory, "a"), gone])
    assert "pid 4711 (python3, 6000 MB)" in unnamed.observed  # npu-smi's process name stands in
