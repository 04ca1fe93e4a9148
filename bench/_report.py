"""What every benchmark report shares: the machine it ran on, and writing the page."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    return f"{platform.node()}: {os.cpu_count()} cores, {gib} GiB, Linux {platform.release()}"


def publish(path: Path, lines: list[str]) -> None:
    """Write the report (docs/*-benchmarks.md) and show it."""
    text = "\n".join([*lines, ""])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
