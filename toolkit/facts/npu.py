"""NPU facts from `npu-smi` (formats: ascend-reference.md section 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolkit.facts import Raw

_KV = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 ()/_-]*?)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class CardInfo:
    npu_id: int
    chip_count: int
    product: str | None = None


@dataclass(frozen=True)
class InfoList:
    total: int
    cards: tuple[CardInfo, ...]


def parse_info_list(raw: Raw) -> InfoList | None:
    """`npu-smi info -l`: `Total Count : 8`, then `NPU ID : n` / `Chip Count : c` per card."""
    if raw.exit_code != 0:
        return None
    total: int | None = None
    cards: list[CardInfo] = []
    current: dict[str, str] = {}

    def flush() -> None:
        if "NPU ID" in current and current["NPU ID"].isdigit():
            chips = current.get("Chip Count", "1")
            cards.append(CardInfo(int(current["NPU ID"]), int(chips) if chips.isdigit() else 1, current.get("Product Name")))

    for line in raw.stdout.splitlines():
        m = _KV.match(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if key == "Total Count" and value.isdigit():
            total = int(value)
        elif key == "NPU ID":
            flush()
            current = {key: value}
        else:
            current[key] = value
    flush()
    if total is None and not cards:
        return None
    return InfoList(total if total is not None else len(cards), tuple(cards))


def npu_count(raw: Raw) -> int | None:
    info = parse_info_list(raw)
    return info.total if info else None
