"""What a `weights sync` moves (pure): from the source's manifest and each host's model folder, the
hosts that need something, the files of the stream and where it starts in each (the shortest part file
of the hosts that need it: every host of a run receives the same stream), the tree the stream flows
through (a chain with fanout 1), and the refusals before a byte moves (disk, a checkpoint that is none,
hosts that hold another checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from toolkit.facts.weights import WeightsDir

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
GIB = 1 << 30


@dataclass(frozen=True)
class Refusal:
    host: str
    observed: str
    expected: str
    hint: str


@dataclass
class Transfer:
    manifest: dict[str, Any]  # the source's: {"format": 1, "files": [{name, size, sha256}], "complete": True}
    targets: list[str]  # hosts that need something, in inventory order
    have: dict[str, list[str]] = field(default_factory=dict)  # target -> files it already holds, verified
    needs: dict[str, int] = field(default_factory=dict)  # target -> bytes it must receive
    stream: list[dict[str, Any]] = field(default_factory=list)  # [{name, size, sha256, offset}]
    children: dict[str, list[str]] = field(default_factory=dict)  # node -> its children ("" = the source)
    parent: dict[str, str] = field(default_factory=dict)  # target -> its parent node ("" = the source)
    unchanged: list[str] = field(default_factory=list)  # hosts that hold the whole checkpoint already
    refusals: list[Refusal] = field(default_factory=list)
    #: the source host reads another folder and fills its own model.path too (have/needs keyed by it)
    source_fills: str | None = None

    @property
    def receivers(self) -> list[str]:
        """Every host that writes something: the tree's targets and a source that fills its own copy."""
        return ([self.source_fills] if self.source_fills else []) + self.targets

    @property
    def stream_bytes(self) -> int:
        return sum(int(f["size"]) - int(f["offset"]) for f in self.stream)


def checkpoint_refusals(where: str, manifest: Mapping[str, Any], headers: Mapping[str, str | None]) -> list[Refusal]:
    """A source that is not a checkpoint: no config.json, no weight files, a safetensors header that does
    not parse (`headers`: file -> why not, None when it parsed)."""
    names = [f["name"] for f in manifest.get("files") or []]
    out = []
    if "config.json" not in names:
        out.append(
            Refusal(
                where,
                "no config.json",
                "a model folder (config.json + weights)",
                "point at the folder that holds config.json",
            )
        )
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        out.append(
            Refusal(
                where,
                "no weight files",
                "*.safetensors (or *.bin) files",
                "point at the model folder, not a parent or a tokenizer-only folder",
            )
        )
    for name, why in sorted(headers.items()):
        if why:
            out.append(
                Refusal(
                    where,
                    f"{name}: unreadable safetensors header ({why})",
                    "a valid safetensors file",
                    "the file is damaged or still downloading; fetch it again",
                )
            )
    return out


def entries(manifest: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    return {f["name"]: (int(f["size"]), str(f["sha256"])) for f in manifest.get("files") or []}


def plan_transfer(
    manifest: dict[str, Any],
    states: Mapping[str, WeightsDir],
    order: Sequence[str],
    *,
    source_host: str | None = None,
    fanout: int = 1,
    replace: bool = False,
    fill_source: bool = False,
) -> Transfer:
    """`states`: every reachable host's folder (the source host's model.path included); `order`: the
    inventory's; `fill_source`: the source host reads another folder of its own, and its model.path is
    a receiver like any other (it writes what it reads, no byte on the network for itself)."""
    want = entries(manifest)
    t = Transfer(manifest, [])
    for host in order:
        own = host == source_host
        if (own and not fill_source) or host not in states:
            continue
        st = states[host]
        held = {name: (e["size"], e["sha256"]) for name, e in st.verified().items()}
        have = [n for n, e in want.items() if held.get(n) == e]
        if len(have) == len(want):
            t.unchanged.append(host)
            continue
        other = st.manifest is not None and bool(st.manifest.get("complete")) and entries(st.manifest) != want
        if other and not replace:
            t.refusals.append(
                Refusal(
                    host,
                    f"{st.path} holds another checkpoint (its manifest lists {len(entries(st.manifest or {}))} "
                    "file(s) that differ from the source's)",
                    "the source's checkpoint, or nothing",
                    "check model.path and the source; `--replace` overwrites it",
                )
            )
            continue
        if own:
            t.source_fills = host
        else:
            t.targets.append(host)
        t.have[host] = have
        need = 0
        for name, (size, _sha) in want.items():
            if name not in have:
                part = st.parts.get(name, 0)
                need += size - (part if part <= size else 0)
        t.needs[host] = need
        if st.free_bytes is not None and need > st.free_bytes:
            t.refusals.append(
                Refusal(
                    host,
                    f"{st.free_bytes / GIB:.2f} GiB free at {st.path}",
                    f"at least {need / GIB:.2f} GiB (the files it lacks)",
                    "free disk on that host, or set model.path to a larger disk",
                )
            )
    for f in manifest.get("files") or []:
        needing = [h for h in t.receivers if f["name"] not in t.have[h]]
        if not needing:
            continue
        size = int(f["size"])
        parts = [states[h].parts.get(f["name"], 0) for h in needing]
        offset = min(p if p <= size else 0 for p in parts)
        t.stream.append({"name": f["name"], "size": size, "sha256": f["sha256"], "offset": offset})
    nodes = ([source_host] if source_host else [""]) + t.targets
    if source_host is None and t.targets:  # the control machine feeds one host (its link, once)
        t.parent[t.targets[0]] = ""
        t.children[""] = [t.targets[0]]
        nodes = t.targets
    k = max(1, fanout)
    for i, node in enumerate(nodes[1:], start=1):
        up = nodes[(i - 1) // k]
        t.parent[node] = up
        t.children.setdefault(up, []).append(node)
    if source_host is not None:
        t.parent = {h: (p if p != source_host else "") for h, p in t.parent.items()}
        t.children[""] = t.children.pop(source_host, [])
    return t
