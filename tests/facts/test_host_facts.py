"""Host fact parsers against captured raw output (golden files), and the one-round-trip batch."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from toolkit.facts import Fact, Raw, batch_script, raws, split_batch
from toolkit.facts.host import (
    parse_cpu_model,
    parse_ip_addr,
    parse_key_value_version,
    parse_meminfo_mib,
    parse_os_release,
    parse_packages,
    parse_python_version,
)
from toolkit.facts.npu import npu_count, parse_info_list

GOLDEN = Path(__file__).parent / "golden"


def raw(name: str, code: int = 0) -> Raw:
    return Raw((GOLDEN / name).read_text(), code)


def test_os_release() -> None:
    assert parse_os_release(raw("os-release.debian12")) == "Debian GNU/Linux 12 (bookworm)"
    assert parse_os_release(Raw('NAME="openEuler"\nVERSION_ID="22.03"\n', 0)) == "openEuler 22.03"
    assert parse_os_release(Raw("", 1)) is None


def test_cpu_model_x86_and_kunpeng() -> None:
    assert parse_cpu_model(raw("cpuinfo.x86"))  # whatever this machine is, a name, not a number
    assert not parse_cpu_model(raw("cpuinfo.x86")).isdigit()
    assert parse_cpu_model(raw("cpuinfo.kunpeng")) == "HUAWEI Kunpeng 920 7265"
    assert parse_cpu_model(Raw("processor : 0\nmodel : 1\n", 0)) is None


def test_meminfo() -> None:
    assert parse_meminfo_mib(Raw("MemTotal:       24683808 kB\nMemFree: 1 kB\n", 0)) == 24683808 // 1024
    assert parse_meminfo_mib(raw("meminfo")) > 0
    assert parse_meminfo_mib(Raw("garbage", 0)) is None


def test_ip_json_and_text_agree_on_addresses() -> None:
    nics_json = parse_ip_addr(raw("ip-j-addr.json"))
    nics_text = parse_ip_addr(raw("ip-o-addr.txt"))
    assert {n.name: n.addresses for n in nics_json if n.addresses} == {n.name: n.addresses for n in nics_text}
    lo = next(n for n in nics_json if n.name == "lo")
    assert "127.0.0.1/8" in lo.addresses


def test_ip_server_nic_with_secondary_subnet() -> None:
    text = """[{"ifindex":2,"ifname":"enp67s0f5","operstate":"UP","address":"aa:bb:cc:dd:ee:01",
      "addr_info":[{"family":"inet","local":"10.170.22.18","prefixlen":24},{"family":"inet","local":"192.168.7.2","prefixlen":24}]},
      {"ifindex":3,"ifname":"enp67s0f6","operstate":"DOWN","addr_info":[]}]"""
    nics = parse_ip_addr(Raw(text, 0))
    assert nics[0].name == "enp67s0f5" and nics[0].addresses == ("10.170.22.18/24", "192.168.7.2/24")
    assert nics[1].state == "DOWN" and nics[1].mac is None


def test_ip_partial_or_broken_output_is_tolerated() -> None:
    assert parse_ip_addr(Raw("", 1)) == []
    assert parse_ip_addr(Raw('[{"ifname": "eth0"', 0)) == []


def test_npu_smi_info_l_a2_and_a3() -> None:
    a2 = parse_info_list(raw("npu-smi-info-l.a2"))
    assert a2 is not None and a2.total == 8 and [c.npu_id for c in a2.cards] == list(range(8))
    assert all(c.chip_count == 1 for c in a2.cards)
    assert a2.cards[0].product == "IT21PDDA01"
    a3 = parse_info_list(raw("npu-smi-info-l.a3"))
    assert a3 is not None and a3.total == 8 and all(c.chip_count == 2 for c in a3.cards)
    assert npu_count(raw("npu-smi-info-l.a2")) == 8
    assert npu_count(Raw("", 127)) is None
    assert npu_count(Raw("bash: npu-smi: command not found\n", 127)) is None


def test_versions() -> None:
    assert parse_key_value_version(raw("driver-version.info")) == "24.1.rc2"
    assert parse_key_value_version(raw("ascend_toolkit_install.info")) == "8.0.RC2"
    assert parse_python_version(Raw("Python 3.11.7\n", 0)) == "3.11.7"
    assert parse_python_version(Raw("bash: python3: command not found", 127)) is None
    pkgs = parse_packages(Raw("vllm==0.11.0\nvllm-ascend==0.11.0rc1\ntorch==\nray==2.60.0\nnoise\n", 0))
    assert pkgs["vllm"] == "0.11.0" and pkgs["vllm-ascend"] == "0.11.0rc1"
    assert pkgs["torch"] is None and pkgs["ray"] == "2.60.0" and pkgs["torch-npu"] is None


def test_batch_round_trip_through_real_bash() -> None:
    facts = [
        Fact("one", "echo hello; echo world", lambda r: r),
        Fact("fails", "echo partial; echo oops >&2; exit 3", lambda r: r),
        Fact("marker-lookalike", "echo '@@notthenonce@@ rc=0'", lambda r: r),
        Fact("empty", "true", lambda r: r),
        Fact("no-newline", "printf 'last line without newline'", lambda r: r),
        Fact("slow", "echo started; echo from-background; exit 4", lambda r: r, background=True),
        Fact("slow-too", "printf 'x'", lambda r: r, background=True),
    ]
    script = batch_script(facts, "abc123")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout
    parts = split_batch(out, "abc123")
    assert parts["one"] == Raw("hello\nworld\n", 0)
    assert parts["fails"] == Raw("partial\n", 3)  # stderr dropped, exit code kept
    assert parts["marker-lookalike"].stdout == "@@notthenonce@@ rc=0\n"
    assert parts["empty"] == Raw("", 0)
    assert parts["no-newline"] == Raw("last line without newline\n", 0)
    assert parts["slow"] == Raw("started\nfrom-background\n", 4) and parts["slow-too"] == Raw("x\n", 0)
    assert out.count("@@abc123@@ rc=") == len(facts)  # every fact once, background ones after the rest


def test_batch_background_facts_run_alongside_the_others() -> None:
    # the foreground fact waits (bounded) for a file the background fact creates: it can only
    # finish with exit 0 if both really run at the same time
    with tempfile.TemporaryDirectory() as tmp:
        flag = f"{tmp}/flag"
        facts = [
            Fact("waits", f"for i in $(seq 1 100); do [ -e {flag} ] && exit 0; sleep 0.05; done; exit 1", lambda r: r),
            Fact("creates", f"touch {flag}; echo made", lambda r: r, background=True),
        ]
        out = subprocess.run(
            ["bash", "-c", batch_script(facts, "n1")], capture_output=True, text=True, timeout=30
        ).stdout
    parts = split_batch(out, "n1")
    assert parts["waits"] == Raw("", 0) and parts["creates"] == Raw("made\n", 0)


def test_a_command_two_facts_share_runs_once_and_each_parses_it(tmp_path: Path) -> None:
    """`npu-smi info -l` read as the card count and as the card list: one run, two parsers."""
    counter = tmp_path / "runs"
    command = f"echo run >> {counter}; echo 'Total Count : 8'"
    facts = [
        Fact("count", command, lambda r: r.stdout.split(":")[1].strip()),
        Fact("other", "echo other", lambda r: r.stdout.strip()),
        Fact("lines", command, lambda r: len(r.stdout.splitlines())),
    ]
    out = subprocess.run(["bash", "-c", batch_script(facts, "n2")], capture_output=True, text=True).stdout
    assert counter.read_text() == "run\n" and out.count("@@n2@@ rc=") == 2
    found = raws(facts, split_batch(out, "n2"))
    assert found["count"] == found["lines"] == Raw("Total Count : 8\n", 0) and found["other"].stdout == "other\n"
    assert raws(facts, {})["lines"] == Raw("", 255)  # no output: each fact failed, none missing


def test_batch_truncated_output_leaves_missing_facts_absent() -> None:
    parts = split_batch("@@n@@ a\nx\n@@n@@ rc=0\n@@n@@ b\npartial", "n")
    assert parts == {"a": Raw("x\n", 0)}
