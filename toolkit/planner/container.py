"""The container a host's processes run in (inventory `container:`), derived the way vllm-ascend's
installation guide starts its image (../shared/ascend-reference.md section 8): every argument of
`docker run` with the reason it is there. Pure: the plan shows it; `toolkit.launch.container`
turns it into commands; the hosts' engines and image digests are facts read at run time.

Paths that start with `~/` are the SSH user's home on the host (the shell expands it there)."""

from __future__ import annotations

import re
from typing import Callable

from toolkit.config.hardware import KINDS
from toolkit.config.inventory import ContainerSettings
from toolkit.planner.types import ContainerPlan, PlanIssue, RunArg, Value, ray_temp_dir
from toolkit.plugin_api import RuntimeProfile

#: the vendor's image repository (tags: vX.Y.Z[rcN][-a3][-openeuler], -310p)
VENDOR_REPO = "quay.io/ascend/vllm-ascend"
#: the device nodes besides one /dev/davinciN per device: the driver's management and memory devices
CONTROL_DEVICES = ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")
#: the driver's parts a container needs from its host, read-only (the vendor guide's -v list, plus
#: hccn.conf, which its prefill/decode setups mount and check-net's per-card addresses come from)
DRIVER_MOUNTS = (
    "/usr/local/dcmi",
    "/usr/local/bin/npu-smi",
    "/usr/local/Ascend/driver/tools/hccn_tool",
    "/usr/local/Ascend/driver/lib64",
    "/usr/local/Ascend/driver/version.info",
    "/etc/ascend_install.info",
    "/etc/hccn.conf",
)
#: where the recipes keep downloads and compiled graphs (the guide mounts it from the host)
CACHE_DIR = "/root/.cache"
LABEL = "ascend-deploy.cluster"
HASH_LABEL = "ascend-deploy.hash"


def _suffix(variant: str) -> str:
    return "" if variant == "a2" else f"-{variant}"


def image_variant(image: str) -> str | None:
    """The hardware an image's tag is built for, from the vendor's suffixes (None: cannot tell)."""
    repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    if re.search(r"-a3(-|$)", tag):
        return "a3"
    if re.search(r"-310p(-|$)", tag):
        return "310p"
    return "a2" if repo == VENDOR_REPO else None


def image_version(image: str) -> str | None:
    """The vllm-ascend version a vendor image's tag names (`v0.11.0rc0-a3` -> 0.11.0)."""
    repo, _, tag = image.rpartition(":")
    if repo != VENDOR_REPO:
        return None
    m = re.match(r"v(\d+\.\d+\.\d+)", tag)
    return m.group(1) if m else None


def default_image(runtime: RuntimeProfile, kind: str) -> str | None:
    """The runtime profile's image for this hardware (A3 and 310P take the vendor's suffix)."""
    if runtime.image is None:
        return None
    variant = KINDS[kind].image_variant
    return runtime.image + _suffix(variant)


