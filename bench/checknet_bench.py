"""check-net against the best plain-OpenSSH shell script doing the same work, same run, same hosts.

The baseline opens one multiplexed OpenSSH connection per host (ControlMaster, in the run, same
key exchange as paramiko: curve25519-sha256), then runs exactly check-net's remote commands in
the same rounds, all hosts in parallel: the facts batch (npu-smi, the 8 hccn_tool reads of every
device with devices in parallel, NICs, routes, probes, versions, model), a clock read, then the
card pings (rail or ring; one at a time per device). Its ping plan is computed before the timer
starts, so it is a lower bound. All simulated hosts share this machine's cores, so the hosts' own
work is part of both numbers.
Writes docs/checknet-benchmarks.md. Run as root: `make bench-checknet`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from _report import machine, publish  # noqa: E402
from toolkit.sim import cluster  # noqa: E402
from toolkit.sim.cluster import SimOptions  # noqa: E402

SIM_ROOT = ROOT / ".sim"
CLI = [str(ROOT / ".venv" / "bin" / "python"), "-m", "toolkit"]

def remote_scripts(inv_path: Path, mode: str) -> dict[str, tuple[str, str]]:
    """check-net's own remote scripts per host (facts batch, pings), wrapped exactly as the tool
    wraps them, so both sides run the same commands on the hosts."""
    from toolkit.checks import pings
    from toolkit.facts import batch_script
    from toolkit.inventory import load_inventory
    from toolkit.remote import bash, compose
    from toolkit.steps.preflight import preflight_fact_list

    inv = load_inventory(inv_path)
    card_ips = {h.name: {d: ip for d, ip in zip(range(64), _card_ips(inv_path, h.name)) if d in h.devices} for h in inv.hosts}
    plan = pings.plan(card_ips, mode)
    out = {}
    for host in inv.hosts:
        env = dict(host.env)
        facts = compose(batch_script(preflight_fact_list(inv, host, "bench"), "bench"), env=env, setup=host.setup)
        ping = compose(pings.script(plan[host.name], "bench", 3), env=env, setup=host.setup)
        out[host.address] = (bash(facts, timeout=180), bash(ping, timeout=900))
    return out


def _card_ips(inv_path: Path, host: str) -> list[str]:
    import json

    state = json.loads((SIM_ROOT / "benchnet" / "state.json").read_text())
    return next(h["card_ips"] for h in state["hosts"] if h["name"] == host)


def baseline_script(scripts: dict[str, tuple[str, str]], key: str, known: str, ctl: Path) -> str:
    """bash + OpenSSH multiplexing: connections opened in the run, then the same two rounds."""
    ssh = f"ssh -i {key} -o UserKnownHostsFile={known} -o BatchMode=yes -o KexAlgorithms=curve25519-sha256 -o ControlPath={ctl}/%h"
    lines = ["set -u"]
    hosts = list(scripts)
    lines.append(" ".join(f"{ssh} -o ControlMaster=yes -o ControlPersist=300 -fN root@{h} &" for h in hosts) + " wait")
    for phase in (0, 1):
        if phase == 1:
            lines.append(" ".join(f"{ssh} root@{h} 'date +%s.%N' >/dev/null &" for h in hosts) + " wait")
        lines.append(" ".join(f"{ssh} root@{h} {shlex.quote(scripts[h][phase])} >/dev/null &" for h in hosts) + " wait")
    lines.append(" ".join(f"{ssh} -O exit root@{h} 2>/dev/null;" for h in hosts))
    return "\n".join(lines)


def timed(cmd: list[str], **kw: object) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds and the controller's CPU seconds (children of this process) for one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="8,32,64")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ping-ms", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "checknet-benchmarks.md")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        inv_path = SIM_ROOT / f"bench-checknet-{size}.yaml"
        opts = SimOptions(name="benchnet", hosts=size, root=SIM_ROOT, inventory=inv_path, ping_ms=args.ping_ms)
        cluster.down(opts)
        cluster.up(opts)
        try:
            inv = yaml.safe_load(inv_path.read_text())
            key = inv["defaults"]["key_file"]
            known = str((inv_path.parent / inv["known_hosts"]).resolve())
            for mode in ("rail", "ring"):
                scripts = remote_scripts(inv_path, mode)
                ours, theirs, our_cpu = [], [], []
                for _ in range(args.runs):
                    wall, cpu, proc = timed([*CLI, "check-net", str(inv_path), "--mode", mode, "--json"], cwd=ROOT)
                    if proc.returncode != 0:
                        raise SystemExit(f"check-net failed at {size} hosts:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
                    ours.append(wall)
                    our_cpu.append(cpu)
                    with tempfile.TemporaryDirectory(dir="/run") as ctl:
                        script = Path(ctl) / "baseline.sh"
                        script.write_text(baseline_script(scripts, key, known, Path(ctl)))
                        wall, _cpu, proc = timed(["bash", str(script)])
                        if proc.returncode != 0:
                            raise SystemExit(f"baseline failed: {proc.stderr[-2000:]}")
                        theirs.append(wall)
                med = statistics.median
                rows.append((size, mode, med(ours), med(theirs), med(our_cpu) / size * 1000))
                print(rows[-1], flush=True)
        finally:
            cluster.down(opts)
    lines = [
        "# check-net benchmarks",
        "",
        f"Generated by `make bench-checknet` (bench/checknet_bench.py) on {machine()}; "
        f"simulated hosts with {args.ping_ms} ms per ping packet (3 packets per ping); median of {args.runs} runs.",
        "",
        "Baseline: the best plain-OpenSSH shell script doing the same hccn_tool and npu-smi work with the same on-host "
        "concurrency (one multiplexed connection per host, opened in the run, key exchange curve25519-sha256 like paramiko). "
        "All simulated hosts share this machine's cores, so thousands of simulated tool processes are part of both numbers.",
        "",
        "| hosts | mode | check-net (s) | OpenSSH script (s) | ratio | target | controller CPU per host (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, mode, ours, theirs, cpu in rows:
        lines.append(f"| {size} | {mode} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f}x | <= 1.25x | {cpu:.0f} |")
    publish(args.out, lines)


if __name__ == "__main__":
    main()
