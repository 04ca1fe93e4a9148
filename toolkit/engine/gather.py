"""Running facts on a host: many facts' commands in ONE remote round trip (the facts layer builds the
script and splits its output; this runs it through a session and parses each fact)."""

from __future__ import annotations

import secrets
from typing import Any, Iterable

from toolkit.engine.executor import Session
from toolkit.errors import CommandFailed
from toolkit.facts import Fact, batch_script, raws, split_batch


def needs_setup(facts: Iterable[Fact[Any]]) -> bool:
    return all(f.setup for f in facts)


def gather(session: Session, facts: list[Fact[Any]], *, timeout: float | None = None) -> dict[str, Any]:
    """Run `facts` on one host in one round trip and parse each; missing output parses as failed."""
    nonce = secrets.token_hex(6)
    result = session.run(batch_script(facts, nonce), timeout=timeout, check=False, setup=needs_setup(facts))
    found = split_batch(result.stdout, nonce)
    if not found and not result.ok:
        raise CommandFailed(
            session.name, f"gathering facts failed (exit {result.exit_code}): {result.tail(3)}", result=result
        )
    raw = raws(facts, found)
    return {fact.name: fact.parse(raw[fact.name]) for fact in facts}
