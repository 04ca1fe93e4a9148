"""The step registry and what a step is handed: steps (in `toolkit.steps`) register with
`@step("name")` and read facts through their `StepContext`; the runner looks them up by name.

A step reads facts and yields only the operations needed to reach the desired state (pyinfra-
style), so `--check` can show, per host, exactly what would run, and a converged host yields
nothing. Read-only steps (facts, probes, waits) also run under --check.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from toolkit.config.inventory import Inventory
from toolkit.engine.executor import Session
from toolkit.engine.gather import gather
from toolkit.engine.readiness import Rendezvous
from toolkit.errors import BadInput
from toolkit.facts import Fact
from toolkit.planner.plan import Plan


@dataclass(frozen=True)
class Op:
    """One command that changes a host, with a line saying why it is needed."""

    command: str
    description: str
    timeout: float | None = None
    stdin: str | None = None  # fed to the command (secrets), never shown or recorded


@dataclass
class Shared:
    """What the caller hands every step of a run (typed: a missing piece is an error, not a
    default). `up`, `status` and `generate` give the plan; the rest is per command."""

    plan: Plan | None = None
    api_key: str | None = None  # never logged; written to a 0600 file through stdin
    ray_snapshot: Future[Any] | None = None  # `up`: Ray's node list, asked in the background
    prompts: list[dict[str, Any]] = field(default_factory=list)  # `generate`
    sampling: Any = None  # `generate`: toolkit.client.sampling.Sampling
    on_result: Callable[[dict[str, Any]], None] | None = None  # `generate`: each result as it comes
    timeout: float = 3600.0  # `generate`: the whole batch
    rendezvous: Rendezvous = field(default_factory=Rendezvous)  # readiness across hosts (launcher dp)
    #: HBM in use (MB) per host and device before `up` started anything (its preflight; `down` waits
    #: until the devices are back to it); host -> device (as a string: JSON keys) -> MB
    hbm_before: dict[str, dict[str, int]] = field(default_factory=dict)
    #: what the deployment record's new entry also says (`upgrade`: {"via": "upgrade", "from": digest})
    record_extra: dict[str, Any] = field(default_factory=dict)

    def the_plan(self) -> Plan:
        if self.plan is None:
            raise BadInput("this step needs the deployment plan", hint="run it through `ascend-deploy up` or `run`")
        return self.plan


#: step name -> host -> what that host's run of the step reported, over the stages run so far
Results = dict[str, dict[str, dict[str, Any]]]


@dataclass
class StepContext:
    session: Session
    inventory: Inventory
    params: dict[str, Any]
    check: bool
    data: dict[str, Any] = field(default_factory=dict)  # what the step reports (facts, state)
    results: Results = field(default_factory=dict)  # earlier steps' data: read it with `from_step`
    shared: Shared = field(default_factory=Shared)

    @property
    def host(self) -> Any:
        return self.session.host

    def from_step(self, step: str | StepFn) -> dict[str, dict[str, Any]]:
        """What an earlier step reported, per host (every stage that ran it; a failed host has
        nothing). By step, never by stage name: playbooks may name their stages as they like."""
        name = step if isinstance(step, str) else STEP_NAMES[step]
        return self.results.get(name, {})

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
    needs_plan: bool = False  # reads ctx.shared.plan; `api.run` provides it (and the API key)


STEPS: dict[str, StepInfo] = {}
STEP_NAMES: dict[Callable[..., Any], str] = {}


def step(name: str, *, read_only: bool = False, needs_plan: bool = False) -> Callable[[StepFn], StepFn]:
    def register(fn: StepFn) -> StepFn:
        if name in STEPS:
            raise ValueError(f"step {name!r} registered twice")
        STEP_NAMES[fn] = name
        STEPS[name] = StepInfo(
            name, fn, read_only, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "", needs_plan
        )
        return fn

    return register
