"""Facts: each is a read-only command plus a parser from its raw output to a typed value.

Parsers are pure and tested against captured output (tests/facts/golden). `batch_script` joins
many facts' commands into ONE script with per-fact markers and `split_batch` splits its output
back; the engine's `gather` runs that script on a host in one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Raw:
    """What one fact command printed (stderr of batched facts is dropped unless the command merges it)."""

    stdout: str
    exit_code: int


@dataclass(frozen=True)
class Fact(Generic[T]):
    name: str
    command: str
    parse: Callable[[Raw], T]
    setup: bool = True  # run after the host's setup lines (needed for venv Python, Ascend env)
    background: bool = False  # slow: runs concurrently with the batch's other facts


def distinct(facts: Iterable[Fact[Any]]) -> list[Fact[Any]]:
    """The facts that run: of several with the same command (one output, parsed two ways: `npu-smi
    info -l` for the card count and the card list), the first; `raws` hands each the output."""
    first: dict[str, Fact[Any]] = {}
    for fact in facts:
        first.setdefault(fact.command, fact)
    return list(first.values())


def batch_script(facts: Iterable[Fact[Any]], nonce: str) -> str:
    """One shell script that prints every fact's output between unique markers (a command that
    several facts share, once).

    The output is collected on the host and written once: printed as it comes it reaches the
    controller as ~100 small SSH packets per host, and paramiko's per-packet Python work would
    be most of check-net's controller CPU (docs/timing-history.md).
    A timeout loses nothing the caller could use: a timed-out run raises, partial or not."""
    facts = distinct(facts)
    slow = [f for f in facts if f.background]
    parts = ["__facts=$("]
    if slow:  # started first, each into its own file in a private folder, printed after the rest
        parts.append("__bg=$(mktemp -d)")
        for i, fact in enumerate(slow):
            parts.append(f'{{ ( {fact.command}\n) > "$__bg/{i}" 2>/dev/null </dev/null; echo $? > "$__bg/{i}.rc"; }} &')
    for fact in facts:
        if fact.background:
            continue
        parts.append(f"echo '@@{nonce}@@ {fact.name}'")
        parts.append(f"( {fact.command}\n) 2>/dev/null </dev/null")
        parts.append(f'echo "@@{nonce}@@ rc=$?"')
    if slow:
        parts.append("wait")
        for i, fact in enumerate(slow):
            parts.append(
                f'echo \'@@{nonce}@@ {fact.name}\'; cat "$__bg/{i}"; echo "@@{nonce}@@ rc=$(cat "$__bg/{i}.rc" '
                '2>/dev/null || echo 255)"'
            )
        parts.append('rm -rf "$__bg"')
    parts.append(")")
    parts.append("printf '%s\\n' \"$__facts\"")
    return "\n".join(parts)


def sections(stdout: str, nonce: str) -> Iterator[tuple[str, str, int]]:
    """(tag, text, exit code) of each `@@nonce@@ TAG` ... `@@nonce@@ rc=N` section of a script's
    output. A section cut short (no rc line) is left out: callers treat missing as failed."""
    marker = f"@@{nonce}@@ "
    tag: str | None = None
    lines: list[str] = []
    for line in stdout.splitlines():
        if marker in line:
            before, _, rest = line.partition(marker)
            if before and tag is not None:  # output without a final newline: the marker follows on its line
                lines.append(before)
            if rest.startswith("rc=") and tag is not None:
                code = int(rest[3:]) if rest[3:].lstrip("-").isdigit() else 255
                yield tag, "\n".join(lines) + ("\n" if lines else ""), code
                tag, lines = None, []
            else:
                tag, lines = rest, []
        elif tag is not None:
            lines.append(line)


def split_batch(stdout: str, nonce: str) -> dict[str, Raw]:
    """Split a batch script's output back into per-fact raw outputs."""
    return {tag: Raw(text, code) for tag, text, code in sections(stdout, nonce)}


def raws(facts: Iterable[Fact[Any]], found: dict[str, Raw]) -> dict[str, Raw]:
    """Each fact's raw output from a batch's sections (`split_batch`), by fact name (a fact whose
    command ran under another fact's name gets that output; a missing section is a failed command)."""
    facts = list(facts)
    ran = {f.command: f.name for f in distinct(facts)}
    return {f.name: found.get(ran[f.command], Raw("", 255)) for f in facts}