def plan_container(
    spec: ContainerSettings,
    *,
    cluster: str,
    kind: str,
    device_class: str,
    runtime: RuntimeProfile,
    runtime_set: bool,
    model_path: str,
    state_dir: str,
    origin: Callable[[str], str],
    shm: tuple[str, str] = ("1g", "default: the vendor guide's 1g"),
) -> tuple[ContainerPlan | None, list[PlanIssue]]:
    """The container plan, or the issues that refuse it (exit 2 with the field and the fix).
    `origin(key)` says where an inventory value came from; `shm`: the size (and why) when the
    inventory sets none (`demand.container_shm`)."""
    issues: list[PlanIssue] = []
    given = spec.image
    if given and runtime.image is None:
        issues.append(
            PlanIssue(
                "container.image",
                f"runtime {runtime.name} is not a container runtime profile (it names no image), but an image is given",
                "set `runtime:` to the image's vllm-ascend version (e.g. vllm-ascend-0.11.0), or remove "
                "container.image to run in each host's own Python",
            )
        )
    image = given or default_image(runtime, kind)
    if image is None:
        issues.append(
            PlanIssue(
                "container.image",
                f"no image: runtime {runtime.name} has no vendor image",
                f"set container.image (e.g. {VENDOR_REPO}:v0.11.0{_suffix(KINDS[kind].image_variant)})",
            )
        )
        return None, issues
    want = KINDS[kind].image_variant
    have = image_variant(image)
    if have is not None and have != want:
        base = re.sub(r"-(a3|310p)(?=-|$)", "", image)
        issues.append(
            PlanIssue(
                "container.image",
                f"{image} is an {have.upper()} image, but hardware {kind} needs the {want.upper()} one",
                f"use {base}{_suffix(want)} (the vendor's tag for {want.upper()})",
            )
        )
    version = image_version(image)
    if version and runtime.vllm_ascend and version != runtime.vllm_ascend:
        issues.append(
            PlanIssue(
                "container.image" if given else "runtime",
                f"{image} carries vllm-ascend {version}, but the plan is for {runtime.name}",
                f"set runtime: vllm-ascend-{version}"
                if runtime_set
                else f"there is no runtime profile for vllm-ascend {version}; pick an image of a known release",
            )
        )
    hw = KINDS[kind]
    devices = [f"/dev/davinci{d}" for d in range(hw.devices)]
    args = [
        RunArg("network", ("--net=host",), "Ray, HCCL and the API bind the host's own addresses (the vendor guide)"),
        RunArg(
            "processes",
            ("--pid=host",),
            "the host sees and signals the processes: status, down and npu-smi's process list work as on bare metal",
        ),
        RunArg(
            "shared memory",
            ("--shm-size", spec.shm_size or shm[0]),
            origin("container.shm_size") if spec.shm_size else shm[1],
        ),
        RunArg(
            "devices",
            tuple(a for dev in (*devices, *CONTROL_DEVICES) for a in ("--device", dev)),
            f"hardware {kind}: all {hw.devices} devices of the host and the driver's control devices "
            "(ASCEND_RT_VISIBLE_DEVICES picks the plan's)",
        ),
        RunArg(
            "driver",
            tuple(a for path in DRIVER_MOUNTS for a in ("-v", f"{path}:{path}:ro")),
            "the host's driver and tools, read-only (the image carries CANN, not the driver)",
        ),
        RunArg("model", ("-v", f"{model_path}:{model_path}:ro"), "model.path, at the same path as on every host"),
        RunArg("cache", ("-v", f"~/.cache:{CACHE_DIR}"), "the recipes' shared cache (downloads, compiled graphs)"),
        RunArg(
            "ray temp",
            ("-v", f"{ray_temp_dir(cluster)}:{ray_temp_dir(cluster)}"),
            "Ray's sockets and session logs on the host too (`logs`, a failed start's diagnosis read them there)",
        ),
        RunArg(
            "cluster folder",
            ("-v", f"~/{state_dir}:~/{state_dir}"),
            "the plan's env file (read by every command, never a command line), logs and pid files, at the same path",
        ),
    ]
    if spec.mounts:
        args.append(RunArg("mounts", tuple(a for m in spec.mounts for a in ("-v", m)), origin("container.mounts")))
    if spec.env:
        args.append(
            RunArg(
                "environment",
                tuple(a for k, v in spec.env.items() for a in ("-e", f"{k}={v}")),
                origin("container.env"),
            )
        )
    if spec.privileged:
        args.append(RunArg("privileged", ("--privileged=true",), origin("container.privileged")))
    name = spec.name or f"ascend-deploy-{cluster}"
    plan = ContainerPlan(
        engine=Value(spec.engine, origin("container.engine") if spec.engine != "auto" else "default: auto"),
        image=Value(image, origin("container.image") if given else f"runtime {runtime.name} on {device_class}"),
        name=Value(name, origin("container.name") if spec.name else "default: ascend-deploy-CLUSTER"),
        args=tuple(args),
        setup=tuple(spec.setup),
        state_dir=state_dir,
    )
    labels = RunArg(
        "labels",
        ("--label", f"{LABEL}={cluster}", "--label", f"{HASH_LABEL}={plan.config_hash}"),
        "how `down` and `status` find it, and what shaped it",
    )
    return ContainerPlan(plan.engine, plan.image, plan.name, (*plan.args, labels), plan.setup, state_dir), issues
