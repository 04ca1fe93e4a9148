"""The step registry and what a step is handed: steps (in `toolkit.steps`) register with
`@step("name")` and read facts through their `StepContext`; the runner looks them up by name.

A step reads facts and yields only the operations needed to reach the desired state (pyinfra-
style), so `--check` can show, per host, exactly what would run, and a converged host yields
nothing. Read-only steps (facts, probes, waits) also run under --check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from toolkit.config.inventory import Inventory
from toolkit.engine.executor import Session
from toolkit.facts import Fact, gather


@dataclass(frozen=True)
class Op:
    """One command that changes a host, with a line saying why it is needed."""

    command: str
    description: str
    timeout: float | None = None
    stdin: str | None = None  # fed to the command (secrets), never shown or recorded


@dataclass
class StepContext:
    session: Session
    inventory: Inventory
    params: dict[str, Any]
    check: bool
    data: dict[str, Any] = field(default_factory=dict)  # what the step reports (facts, state)
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> host -> that host's data
    shared: dict[str, Any] = field(default_factory=dict)  # what the caller hands every step (the plan)

    @property
    def host(self) -> Any:
        return self.session.host

    def facts(self, facts: list[Fact[Any]]) -> dict[str, Any]:
        """Read facts now (also under --check: facts never change a host)."""
        return gather(self.session, facts)


StepFn = Callable[[StepContext], Iterator[Op]]


@dataclass(frozen=True)
class StepInfo:
    name: str
    fn: StepFn
    read_only: bool
    doc: str
    needs_plan: bool = False  # reads ctx.shared["plan"]; `api.run` provides it (and the API key)


STEPS: dict[str, StepInfo] = {}


def step(name: str, *, read_only: bool = False, needs_plan: bool = False) -> Callable[[StepFn], StepFn]:
    def register(fn: StepFn) -> StepFn:
        if name in STEPS:
            raise ValueError(f"step {name!r} registered twice")
        STEPS[name] = StepInfo(
            name, fn, read_only, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "", needs_plan
        )
        return fn

    return register
