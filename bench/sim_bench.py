"""Benchmark of the simulated cluster (issue 3's numbers), written to docs/sim-benchmarks.md.

Measured in one run on this machine: `sim up` / `sim down` of N hosts against the floor of the
same namespaces and sshds made by the simplest possible script, PSS per idle host, leftovers
after `down`, and the CPU cost of one simulated tool call against an empty bash script.
Run as root: `make bench-sim` (or `python bench/sim_bench.py --hosts 64`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _report import machine, publish  # noqa: E402

from toolkit.sim import cluster, netns  # noqa: E402
from toolkit.sim.cluster import SimOptions  # noqa: E402
from toolkit.sim.hosttree import new_ed25519, write_private  # noqa: E402
from toolkit.sim.layout import default_root  # noqa: E402

SIM_ROOT = default_root(ROOT)


def floor_up_down(hosts: int, work: Path) -> tuple[float, float]:
    """The bare minimum: N netns + veths + N sshds (no host trees, no mounts); then removal."""
    work.mkdir(parents=True, exist_ok=True)
    key, _ = new_ed25519()
    write_private(work / "hostkey", key)
    started = time.monotonic()
    lines = ["link add name adfloorbr type bridge", "addr add 10.212.0.1/24 dev adfloorbr", "link set adfloorbr up"]
    for i in range(1, hosts + 1):
        lines += [
            f"netns add adfloor-{i}",
            f"link add adf{i} type veth peer name eth0 netns adfloor-{i}",
            f"link set adf{i} master adfloorbr",
            f"link set adf{i} up",
        ]
    netns.ip_batch(lines)
    procs = []
    for i in range(1, hosts + 1):
        cfg = work / f"sshd{i}"
        cfg.write_text(f"ListenAddress 10.212.0.{10 + i}\nHostKey {work / 'hostkey'}\nPidFile none\nUsePAM no\n")
        script = f"ip addr add 10.212.0.{10 + i}/24 dev eth0 && ip link set eth0 up && exec /usr/sbin/sshd -D -f {cfg}"
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    f"adfloor-{i}",
                    "unshare",
                    "--pid",
                    "--fork",
                    "--mount-proc",
                    "bash",
                    "-c",
                    script,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    import socket

    pending = set(range(1, hosts + 1))
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for i in list(pending):
            try:
                with socket.create_connection((f"10.212.0.{10 + i}", 22), timeout=0.2):
                    pending.discard(i)
            except OSError:
                pass
    up = time.monotonic() - started
    started = time.monotonic()
    spaces = [f"adfloor-{i}" for i in range(1, hosts + 1)]
    netns.kill_all(spaces)
    netns.delete(spaces, ["adfloorbr"])
    down = time.monotonic() - started
    return up, down


def pss_per_host(name: str) -> float:
    spaces = netns.netns_of(name)
    total_kb = 0
    for plist in netns.pids_in(spaces).values():
        for pid in plist:
            try:
                for line in open(f"/proc/{pid}/smaps_rollup"):
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
            except OSError:
                pass
    return total_kb / 1024 / max(1, len(spaces))


def tool_cpu(name: str, calls: int) -> dict[str, float]:
    """CPU ms per call inside a simulated host, the loop's own fork included, vs an empty script."""
    state = json.loads((SIM_ROOT / name / "state.json").read_text())
    pid1 = state["hosts"][0]["pid1"]
    peer = state["hosts"][1]["card_ips"][1]
    script = f"""
export PATH=/usr/local/Ascend/bin:$PATH
printf '#!/bin/bash\\nexit 0\\n' > /tmp/empty.sh; chmod +x /tmp/empty.sh
TIMEFORMAT='%3U %3S'
cpu() {{
  local t; t=$( {{ time ( for ((i=0;i<{calls};i++)); do "$@" >/dev/null 2>&1; done ) ; }} 2>&1 )
  set -- $t; echo "$1 $2"
}}
echo empty $(cpu /tmp/empty.sh)
echo link $(cpu hccn_tool -i 0 -link -g)
echo ip $(cpu hccn_tool -i 0 -ip -g)
echo ping $(cpu hccn_tool -i 1 -ping -g address {peer})
echo npusmi $(cpu npu-smi info -l)
"""
    out = subprocess.run(
        ["nsenter", "-t", str(pid1), "-m", "-u", "-n", "-p", "bash", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {}
    for line in out.splitlines():
        key, user, system = line.split()
        result[key] = (float(user) + float(system)) * 1000 / calls
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "sim-benchmarks.md")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    name = "bench"
    opts = SimOptions(
        name=name, hosts=args.hosts, root=SIM_ROOT, inventory=SIM_ROOT / "bench-inventory.yaml", ping_ms=0
    )
    cluster.down(opts)
    floors, ups, downs, floor_downs, pss, leftovers = [], [], [], [], [], []
    for _ in range(args.runs):
        fu, fd = floor_up_down(args.hosts, SIM_ROOT / "bench-floor")
        floors.append(fu)
        floor_downs.append(fd)
        t0 = time.monotonic()
        cluster.up(opts)
        ups.append(time.monotonic() - t0)
        time.sleep(1)  # idle
        pss.append(pss_per_host(name))
        cpu = tool_cpu(name, args.calls)
        t0 = time.monotonic()
        cluster.down(opts)
        downs.append(time.monotonic() - t0)
        leftovers.append(
            len(netns.netns_of(name))
            + len(netns.bridges_of(name))
            + sum(len(v) for v in netns.pids_in(netns.netns_of(name)).values())
        )
    med = statistics.median
    rows = [
        ("`sim up` wall (s)", med(ups), med(floors), "<= 10 s"),
        ("`sim down` wall (s)", med(downs), med(floor_downs), "<= 5 s"),
        ("PSS per idle host (MiB)", med(pss), None, "<= 5 MiB"),
        ("leftovers after down (netns+bridges+procs)", max(leftovers), None, "0"),
    ]
    lines = [
        "# Simulated cluster benchmarks",
        "",
        f"Generated by `make bench-sim` (bench/sim_bench.py) on {machine()}. "
        f"{args.hosts} hosts, median of {args.runs} runs. The floor is the same namespaces, veths and sshds made by "
        "the simplest script "
        "(no host trees, mounts or simulated tools), measured in the same run.",
        "",
        "| measure | ascend-deploy sim | floor | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for label, value, floor, target in rows:
        ratio = f"{value / floor:.2f}x" if floor else "-"
        lines.append(
            f"| {label} | {value:.2f} | {floor:.2f} | {ratio} | {target} |"
            if floor
            else f"| {label} | {value:.2f} | - | - | {target} |"
        )
    lines += [
        "",
        f"CPU per simulated tool call inside a host ({args.calls} calls each, the calling loop's fork included; "
        "target <= 5 ms):",
        "",
        "| call | CPU ms per call |",
        "|---|---|",
    ]
    for key, label in (
        ("empty", "empty bash script (floor)"),
        ("link", "hccn_tool -link -g"),
        ("ip", "hccn_tool -ip -g"),
        ("ping", "hccn_tool -ping (3 packets, 0 ms each)"),
        ("npusmi", "npu-smi info -l"),
    ):
        lines.append(f"| {label} | {cpu[key]:.2f} |")
    publish(args.out, lines)


if __name__ == "__main__":
    main()
