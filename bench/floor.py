"""The start-up floor: what any Python CLI built on the toolkit's libraries runs before its own
code. The interpreter, then pydantic (with one model: pydantic builds its schema machinery on the
first one), typer, paramiko (which imports invoke), fabric and PyYAML; `--json` runs never import
rich. Run alone by `_report.library_floor`; imported first by trace_cli.py."""

import fabric  # noqa: F401
import paramiko  # noqa: F401
import pydantic
import typer  # noqa: F401
import yaml  # noqa: F401


class _First(pydantic.BaseModel):
    x: int


_First(x=1)
