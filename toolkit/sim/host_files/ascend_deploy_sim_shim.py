"""SIMULATOR-ONLY shim, loaded by a .pth file in the simulated hosts' venv. Never ships to real
hosts (real hosts run vllm-ascend, whose platform already asks Ray for `NPU`).

It makes vLLM's CPU platform behave like an Ascend platform towards Ray and across hosts:
- `CpuPlatform.ray_device_key = "NPU"`: the Ray executor places workers on Ray's `NPU`
  resource (as vllm-ascend does) instead of refusing Ray ("current platform cpu does not
  support ray");
- the CPU shared-memory group name is keyed by hostname, so ranks on different simulated hosts
  never try to share /dev/shm and fall back to gloo over TCP: TP/PP traffic really crosses hosts;
- a vLLM worker holds its simulated NPU (an open fd on /usr/local/Ascend/sim/dev/davinciN), so the
  simulated `npu-smi info` lists it in the process table, as on a real host;
- an image variant (`ASCEND_SIM_VARIANT`, set by `ascend-deploy sim image-variant` in an image's
  environment) makes that image's vLLM slower by a fixed time per engine step (`slow:MS`: a release
  that regressed) or its server exit at start (`exit-at-start`: a release that fails on this host).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import socket
import sys
import time
from typing import Any, Callable

_HELD: list[Any] = []


def _patch_platform(module: Any) -> None:
    module.CpuPlatform.ray_device_key = "NPU"


def _patch_communicator(module: Any) -> None:
    cls = module._CPUSHMDistributed
    original = cls.make_group_name

    def make_group_name(communicator: Any) -> str:
        return f"{original(communicator)}-{socket.gethostname()}"

    cls.make_group_name = staticmethod(make_group_name)


def hold_devices(local_rank: int = 0) -> None:
    """Open the simulated device file(s) this process uses, like a real NPU context does."""
    visible = [v for v in os.environ.get("ASCEND_RT_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if not visible:
        return
    device = visible[local_rank % len(visible)]
    path = f"/usr/local/Ascend/sim/dev/davinci{device}"
    try:
        _HELD.append(open(path, "rb"))  # noqa: SIM115 - held for the process lifetime
    except OSError:
        pass


def _patch_worker(module: Any) -> None:
    cls = getattr(module, "CPUWorker", None)
    if cls is None:
        return
    original = cls.init_device

    def init_device(self: Any, *args: Any, **kwargs: Any) -> Any:
        # several DP ranks on one host (vllm-ascend's DeepSeek recipe: two per node) each take their own
        # devices, as vLLM narrows the visible devices per DP rank on a real platform
        parallel = getattr(self, "parallel_config", None)
        dp_local = getattr(parallel, "data_parallel_rank_local", None) or 0
        world = getattr(parallel, "world_size", 1) or 1
        hold_devices(dp_local * world + (getattr(self, "local_rank", 0) or 0))
        return original(self, *args, **kwargs)

    cls.init_device = init_device


VARIANT = os.environ.get("ASCEND_SIM_VARIANT", "")


def _patch_runner(module: Any) -> None:
    """`slow:MS`: every engine step (one model forward on every rank) takes MS longer."""
    if not VARIANT.startswith("slow:"):
        return
    delay = int(VARIANT.split(":", 1)[1]) / 1000.0
    cls = module.CPUModelRunner
    original = cls.execute_model

    def execute_model(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(delay)
        return original(self, *args, **kwargs)

    cls.execute_model = execute_model


def _patch_serve(module: Any) -> None:
    """`exit-at-start`: `vllm serve` stops before it loads anything, as a release that does not run here."""
    if VARIANT != "exit-at-start":
        return

    def cmd(args: Any) -> None:
        sys.stderr.write(
            "RuntimeError: this image's vLLM cannot start on this host "
            "(simulated image variant ASCEND_SIM_VARIANT=exit-at-start)\n"
        )
        sys.stderr.flush()
        raise SystemExit(1)

    module.ServeSubcommand.cmd = staticmethod(cmd)


PATCHES: dict[str, Callable[[Any], None]] = {
    "vllm.v1.worker.cpu_model_runner": _patch_runner,
    "vllm.entrypoints.cli.serve": _patch_serve,
    "vllm.platforms.cpu": _patch_platform,
    "vllm.distributed.device_communicators.cpu_communicator": _patch_communicator,
    "vllm.v1.worker.cpu_worker": _patch_worker,
}


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, patch: Callable[[Any], None]) -> None:
        self.inner = inner
        self.patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        self.patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        patch = PATCHES.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader, patch)
                return spec
        return None


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
