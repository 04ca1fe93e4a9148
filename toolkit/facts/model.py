"""The model directory on a host: present, config.json hash and the numbers that size it, free disk."""

from __future__ import annotations

import json
from dataclasses import dataclass

from toolkit.facts import Raw
from toolkit.transport.shell import q


@dataclass(frozen=True)
class ModelDir:
    path: str
    present: bool
    config_sha256: str | None
    config: dict | None
    free_mb: int | None
    weights_bytes: int | None = None  # the weight files' total size (*.safetensors, *.bin)
    weight_files: int = 0


def model_command(path: str) -> str:
    p = q(path)
    return (
        f"if [ -d {p} ]; then echo present; else echo absent; fi; "
        f"sha256sum {p}/config.json 2>/dev/null | cut -d' ' -f1; echo '--'; "
        f"cat {p}/config.json 2>/dev/null; echo; echo '--'; "
        f"df -Pk {p} 2>/dev/null | tail -1 | grep . || df -Pk . | tail -1; echo '--'; "
        f"find {p}/ -maxdepth 1 -type f \\( -name '*.safetensors' -o -name '*.bin' \\) -printf '%s\\n' 2>/dev/null "
        "| awk '{s+=$1; n++} END {print s+0, n+0}'"
    )


def parse_model(path: str):  # noqa: ANN201 - returns a parser
    def parse(raw: Raw) -> ModelDir:
        parts = raw.stdout.split("\n--\n")
        head = parts[0].splitlines() if parts else []
        present = bool(head) and head[0].strip() == "present"
        digest = head[1].strip() if len(head) > 1 and len(head[1].strip()) == 64 else None
        config = None
        if len(parts) > 1 and parts[1].strip():
            try:
                config = json.loads(parts[1])
            except ValueError:
                config = None
        free = None
        if len(parts) > 2:
            cols = parts[2].split()
            if len(cols) >= 4 and cols[3].isdigit():
                free = int(cols[3]) // 1024
        size, files = None, 0
        if len(parts) > 3:
            nums = parts[3].split()
            if len(nums) >= 2 and nums[0].isdigit() and nums[1].isdigit():
                size, files = int(nums[0]), int(nums[1])
        return ModelDir(path, present, digest, config, free, size if files else None, files)

    return parse
