"""The `gather_facts` step: read-only host facts, reported per host."""

from __future__ import annotations

from typing import Iterator

from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts.host import HOST_FACTS, host_facts


@step("gather_facts", read_only=True)
def gather_facts(ctx: StepContext) -> Iterator[Op]:
    """Read hostname, OS, CPU/memory, NICs, Python/package and Ascend versions."""
    ctx.data["facts"] = host_facts(ctx.facts(HOST_FACTS)).to_dict()
    return iter(())
