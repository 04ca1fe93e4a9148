"""What every benchmark shares: the machine it ran on, timing one process exactly, the start-up
floor of the libraries the CLI is built on (floor.py), and writing the page."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")

FLOOR = str(ROOT / "bench" / "floor.py")
CLI = [PYTHON, "-m", "toolkit"]


def cli(*args: str) -> tuple[float, dict]:
    """Wall seconds and the `--json` document of one CLI command (it must print one)."""
    started = time.monotonic()
    proc = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - started
    try:
        return wall, json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"{args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}") from None


def machine() -> str:
    gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    return f"{platform.node()}: {os.cpu_count()} cores, {gib} GiB, Linux {platform.release()}"


def publish(path: Path, lines: list[str]) -> None:
    """Write the report (docs/*-benchmarks.md) and show it."""
    text = "\n".join([*lines, ""])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)


def timed(cmd: list[str], **kw: object) -> tuple[float, float, subprocess.CompletedProcess[str], int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of one command (with any children it waited
    for), from wait4 on that very process: no wrapper's start-up is counted."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, **kw)  # type: ignore[call-overload]
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(
            cmd, proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace")
        )
    return wall, usage.ru_utime + usage.ru_stime, done, usage.ru_maxrss


def library_floor(runs: int = 5) -> tuple[float, float]:
    """Median wall and CPU seconds of bench/floor.py in the toolkit's venv: the start-up that no
    code of ours can remove, measured in the same run as the numbers it is compared with."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, proc, _ = timed([PYTHON, FLOOR])
        if proc.returncode != 0:
            sys.exit(f"library floor failed: {proc.stderr[-2000:]}")
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus)
