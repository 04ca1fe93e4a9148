"""`weights sync` and `weights status` on 4 simulated hosts (real sshd, each host's own /tmp as its local
disk), the hosts' links shaped with `tc` where a transfer must last long enough to be interrupted:
from a folder on this machine to every host, byte-identical; a re-run that sends nothing; Ctrl-C and
the resume; a host whose network is cut mid-chain, routed around; a host with too little disk refused before
anything moves. (`up` serving from synced weights: tests/e2e/test_up_e2e.py's cluster syncs its model.)"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers import ROOT, SIM_ROOT, cli_json, interrupt_when, wait_for
from tests.simlab import SimLab, running_cluster
from toolkit.sim.layout import NETNS_PREFIX

NAME = "wts"
MODEL = "/tmp/models/ckpt"  # each simulated host's own /tmp: its local disk here
NIC = "enp67s0f5"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    with running_cluster(NAME, SIM_ROOT, tmp_path_factory.mktemp("wts") / "wts.yaml", hosts=4, devices=[0]) as lab:
        data = lab.inventory_data()
        data["model"] = {"path": MODEL}
        import yaml

        lab.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
        yield lab


def checkpoint(folder: Path, shards: int = 3, mib: int = 24) -> dict[str, str]:
    """A checkpoint: config.json and safetensors shards with valid headers; name -> sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 128}))
    for i in range(shards):
        header = json.dumps({"__metadata__": {"shard": str(i)}}).encode()
        with (folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors").open("wb") as f:
            f.write(struct.pack("<Q", len(header)) + header + os.urandom(mib << 20))
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if not p.name.startswith(".")}


def shape(lab: SimLab, rate: str | None) -> None:
    """Each host's link at `rate` (egress: every hop of the chain), or unshaped."""
    for i in range(1, 5):
        ns = f"{NETNS_PREFIX}{NAME}-{i}"
        cmd = ["ip", "netns", "exec", ns, "tc", "qdisc"]
        if rate is None:
            subprocess.run([*cmd, "del", "dev", NIC, "root"], capture_output=True)
        else:
            subprocess.run(
                [*cmd, "replace", "dev", NIC, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "400ms"],
                check=True,
                capture_output=True,
            )


def host_sums(lab: SimLab, index: int) -> dict[str, str]:
    out = lab.ssh(index, f"cd {MODEL} 2>/dev/null && sha256sum * 2>/dev/null || true").stdout
    return {line.split()[1]: line.split()[0] for line in out.splitlines() if len(line.split()) == 2}


def parts(lab: SimLab, index: int) -> int:
    out = lab.ssh(index, f"find {MODEL} -name '*.adpart' -printf '%s\\n' 2>/dev/null || true").stdout
    return sum(int(x) for x in out.split())


