"""Quoting: no inventory value can execute on a host; setup failures name their line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from toolkit.transport.shell import SETUP_FAILED, bash, compose, export_env, join, q

NASTY = [
    "$(touch {m})",
    "`touch {m}`",
    "; touch {m}",
    "a' ; touch {m}; echo '",
    'a" ; touch {m}; echo "',
    "x\ntouch {m}",
    "|| touch {m}",
    "${{IFS}}touch${{IFS}}{m}",
    "\\'; touch {m} #",
]


@pytest.mark.parametrize("template", NASTY)
def test_env_values_never_execute_and_round_trip(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "pwned"
    value = template.format(m=marker)
    script = compose('printf "%s" "$VALUE"', env={"VALUE": value})
    out = subprocess.run(["bash", "-c", bash(script, timeout=10)], shell=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == value
    assert not marker.exists()


def test_join_quotes_every_argument(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    argv = ["printf", "%s|", f"$(touch {marker})", "a b", "it's"]
    out = subprocess.run(["bash", "-c", join(argv)], capture_output=True, text=True)
    assert out.stdout == f"$(touch {marker})|a b|it's|"
    assert not marker.exists()


def test_setup_failure_names_the_line() -> None:
    script = compose("echo never", setup=["true", "source /nonexistent/set_env.sh"])
    out = subprocess.run(["bash", "-c", bash(script)], capture_output=True, text=True)
    assert out.returncode == SETUP_FAILED
    assert "setup line 2 failed: source /nonexistent/set_env.sh" in out.stderr
    assert "never" not in out.stdout


def test_setup_lines_affect_the_command() -> None:
    script = compose('echo "$FROM_SETUP-$FROM_ENV"', env={"FROM_ENV": "e"}, setup=["export FROM_SETUP=s"])
    out = subprocess.run(["bash", "-c", bash(script)], capture_output=True, text=True)
    assert out.stdout.strip() == "s-e"


def test_timeout_wrapper_kills_on_host() -> None:
    out = subprocess.run(["bash", "-c", bash("sleep 20", timeout=1)], capture_output=True, text=True, timeout=15)
    assert out.returncode == 124


def test_export_env_and_q() -> None:
    assert export_env({}) == ""
    assert export_env({"A": "x y"}) == "export A='x y'"
    assert q("plain") == "plain"
