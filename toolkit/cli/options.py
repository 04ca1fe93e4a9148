"""The root command and what every command shares: the options (inventory, --limit, --forks,
--json, -v, --check, --set, --accept-new-host-keys), loading the inventory, progress, and how a
report ends a command (printed, exit 0 or 1). No `from __future__ import annotations` (see app.py)."""

import functools
from pathlib import Path
from typing import Annotated, Any, Callable, NoReturn, Optional, ParamSpec, TypeVar

import typer

from toolkit import api
from toolkit.config.inventory import Inventory
from toolkit.config.recorded import default_inventory
from toolkit.errors import EXIT_FAILED, EXIT_OK, Interrupted

EPILOG = (
    "Exit codes: 0 success; 1 a check or stage failed on some host; 2 bad input (inventory, "
    "arguments); 130 interrupted. Without INVENTORY, commands use the inventory the last `up` "
    "in this folder recorded."
)

app = typer.Typer(
    name="ascend-deploy",
    help=(
        "Deploy multi-node vLLM on Huawei Ascend (Atlas 800) clusters from one inventory file: "
        "NPU + network preflight, environment, Ray head and workers, vLLM, readiness.\n\n"
        "Start with `ascend-deploy facts INVENTORY` to see your hosts, `show-vars INVENTORY HOST` "
        "to see every resolved setting and where it came from."
    ),
    epilog=EPILOG,
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

# ------------------------------------------------------------------ shared options

InventoryArg = Annotated[
    Optional[Path],
    typer.Argument(help="Inventory YAML (default: the one the last `up` in this folder used).", show_default=False),
]
LimitOpt = Annotated[
    Optional[str],
    typer.Option("--limit", "-l", help="Only these hosts: comma list of names or globs (e.g. 'node-a,node-c*')."),
]
ForksOpt = Annotated[
    Optional[int],
    typer.Option("--forks", "-f", min=1, max=1024, help="Hosts worked on at once (default: all, up to 64)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Stream remote output, prefixed by host.")]
CheckOpt = Annotated[
    bool, typer.Option("--check", help="Dry run: read facts, print per host what would run, change nothing.")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a setting for this run (highest precedence), e.g. --set serve.port=9000, --set "
        "env.HCCL_CONNECT_TIMEOUT=1200. Repeatable.",
    ),
]
AcceptKeysOpt = Annotated[
    bool,
    typer.Option(
        "--accept-new-host-keys",
        help="Record host keys of hosts not yet in known_hosts (a CHANGED key is always refused).",
    ),
]


def inventory_of(path: Optional[Path], overrides: Optional[list[str]]) -> Inventory:
    return api.load(path or default_inventory(), api.Options(overrides=overrides or []))


def options_of(
    limit: Optional[str], forks: Optional[int], verbose: bool, check: bool, accept: bool, overrides: Optional[list[str]]
) -> api.Options:
    return api.Options(
        limit=limit, forks=forks, verbose=verbose, check=check, accept_new_host_keys=accept, overrides=overrides or []
    )


def progress_for(verbose: bool, as_json: bool) -> Any:
    """Live progress on a terminal; nothing (and no rich import) for `--json` without `-v`."""
    if as_json and not verbose:
        from toolkit.cli.jsonout import Quiet

        return Quiet()
    from toolkit.cli import render

    return render.Progress(verbose=verbose, enabled=not as_json)


def exit_with(code: int) -> NoReturn:
    raise typer.Exit(code)


def finish(report: Any, as_json: bool, renderer: str, **options: Any) -> NoReturn:
    """Print a report (JSON document, or the tables of `toolkit.cli.render.<renderer>`) and exit 0 if
    it is ok, else 1. The renderer is named, so `--json` never imports the terminal stack."""
    if as_json:
        from toolkit.cli.jsonout import print_json

        print_json(report.to_dict())
    else:
        from toolkit.cli import render

        getattr(render, renderer)(report, **options)
    exit_with(EXIT_OK if report.ok else EXIT_FAILED)


P = ParamSpec("P")
R = TypeVar("R")


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn Ctrl-C inside a command into our Interrupted error (exit 130), not the CLI library's generic
    "Aborted!" (exit 1)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted() from None

    return wrapper
