"""Launcher `mp`: one host, one `vllm serve` with vLLM's multiprocessing executor, no Ray. `auto`
picks it whenever the inventory lists one host."""

from __future__ import annotations

from toolkit.planner.launchers.base import BaseLauncher, Situation
from toolkit.planner.types import PlanIssue


class OneHostLayout(BaseLauncher):
    name: str = "mp"
    summary: str = "one host: vLLM's multiprocessing executor, no Ray"
    auto_order: int = 10

    def auto(self, s: Situation) -> str | None:
        return None if s.multi_host else "auto: one host: vLLM's multiprocessing executor, no Ray"

    def refusals(self, s: Situation) -> list[PlanIssue]:
        if s.multi_host:
            return [
                PlanIssue(
                    "serve.launcher",
                    f"launcher mp runs on one host; the inventory lists {len(s.hosts)}",
                    "use serve.launcher: auto, ray or dp for several hosts",
                )
            ]
        return []
