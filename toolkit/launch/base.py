"""What a launcher and a placement provide. Protocols: an implementation needs no base class."""

from __future__ import annotations

from typing import Protocol

from toolkit.planner.plan import HostPlan, Process


class Placement(Protocol):
    """Where a host's processes run. Every command that needs the deployment's software (Ray, vLLM,
    its Python) goes through `run`, and a long-running process through `detached` inside it, so the
    same launcher runs on the host or inside a container."""

    name: str

    def run(self, script: str) -> str:
        """A host command that runs `script` where the processes run, with the plan's environment
        loaded (host: the env file sourced; container: `docker exec` into the host's container)."""
        ...

    def detached(self, argv: list[str], log: str, pid_file: str) -> str:
        """Shell lines that start `argv` detached from our SSH session (it must outlive it), append
        its output to `log`, and write the pid of the process itself to `pid_file`."""
        ...


class Launcher(Protocol):
    """How the model's ranks are started and found, and what 'ready' needs first. The process seam
    (`start_command`, `stop_command`, `group_hash`) serves the generic steps (`steps/procs.py`), which
    start, stop and compare the plan's processes by group; the rest serves the Ray steps."""

    name: str
    #: the playbook `up` runs for this launcher (its stages and their order)
    up_playbook: str
    #: why `generate` cannot run on this launcher (None: it can)
    batch_unsupported: str | None

    def start_command(self, host: HostPlan, proc: Process) -> str:
        """Start `proc` on `host` (detached, its log and pid in the cluster folder's proc/)."""
        ...

    def stop_command(self, host: HostPlan, proc: Process) -> str:
        """Stop `proc` on `host` (idempotent, safe when it does not run)."""
        ...

    def group_hash(self, group: str, api_key: str | None) -> str:
        """One hash of every host's processes of `group` (those whose `same` is "group"): a change
        anywhere restarts all of them."""
        ...

    def node_command(self, host: HostPlan) -> str:
        """Start what must run on `host` before the server (a Ray node; dp: the host's own rank)."""
        ...

    def node_hash(self, host: HostPlan, nic: str | None) -> str:
        """A hash of what shaped `host`'s node: a change restarts it."""
        ...

    def stop_nodes_command(self) -> str:
        """Stop whatever `node_command` started on a host (idempotent, safe on a clean host)."""
        ...

    def nodes_query(self, expected: dict[str, int], wait: float) -> str:
        """A command on the head printing the nodes' readiness."""
        ...

    def snapshot_command(self) -> str | None:
        """The nodes' readiness now, asked in the background while earlier stages run (None: no
        such question for this launcher)."""
        ...

    def server_command(self) -> str:
        """Start the vLLM API server (detached, through the placement)."""
        ...

    def server_hash(self, api_key: str | None) -> str:
        """A hash of the server's command and key: a change restarts the server."""
        ...
