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
