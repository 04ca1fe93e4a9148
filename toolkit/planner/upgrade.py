"""What an upgrade changes and the steps it takes, without I/O: the differences between the recorded
plan and the new one, sorted into the kinds an operator reads first (image, runtime profile, flags,
environment, layout), and the ordered steps `upgrade --dry-run` prints. `api.rollout` runs them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from toolkit.planner.record import changed_keys

#: kind -> dotted-path patterns of `plan_to_dict` (first match wins; the rest is "other")
KINDS: tuple[tuple[str, str], ...] = (
    ("image", r"^container\.image$|^runtime\.image$"),
    ("container", r"^container\."),
    ("runtime profile", r"^runtime\."),
    ("environment", r"^hosts\[[^\]]+\]\.env\.|^hosts\[[^\]]+\]\.setup"),
    ("flags", r"^vllm\.|^hosts\[[^\]]+\]\.(rank_args|processes\[[^\]]+\]\.args)"),
    ("layout", r"^parallel\.|^launch\.|^hosts\[[^\]]+\]\.(role|address|devices|ranks|nic)$|^hosts\[[^\]]+\]$"),
    ("model", r"^model\."),
    ("ports", r"^ports|^ray_port$"),
)


def change_kinds(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    """Kind -> the changed paths of that kind, in the KINDS order (only kinds that changed)."""
    out: dict[str, list[str]] = {}
    for key in changed_keys(old, new):
        kind = next((k for k, rx in KINDS if re.search(rx, key)), "other")
        out.setdefault(kind, []).append(key)
    order = [k for k, _ in KINDS] + ["other"]
    return {k: out[k] for k in order if k in out}


@dataclass(frozen=True)
class Step:
    """One step of an upgrade: what it does, and whether the old deployment still serves during it."""

    name: str
    what: str
    serving: str  # "old", "none", "new"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "what": self.what, "serving": self.serving}


def upgrade_steps(*, container: bool, gate: str | None, min_ratio: float, latency: bool) -> list[Step]:
    """The steps of an upgrade in order (`--dry-run` prints them; the report names the one that failed)."""
    steps = [
        Step("record", "read the deployment record on the head: the plan that runs now (restored on failure)", "old"),
        Step(
            "stage",
            ("every host holds the new image (`image status`), " if container else "")
            + "the weights are in place, the new plan's preflight passes (the old deployment's own devices, "
            "ports and processes are not counted against it)",
            "old",
        ),
        Step("apply", "under the cluster lock, `up`'s stages for the new plan (what changed restarts)", "none"),
        Step("ready", "the new deployment answers /health and the runbook's test requests", "new"),
    ]
    if gate:
        what = f"`bench` with the load points of {gate}: output tokens/s at least {min_ratio:g} x the baseline's"
        steps.append(Step("gate", what + (", p99 TTFT/TPOT at most baseline / ratio" if latency else ""), "new"))
    steps.append(
        Step(
            "rollback",
            "only if a step after the old deployment stopped fails (or on Ctrl-C): `up`'s stages for the "
            "recorded plan, readiness, a test request; then exit 1 with the report",
            "old",
        )
    )
    return steps
