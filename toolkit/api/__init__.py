"""Library entry points: what the CLI calls, usable from Python too. They return reports and
raise typed errors; they never print.

A thin facade: each name is imported from its module on first use, so `import toolkit.api`
stays cheap for commands that need one entry point.

    from toolkit import api
    cluster = api.Cluster.open(Path("inventories/prod.yaml"), api.Options())
    report = cluster.up()                        # UpReport: stages, answers, examples
    cluster.status().to_dict()                   # what runs there now
    api.status(cluster.inventory, api.Options()) # the same, as a module function
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_EXPORTS = {
    "Cluster": "cluster",
    "ConnectFn": "context",
    "Options": "context",
    "load": "context",
    "make_executor": "context",
    "plan": "context",
    "plan_for": "context",
    "plugins_for": "context",
    "read_model_config": "context",
    "select_hosts": "context",
    "check_net": "playbooks",
    "facts": "playbooks",
    "run": "playbooks",
    "UpReport": "reports",
    "up": "deploy",
    "usage_examples": "reports",
    "DownReport": "reports",
    "down": "teardown",
    "StatusReport": "reports",
    "status": "inspect",
    "LogsReport": "reports",
    "logs": "collect",
    "GenerateReport": "reports",
    "generate": "batch",
    "read_prompts": "files",
    "BenchReport": "reports",
    "BenchSettings": "benchmark",
    "bench": "benchmark",
    "Gate": "rollout",
    "UpgradeReport": "rollout",
    "upgrade": "rollout",
    "HistoryReport": "recorded",
    "history": "recorded",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"toolkit.api.{module}"), name)
    globals()[name] = value
    return value
