"""Ascend hardware facts shared by checks, the planner and plugins (see ascend-reference.md).

Kept apart from plugin_api so that `check-net` and `status` need not import the plugin system.
"""

from __future__ import annotations

#: Inventory `hardware` kind -> device class used by sizing rows.
DEVICE_CLASS = {
    "910B": "910B",
    "910B1": "910B",
    "910B2": "910B",
    "910B3": "910B",
    "910B4": "910B4",
    "A3": "A3",
    "300I-Duo": "310P",
}
#: HBM per device in GiB (A3: per die; 310P: per chip of an Atlas 300I Duo card).
HBM_GIB = {"910B": 64, "910B4": 32, "A3": 64, "310P": 24}
#: NPUs one host carries (A3: dies), for splitting a device count into TP per node x PP.
DEVICES_PER_NODE = {"910B": 8, "910B4": 8, "A3": 16, "310P": 8}
#: Hardware that cannot span hosts (no RoCE between cards).
SINGLE_NODE_ONLY = {"310P"}
