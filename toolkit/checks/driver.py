"""Which Ascend HDK (driver) releases each CANN release supports, from the vendor's notes. A
driver older than every release listed for the CANN in use is a problem; a pairing the notes do
not list (a newer driver, an unlisted CANN) is a warning that says so, never a refusal.

Sources (the vendor's published pairings, cited as path@commit):
- hicann/release-management `9.1.0/release-notes.md@9bf36e977fcc82000a559d963f40a8b106d5698c`
  (compatibility table): CANN 8.5.2, 9.0.x and 9.1.x with HDK 25.5.x, 25.7.RC1, 26.0.RC1, 26.1.0;
- `9.0.0/release-notes.md@a089cf19c5c49073c553c88a762e68266d2dbb0b`: CANN 9.0.0 and 8.5.2 with
  HDK 25.5.1, 25.5.2, 26.0.RC1;
- `8.5.0/release-notes.md@1205fb38a302dcee709e97c8e5c08091b3b665be`: CANN 8.5.0 with HDK 25.5;
- Ascend/docs `_static/package_info.js@4b48d7f8f562299c84d790adc1a499a3ac2bef6d` (the install
  guide's pairings): CANN 7.0.0/7.0.1 with driver 23.0.3, 8.0.RC1 with 24.1.rc1; its development
  copy zheliuyu/docs-dev `_static/package_info.js@3c801af90b228250e11b02c3283fcf917992ff02`:
  8.0.RC2 with 24.1.rc1, 8.0.RC3 / 8.0.0 / 8.1.RC1 with 24.1.rc2, 8.2.RC1 with 25.0.rc1.
A driver release is compared by its line (`24.1.rc2` -> 24.1): the notes pair whole lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RELEASE_NOTES = "hicann/release-management {}/release-notes.md"
INSTALL_GUIDE = "Ascend/docs _static/package_info.js (install guide pairings)"


@dataclass(frozen=True)
class Pairing:
    cann: str  # a release, or a prefix ending in "." for a series ("9.0.")
    lines: tuple[tuple[int, int], ...]  # HDK lines (major, minor) the notes list for it
    source: str


PAIRINGS = (
    Pairing("9.1.", ((25, 5), (25, 7), (26, 0), (26, 1)), RELEASE_NOTES.format("9.1.0")),
    Pairing("9.0.", ((25, 5), (25, 7), (26, 0), (26, 1)), RELEASE_NOTES.format("9.1.0") + ", 9.0.0"),
    Pairing("8.5.2", ((25, 5), (25, 7), (26, 0), (26, 1)), RELEASE_NOTES.format("9.1.0") + ", 9.0.0"),
    Pairing("8.5.0", ((25, 5),), RELEASE_NOTES.format("8.5.0")),
    Pairing("8.2.RC1", ((25, 0),), INSTALL_GUIDE),
    Pairing("8.1.RC1", ((24, 1),), INSTALL_GUIDE),
    Pairing("8.0.0", ((24, 1),), INSTALL_GUIDE),
    Pairing("8.0.RC3", ((24, 1),), INSTALL_GUIDE),
    Pairing("8.0.RC2", ((24, 1),), INSTALL_GUIDE),
    Pairing("8.0.RC1", ((24, 1),), INSTALL_GUIDE),
    Pairing("7.0.1", ((23, 0),), INSTALL_GUIDE),
    Pairing("7.0.0", ((23, 0),), INSTALL_GUIDE),
)


def driver_line(version: str) -> tuple[int, int] | None:
    """`24.1.rc2` / `25.5.1` / `26.0.RC1` -> (24, 1) ...; None when it is not such a version."""
    m = re.match(r"\s*(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def pairing_for(cann: str) -> Pairing | None:
    c = cann.strip().upper()
    for p in PAIRINGS:
        key = p.cann.upper()
        if c == key or (key.endswith(".") and c.startswith(key)) or c.startswith(key + "."):
            return p
    return None


@dataclass(frozen=True)
class Verdict:
    ok: bool  # False: a problem (the driver is older than the CANN supports)
    known: bool  # False: the notes do not list this pairing (a warning)
    wanted: str  # the lines the notes list, in words
    source: str


def judge(driver: str, cann: str) -> Verdict:
    pairing = pairing_for(cann)
    line = driver_line(driver)
    if pairing is None:
        return Verdict(True, False, "a pairing in the vendor's notes", "no published pairing for CANN " + cann)
    wanted = ", ".join(f"{a}.{b}" for a, b in pairing.lines)
    if line is None:
        return Verdict(True, False, f"Ascend HDK {wanted}", pairing.source)
    if line in pairing.lines:
        return Verdict(True, True, f"Ascend HDK {wanted}", pairing.source)
    return Verdict(line > min(pairing.lines), False, f"Ascend HDK {wanted}", pairing.source)
