"""The one hardware table: every Ascend kind an inventory may name, and what the planner, the
checks and the simulator need to know about it (docs/ascend-facts.md, sections 2 and 5).

Kept free of the plugin system so that `check-net` and `status` need not import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One inventory `hardware:` value."""

    name: str
    device_class: str  # the class plugin sizing rows are written for: 910B, 910B4, A3, 310P
    hbm_gib: int  # per device (A3: per die; 310P: per chip)
    cards: int  # per host
    dies: int  # per card (A3: 2); devices per host = cards x dies
    npu_smi_names: tuple[str, ...]  # prefixes of npu-smi's Name column
    soc: str | None = None  # acl.get_soc_name(), Ray's accelerator_type (the simulator reports it)
    hbm_checked: bool = True  # npu-smi's HBM total is known exactly (not for the generic 910B)
    single_node: bool = False  # no RoCE between cards: cannot span hosts
    image_variant: str = "a2"  # the vendor image built for it (tag suffix -a3, -310p; a2: none)

    @property
    def devices(self) -> int:
        return self.cards * self.dies

    @property
    def hbm_mb(self) -> int:
        """HBM per device as npu-smi prints it."""
        return self.hbm_gib * 1024


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("910B", "910B", 64, 8, 1, ("910B",), hbm_checked=False),
        Kind("910B1", "910B", 64, 8, 1, ("910B1",), "Ascend910B1"),
        Kind("910B2", "910B", 64, 8, 1, ("910B2",), "Ascend910B2"),
        Kind("910B3", "910B", 64, 8, 1, ("910B3",), "Ascend910B3"),
        Kind("910B4", "910B4", 32, 8, 1, ("910B4",), "Ascend910B4"),
        Kind("A3", "A3", 64, 8, 2, ("Ascend910",), "Ascend910_9391", image_variant="a3"),
        Kind("300I-Duo", "310P", 24, 4, 2, ("300I", "310P"), hbm_checked=False, single_node=True, image_variant="310p"),
    )
}
HARDWARE_KINDS = tuple(KINDS)
DEFAULT_KIND = "910B"

# Per device class, derived from the table (plugins size by class).
DEVICE_CLASS = {k.name: k.device_class for k in KINDS.values()}
HBM_GIB = {k.device_class: k.hbm_gib for k in KINDS.values()}
DEVICES_PER_NODE = {k.device_class: k.devices for k in KINDS.values()}
SINGLE_NODE_ONLY = {k.device_class for k in KINDS.values() if k.single_node}
