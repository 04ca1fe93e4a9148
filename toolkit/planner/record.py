"""What a deployment record says about a plan, without I/O: its digest (what runs, not why: the
origins and notes are left out, so moving a value from `--set` to the inventory changes nothing) and
the differences between two plans in words (`status` names the first ones; `upgrade` shows them all).
The record itself (`toolkit.facts.record`) is the applied plan's `plan_to_dict`."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from toolkit.facts.deploy import START_ONLY_VARS

#: keys that explain a plan but do not change what runs (`ready_timeout` and the predicted `startup`
#: are the control machine's: how long `up` waits, not what the hosts run)
_WHY = {"from", "notes", "alternatives", "source", "config", "ready_timeout", "startup"}


def running_view(doc: Any) -> Any:
    """`doc` (a `plan_to_dict`) without origins, notes and other explanations, nor the start-up-only
    timeouts in a host's environment (sized from the last measured start: a new measurement restarts
    nothing, so it is no new deployment either)."""
    if isinstance(doc, dict):
        return {
            k: _without_start_only(running_view(v)) if k == "env" else running_view(v)
            for k, v in doc.items()
            if k not in _WHY
        }
    if isinstance(doc, list):
        return [running_view(v) for v in doc]
    return doc


def _without_start_only(env: Any) -> Any:
    return {k: v for k, v in env.items() if k not in START_ONLY_VARS} if isinstance(env, dict) else env


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


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The dotted paths (see `_flat`) whose values differ, in the plans' order, without the command
    lines that only repeat them."""
    return [key for key, _, _ in _changed(old, new)]


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What `new` runs differently from `old`, one line each (`vllm.args[--max-num-seqs]: 256 -> 7`),
    in the plans' order; the command lines that only repeat a difference are left out."""
    return [f"{_label(key)}: {_shown(a)} -> {_shown(b)}" for key, a, b in _changed(old, new)]


def _changed(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(path, old value, new value) of every difference (`_ABSENT` where a side has none)."""
    a, b = _flat(running_view(old)), _flat(running_view(new))
    return [
        (key, a.get(key, _ABSENT), b.get(key, _ABSENT))
        for key in [*a, *(k for k in b if k not in a)]
        if key.rsplit(".", 1)[-1].split("[")[0] not in _REPEATS and a.get(key, _ABSENT) != b.get(key, _ABSENT)
    ]


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


#: changes a history row shows (all of them are in --json)
ROW_CHANGES = 4


def _value(doc: dict[str, Any], *path: str) -> Any:
    for part in path:
        doc = doc.get(part) if isinstance(doc, dict) else None  # type: ignore[assignment]
    return doc.get("value") if isinstance(doc, dict) and set(doc) >= {"value"} else doc


def _gate_text(gate: dict[str, Any] | None) -> str | None:
    if not gate:
        return None
    verdicts = gate.get("verdicts") or []
    worst = min((float(v.get("ratio", 0)) for v in verdicts), default=None)
    word = "passed" if gate.get("passed") else "failed"
    if worst is None:
        return f"{word} ({gate.get('failure') or 'no point compared'})"
    return f"{word}: {worst:.2f}x the baseline (at least {gate.get('min_ratio', 0.97):g})"


def history_rows(current: dict[str, Any] | None, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record's deployments, newest first, one row each: when, by which tool and how (`up`,
    `upgrade`, `rollback`), the plan's digest, image and runtime, what changed from the deployment
    before it, the gate's result, and whether it was rolled back."""
    entries = ([current] if current is not None else []) + list(history)
    rows = []
    for i, e in enumerate(entries):
        plan = e.get("plan") or {}
        attempt = e.get("upgrade") or {}
        older = entries[i + 1 :]
        # an upgrade's changes are against the deployment it replaced (an attempt rolled back between
        # them never served); otherwise against the entry before it
        base = next((x for x in older if attempt and x.get("plan_sha256") == attempt.get("from")), None)
        before = (base or (older[0] if older else {})).get("plan")
        changes = differences(before, plan) if isinstance(before, dict) and isinstance(plan, dict) else []
        state = (
            "running"
            if e is current
            else "rolled back"
            if attempt.get("outcome") in ("rolled-back", "rollback-failed")
            else "stopped"
            if e.get("stopped_at")
            else "replaced"
        )
        rows.append(
            {
                "deployed_at": e.get("deployed_at"),
                "tool": e.get("tool"),
                "via": e.get("via", "up"),
                "plan_sha256": e.get("plan_sha256"),
                "image": _value(plan, "container", "image"),
                "runtime": _value(plan, "runtime", "name"),
                "state": state,
                "changes": changes,
                "gate": attempt.get("gate"),
                "gate_text": _gate_text(attempt.get("gate")),
                "rolled_back": state == "rolled back",
                "failure": attempt.get("failure"),
                "restored_after": (e.get("restored") or {}).get("after"),
                "ended_at": e.get("stopped_at") or e.get("replaced_at"),
            }
        )
    return rows
