"""The next cold start, predicted from measured ones (pure): the closest recorded start (the same
model and layout first) gives the time to the first /health 200; the start-up timeouts are that
times MARGIN. Without a record, the rule of thumb (`environment.timeout_for`) stays, and says so."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from toolkit.planner.types import Plan

#: a recorded cold start times this is the budget of the next one (loads vary with the page cache,
#: the storage's load and the other jobs on the hosts)
MARGIN = 2.0
#: vLLM's own VLLM_ENGINE_READY_TIMEOUT_S default: never planned shorter
ENGINE_FLOOR_S = 600
ENGINE_CEILING_S = 30000


@dataclass(frozen=True)
class StartKey:
    """What makes two starts comparable."""

    model: str
    layout: Mapping[str, Any]  # tp, pp, dp, launcher, placement, hosts, devices
    hardware: str
    runtime: str

    def record_fields(self) -> dict[str, Any]:
        return {"model": self.model, "layout": dict(self.layout), "hardware": self.hardware, "runtime": self.runtime}


@dataclass(frozen=True)
class Prediction:
    seconds: float  # to the first /health 200
    level: str  # how close the record is, in words
    at: str  # when it was measured
    phases: Mapping[str, Any]

    @property
    def source(self) -> str:
        shown = ", ".join(
            f"{k} {v:g}" for k, v in self.phases.items() if isinstance(v, (int, float)) and k != "ready_s"
        )
        return f"the cold start of {self.at} ({self.level}: /health after {self.seconds:g} s" + (
            f"; {shown})" if shown else ")"
        )


LEVELS = (
    (("model", "layout", "hardware", "runtime"), "same model and layout"),
    (("model", "layout", "hardware"), "same model and layout, another runtime"),
    (("model", "hardware"), "same model, another layout"),
)


def start_key(
    model: str,
    sizes: tuple[Any, Any, Any],
    launcher: str,
    placement: str,
    devices: Sequence[int],
    hardware: str,
    runtime: str,
) -> StartKey:
    tp, pp, dp = (getattr(v, "value", v) for v in sizes)
    layout = {"tp": tp, "pp": pp, "dp": dp, "launcher": launcher, "placement": placement, "devices": list(devices)}
    return StartKey(model, layout, hardware, runtime)


def predict(history: Sequence[Mapping[str, Any]], key: StartKey) -> Prediction | None:
    """The newest recorded start at the closest level (LEVELS), or None."""
    mine = key.record_fields()
    for fields, words in LEVELS:
        matches = [r for r in history if all(r.get(f) == mine[f] for f in fields)]
        if matches:
            r = matches[-1]
            return Prediction(float(r["ready_s"]), words, str(r.get("at", "?")), dict(r.get("phases") or {}))
    return None


def engine_timeout(prediction: Prediction) -> int:
    """MARGIN x the predicted start, whole minutes, within vLLM's default and the recipes' largest."""
    seconds = prediction.seconds * MARGIN
    return int(min(ENGINE_CEILING_S, max(ENGINE_FLOOR_S, math.ceil(seconds / 60) * 60)))


def startup_record(key: StartKey, phases: Mapping[str, Any], ready_s: float, at: str, tool: str) -> dict[str, Any]:
    """One measured start, as the control machine keeps it."""
    return {**key.record_fields(), "at": at, "tool": tool, "phases": dict(phases), "ready_s": ready_s}


def plan_start_key(plan: Plan) -> StartKey:
    """The key of the start a plan makes (the same fields the planner matches records on)."""
    return start_key(
        plan.model_path,
        (plan.tp, plan.pp, plan.dp),
        str(plan.launcher.value),
        str(plan.placement.value),
        [len(h.devices) for h in plan.hosts],
        str(plan.hardware.value),
        plan.runtime.name,
    )
