"""What a deployment record says about a plan, without I/O: its digest (what runs, not why: the
origins and notes are left out, so moving a value from `--set` to the inventory changes nothing) and
the differences between two plans in words (`status` names the first ones; `upgrade` shows them all).
The record itself (`toolkit.facts.record`) is the applied plan's `plan_to_dict`."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

#: keys that explain a plan but do not change what runs (`ready_timeout` and the predicted `startup`
#: are the control machine's: how long `up` waits, not what the hosts run)
_WHY = {"from", "notes", "alternatives", "source", "config", "ready_timeout", "startup"}


def running_view(doc: Any) -> Any:
    """`doc` (a `plan_to_dict`) without origins, notes and other explanations."""
    if isinstance(doc, dict):
        return {k: running_view(v) for k, v in doc.items() if k not in _WHY}
    if isinstance(doc, list):
        return [running_view(v) for v in doc]
    return doc


def plan_digest(doc: dict[str, Any]) -> str:
    """SHA-256 of what the plan runs (see `running_view`)."""
    return hashlib.sha256(json.dumps(running_view(doc), sort_keys=True).encode()).hexdigest()


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to values; lists of hosts by name and of flags by flag, so that one changed flag
    is one difference, not every later position."""
    out: dict[str, Any] = {}
    if isinstance(doc, dict):
        if set(doc) == {"value"}:
            return {prefix: doc["value"]}
        for k, v in doc.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, list) and doc and all(isinstance(x, dict) and ("name" in x or "flag" in x) for x in doc):
        for x in doc:
            key = x.get("name") or x.get("flag")
            out.update(_flat({k: v for k, v in x.items() if k not in ("name", "flag")}, f"{prefix}[{key}]"))
    elif isinstance(doc, list) and any(isinstance(x, (dict, list)) for x in doc):
        for i, x in enumerate(doc):
            out.update(_flat(x, f"{prefix}[{i}]"))
    else:
        out[prefix] = doc
    return out


#: paths that only repeat others (the command lines are their arguments; the argv their parts)
_REPEATS = ("command", "argv", "ray_command", "ray_argv", "server_command", "server_argv", "run_argv", "hash")


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What `new` runs differently from `old`, one line each (`vllm.args[--max-num-seqs]: 256 -> 7`),
    in the plans' order; the command lines that only repeat a difference are left out."""
    a, b = _flat(running_view(old)), _flat(running_view(new))
    lines = []
    for key in [*a, *(k for k in b if k not in a)]:
        if key.rsplit(".", 1)[-1].split("[")[0] in _REPEATS:
            continue
        if a.get(key, _ABSENT) != b.get(key, _ABSENT):
            lines.append(f"{_label(key)}: {_shown(a.get(key, _ABSENT))} -> {_shown(b.get(key, _ABSENT))}")
    return lines


class _Absent:
    def __repr__(self) -> str:
        return "(none)"


_ABSENT = _Absent()


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _label(key: str) -> str:
    """`vllm.args[--max-num-seqs].value` reads as `vllm --max-num-seqs`; `hosts[n1].env.X` as `n1 env X`."""
    key = re.sub(r"^vllm\.args\[([^\]]+)\]\.value$", r"vllm \1", key)
    key = re.sub(r"^hosts\[([^\]]+)\]\.env\.(.+)$", r"\1 env \2", key)
    return key.removesuffix(".value")
