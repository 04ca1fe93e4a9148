"""Mount targets the simulated hosts need on the real filesystem (the driver's folder, hccn.conf,
and with a container engine the parts the vendor's `docker run` mounts and the device nodes it
maps): made only where missing, remembered machine-wide (a lost state file does not leak them), and
removed when the last simulated cluster goes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

BIND_TARGETS = {"/usr/local/Ascend": "dir", "/etc/hccn.conf": "file"}
#: more of them with a container engine: the driver parts the vendor's `docker run` mounts, and the
#: device nodes it maps (character devices that act like /dev/null: the fake tools are the cards)
#: and runc's state folder, which each host mounts afresh (the machine's would keep a killed container's state)
ENGINE_TARGETS = {
    "/usr/local/dcmi": "dir",
    "/usr/local/bin/npu-smi": "file",
    "/etc/ascend_install.info": "file",
    "/run/runc": "dir",
}
DEVICE_NODES = ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")
#: Placeholders we created on the real filesystem, remembered machine-wide (survives a lost state file).
PLACEHOLDERS = Path("/run/ascend-deploy-sim/placeholders")


def make(devices: int, *, containers: bool) -> list[str]:
    """Create the targets that are missing (recorded in PLACEHOLDERS first); return what was made."""
    targets = dict(BIND_TARGETS)
    if containers:
        targets.update(ENGINE_TARGETS)
        targets.update({d: "device" for d in (*(f"/dev/davinci{i}" for i in range(devices)), *DEVICE_NODES)})
    made = []
    for target, kind in targets.items():
        if not os.path.exists(target):
            PLACEHOLDERS.parent.mkdir(parents=True, exist_ok=True)
            with PLACEHOLDERS.open("a") as fh:
                fh.write(target + "\n")
            if kind == "dir":
                os.makedirs(target)
            elif kind == "device":
                os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            else:
                Path(target).touch()
            made.append(target)
    return made


def remove_all() -> None:
    """Remove every recorded placeholder that is still ours (empty, or a device node we made)."""
    if not PLACEHOLDERS.exists():
        return
    for target in set(PLACEHOLDERS.read_text().split()):
        remove_placeholder(target)
    PLACEHOLDERS.unlink()


def remove_placeholder(target: str) -> None:
    path = Path(target)
    try:
        if path.is_char_device():
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        elif path.is_file() and path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass
