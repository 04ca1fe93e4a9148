"""Steps: Python functions a playbook stage names (registered in `toolkit.engine.registry`).
Each module holds the steps of one concern; `load_builtin_steps` imports them all."""

from __future__ import annotations

from toolkit.config.playbook import Playbook
from toolkit.config.playbook import load_playbook as load_playbook_file
from toolkit.engine.registry import STEPS, StepInfo


def load_builtin_steps() -> dict[str, StepInfo]:
    """Import the modules that register the built-in steps."""
    from toolkit.steps import (  # noqa: F401
        bench,
        container,
        deploy,
        env_file,
        facts,
        generate,
        observe,
        preflight,
        procs,
        ray,
        record,
        teardown,
    )

    return STEPS


def load_playbook(ref: str) -> Playbook:
    """A playbook by name or path, its step names checked against the built-in steps."""
    return load_playbook_file(ref, load_builtin_steps())
