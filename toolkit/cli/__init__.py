"""The command line: the typer app (`app.py`), the sim sub-commands (`sim.py`), rendering
(`render.py`) and --json output (`jsonout.py`). The only place that prints."""

from __future__ import annotations

from typing import NoReturn


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point (`ascend-deploy`); the app is imported only when it runs."""
    from toolkit.cli.app import main as run

    run(argv)
