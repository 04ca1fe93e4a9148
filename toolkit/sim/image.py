"""The simulator's container image and its engine: podman from Debian, configured for simulated
hosts (../shared/sim-notes.md, "A container engine on the simulated hosts").

The image (`SIM_IMAGE`, a vendor-like name under localhost/, never pulled) holds what a vendor image
holds, for the CPU build: the host env (Python, Ray, vLLM's CPU build, the tokenizer code) at the
path its scripts name, a fake CANN toolkit (the `acl` module Ray asks for NPUs, set_env.sh), and the
userland they run on. It is imported once into a shared, read-only image store; each simulated host
has a store of its own on top (its containers, and images loaded into it: `image load`, skew tests).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from toolkit.errors import EnvProblem
from toolkit.sim.netns import SimError
from toolkit.sim.plugins.sim_runtime import SIM_IMAGE
from toolkit.sim.rundirs import RunDirs, run_dirs

#: what a simulated host's engine is told (sim-notes): runc, not crun (hybrid cgroups); cgroupfs (no
#: systemd); lower ulimits (no CAP_SYS_RESOURCE to raise them); file event logs (no journald)
CONTAINERS_CONF = """# podman on a simulated host (ascend-deploy sim); never on real hosts
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
#: the userland the image carries from this machine (Debian's merged /usr); the compiler and headers
#: because vLLM's CPU build compiles kernels with torch's inductor (g++) at its first request
USERLAND = (
    "bin", "sbin", "lib", "lib64", "usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "etc",
    "usr/lib/gcc", "usr/include", "usr/libexec",
)  # fmt: skip
RECIPE_LABEL = "ascend-deploy.sim-recipe"
VARIANT_LABEL = "ascend-deploy.sim-variant"  # images made FROM it (toolkit.sim.variants)
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Store:
    """The shared, read-only image store under the sim root: its graph root there, its run root and
    temp dir short and machine-wide (`rundirs`: podman refuses a run root over 50 characters)."""

    root: Path

    @property
    def graph(self) -> Path:
        """Resolved: podman's database records the path it was made at, and refuses another spelling."""
        return (self.root / "images").resolve() / "storage"

    @property
    def dirs(self) -> RunDirs:
        return run_dirs(self.graph)

    @property
    def conf(self) -> Path:
        """Its engine settings: the temp dir (`--tmpdir` alone does not reach `podman import`, which then
        makes /run/libpod on the machine)."""
        return self.dirs.base / "containers.conf"

    def podman(self) -> list[str]:
        return [
            "env",
            f"CONTAINERS_CONF={self.conf}",
            "podman",
            "--root",
            str(self.graph),
            "--runroot",
            str(self.dirs.run),
            "--tmpdir",
            str(self.dirs.tmp),
            "--storage-driver",
            "overlay",
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]


@contextmanager
def opened(store: Store) -> Iterator[Store]:
    """The store's run folders exist only while this machine uses it (the hosts read its graph root
    alone): made here and removed after, one user at a time (test workers share the store)."""
    store.graph.parent.mkdir(parents=True, exist_ok=True)
    with open(store.graph.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store.dirs.make()
        store.conf.write_text(
            f'# the simulator\'s image store (ascend-deploy sim)\n[engine]\ntmp_dir = "{store.dirs.tmp}"\n'
        )
        try:
            yield store
        finally:
            store.dirs.remove()


def storage_conf(dirs: RunDirs, store: Store | None) -> str:
    """A simulated host's own store (`dirs`: its graph root and run folders), with the shared one (if given)
    as an additional, read-only image store."""
    return (
        '# podman storage of a simulated host (ascend-deploy sim)\n[storage]\ndriver = "overlay"\n'
        f'graphroot = "{dirs.store}"\nrunroot = "{dirs.run}"\n'
    ) + (f'[storage.options]\nadditionalimagestores = ["{store.graph}"]\n' if store is not None else "")


def containers_conf(dirs: RunDirs) -> str:
    """A simulated host's engine settings, its libpod temp dir beside its run root (the default,
    /run/libpod, would be shared by every simulated host and outlive the cluster)."""
    return CONTAINERS_CONF + f'tmp_dir = "{dirs.tmp}"\n'


class StoreMismatch(SimError):
    """The store was made with other run folders (an older ascend-deploy kept them under the sim root)."""


def podman_run(store: Store, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*store.podman(), *args], capture_output=True, text=True)
    if done.returncode != 0 and "database configuration mismatch" in done.stderr:
        raise StoreMismatch(done.stderr.strip().splitlines()[-1], hint="`make host-env` imports the image again")
    return done


def have_image(store: Store, image: str = SIM_IMAGE) -> bool:
    """Whether the store holds `image` (exit 1: it does not); any other failure is the engine's, named."""
    args = ("image", "exists", image)
    done = podman_run(store, *args)
    if done.returncode not in (0, 1):
        raise EnvProblem(
            "the simulator's image store",
            f"exit {done.returncode}",
            command=[*store.podman(), *args],
            output=done.stderr,
            hint=f"fix what podman says; `make host-env` rebuilds the store under {store.graph.parent}",
        )
    return done.returncode == 0


def image_id(store: Store, image: str = SIM_IMAGE, recipe: str | None = None) -> str | None:
    """The image's id; None when absent or (given `recipe`) built from another recipe."""
    fmt = '{{.Id}} {{index .Config.Labels "' + RECIPE_LABEL + '"}}'
    done = podman_run(store, "image", "inspect", "--format", fmt, image)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    found, _, label = done.stdout.strip().partition(" ")
    return found if recipe is None or label.strip() == recipe else None


