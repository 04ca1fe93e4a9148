"""Building remote command lines safely.

Every value that reaches a remote shell goes through `shlex.quote`; only the inventory's
`setup` lines are passed verbatim, because they are shell commands by design.
"""

from __future__ import annotations

import shlex
from typing import Iterable, Mapping

#: Exit status the wrapper uses when a `setup` line fails, so the error can name the line.
SETUP_FAILED = 97


def q(value: object) -> str:
    """Quote one argument for a POSIX shell."""
    return shlex.quote(str(value))


def join(argv: Iterable[object]) -> str:
    """Quote every element of an argv and join into a command line."""
    return " ".join(q(a) for a in argv)


def export_env(env: Mapping[str, str]) -> str:
    """`export K='v' ...` for a mapping; keys are validated identifiers, values are quoted."""
    if not env:
        return ""
    return "export " + " ".join(f"{k}={q(v)}" for k, v in env.items())


def compose(command: str, *, env: Mapping[str, str] | None = None, setup: Iterable[str] = ()) -> str:
    """The script one remote command runs: environment, setup lines, then the command.

    A failing setup line stops the script with SETUP_FAILED and names itself on stderr, so a
    missing `set_env.sh` is reported as such instead of as a confusing later failure."""
    lines = ['cd "$HOME" 2>/dev/null || true']  # relative paths mean the user's home, whatever sshd's cwd
    if env:
        lines.append(export_env(env))
    for i, line in enumerate(setup):
        lines.append(
            f"{{ {line}\n}} || {{ echo {q(f'ascend-deploy: setup line {i + 1} failed: {line}')} >&2; exit "
            f"{SETUP_FAILED}; }}"
        )
    lines.append(command)
    return "\n".join(lines)


def bash(script: str, *, timeout: float | None = None) -> str:
    """Run `script` under bash (setup lines use `source`), with an on-host timeout when given,
    so a hung command dies on the host too rather than only losing its SSH channel."""
    inner = f"bash -c {q(script)}"
    if timeout is not None:
        secs = max(1, int(timeout + 0.999))
        return f"timeout -k 5 {secs} {inner}"
    return inner
