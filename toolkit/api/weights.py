"""`weights sync` and `weights status`: the checkpoint at `model.path` on every host, carried host to
host by the relay (`launch/relay_program.py`) in a pipelined chain (or a tree with `fanout`), each
host verifying every file against the source's manifest as it writes it, resumable, and a second
pass around a host that failed."""

from __future__ import annotations

import json
import posixpath
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from toolkit.api.context import ConnectFn, Options, make_executor, ran
from toolkit.api.weights_source import host_headers, host_manifest, local_manifest, local_stream
from toolkit.config.inventory import Inventory
from toolkit.engine.executor import Event, EventKind, EventSink, Executor, no_events
from toolkit.errors import BadInput, HostError
from toolkit.facts import Raw
from toolkit.facts.weights import WeightsDir, parse_weights, weights_command
from toolkit.launch import relay_program, shipped
from toolkit.planner.weights import Refusal, Transfer, checkpoint_refusals, plan_transfer
from toolkit.serial import plain

#: the run's port on every host (each binds its own cluster address), below HCCL's 60000
PORT_RANGE = (41000, 59000)
PASSES = 2


class WeightsRefused(BadInput):
    """The sync would fail or do harm: refused before a byte moves (exit 2), every reason named."""

    kind = "weights-refused"

    def __init__(self, refusals: list[Refusal]) -> None:
        lines = [f"{r.host}: {r.observed} (expected {r.expected}) -> {r.hint}" for r in refusals]
        super().__init__("weights sync refused before sending anything:\n  " + "\n  ".join(lines))
        self.refusals = refusals

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "refusals": [plain(r) for r in self.refusals]}


@dataclass
class WeightsSyncReport:
    inventory: str
    path: str
    source: str
    files: int
    bytes: int
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    passes: int = 0
    duration: float = 0.0

    __json_extra__ = ("ok",)
    __json_round__ = {"duration": 2}

    @property
    def ok(self) -> bool:
        return all(h["result"] in ("complete", "unchanged") for h in self.hosts.values())

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def read_states(executor: Executor, path: str, hosts: list[Any]) -> dict[str, WeightsDir | HostError]:
    group = executor.map(
        lambda s: parse_weights(path)(Raw(*ran(s, weights_command(path), 120))), hosts, stage="weights-state"
    )
    out: dict[str, WeightsDir | HostError] = {}
    for name, o in group.outcomes.items():
        out[name] = o.value if o.ok and o.value is not None else (o.error or HostError(name, "no answer"))
    return out


def model_path(inventory: Inventory) -> str:
    if inventory.spec.model is None:
        raise BadInput(f"{inventory.path}: no model section", hint="add model: {path: /data/models/NAME}")
    return inventory.spec.model.path.rstrip("/")


