"""`upgrade`'s downtime against the time `up` needs to start the new deployment from stopped, on a
simulated host in containers (podman, the simulator's image and a `good` variant of it):

- downtime: a client sends a one-token completion every 0.5 s while `upgrade --set container.image=NEW`
  replaces the running OLD deployment; the downtime is the longest gap between two good answers;
- the bound: `down`, then `up --set container.image=NEW` from stopped, its wall time to ready (what
  an operator waits when upgrading by hand: stop, change the image, start);

each run does both, in turns (the order alternates from run to run); median of --runs. Writes
docs/upgrade-benchmarks.md with a rollback's report (the slow variant, gated on a baseline measured
in the same run). Run as root: `make bench-upgrade`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _report import cli, machine, publish  # noqa: E402

from toolkit.sim import cluster  # noqa: E402
from toolkit.sim.cluster import SimOptions  # noqa: E402
from toolkit.sim.layout import default_root  # noqa: E402
from toolkit.sim.plugins.sim_runtime import SIM_IMAGE  # noqa: E402

SIM_ROOT = default_root(ROOT)
NEW, SLOW = "localhost/ascend-sim/vllm-ascend:next", "localhost/ascend-sim/vllm-ascend:slow"


class Client:
    """A one-token completion every 0.5 s: when each was sent and whether it answered."""

    def __init__(self, endpoint: str) -> None:
        self.url = endpoint.rstrip("/") + "/completions"
        self.results: list[tuple[float, bool]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        body = json.dumps({"model": "tiny-llama", "prompt": "Hi", "max_tokens": 1}).encode()
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as resp:
                    ok = resp.status == 200
            except OSError:
                ok = False
            self.results.append((sent, ok))
            self.stop.wait(max(0.0, 0.5 - (time.monotonic() - sent)))

    def downtime(self) -> float:
        good = [t for t, ok in self.results if ok]
        return max((b - a for a, b in zip(good, good[1:])), default=0.0)


def with_client(endpoint: str, *args: str) -> tuple[float, dict]:
    client = Client(endpoint)
    client.thread.start()
    deadline = time.monotonic() + 60
    while not any(ok for _, ok in client.results):  # serving before the change starts
        if time.monotonic() > deadline:
            raise SystemExit("the running deployment does not answer")
        time.sleep(0.2)
    _, report = cli(*args)
    deadline = time.monotonic() + 60
    started = len(client.results)
    while not any(ok for _, ok in client.results[started:]):  # and after it
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing answers after the upgrade: {json.dumps(report)[:2000]}")
        time.sleep(0.2)
    client.stop.set()
    client.thread.join(timeout=10)
    return client.downtime(), report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "upgrade-benchmarks.md")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    from toolkit.sim.hostenv import build
    from toolkit.sim.hosttree import write_cann
    from toolkit.sim.image import build_image
    from toolkit.sim.variants import make_variant, remove_variants

    env = build(SIM_ROOT)
    build_image(SIM_ROOT, env.venv, write_cann, print)
    make_variant(SIM_ROOT, "good", NEW)
    make_variant(SIM_ROOT, "slow", SLOW, slow_ms=300)
    inv_path = SIM_ROOT / "bench-upgrade.yaml"
    opts = SimOptions(name="benchup", hosts=1, root=SIM_ROOT, inventory=inv_path, devices=[0], containers=True)
    cluster.down(opts)
    cluster.up(opts)
    inv = str(inv_path)
    downtimes: list[float] = []
    ups: list[float] = []
    try:
        _, first = cli("up", inv)  # a first start fills the page cache and vLLM's caches: untimed
        endpoint = str(first["endpoint"])
        for run in range(args.runs):
            order = ["upgrade", "up"] if run % 2 == 0 else ["up", "upgrade"]
            for what in order:
                cli("down", inv)
                cli("up", inv)  # OLD serves
                if what == "upgrade":
                    gap, report = with_client(endpoint, "upgrade", inv, "--set", f"container.image={NEW}")
                    if report.get("outcome") != "upgraded":
                        raise SystemExit(f"upgrade failed: {json.dumps(report)[:3000]}")
                    downtimes.append(gap)
                    print(f"run {run + 1}: upgrade downtime {gap:.1f} s", flush=True)
                else:
                    cli("down", inv)
                    wall, report = cli("up", inv, "--set", f"container.image={NEW}")
                    if not report.get("ok"):
                        raise SystemExit(f"up failed: {json.dumps(report)[:3000]}")
                    ups.append(wall)
                    print(f"run {run + 1}: up from stopped {wall:.1f} s", flush=True)
        rollback = measure_rollback(inv, endpoint)
    finally:
        cli("down", inv)
        cluster.down(opts)
        remove_variants(SIM_ROOT)
    write_report(args, downtimes, ups, rollback)


def measure_rollback(inv: str, endpoint: str) -> tuple[float, dict]:
    """The slow variant against a baseline of the running image: the gate fails, the rollback restores."""
    cli("down", inv)
    cli("up", inv)
    with tempfile.TemporaryDirectory() as out:
        bench = ["--rates", "inf", "--num-prompts", "16", "--input-len", "32", "--output-len", "16"]
        _, base = cli("bench", inv, *bench, "--out", out)
        baseline = str(Path(base["saved"]) / "result.json")
        gap, report = with_client(
            endpoint, "upgrade", inv, "--set", f"container.image={SLOW}", "--gate", baseline, "--min-ratio", "0.97"
        )
    if report.get("outcome") != "rolled-back":
        raise SystemExit(f"the slow image was not rolled back: {json.dumps(report)[:3000]}")
    return gap, report


def write_report(
    args: argparse.Namespace, downtimes: list[float], ups: list[float], rollback: tuple[float, dict]
) -> None:
    d, u = statistics.median(downtimes), statistics.median(ups)
    gap, rb = rollback
    (verdict,) = rb["gate"]["verdicts"]
    lines = [
        "# Upgrade: downtime against a start from stopped",
        "",
        f"Generated by `make bench-upgrade` (bench/upgrade_bench.py) on {machine()}: one simulated host, "
        f"vLLM in a podman container, {SIM_IMAGE} upgraded to a `good` variant of it (`sim image-variant`); "
        f"median of {args.runs}, the two measures alternating.",
        "",
        "| measure | seconds | target |",
        "|---|---|---|",
        f"| downtime of `upgrade` (longest gap between two answers of a client asking every 0.5 s) | {d:.1f} | |",
        f"| `down`, then `up` of the new image from stopped, to ready | {u:.1f} | |",
        f"| ratio | {d / u:.2f}x | <= 1.2x |",
        "",
        f"- every run: downtime {', '.join(f'{x:.1f}' for x in downtimes)} s; up from stopped "
        f"{', '.join(f'{x:.1f}' for x in ups)} s.",
        "- Where the outage goes: the old container's stop (vLLM's graceful shutdown) and the new one's start to "
        "ready; the new image on every host, the weights and the new plan's preflight are checked before, while "
        "the old deployment still serves (a start from stopped spends that time on its preflight instead).",
        "",
        "## A rollback (simulated, labelled)",
        "",
        f"The `slow` variant (every engine step 300 ms longer) gated on a baseline of the running image "
        f"measured in the same run (`--min-ratio 0.97`): the gate measured {verdict['measured']:.1f} output "
        f"tokens/s against the baseline's {verdict['baseline']:.1f} ({verdict['ratio']:.2f}x); the rollback took "
        f"{rb['timings'].get('rollback_s', 0):.1f} s; the client's longest gap over the whole upgrade and "
        f"rollback: {gap:.1f} s.",
        "",
        "```json",
        json.dumps(
            {
                **{k: rb.get(k) for k in ("outcome", "changes", "failure", "timings", "serving")},
                "gate": {k: v for k, v in rb["gate"].items() if k != "points"},
            },
            indent=1,
            default=str,
        )[:6000],
        "```",
    ]
    publish(args.out, lines)


if __name__ == "__main__":
    main()