def image_recipe(venv: Path, toolkit_tree: Callable[[Path], None]) -> str:
    """What the image is made of: the userland list, the host env's own stamp, the fake toolkit."""
    import hashlib
    import inspect

    marker = venv / ".ascend-deploy-hostenv"
    parts = [*USERLAND, marker.read_text() if marker.exists() else "", inspect.getsource(toolkit_tree)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def build_image(root: Path, venv: Path, toolkit_tree: Callable[[Path], None], progress: Callable[[str], None]) -> str:
    """Import the image into the shared store once (a few minutes: the host env is ~4 GB); its id.
    `toolkit_tree(dir)` writes the fake CANN toolkit under dir/usr/local/Ascend."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        raise EnvProblem(
            "the simulator image build",
            "podman and runc not found",
            hint="make system-deps (apt-get install podman runc)",
        )
    store = Store(root)
    with opened(store):
        try:
            return _build(store, venv, toolkit_tree, progress)
        except StoreMismatch as exc:
            progress(f"the image store was made with other run folders ({exc}): importing the image again")
            for old in (store.graph, store.graph.parent / "run"):  # the run root used to sit beside it
                shutil.rmtree(old, ignore_errors=True)
            return _build(store, venv, toolkit_tree, progress)


def _build(store: Store, venv: Path, toolkit_tree: Callable[[Path], None], progress: Callable[[str], None]) -> str:
    wanted = image_recipe(venv, toolkit_tree)
    found = image_id(store, recipe=wanted)
    if found:
        return found
    if image_id(store):
        progress("the simulator image is out of date: rebuilding it")
        remove_variants_from(store)  # its children: the base cannot go while they stay
        podman_run(store, "rmi", "-f", SIM_IMAGE, SIM_IMAGE + "-a3")
    venv = venv.resolve()
    python_home = Path(os.path.realpath(venv / "bin" / "python")).parent.parent
    stage = store.root / "images" / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "usr" / "local" / "Ascend").mkdir(parents=True)
    toolkit_tree(stage / "usr" / "local" / "Ascend")
    for d in ("proc", "sys", "dev", "tmp", "root", "run", "vllm-workspace"):
        (stage / d).mkdir(exist_ok=True)
    (stage / "tmp").chmod(0o1777)
    progress(f"importing {SIM_IMAGE} into {store.graph} (the host env, ~4 GB: a few minutes, once)")
    tar = [
        "tar", "-cf", "-", "--exclude=etc/hccn.conf", "--exclude=etc/ascend_install.info",
        "-C", "/", *[p for p in USERLAND if os.path.lexists("/" + p)],
        str(python_home).lstrip("/"), str(venv).lstrip("/"),
        "-C", str(stage), "usr/local/Ascend", "proc", "sys", "dev", "tmp", "root", "run", "vllm-workspace",
    ]  # fmt: skip
    path = f"{venv / 'bin'}:{IMAGE_PATH}"
    args = [
        "import", "--change", f"ENV PATH={path}", "--change", "WORKDIR /vllm-workspace",
        "--change", "CMD [\"bash\"]", "--change", f"LABEL {RECIPE_LABEL}={wanted}", "-", SIM_IMAGE,
    ]  # fmt: skip
    done = _import_tar(store, tar, args)
    shutil.rmtree(stage, ignore_errors=True)
    if done.returncode != 0:
        raise EnvProblem(
            "the simulator image import",
            f"exit {done.returncode}",
            command=[*store.podman(), *args],
            output=done.stderr or done.stdout,
            hint="fix what podman says and run `make host-env` again (free disk space under "
            f"{store.graph.parent}; `make system-deps` for a missing engine)",
        )
    podman_run(store, "tag", SIM_IMAGE, SIM_IMAGE + "-a3")
    return image_id(store) or ""


def remove_variants_from(store: Store) -> list[str]:
    """Remove every image made FROM the simulator's image (`toolkit.sim.variants`) from an opened store."""
    listed = podman_run(store, "images", "--filter", f"label={VARIANT_LABEL}", "--format", "{{.Id}}")
    ids = sorted(set(listed.stdout.split())) if listed.returncode == 0 else []
    if ids:
        podman_run(store, "rmi", "-f", *ids)
    return ids


def _import_tar(store: Store, tar: list[str], args: list[str]) -> subprocess.CompletedProcess[str]:
    """`podman ... ARGS` (an `import -`) fed by `tar` through a pipe: nothing the size of the image on disk."""
    source = subprocess.Popen(tar, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    done = subprocess.run([*store.podman(), *args], stdin=source.stdout, capture_output=True, text=True)
    assert source.stdout is not None
    source.stdout.close()
    source.wait()
    return done


def save_tarball(rootfs: Path, name: str, out: Path) -> Path:
    """`rootfs` as image `name`, saved to `out` as `docker save` / `podman save` would (what a vendor
    tarball is to `image load`), through a private store beside `out` that is removed after."""
    work = out.parent / f".{out.name}.store"
    try:
        with opened(Store(work)) as store:
            done = _import_tar(store, ["tar", "-C", str(rootfs), "-cf", "-", "."], ["import", "-", name])
            if done.returncode == 0:
                done = subprocess.run([*store.podman(), "save", "-o", str(out), name], capture_output=True, text=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0:
        raise EnvProblem(f"saving {name}", f"exit {done.returncode}", command=list(done.args), output=done.stderr)
    return out