def sync(
    inventory: Inventory,
    opts: Options,
    *,
    from_local: Path | None = None,
    from_host: str | None = None,
    fanout: int = 1,
    replace: bool = False,
    emit: EventSink = no_events,
    connect: ConnectFn | None = None,
) -> WeightsSyncReport:
    started = time.monotonic()
    path = model_path(inventory)
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        hosts = list(executor.hosts)
        states = read_states(executor, path, hosts)
        reachable = {n: s for n, s in states.items() if isinstance(s, WeightsDir)}
        source_host, source_root, folder = None, None, None
        if from_local is not None:
            folder = from_local.expanduser().resolve()
            if not folder.is_dir():
                raise BadInput(f"--from-local {folder}: not a folder on this machine")
            manifest, headers = local_manifest(folder)
            where = f"{folder} (this machine)"
        else:
            source_host, source_root, manifest, headers = host_source(executor, reachable, from_host, path, emit)
            where = f"{source_host}:{source_root}"
        fill = source_root is not None and source_root != path
        refusals = checkpoint_refusals(where, manifest, headers)
        refusals += [
            Refusal(
                n,
                str(getattr(e, "message", e)),
                "reachable over SSH",
                "bring the host up, or leave it out with --limit",
            )
            for n, e in states.items()
            if not isinstance(e, WeightsDir)
        ]
        order = [h.name for h in hosts]
        transfer = plan_transfer(
            manifest, reachable, order, source_host=source_host, fanout=fanout, replace=replace, fill_source=fill
        )
        refusals += transfer.refusals
        if refusals:
            raise WeightsRefused(refusals)
        report = WeightsSyncReport(
            str(inventory.path), path, where, len(manifest["files"]), sum(int(f["size"]) for f in manifest["files"])
        )
        report.warnings = storage_warnings(reachable)
        for h in transfer.unchanged:
            report.hosts[h] = {"result": "unchanged", "bytes": 0, "seconds": 0.0}
        broken: set[str] = set()  # hosts lost over SSH: left out of the next pass
        for attempt in range(1, PASSES + 1):
            if not transfer.receivers:
                break
            report.passes = attempt
            results = run_pass(executor, hosts, transfer, source_host, source_root, folder, path, emit)
            report.hosts.update(results)
            broken |= {n for n, r in results.items() if r.get("unreachable")}
            retry = [n for n, r in results.items() if r["result"] != "complete" and n not in broken]
            if not retry or attempt == PASSES or source_host in broken:
                break
            # a second pass around the hosts that were lost: the others resume from their part files,
            # a lost host's successors fed by its predecessor
            keep = [h for h in hosts if h.name not in broken]
            states = read_states(executor, path, keep)
            reachable = {n: s for n, s in states.items() if isinstance(s, WeightsDir)}
            transfer = plan_transfer(
                manifest,
                reachable,
                [h.name for h in keep],
                source_host=source_host,
                fanout=fanout,
                replace=replace,
                fill_source=fill,
            )
        report.duration = time.monotonic() - started
        return report


def host_source(
    executor: Executor, states: dict[str, WeightsDir], asked: str | None, path: str, emit: EventSink
) -> tuple[str, str, dict[str, Any], dict[str, str | None]]:
    """`--from HOST[:PATH]`: (host, folder, manifest, safetensors header problems). At model.path (or
    without --from: the first host with a complete, verified copy) the host's manifest is the source's;
    another folder uses the manifest a sync left there when it is complete and verified, else it is
    hashed on that host (once: the hashes are kept in the folder)."""
    host, _, root = (asked or "").partition(":")
    root = posixpath.normpath(root) if root else path
    if host and host not in states:
        raise BadInput(f"--from {asked}: {host} is not a reachable host of the inventory")
    if root == path:
        name, manifest = complete_copy(states, [host] if host else list(states), path)
        return name, root, manifest, check_headers(executor, name, root, manifest)
    if not host:
        raise BadInput(f"--from {asked}: name the host that holds {root}", hint=f"--from HOST:{root}")
    if not root.startswith("/"):
        raise BadInput(f"--from {asked}: {root} is not an absolute path on {host}")
    if posixpath.commonpath([root, path]) in (root, path):
        raise BadInput(
            f"--from {asked}: {root} and model.path {path} are nested: the sync would read what it writes",
            hint="stage the checkpoint in a folder beside model.path",
        )
    src = next(h for h in executor.hosts if h.name == host)
    there = read_states(executor, root, [src])[host]
    if not isinstance(there, WeightsDir):
        raise there
    if not there.exists:
        raise BadInput(f"--from {asked}: {root} does not exist on {host}", hint="check the path on that host")
    kept = there.complete_manifest()
    if kept is not None:
        return host, root, kept, check_headers(executor, host, root, kept)
    total = sum(there.files.values())

    def hashed(n: int) -> None:
        emit(Event(EventKind.PROGRESS, host, "weights", f"hashing {root}: {n >> 20}/{total >> 20} MiB"))

    manifest, headers = host_manifest(executor.session(src, "weights-source"), host, root, total, hashed)
    return host, root, manifest, headers


