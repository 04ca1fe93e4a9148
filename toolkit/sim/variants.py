"""SIMULATOR-ONLY variants of the simulator's image, for rehearsing upgrades: the same image with one
line of environment that the simulated hosts' vLLM shim reads (`ASCEND_SIM_VARIANT`, see
host_files/ascend_deploy_sim_shim.py):

- `good`: a harmless change (a new tag and id, the same vLLM): an upgrade that should pass its gate;
- `slow`: every engine step takes `slow_ms` longer (a release that regressed): the gate fails;
- `exit-at-start`: `vllm serve` exits at start (a release that does not run on these hosts).

Built into the shared store every simulated host reads (FROM the image, ENV and LABEL only: nothing
runs), so every host holds the variant at once, as after an `image load`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from toolkit.errors import BadInput, EnvProblem
from toolkit.sim.image import VARIANT_LABEL, Store, have_image, image_id, opened, podman_run, remove_variants_from
from toolkit.sim.plugins.sim_runtime import SIM_IMAGE

KINDS = ("good", "slow", "exit-at-start")


def make_variant(root: Path, kind: str, tag: str, *, slow_ms: int = 200) -> str:
    """Build (or rebuild) `tag` as the `kind` variant of the simulator's image; its id."""
    if kind not in KINDS:
        raise BadInput(f"image variant {kind!r} is not one of {', '.join(KINDS)}")
    if not 1 <= slow_ms <= 60000:
        raise BadInput(f"--slow-ms must be 1..60000, got {slow_ms}")
    value = {"good": "none", "slow": f"slow:{slow_ms}", "exit-at-start": "exit-at-start"}[kind]
    store = Store(root)
    with opened(store), tempfile.TemporaryDirectory(dir=str(store.dirs.tmp)) as work:
        if not have_image(store):
            raise BadInput(f"the simulator image {SIM_IMAGE} is not built", hint="run `make host-env` first")
        (Path(work) / "Containerfile").write_text(
            f"FROM {SIM_IMAGE}\nENV ASCEND_SIM_VARIANT={value}\nLABEL {VARIANT_LABEL}={kind}\n"
        )
        args = ("build", "--pull=never", "--layers=false", "-q", "-t", tag, "-f", f"{work}/Containerfile", work)
        done = podman_run(store, *args)
        if done.returncode != 0:
            raise EnvProblem(
                f"the {kind} image variant", f"exit {done.returncode}", command=list(done.args), output=done.stderr
            )
        return image_id(store, tag) or ""


def remove_variants(root: Path) -> list[str]:
    """Remove every variant from the shared store (before the base image is rebuilt, or after a test)."""
    with opened(Store(root)) as store:
        return remove_variants_from(store)
