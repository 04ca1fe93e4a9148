"""NPU facts from `npu-smi` (formats: docs/ascend-facts.md section 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolkit.facts import Fact, Raw

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
            cards.append(
                CardInfo(int(current["NPU ID"]), int(chips) if chips.isdigit() else 1, current.get("Product Name"))
            )

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


@dataclass(frozen=True)
class Chip:
    """One chip (die) row pair of `npu-smi info`."""

    npu: int
    chip: int
    phy_id: int  # the id hccn_tool and ASCEND_RT_VISIBLE_DEVICES use
    name: str
    health: str
    bus_id: str | None
    hbm_used_mb: int | None
    hbm_total_mb: int | None


@dataclass(frozen=True)
class NpuProcess:
    npu: int
    chip: int
    pid: int
    name: str
    memory_mb: int | None


@dataclass(frozen=True)
class NpuInfo:
    chips: tuple[Chip, ...]
    processes: tuple[NpuProcess, ...]
    a3_layout: bool

    def chip(self, phy_id: int) -> Chip | None:
        return next((c for c in self.chips if c.phy_id == phy_id), None)

    def processes_on(self, phy_id: int) -> list[NpuProcess]:
        """The processes the process table lists on device `phy_id` (its NPU and chip)."""
        chip = self.chip(phy_id)
        return [p for p in self.processes if chip is not None and (p.npu, p.chip) == (chip.npu, chip.chip)]


_PAIR = re.compile(r"(\d+)\s*/\s*(\d+)\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_npu_smi_info(raw: Raw) -> NpuInfo | None:
    """`npu-smi info`: the chip table (two rows per chip) and the process table.

    Tolerates extra spaces, missing version banners and a table cut short; rows it cannot
    read are skipped rather than guessed."""
    if raw.exit_code != 0 and "|" not in raw.stdout:
        return None
    lines = [ln for ln in raw.stdout.splitlines() if ln.strip().startswith("|")]
    a3 = any("Phy-ID" in ln for ln in lines)
    chips: list[Chip] = []
    processes: list[NpuProcess] = []
    in_procs = False
    pending: list[str] | None = None
    for line in lines:
        cells = _cells(line)
        if "Process id" in line:
            in_procs = True
            continue
        if in_procs:
            if line.strip().strip("|").strip().startswith("No running processes"):
                continue
            if len(cells) >= 3:
                ids = cells[0].split()
                if len(ids) >= 2 and ids[0].isdigit() and ids[1].isdigit() and cells[1].isdigit():
                    mem = cells[3] if len(cells) > 3 else ""
                    processes.append(
                        NpuProcess(
                            int(ids[0]), int(ids[1]), int(cells[1]), cells[2], int(mem) if mem.isdigit() else None
                        )
                    )
            continue
        if len(cells) < 3 or cells[0].startswith(("NPU", "Chip", "npu-smi")):
            continue
        first = cells[0].split()
        if pending is None:
            if len(first) >= 2 and first[0].isdigit():  # "0     910B3": npu id + name
                pending = cells
            continue
        row1, pending = pending, None
        ids = first
        if not ids or not ids[0].isdigit():
            continue
        npu = int(row1[0].split()[0])
        name = " ".join(row1[0].split()[1:])
        chip = int(ids[0])
        phy = int(ids[1]) if a3 and len(ids) > 1 and ids[1].isdigit() else (npu if not a3 else npu * 2 + chip)
        hbm = _PAIR.search(cells[2]) if len(cells) > 2 else None
        chips.append(
            Chip(
                npu=npu,
                chip=chip,
                phy_id=phy,
                name=name,
                health=row1[1],
                bus_id=cells[1] or None,
                hbm_used_mb=int(hbm.group(1)) if hbm else None,
                hbm_total_mb=int(hbm.group(2)) if hbm else None,
            )
        )
    if not chips:
        return None
    return NpuInfo(tuple(chips), tuple(processes), a3)


def holders(info: NpuInfo | None, commands: dict[int, str]) -> dict[int, str]:
    """pid -> command line of every process npu-smi lists on a device, from the host's process list
    (`facts.deploy.parse_commands`; "?" when the process is gone or hidden from this user)."""
    if info is None:
        return {}
    return {p.pid: commands.get(p.pid) or "?" for p in info.processes}


def npu_smi_fact() -> Fact[NpuInfo | None]:
    """`npu-smi info`, parsed (the cards, their HBM, the processes on them)."""
    return Fact("npu_smi", "npu-smi info 2>&1", parse_npu_smi_info)