def start(lab: SimLab, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", "weights", "sync", str(lab.inventory), *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_sync_resume_rerun_route_around_and_refusals(lab: SimLab, tmp_path: Path) -> None:
    source = tmp_path / "ckpt"
    sums = checkpoint(source)
    total = sum(p.stat().st_size for p in source.iterdir() if not p.name.startswith("."))

    # too little disk on one host: refused before a byte moves, the host and the numbers named
    lab.ssh(4, "mkdir -p /tmp/models && mount -t tmpfs -o size=1m tmpfs /tmp/models")
    try:
        code, data, err = cli_json(lab, "weights", "sync", str(lab.inventory), "--from-local", str(source))
    finally:
        lab.ssh(4, "umount /tmp/models")
    assert code == 2 and data["error"]["kind"] == "weights-refused", (data, err[-2000:])
    assert "wts-4: 0.00 GiB free at /tmp/models/ckpt (expected at least 0.07 GiB" in data["error"]["message"]
    assert all(parts(lab, i) == 0 and host_sums(lab, i) == {} for i in (1, 2, 3, 4))

    # Ctrl-C in the middle (links at 80 Mbit/s: ~8 s per copy), then a re-run sends only the rest
    shape(lab, "80mbit")
    try:
        proc = start(lab, "--from-local", str(source))
        interrupt_when(proc, "bytes on the last host", lambda: parts(lab, 4) + len(host_sums(lab, 4)) > 0, 60, most=0.3)
        assert proc.returncode == 130
        # the first host is fed over SSH (unshaped here): the last one of the chain has the least
        kept = parts(lab, 4) + sum(os.path.getsize(source / n) for n in host_sums(lab, 4))
        assert 0 < kept < total
        code, done, err = cli_json(lab, "weights", "sync", str(lab.inventory), "--from-local", str(source))
    finally:
        shape(lab, None)
    assert code == 0 and done["ok"], (done, err[-2000:])
    assert done["hosts"]["wts-4"]["bytes"] <= total - kept + (1 << 20), done["hosts"]  # the rest only
    assert all(host_sums(lab, i) == sums for i in (1, 2, 3, 4))
    assert all(parts(lab, i) == 0 for i in (1, 2, 3, 4))
    manifests = {lab.ssh(i, f"cat {MODEL}/.ascend-deploy-manifest.json").stdout for i in (1, 2, 3, 4)}
    assert len(manifests) == 1 and json.loads(manifests.pop())["complete"] is True

    # a re-run compares manifests and sends nothing (the folder given relative to the working directory)
    started = time.monotonic()
    relative = os.path.relpath(source, lab.inventory.parent)
    code, again, err = cli_json(lab, "weights", "sync", str(lab.inventory), "--from-local", relative)
    assert code == 0 and {h["result"] for h in again["hosts"].values()} == {"unchanged"}, again
    assert again["source"] == f"{source.resolve()} (this machine)"
    assert time.monotonic() - started < 15
    code, status, _ = cli_json(lab, "weights", "status", str(lab.inventory))
    assert code == 0 and status["same_everywhere"] is True

    # a shard lost on hosts 2-4; host 3's network is cut mid-chain (every packet dropped: nothing is
    # refused, connections just stop): within the dead-peer bound it is named, host 4 is fed by host 2
    # in a second pass, from the copy host 1 holds (the default source: a complete, verified host)
    shard = "model-00002-of-00003.safetensors"
    for i in (2, 3, 4):
        lab.ssh(i, f"rm {MODEL}/{shard}")
    code, status, _ = cli_json(lab, "weights", "status", str(lab.inventory))
    assert code == 1 and status["hosts"]["wts-3"]["missing"] == [shard], status
    code, net, _ = cli_json(lab, "check-net", str(lab.inventory))  # the preflight compares the manifests too
    assert code == 1 and [(p["host"], p["check"]) for p in net["problems"]] == [
        (f"wts-{i}", "weights") for i in (2, 3, 4)
    ], net["problems"]
    assert f"({shard})" in net["problems"][0]["observed"]
    shape(lab, "40mbit")
    try:
        proc = start(lab)
        wait_for("host 3 receiving", lambda: parts(lab, 3) > (1 << 20), timeout=60, most=0.3)
        lab.fault(3, "isolated")
        cut = time.monotonic()
        out, err = proc.communicate(timeout=300)
        lost_after = time.monotonic() - cut
    finally:
        shape(lab, None)
        from toolkit.sim import faults

        faults.clear(lab.opts)
    report: dict[str, Any] = json.loads(out)
    assert proc.returncode == 1 and report["passes"] == 2, (json.dumps(report["hosts"]), err[-2000:])
    assert report["hosts"]["wts-3"]["result"] == "failed" and report["hosts"]["wts-3"]["unreachable"], report
    assert "connection lost" in report["hosts"]["wts-3"]["error"], report["hosts"]["wts-3"]
    # the whole run, both passes, within a bound of the cut, not the session's timeout (600 s + 1 s per MiB)
    assert lost_after < 150, lost_after
    assert report["hosts"]["wts-2"]["result"] == report["hosts"]["wts-4"]["result"] == "complete", report
    assert report["source"] == f"wts-1:{MODEL}"
    assert host_sums(lab, 4) == sums and host_sums(lab, 2) == sums
    code, healed, _ = cli_json(lab, "weights", "sync", str(lab.inventory))  # host 3 is back: completed
    assert code == 0 and healed["hosts"]["wts-3"]["result"] == "complete" and host_sums(lab, 3) == sums

    # a plain folder on a host as the source (--from HOST:DIR): host 2 holds the checkpoint beside its
    # model.path, without a manifest: it is hashed there (the hashes kept in that folder), host 2's own
    # model.path is filled from it (no byte on the network for itself) and host 4's lost shard is sent
    staging = "/tmp/staging/ckpt"
    lab.ssh(2, f"mkdir -p /tmp/staging && mv {MODEL} {staging} && rm {staging}/.ascend-deploy-manifest.json")
    lab.ssh(4, f"rm {MODEL}/{shard}")
    code, nested, _ = cli_json(lab, "weights", "sync", str(lab.inventory), "--from", "wts-2:/tmp/models")
    assert code == 2 and "are nested" in nested["error"]["message"], nested
    code, missing, _ = cli_json(lab, "weights", "sync", str(lab.inventory), "--from", "wts-2:/tmp/nothing")
    assert code == 2 and "/tmp/nothing does not exist on wts-2" in missing["error"]["message"], missing
    code, staged, err = cli_json(lab, "weights", "sync", str(lab.inventory), "--from", f"wts-2:{staging}")
    assert code == 0 and staged["source"] == f"wts-2:{staging}", (staged, err[-2000:])
    results = {h: r["result"] for h, r in staged["hosts"].items()}
    assert results == {"wts-1": "unchanged", "wts-2": "complete", "wts-3": "unchanged", "wts-4": "complete"}
    assert staged["hosts"]["wts-2"]["pass_parent"] == f"its own {staging}"
    assert host_sums(lab, 2) == host_sums(lab, 4) == sums
    assert lab.ssh(2, f"ls -A {staging}").stdout.split().count(".ascend-deploy-source.json") == 1
    code, status, _ = cli_json(lab, "weights", "status", str(lab.inventory))
    assert code == 0 and status["same_everywhere"] is True

    # nothing listens after a run
    assert all(":41" not in lab.ssh(i, "ss -ltnH").stdout.split("\n")[0] for i in (1, 2, 3, 4))
