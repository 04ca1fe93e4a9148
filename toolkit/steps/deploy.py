"""The first step of every `up` (the environment and key files) and what every deploy step reads:
the plan, its launch (launcher and placement), this host's part of the plan, the cluster's files.
The launchers' own steps are `ray.py` (Ray) and `procs.py` (the plan's processes by group); the
server's readiness is `server.py`. Each reads the live host first and yields only what must change.

The plan (`toolkit.planner.plan.Plan`) arrives in `ctx.shared.plan`; the API key, if any, in
`ctx.shared.api_key` (written to a 0600 file through stdin, never on a command line). What an earlier
step found is read by step (`ctx.from_step(ray_start)`), never by the playbook's stage names.
"""

from __future__ import annotations

from typing import Iterator

from toolkit.engine.registry import Op, StepContext, step
from toolkit.errors import CommandFailed
from toolkit.facts.deploy import Paths, nic_fact, state_fact
from toolkit.launch import Launch, launch_for
from toolkit.launch.server import (
    digest,
)
from toolkit.planner.plan import HostPlan, Plan
from toolkit.steps.commands import remove_files_command, render_env, write_file_op, write_stdin_command


def the_plan(ctx: StepContext) -> Plan:
    return ctx.shared.the_plan()


def launch(ctx: StepContext) -> Launch:
    return launch_for(the_plan(ctx))


def host_plan(ctx: StepContext) -> HostPlan:
    return next(h for h in the_plan(ctx).hosts if h.name == ctx.host.name)


def paths(ctx: StepContext) -> Paths:
    return Paths.of(ctx.inventory.name)


@step("deploy_env", needs_plan=True)
def deploy_env(ctx: StepContext) -> Iterator[Op]:
    """Write the plan's environment file (NIC resolved from the host's address) and the API key file."""
    hp = host_plan(ctx)
    p = paths(ctx)
    facts = ctx.facts([state_fact(ctx.inventory.name), nic_fact(hp.address)])
    nic = hp.nic or facts["nic"]
    if nic is None:
        raise CommandFailed(
            ctx.host.name,
            f"no network interface on {ctx.host.name} holds its address {hp.address} (nic: auto)",
            hint="fix the host's address in the inventory, or set its `nic:` explicitly",
        )
    content = render_env(hp.resolved_env(nic))
    state = facts["deploy_state"]
    ctx.data.update(nic=nic, env_sha256=digest(content), env_run_sha256=digest(render_env(hp.running_env(nic))))
    if state.env_sha256 != digest(content):
        yield write_file_op(p.env, content, f"write {p.env} (mode 0600, {len(hp.env)} variables, NIC {nic})")
    if hp.role != "head":
        return
    key = ctx.shared.api_key
    if key and state.key_sha256 != digest(key):
        yield Op(
            write_stdin_command(p.api_key),
            f"write {p.api_key} (mode 0600; the key itself is sent on stdin)",
            stdin=key,
        )
    elif not key and state.key_sha256:
        yield Op(remove_files_command([p.api_key]), "remove the API key file (no key configured)")