def complete_copy(states: dict[str, WeightsDir], candidates: list[str], path: str) -> tuple[str, dict[str, Any]]:
    """The first candidate whose manifest at model.path is complete and whose files are all there."""
    for name in candidates:
        manifest = states[name].complete_manifest()
        if manifest is not None:
            return name, manifest
    raise BadInput(
        "no host holds a complete, verified copy of the checkpoint at " + path,
        hint="give one: --from-local DIR (a folder on this machine), --from HOST:DIR (a folder on a host), "
        "or sync it once from there",
    )


def check_headers(executor: Executor, host: str, root: str, manifest: dict[str, Any]) -> dict[str, str | None]:
    names = [f["name"] for f in manifest["files"] if f["name"].endswith(".safetensors")]
    src = next(h for h in executor.hosts if h.name == host)
    return host_headers(executor.session(src, "weights-source"), host, root, names)


def storage_warnings(states: dict[str, WeightsDir]) -> list[str]:
    out = []
    for name, st in states.items():
        if st.shared_storage:
            out.append(f"{name}: {st.path} is on shared storage ({st.fstype}): every rank reads it at load time")
        elif st.system_disk:
            out.append(f"{name}: {st.path} is on the system disk (the same device as /)")
    return out


def run_pass(
    executor: Executor,
    hosts: list[Any],
    t: Transfer,
    source_host: str | None,
    source_root: str | None,
    folder: Path | None,
    path: str,
    emit: EventSink,
) -> dict[str, dict[str, Any]]:
    """One run of the relay on every node of the tree at once; each target's result."""
    token = secrets.token_hex(16)
    port = PORT_RANGE[0] + secrets.randbelow(PORT_RANGE[1] - PORT_RANGE[0])
    by_name = {h.name: h for h in hosts}
    address = {h.name: h.address for h in hosts}
    nodes = ([source_host] if source_host else []) + t.targets
    total = t.stream_bytes
    results: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def upstream(node: str) -> str | None:
        """Who connects to `node`: its parent's address; None: the control machine, on stdin."""
        parent = t.parent.get(node)
        if parent is None or node == source_host:
            return None
        if parent == "":
            return address[source_host] if source_host else None
        return address[parent]

    every = [f["name"] for f in t.manifest["files"]]

    def config(node: str) -> dict[str, Any]:
        key = node if node != source_host else ""
        return {
            "role": "send" if node == source_host else "recv",
            "root": path,  # what this host writes: its model.path (the source: where it lacks files)
            "src": source_root if node == source_host else None,
            "token": token,
            "listen": address[node],
            "port": port,
            "parent": upstream(node),
            "children": [[address[c], port] for c in t.children.get(key, [])],
            "files": t.stream,
            "have": t.have.get(node, every if node == source_host else []),
            "manifest": t.manifest,
        }

    def one(node: str) -> None:
        head = shipped.payload(relay_program, config(node))
        feeds = folder if t.parent.get(node) == "" else None  # the root fed by this machine
        started = time.monotonic()
        state: dict[str, Any] = {"bytes": 0, "ok": [], "bad": [], "lost": [], "fail": None, "done": None}

        def progress(n: int) -> None:
            state["bytes"] = n
            elapsed = max(time.monotonic() - started, 1e-6)
            rate = n / elapsed
            eta = (total - n) / rate if rate > 0 else 0
            emit(
                Event(
                    EventKind.PROGRESS,
                    node,
                    "weights",
                    f"{n >> 20}/{total >> 20} MiB, {rate / (1 << 20):.0f} MiB/s, ETA {eta:.0f} s",
                )
            )

        def file_done(rest: str) -> None:
            verdict, _, name = rest.partition(" ")
            state["ok" if verdict == "ok" else "bad"].append(name.split(" ")[0])

        on_output = shipped.on_lines(
            {
                "PROG": lambda rest: progress(int(rest)) if rest.isdigit() else None,
                "FILE": file_done,
                "LOST": state["lost"].append,
                "FAIL": lambda rest: state.update(fail=rest),
                "DONE": lambda rest: state.update(done=rest),
            }
        )

        sent = [0]

        def counted(n: int) -> None:
            sent[0] += n
            if sent[0] % (64 << 20) < n:
                progress(sent[0])

        chunks = [head] if feeds is None else chain([head], local_stream(feeds, t.stream, counted))
        timeout = 600 + total / (1 << 20)  # at least 1 MiB/s end to end, plus the start
        error = None
        try:
            res = executor.session(by_name[node], "weights").run(
                shipped.COMMAND,
                stdin=chunks,
                on_output=on_output,
                timeout=timeout,
                check=False,
                setup=False,
            )
            if res.exit_code != 0 and state["fail"] is None:
                state["fail"] = (res.stderr.strip().splitlines() or [f"exit {res.exit_code}"])[-1]
        except HostError as e:
            error = e.message
        seconds = time.monotonic() - started
        got = int(state["done"].split()[-1]) if state["done"] else state["bytes"]
        if node == source_host and t.source_fills != node:
            return
        complete = state["done"] is not None and state["done"].startswith("ok") and not state["bad"]
        with lock:
            results[node] = {
                "result": "complete" if complete else "failed",
                "bytes": got,
                "seconds": round(seconds, 2),
                "rate_mib_s": round(got / seconds / (1 << 20), 1) if seconds > 0 else None,
                "verified": len(state["ok"]),
                "bad": state["bad"],
                "lost": state["lost"],
                "error": error or state["fail"] or (None if complete else "ended before DONE"),
                "unreachable": error is not None,
                "pass_parent": t.parent.get(node) or (f"its own {source_root}" if node == source_host else "source"),
            }

    pool = ThreadPoolExecutor(max_workers=len(nodes))
    try:
        list(pool.map(one, nodes))
    except BaseException:  # Ctrl-C: close every connection, so each host's relay ends now (part files stay)
        executor.close()
        raise
    finally:
        pool.shutdown(wait=True)
    return results


