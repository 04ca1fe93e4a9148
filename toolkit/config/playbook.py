"""Playbooks: ordered stages and their parameters, nothing else (no templating in YAML).

A playbook is found by name among the bundled playbooks (`playbooks/NAME.yaml`) or by path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from toolkit.config.inventory import issues_from_validation
from toolkit.config.yamlsrc import did_you_mean, load_file
from toolkit.errors import InputIssue, InvalidFile


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]*$")
    step: str
    hosts: Literal["all", "head", "workers"] = "all"
    mode: Literal["parallel", "serial"] = "parallel"
    timeout: float | None = Field(None, gt=0, description="per-command timeout in this stage (s)")
    retries: int = Field(0, ge=0, le=20)
    delay: float = Field(1.0, ge=0, le=3600, description="seconds between retries")
    tags: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    on_failure: Literal["stop", "continue"] = Field(
        "stop", description="stop: later stages do not run; continue: later stages run on the hosts that did not fail"
    )


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    stages: list[Stage] = Field(..., min_length=1)
    path: str = ""


def bundled_dirs() -> list[Path]:
    """Where built-in playbooks live: next to the package in a checkout, or bundled in the wheel."""
    here = Path(__file__).resolve().parents[1]  # the toolkit package
    return [p for p in (here / "_bundled" / "playbooks", here.parent / "playbooks") if p.is_dir()]


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in bundled_dirs():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_playbook(ref: str) -> Path:
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or "/" in ref:
        if path.is_file():
            return path
        raise InvalidFile(ref, [InputIssue(ref, None, "", "playbook file not found")])
    known = available()
    if ref in known:
        return known[ref]
    guess = did_you_mean(ref, known)
    raise InvalidFile(
        ref,
        [
            InputIssue(
                ref,
                None,
                "",
                f"no playbook named '{ref}'",
                f"did you mean '{guess}'?" if guess else f"known: {', '.join(known)}",
            )
        ],
    )


def load_playbook(ref: str, steps: Collection[str]) -> Playbook:
    """Load and validate a playbook; `steps` are the step names a stage may use (the engine's
    registry: config does not import the steps themselves)."""
    path = find_playbook(ref)
    doc = load_file(path)
    file = doc.source.file
    if not isinstance(doc.data, dict):
        raise InvalidFile(
            file,
            [InputIssue(file, doc.source.line_of(()), "", "a playbook must be a mapping with 'name' and 'stages'")],
        )
    try:
        book = Playbook.model_validate({**doc.data, "path": str(path)})
    except ValidationError as exc:
        raise InvalidFile(file, issues_from_validation(exc, doc, Playbook)) from None
    issues = []
    seen: set[str] = set()
    for i, stage in enumerate(book.stages):
        if stage.step not in steps:
            guess = did_you_mean(stage.step, steps)
            issues.append(
                InputIssue(
                    file,
                    doc.source.line_of(("stages", i, "step")),
                    f"stages[{i}].step",
                    f"unknown step '{stage.step}'",
                    f"did you mean '{guess}'?" if guess else f"known steps: {', '.join(sorted(steps))}",
                )
            )
        if stage.name in seen:
            issues.append(
                InputIssue(
                    file,
                    doc.source.line_of(("stages", i, "name")),
                    f"stages[{i}].name",
                    f"duplicate stage name '{stage.name}'",
                )
            )
        seen.add(stage.name)
    if issues:
        raise InvalidFile(file, issues)
    return book
