"""`weights sync` against what operators do today, on simulated hosts whose links are shaped to
the same rate (`tc tbf` on every host's cluster NIC, egress: each hop of a chain, the seed's one
link for a star):

- ours: `weights sync --from SEED` (a pipelined chain, SHA-256 and safetensors headers checked on
  every host, a manifest written);
- a parallel `scp` star from the seed (one `scp -r` per target, all at once: the seed's link
  carries every copy);
- a sequential `rsync` loop from the seed (one target after the other);
- the bound: the checkpoint's size at the link rate (one copy's time).

to 2, 4 and 8 target hosts, each method in turn within a run (the order rotates from run to run),
the targets' copies removed before each; median of --runs. Every copy is checked (names and sizes
on every target) after it is timed. Each simulated host's /tmp is its own tmpfs (RAM): the
checkpoint lives in memory on every host, which bounds its size on a 24 GiB machine.

Writes docs/weights-benchmarks.md. Run as root: `make bench-weights`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from _report import cli, machine, publish  # noqa: E402
from _ssh import Ssh  # noqa: E402

from toolkit.sim import cluster  # noqa: E402
from toolkit.sim.cluster import SimOptions  # noqa: E402
from toolkit.sim.layout import MAIN_NIC, NETNS_PREFIX, default_root  # noqa: E402

SIM_ROOT = default_root(ROOT)
NAME = "benchwt"
MODEL = "/tmp/models/ckpt"  # each simulated host's own /tmp: its local disk here


def checkpoint(folder: Path, mib: int, shards: int) -> int:
    """config.json and `shards` safetensors files of random bytes with valid headers; total bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4096}))
    per = (mib << 20) // shards
    for i in range(shards):
        header = json.dumps({"__metadata__": {"format": "pt", "shard": str(i)}}).encode()
        with (folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors").open("wb") as f:
            f.write(struct.pack("<Q", len(header)) + header)
            for _ in range(per >> 20):
                f.write(os.urandom(1 << 20))
    return sum(p.stat().st_size for p in folder.iterdir())


def shape(hosts: int, rate: str | None) -> None:
    """Every host's cluster NIC at `rate` (egress), or unshaped."""
    for i in range(1, hosts + 1):
        cmd = ["ip", "netns", "exec", f"{NETNS_PREFIX}{NAME}-{i}", "tc", "qdisc"]
        if rate is None:
            subprocess.run([*cmd, "del", "dev", MAIN_NIC, "root"], capture_output=True)
        else:
            tbf = ["tbf", "rate", rate, "burst", "256kb", "latency", "400ms"]
            subprocess.run([*cmd, "replace", "dev", MAIN_NIC, "root", *tbf], check=True, capture_output=True)


def rate_bits(rate: str) -> float:
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
    for unit, factor in units.items():
        if rate.lower().endswith(unit):
            return float(rate[: -len(unit)]) * factor
    raise SystemExit(f"--rate {rate}: give kbit, mbit or gbit")


class Bench:
    """The cluster (a seed and up to --max targets), its inventory and warm OpenSSH connections."""

    def __init__(self, ssh: Ssh, inv_path: Path, data: dict[str, Any], key: str, known: Path) -> None:
        self.ssh, self.inv_path, self.data, self.key, self.known = ssh, inv_path, data, key, known
        self.addresses = [h["address"] for h in data["hosts"]]

    @property
    def seed(self) -> str:
        return self.addresses[0]

    def inventory(self, targets: int) -> Path:
        """The seed and the first `targets` other hosts (beside the cluster's own inventory)."""
        data = copy.deepcopy(self.data)
        data["hosts"] = data["hosts"][: targets + 1]
        path = self.inv_path.with_name(f"{NAME}-{targets}.yaml")
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def on_all(self, addresses: list[str], script: str) -> None:
        procs = [subprocess.Popen([*self.ssh.base, f"root@{a}", script]) for a in addresses]
        if any(p.wait() != 0 for p in procs):
            raise SystemExit(f"{script!r} failed on one of {addresses}")

    def clear(self, targets: list[str]) -> None:
        self.on_all(targets, f"rm -rf {MODEL} && mkdir -p {os.path.dirname(MODEL)}")

    def listing(self, address: str) -> dict[str, int]:
        out = self.ssh.run(address, f"cd {MODEL} && find . -maxdepth 1 -type f -name '[!.]*' -printf '%f %s\\n'")
        return {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines() if line.strip()}

    def seed_ssh(self) -> str:
        """The OpenSSH options the seed uses to reach the targets (the cluster's key and known_hosts,
        readable from every simulated host: only /tmp and /dev/shm are a host's own)."""
        return shlex.join(["-i", self.key, "-o", f"UserKnownHostsFile={self.known}", "-o", "BatchMode=yes"])

    def on_seed(self, script: str) -> None:
        out = self.ssh.run(self.seed, script)
        if out.returncode != 0:
            raise SystemExit(f"baseline failed on the seed: {out.stderr[-2000:]}")


def ours(bench: Bench, targets: list[str]) -> float:
    wall, report = cli("weights", "sync", str(bench.inventory(len(targets))), "--from", bench.data["hosts"][0]["name"])
    if not report.get("ok"):
        raise SystemExit(f"weights sync failed: {json.dumps(report)[:3000]}")
    return wall


def scp_star(bench: Bench, targets: list[str]) -> float:
    opts = bench.seed_ssh()
    jobs = " ".join(f"( scp -q -r {opts} {MODEL} root@{a}:{os.path.dirname(MODEL)}/ ) & jobs+=($!);" for a in targets)
    script = f'jobs=(); {jobs} for j in "${{jobs[@]}}"; do wait "$j" || exit 1; done'
    started = time.monotonic()
    bench.on_seed(f"bash -c {shlex.quote(script)}")
    return time.monotonic() - started


def rsync_loop(bench: Bench, targets: list[str]) -> float:
    ssh = shlex.quote(f"ssh {bench.seed_ssh()}")
    script = "; ".join(f"rsync -a -e {ssh} {MODEL}/ root@{a}:{MODEL}/ || exit 1" for a in targets)
    started = time.monotonic()
    bench.on_seed(script)
    return time.monotonic() - started


METHODS: dict[str, Callable[[Bench, list[str]], float]] = {
    "ascend-deploy weights sync": ours,
    "parallel scp star": scp_star,
    "sequential rsync loop": rsync_loop,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2,4,8", help="target host counts")
    parser.add_argument("--mib", type=int, default=1024, help="checkpoint size (every host holds it in RAM)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rate", default="500mbit", help="every host's link (tc tbf)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "weights-benchmarks.md")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    sizes = [int(x) for x in args.sizes.split(",")]
    inv_path = SIM_ROOT / "bench-weights.yaml"
    opts = SimOptions(name=NAME, hosts=max(sizes) + 1, root=SIM_ROOT, inventory=inv_path, devices=[0])
    cluster.down(opts)
    cluster.up(opts)
    data = yaml.safe_load(inv_path.read_text())
    data["model"] = {"path": MODEL}
    inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
    known = (inv_path.parent / data["known_hosts"]).resolve()
    key = data["defaults"]["key_file"]
    times: dict[tuple[str, int], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(dir="/run") as ctl, tempfile.TemporaryDirectory(dir=str(SIM_ROOT)) as work:
            ssh = Ssh(ctl, key, known)
            bench = Bench(ssh, inv_path, data, key, known)
            for a in bench.addresses:
                ssh.open(a)
            try:
                size = checkpoint(Path(work) / "ckpt", args.mib, args.shards)
                wall, seeded = cli("weights", "sync", str(bench.inventory(0)), "--from-local", str(Path(work) / "ckpt"))
                if not seeded.get("ok"):
                    raise SystemExit(f"seeding failed: {seeded}")
                expected = bench.listing(bench.seed)
                print(f"seed holds {len(expected)} files, {size / 2**30:.2f} GiB ({wall:.1f} s)", flush=True)
                shape(len(bench.addresses), args.rate)
                names = list(METHODS)
                for run in range(args.runs):
                    for n in sizes:
                        targets = bench.addresses[1 : n + 1]
                        order = names[run % len(names) :] + names[: run % len(names)]  # alternate
                        for method in order:
                            bench.clear(targets)
                            took = METHODS[method](bench, targets)
                            wrong = [a for a in targets if bench.listing(a) != expected]
                            if wrong:
                                raise SystemExit(f"{method}: {wrong} do not hold the checkpoint")
                            times.setdefault((method, n), []).append(took)
                            print(f"run {run + 1}, {n} hosts, {method}: {took:.1f} s", flush=True)
            finally:
                shape(len(bench.addresses), None)
                ssh.close()
    finally:
        cluster.down(opts)
    report(args, sizes, size, times)


def report(args: argparse.Namespace, sizes: list[int], size: int, times: dict[tuple[str, int], list[float]]) -> None:
    bound = size * 8 / rate_bits(args.rate)
    med = {k: statistics.median(v) for k, v in times.items()}
    ours_name, star, loop = list(METHODS)
    lines = [
        "# Weights sync: a checkpoint onto every host",
        "",
        f"Generated by `make bench-weights` (bench/weights_bench.py) on {machine()}: a checkpoint of "
        f"{size / 2**30:.2f} GiB ({args.shards} safetensors shards + config.json) from one seed host to N other "
        f"simulated hosts (real sshd each), every host's link shaped to {args.rate} (`tc tbf`, egress), the "
        f"methods in turn in the same run (order rotating), each target emptied before each; median of "
        f"{args.runs}. The bound is one copy at the link rate: {bound:.1f} s.",
        "",
        "| target hosts | bound (s) | ascend-deploy weights sync (s) | x bound | parallel scp star (s) | "
        "sequential rsync loop (s) | scp star / ours | rsync loop / ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        o, s, r = med[(ours_name, n)], med[(star, n)], med[(loop, n)]
        lines.append(
            f"| {n} | {bound:.1f} | {o:.1f} | {o / bound:.2f}x | {s:.1f} | {r:.1f} | {s / o:.1f}x | {r / o:.1f}x |"
        )
    top = max(sizes)
    lines += [
        "",
        f"Targets (issue 29): {top} hosts at most 1.3x the bound: {med[(ours_name, top)] / bound:.2f}x; at least 4x "
        f"faster than the scp star: {med[(star, top)] / med[(ours_name, top)]:.1f}x.",
        "",
        "- every run (s): "
        + "; ".join(f"{m}, {n} hosts: {', '.join(f'{x:.1f}' for x in times[(m, n)])}" for m in METHODS for n in sizes),
        "- ours is the whole CLI command (start-up, one SSH connection per host, manifests compared, the chain, "
        "every host's SHA-256 and safetensors header checks, the manifest written); the baselines are the copy "
        "alone over warm OpenSSH connections, run on the seed, with no verification.",
        "- Why the chain stays near the bound: each host writes the stream to its disk while forwarding it to the "
        "next, so every link carries one copy at the same time; the star's seed link carries N copies, the loop "
        "sends them one after the other. What is over the bound: the CLI's start-up, the pipeline's fill and the "
        "hashing, which here shares 2 cores with every simulated host (on a real cluster each host hashes on its "
        "own cores).",
    ]
    publish(args.out, lines)


if __name__ == "__main__":
    main()
