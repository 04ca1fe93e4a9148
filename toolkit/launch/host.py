"""The `host` placement: processes run in the host's own Python environment, with the plan's
environment file sourced (and the inventory's `setup` lines, which every command gets)."""

from __future__ import annotations

import shlex

from toolkit.facts.deploy import Paths
from toolkit.planner.plan import Plan
from toolkit.transport.shell import q


class HostPlacement:
    name = "host"

    def __init__(self, plan: Plan) -> None:
        self.paths = Paths.of(plan.cluster)

    def run(self, script: str) -> str:
        """`script` with the plan's environment loaded (the file `env` writes, mode 0600)."""
        return f"set -a; . ./{q(self.paths.env)}; set +a && {script}"

    def detached(self, argv: list[str], log: str, pid_file: str) -> str:
        """setsid + nohup as a simple background command (the tail of an `&&` list would background
        a whole subshell), so that `$!`, the pid file, is the process itself."""
        return (
            f"setsid nohup {shlex.join(argv)} >> {q(log)} 2>&1 < /dev/null &\necho $! > {q(pid_file)}; echo started $!"
        )
