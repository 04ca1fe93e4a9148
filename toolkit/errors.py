"""Typed errors. Library code raises these; only the CLI turns them into text and exit codes.

Each error knows its exit code and renders as one line naming the host (and stage) involved,
so an operator never has to read a traceback to learn what failed where.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class CommandOutcome(Protocol):
    """What a host error may carry about the command that failed (a transport `Result`); a
    protocol, so that errors, the bottom layer, imports nothing above it."""

    @property
    def exit_code(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class ToolkitError(Exception):
    """Base of every error the CLI knows how to render."""

    exit_code: int = EXIT_FAILED
    kind: str = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        return data

    def lines(self) -> list[str]:
        """Human-readable lines, first line self-contained."""
        out = [self.message]
        if self.hint:
            out.append(f"hint: {self.hint}")
        return out


class BadInput(ToolkitError):
    """Anything the user typed or wrote that we cannot accept (exit 2)."""

    exit_code = EXIT_BAD_INPUT
    kind = "bad-input"


@dataclass(frozen=True)
class InputIssue:
    """One problem in an input file: where it is and what to do about it."""

    file: str
    line: int | None
    path: str
    message: str
    hint: str | None = None

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        loc = f" {self.path}:" if self.path else ""
        text = f"{where}:{loc} {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class InvalidFile(BadInput):
    """An inventory or playbook failed validation; carries every issue found."""

    kind = "invalid-file"

    def __init__(self, file: str, issues: list[InputIssue]) -> None:
        self.file = file
        self.issues = issues
        count = len(issues)
        first = issues[0].render() if issues else file
        suffix = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"{first}{suffix}")

    def lines(self) -> list[str]:
        return [f"invalid {self.file}: {len(self.issues)} problem(s)"] + ["  " + i.render() for i in self.issues]

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["file"] = self.file
        data["issues"] = [i.to_dict() for i in self.issues]
        return data


class HostError(ToolkitError):
    """A failure tied to one host; the host name leads the rendered line."""

    kind = "host-error"

    def __init__(
        self,
        host: str,
        message: str,
        *,
        hint: str | None = None,
        stage: str | None = None,
        result: CommandOutcome | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.host = host
        self.stage = stage
        self.result = result
        self.details = list(details or [])  # e.g. the tail of a log: shown under the message

    def __str__(self) -> str:
        stage = f" [{self.stage}]" if self.stage else ""
        return f"{self.host}{stage}: {self.message}"

    def lines(self) -> list[str]:
        out = [str(self)]
        if self.hint:
            out.append(f"  hint: {self.hint}")
        out.extend(f"  | {line}" for line in self.details)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["host"] = self.host
        data["stage"] = self.stage
        if self.details:
            data["details"] = self.details
        if self.result is not None:
            data["result"] = self.result.to_dict()
        return data


class ConnectError(HostError):
    kind = "connect"


class AuthError(HostError):
    kind = "auth"


class HostKeyError(HostError):
    """Unknown or changed host key; carries the fingerprint the server offered."""

    kind = "host-key"

    def __init__(self, host: str, message: str, *, fingerprint: str, changed: bool, hint: str) -> None:
        super().__init__(host, message, hint=hint)
        self.fingerprint = fingerprint
        self.changed = changed

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["fingerprint"] = self.fingerprint
        data["changed"] = self.changed
        return data


class Cancelled(HostError):
    """The run was interrupted: a host's step still running in a pool thread must not run or
    reconnect again (the process could not exit until its loop ended)."""

    kind = "cancelled"

    def __init__(self, host: str, stage: str | None = None) -> None:
        super().__init__(host, "cancelled: the run was interrupted", stage=stage)


class CommandTimeout(HostError):
    kind = "timeout"


class CommandFailed(HostError):
    kind = "command-failed"


class StageFailed(ToolkitError):
    """A playbook stage failed on some hosts; the run report is attached."""

    kind = "stage-failed"

    def __init__(self, stage: str, errors: dict[str, HostError], report: Any = None) -> None:
        names = ", ".join(sorted(errors))
        super().__init__(f"stage '{stage}' failed on {len(errors)} host(s): {names}")
        self.stage = stage
        self.errors = errors
        self.report = report

    def lines(self) -> list[str]:
        out = [self.message]
        for err in self.errors.values():
            out.extend("  " + line for line in err.lines())
        return out

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["stage"] = self.stage
        data["hosts"] = {name: err.to_dict() for name, err in self.errors.items()}
        return data


class Interrupted(ToolkitError):
    """The user pressed Ctrl-C or sent SIGTERM; says what may still be running where."""

    exit_code = EXIT_INTERRUPTED
    kind = "interrupted"

    def __init__(self, message: str = "interrupted", *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)


class EnvProblem(ToolkitError):
    """Something this machine lacks or refused while preparing an environment (a package install,
    an engine's import): what failed, the command with its own error text, and what to do."""

    kind = "environment"

    def __init__(
        self,
        what: str,
        reason: str,
        *,
        command: list[str] | None = None,
        output: str = "",
        hint: str | None = None,
        tail: int = 15,
    ) -> None:
        super().__init__(f"{what} failed: {reason}", hint=hint)
        self.what = what
        self.command = list(command or [])
        self.output = [line for line in output.strip().splitlines() if line.strip()][-tail:]

    def lines(self) -> list[str]:
        import shlex

        out = [self.message]
        if self.command:
            out.append(f"  $ {shlex.join(self.command)}")
        out.extend(f"  | {line}" for line in self.output)
        if self.hint:
            out.append(f"hint: {self.hint}")
        return out

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(what=self.what, command=self.command, output=self.output)
        return data
