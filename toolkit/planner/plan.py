"""The planner's public names (kept stable for plugins, tests and the rest of the toolkit): the
plan's types (`types.py`), the rules that make one (`rules.py`) and its JSON form (`serialize.py`)."""

from toolkit.planner.environment import PLANNED_ENV
from toolkit.planner.launchers import ports_for
from toolkit.planner.observation import inventory_ports, observation_plan
from toolkit.planner.rules import DEFAULT_UTILIZATION, make_plan, model_info
from toolkit.planner.serialize import plan_to_dict
from toolkit.planner.server_args import DEFAULT_MAX_SEQS, MANAGED_FLAGS, MANAGED_RAY_FLAGS
from toolkit.planner.sizing import CHUNKED_BATCH_TOKENS, GENERIC_MAX_LEN
from toolkit.planner.types import (
    NIC_VARS,
    RAY_NODE,
    VLLM_RANK,
    VLLM_SERVER,
    Arg,
    HostPlan,
    MemoryPlan,
    Plan,
    PlanInvalid,
    PlanIssue,
    PortUse,
    Process,
    Value,
    is_flag,
    paired_args,
    ray_temp_dir,
)

__all__ = [
    "CHUNKED_BATCH_TOKENS",
    "DEFAULT_MAX_SEQS",
    "DEFAULT_UTILIZATION",
    "GENERIC_MAX_LEN",
    "MANAGED_FLAGS",
    "MANAGED_RAY_FLAGS",
    "NIC_VARS",
    "PLANNED_ENV",
    "Arg",
    "HostPlan",
    "MemoryPlan",
    "Plan",
    "PlanInvalid",
    "PlanIssue",
    "PortUse",
    "Process",
    "RAY_NODE",
    "VLLM_RANK",
    "VLLM_SERVER",
    "Value",
    "is_flag",
    "inventory_ports",
    "make_plan",
    "model_info",
    "observation_plan",
    "paired_args",
    "plan_to_dict",
    "ports_for",
    "ray_temp_dir",
]
