"""The `ascend-deploy` command line: argument parsing and rendering only. The commands live by job
(read_cmds, serving_cmds, client_cmds, image_cmds, sim); importing them registers them on the root
app (`options.app`) in the order `--help` lists them.

Exit codes: 0 success; 1 a check or stage failed on some host; 2 bad input (inventory,
arguments); 130 interrupted.

No `from __future__ import annotations` here or in the command modules: typer reads every command's
signature at start-up, and string annotations cost it 600 `eval`s (about 25 ms of each run).
"""

import inspect
import signal
import sys
import time
from typing import Annotated, NoReturn

import typer

from toolkit import __version__
from toolkit.cli import client_cmds, read_cmds, serving_cmds, upgrade_cmds  # importing them registers their commands
from toolkit.cli.image_cmds import image_app
from toolkit.cli.options import app
from toolkit.cli.sim import sim_app
from toolkit.cli.weights_cmds import weights_app
from toolkit.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Interrupted, ToolkitError

__all__ = ["app", "main", "reflow"]

#: the order `--help` lists the commands in: reading, operating, using the model
COMMAND_MODULES = (read_cmds, serving_cmds, upgrade_cmds, client_cmds)
app.registered_commands.sort(key=lambda info: [m.__name__ for m in COMMAND_MODULES].index(info.callback.__module__))

app.add_typer(sim_app, name="sim")
app.add_typer(image_app, name="image")
app.add_typer(weights_app, name="weights")


def reflow(text: str) -> str:
    """A docstring as help paragraphs: its source line breaks are not the reader's (the help
    formatter wraps each paragraph to the terminal; kept breaks cut sentences in two)."""
    paragraphs = [" ".join(line.strip() for line in block.splitlines()) for block in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def _reflow_help(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        doc = info.help or inspect.getdoc(info.callback)
        if doc:
            info.help = reflow(doc)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


_reflow_help(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ascend-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    pass


# ------------------------------------------------------------------ entry point


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: maps typed errors and signals to exit codes."""
    args = sys.argv[1:] if argv is None else argv
    as_json = _wants_json(args)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        app(args=args, prog_name="ascend-deploy")
        code = EXIT_OK
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_FAILED)
    except ToolkitError as exc:
        from toolkit.cli import render

        render.render_error(exc, as_json=as_json)
        code = exc.exit_code
    except KeyboardInterrupt:
        from toolkit.cli import render

        render.render_error(Interrupted(), as_json=as_json)
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        _exit_promptly(code)
    sys.exit(code)


def _exit_promptly(code: int, grace: float = 5.0) -> None:
    """After Ctrl-C/SIGTERM the report is out; a host thread still inside a remote call (it was
    told to stop, but a channel read may take a moment) must not keep the process alive, since
    the interpreter joins pool threads at exit."""
    import os
    import threading

    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
