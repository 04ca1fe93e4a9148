"""A launcher added by a plugin, with no toolkit module edited: `toy` runs one `toy-serve` process
per host (the workers first, then the head, which serves the API), TP over each host's devices and
one replica per host. It is one module (its planning strategy and its launch commands) plus its
playbook (`toy-up.yaml`, built from the toolkit's generic steps)."""

from __future__ import annotations

from pathlib import Path

from toolkit.launch.dp import DataParallelLauncher
from toolkit.planner.launchers import BaseLauncher, HostServe, Situation, serve_argv
from toolkit.planner.types import VLLM_RANK, Arg, HostPlan, PlanIssue, Process, Value
from toolkit.plugin_api import hookimpl


class ToyLaunch(DataParallelLauncher):
    """Starting, stopping and probing: every host's own process, as the dp launcher does it."""

    up_playbook = str(Path(__file__).with_name("toy-up.yaml"))


class ToyLayout(BaseLauncher):
    name = "toy"
    summary = "a toy: one toy-serve per host"
    launch = ToyLaunch

    def sizes(self, s: Situation) -> tuple[Value, Value, Value]:
        per_host = max(len(h.devices) for h in s.hosts)
        return (
            Value(per_host, "toy: TP = a host's devices"),
            Value(1, "toy"),
            Value(len(s.hosts), "toy: a replica per host"),
        )

    def refusals(self, s: Situation) -> list[PlanIssue]:
        if s.inventory.spec.serve.port == 9:
            return [PlanIssue("serve.port", "the toy will not serve on the discard port", "pick another port")]
        return []

    def passes_backend(self) -> bool:
        return False

    def backend(self, s: Situation) -> Value:
        return Value("toy", "toy: its own")

    def host_plans(self, s: Situation, hosts: list[HostServe], tp: Value, args: list[Arg]) -> tuple[HostPlan, ...]:
        """Every host one `toy-serve` (the model and the shared flags after it), the head's serving the API."""
        return tuple(
            HostPlan(
                *h.common,
                (
                    Process(
                        "toy",
                        VLLM_RANK,  # started, stopped and probed as a host's own vLLM process
                        ("toy-serve", "--replica", h.host.name, *serve_argv(s, args)[2:]),
                        group="ranks",
                        ready="http" if h.host.is_head else "alive",
                        same="group",
                        ranks=(i,),
                        api=h.host.is_head,
                    ),
                ),
            )
            for i, h in enumerate(hosts)
        )


@hookimpl
def ascend_deploy_launchers() -> list[BaseLauncher]:
    return [ToyLayout()]