@dataclass
class WeightsStatusReport:
    inventory: str
    path: str
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    same_everywhere: bool = False

    __json_extra__ = ("ok",)

    @property
    def ok(self) -> bool:
        return self.same_everywhere and all(h["state"] == "complete" for h in self.hosts.values())

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def status(
    inventory: Inventory, opts: Options, *, emit: EventSink = no_events, connect: ConnectFn | None = None
) -> WeightsStatusReport:
    """Per host: complete, or what is missing or differs from the manifest most hosts hold (no hashing:
    the manifests and the files' sizes), and whether every host holds the same one."""
    path = model_path(inventory)
    with make_executor(inventory, opts, emit=emit, connect=connect) as executor:
        states = read_states(executor, path, list(executor.hosts))
    report = WeightsStatusReport(str(inventory.path), path)
    complete = [
        json.dumps(sorted((f["name"], f["size"], f["sha256"]) for f in st.manifest["files"]))
        for st in states.values()
        if isinstance(st, WeightsDir) and st.manifest and st.manifest.get("complete")
    ]
    reference = max(set(complete), key=complete.count) if complete else None
    want = {n: (s, h) for n, s, h in json.loads(reference)} if reference else {}
    for name, st in states.items():
        if not isinstance(st, WeightsDir):
            report.hosts[name] = {"state": "unreachable", "error": str(getattr(st, "message", st))}
            continue
        held = {n: (e["size"], e["sha256"]) for n, e in st.verified().items()}
        missing = sorted(n for n in want if n not in st.files)
        differing = sorted(n for n in want if n in st.files and held.get(n) != want[n])
        if st.manifest is None:
            state = "no manifest"
        elif not missing and not differing and len(held) == len(want) and st.manifest.get("complete"):
            state = "complete"
        else:
            state = "incomplete"
        report.hosts[name] = {
            "state": state,
            "missing": missing,
            "differing": differing,
            "partial": sorted(st.parts),
            "files": len(st.files),
        }
    report.same_everywhere = reference is not None and complete.count(reference) == len(states)
    return report
