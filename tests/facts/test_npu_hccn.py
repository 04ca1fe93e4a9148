"""npu-smi and hccn_tool parsers on captured output: A2 and A3 layouts, the simulator's output
(read back by the same parsers), real-host variations, stderr errors and partial output."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.checks.pings import parse_one
from toolkit.facts import Raw
from toolkit.facts.hccn import COMMANDS, DeviceFacts, parse_command, parse_devices
from toolkit.facts.model import parse_model
from toolkit.facts.net import parse_probes, parse_routes
from toolkit.facts.npu import holders, parse_info_list, parse_npu_smi_info

GOLDEN = Path(__file__).parent / "golden"
SIM_GOLDEN = Path(__file__).parents[1] / "integration" / "golden"


def raw(path: Path, code: int = 0) -> Raw:
    return Raw(path.read_text(), code)


def sim(name: str) -> Raw:
    """A simulator golden file with its placeholders filled in (subnet 7, host index 12)."""
    return Raw((SIM_GOLDEN / name).read_text().replace("{XX}", "07").replace("{X}", "7").replace("{I}", "12"), 0)


def test_npu_smi_a2_simulated() -> None:
    info = parse_npu_smi_info(raw(GOLDEN / "npu-smi-info.a2"))
    assert info is not None and not info.a3_layout
    assert [c.phy_id for c in info.chips] == list(range(8))
    assert all(c.name == "910B3" and c.health == "OK" and c.hbm_total_mb == 65536 for c in info.chips)
    assert info.chips[3].hbm_used_mb == 3321 and info.chips[3].bus_id == "0000:C7:00.0"
    assert info.processes == ()


def test_npu_smi_a3_simulated_with_a_process() -> None:
    info = parse_npu_smi_info(raw(GOLDEN / "npu-smi-info.a3-busy"))
    assert info is not None and info.a3_layout
    assert [c.phy_id for c in info.chips] == list(range(16))
    assert {c.name for c in info.chips} == {"Ascend910"}
    assert info.chip(5).npu == 2 and info.chip(5).chip == 1
    assert [(p.npu, p.chip, p.name, p.memory_mb) for p in info.processes] == [(2, 1, "python3", 3000)]


def test_npu_smi_real_910b_variant() -> None:
    info = parse_npu_smi_info(raw(GOLDEN / "npu-smi-info.real-910b"))
    assert info is not None and len(info.chips) == 2
    assert info.chips[0].hbm_used_mb == 37705 and info.chips[0].hbm_total_mb == 65536
    assert info.chips[1].health == "Warning"
    assert info.processes[0].pid == 2847153 and info.processes[0].memory_mb == 34373


def test_npu_smi_partial_and_error_output() -> None:
    info = parse_npu_smi_info(raw(GOLDEN / "npu-smi-info.truncated-indented"))
    assert info is not None and [c.phy_id for c in info.chips] == [0]
    assert parse_npu_smi_info(raw(GOLDEN / "npu-smi-info.error", 255)) is None
    assert parse_npu_smi_info(Raw("", 127)) is None


def test_npu_smi_info_l_simulated_matches_sim_golden() -> None:
    info = parse_info_list(sim("npu-smi-info-l.txt"))
    assert info is not None and info.total == 8 and len(info.cards) == 8


@pytest.mark.parametrize(
    "command,golden,field,value",
    [
        ("ip", "hccn-ip.txt", "ip", "29.7.0.12"),
        ("link", "hccn-link.txt", "link", "UP"),
        ("net_health", "hccn-net-health.txt", "health", "Success"),
        ("netdetect", "hccn-netdetect.txt", "netdetect", "29.7.0.1"),
        ("gateway", "hccn-gateway.txt", "gateway", "29.7.0.1"),
        ("tls", "hccn-tls.txt", "tls_switch", 0),
        ("optical", "hccn-optical.txt", "optical", "present"),
        ("lldp", "hccn-lldp.txt", "lldp_port", "400GE1/2/6:1"),
    ],
)
def test_hccn_parsers_read_the_simulator_back(command: str, golden: str, field: str, value: object) -> None:
    dev = DeviceFacts(5)
    parse_command(dev, command, sim(golden))
    assert getattr(dev, field) == value and dev.errors == {}


@pytest.mark.parametrize(
    "command,text,code,field,value",
    [
        ("ip", "ipaddr: 29.1.112.213\nnetmask: 255.255.0.0\n", 0, "ip", "29.1.112.213"),
        ("ip", "[INFO] hccn_tool start\nipaddr:29.1.112.213\nnetmask:255.255.0.0\n", 0, "netmask", "255.255.0.0"),
        ("link", "link status:   DOWN  \n", 0, "link", "DOWN"),
        ("link", "Link Status: up\n", 0, "link", "UP"),
        ("net_health", "net health status: Receive timeout\n", 0, "health", "Receive timeout"),
        (
            "tls",
            "dev_id:3, tls switch[1](0:disable, 1:enable), tls preconfigured[1](0:non-preset, 1:preset), tls alarm "
            "time threshold[60]days\n",
            0,
            "tls_switch",
            1,
        ),
        ("optical", "optical info:\npresent              : not present\n", 0, "optical", "not present"),
        ("gateway", "default gateway:29.1.0.1, Iface:eth3\n", 0, "gateway", "29.1.0.1"),
    ],
)
def test_hccn_parsers_tolerate_real_variations(command: str, text: str, code: int, field: str, value: object) -> None:
    dev = DeviceFacts(3)
    parse_command(dev, command, Raw(text, code))
    assert getattr(dev, field) == value


@pytest.mark.parametrize(
    "command,text",
    [
        ("ip", "Get ipconf failed, because no ip was preset there!\n"),
        ("gateway", "Get gateway failed, because no gateway was preset there!\n"),
        ("link", "hccn_tool is busy, please try again.\n"),
        ("link", "permission denied: pls check this cmd run permission.\n"),
        ("ip", "Get invalid device id.\n"),
        ("net_health", "The device is not exist!\n"),
    ],
)
def test_hccn_stderr_errors_are_recorded_not_parsed(command: str, text: str) -> None:
    dev = DeviceFacts(1)
    parse_command(dev, command, Raw(text, 255))
    assert dev.errors[command] == text.strip()
    assert dev.ip is None and dev.link is None


def test_device_batch_with_partial_output() -> None:
    out = (
        "@@n@@ 0 ip\nipaddr:29.1.0.11\nnetmask:255.255.0.0\n@@n@@ rc=0\n@@n@@ 0 link\nlink status: UP\n@@n@@ "
        "rc=0\n@@n@@ 0 net_health\nnet hea"
    )
    devs = parse_devices(Raw(out, 0), "n", [0, 1])
    assert devs[0].ip == "29.1.0.11" and devs[0].link == "UP"
    assert devs[0].errors["net_health"] == "no answer (output cut short)"
    assert set(devs[1].errors) == set(COMMANDS)


@pytest.mark.parametrize(
    "text,expected",
    [
        ((SIM_GOLDEN / "hccn-ping.txt").read_text(), (3, 3, 0.0, None)),
        (
            "device 0 PING 29.1.0.12\nrecv seq=0,time=0.114000ms\nrecv time out seq=1\nrecv seq=2,time=0.1ms\n3 "
            "packets transmitted, 2 received, 33.33% packet loss\n",
            (3, 2, 33.33, None),
        ),
        (
            "device 0 PING 29.1.0.12\nDestination Host Unreachable\n3 packets transmitted, 0 received, 100.00% packet "
            "loss\n",
            (3, 0, 100.0, "Destination Host Unreachable"),
        ),
        ("Execute failed: Link status is down.\n", (0, 0, 100.0, "Execute failed: Link status is down.")),
        ("device 0 PING 29.1.0.12\nrecv seq=0,time=0.1ms\n", (0, 0, 100.0, "no ping summary (exit 1)")),
    ],
)
def test_ping_output(text: str, expected: tuple) -> None:
    sent, received, loss, _rtt, error = parse_one(text, 1)
    assert (sent, received, loss, error) == expected


def test_routes_probes_model() -> None:
    routes = parse_routes(
        Raw(
            "10.0.0.2 dev enp67s0f5 src 10.0.0.1 uid 0 \n    cache \n10.9.0.1 via 10.0.0.254 dev eth1 src "
            "10.0.0.1\nRTNETLINK answers: Network is unreachable\n",
            0,
        )
    )
    assert routes == {"10.0.0.2": "enp67s0f5", "10.9.0.1": "eth1"}
    probes = parse_probes(Raw("10.0.0.1:6379 refused\n10.0.0.3:22 open\n10.0.0.4:22 timeout\n", 0))
    assert probes["10.0.0.1:6379"].reachable and probes["10.0.0.3:22"].reachable and not probes["10.0.0.4:22"].reachable
    again = parse_probes(Raw("10.0.0.1:6379 open retried\n10.0.0.4:22 timeout retried\n10.0.0.5:22 timeout\n", 0))
    assert again["10.0.0.1:6379"].reachable and again["10.0.0.1:6379"].retried  # slow, then answered: no problem
    assert again["10.0.0.4:22"].retried and not again["10.0.0.4:22"].reachable and not again["10.0.0.5:22"].retried
    parse = parse_model("/m")
    model = parse(
        Raw("present\n" + "a" * 64 + '\n--\n{"model_type": "llama"}\n\n--\n/dev/vda 263174212 1 82000000 70% /\n', 0)
    )
    assert model.present and model.config == {"model_type": "llama"} and model.free_mb == 82000000 // 1024
    missing = parse(Raw("absent\n--\n\n--\n/dev/vda 1 1 2048 1% /\n", 0))
    assert not missing.present and missing.config_sha256 is None and missing.free_mb == 2


def test_latency_parser() -> None:
    from toolkit.facts.net import parse_latency

    lat = parse_latency(Raw("1503 4 3 2\n", 0))
    assert lat is not None and lat.excess_ms == 1499 and not lat.host_busy
    assert parse_latency(Raw("12 3 40 2\n", 0)).host_busy and not parse_latency(Raw("12 3 16 2\n", 0)).host_busy
    assert parse_latency(Raw("bash: hccn_tool: not found", 1)) is None
    # sampled again while the host was starved: the first calm sample is judged, else the last
    lat = parse_latency(Raw("300 200 40 2\n1400 3 30 2\n1380 4 5 2\n", 0))
    assert lat is not None and (lat.tool_ms, lat.runnable, lat.samples) == (1380, 5, 3) and not lat.host_busy
    lat = parse_latency(Raw("300 200 40 2\n1400 3 30 2\n", 0))
    assert lat is not None and lat.host_busy and (lat.tool_ms, lat.samples) == (1400, 2)


def test_latency_command_samples_again_only_while_the_host_is_busy(tmp_path: Path) -> None:
    """Run for real in a local bash with a fake hccn_tool: a calm host is measured once; nproc
    faked to report a tiny machine makes every sample 'busy', so all LATENCY_SAMPLES are taken."""
    import os
    import subprocess

    from toolkit.facts.net import LATENCY_SAMPLES, latency_command, parse_latency

    (tmp_path / "hccn_tool").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "hccn_tool").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}

    def measure() -> str:
        cmd = ["bash", "-c", latency_command(0)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30).stdout

    calm = measure()  # procs_running here is a handful on a test machine, far below 8 per CPU
    lat = parse_latency(Raw(calm, 0))
    assert lat is not None and lat.samples == len(calm.splitlines()) >= 1
    (tmp_path / "nproc").write_text("#!/bin/sh\necho 0\n")  # 8 x 0 CPUs: any runnable process is 'busy'
    (tmp_path / "nproc").chmod(0o755)
    busy = measure()
    lat = parse_latency(Raw(busy, 0))
    assert lat is not None and lat.samples == LATENCY_SAMPLES and lat.runnable >= 1


def test_npu_holders_are_npu_smis_processes_with_their_commands() -> None:
    """The pids of npu-smi's process table (the captured A3 output) named by the host's process list;
    a pid the list lacks (gone, or hidden from this user) reads as '?'."""
    info = parse_npu_smi_info(Raw((GOLDEN / "npu-smi-info.a3-busy").read_text(), 0))
    assert info is not None and [p.pid for p in info.processes] == [51]  # the one process in the captured table
    assert holders(info, {51: "python3 -m vllm serve /m", 60: "bash"}) == {51: "python3 -m vllm serve /m"}
    assert holders(info, {}) == {51: "?"} and holders(None, {51: "x"}) == {}
