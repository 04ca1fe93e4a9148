"""Each host's environment: the planner's own variables (addresses, NICs, devices), the plugin's
and the recipe's, the launcher's, the user's; and the start-up timeouts sized to the job."""

from __future__ import annotations

from typing import Mapping

from toolkit.config.inventory import ResolvedHost
from toolkit.planner import memory
from toolkit.planner.startup import MARGIN, Prediction
from toolkit.planner.startup import engine_timeout as startup_engine_timeout
from toolkit.planner.state import PlannerState, origin_of, row_origin
from toolkit.planner.types import (
    MemoryPlan,
    Value,
)
from toolkit.plugin_api import (
    ModelProfile,
    Row,
    RuntimeProfile,
)

#: Variables the planner owns; users set the inventory field named instead.
PLANNED_ENV = {
    "HCCL_IF_IP": "address",
    "GLOO_SOCKET_IFNAME": "nic",
    "TP_SOCKET_IFNAME": "nic",
    "HCCL_SOCKET_IFNAME": "nic",
    "VLLM_HOST_IP": "address",
    "ASCEND_RT_VISIBLE_DEVICES": "devices",
    "RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES": "(always 1)",
    "VLLM_API_KEY": "serve.api_key_env or serve.api_key_file",
}
#: a conservative read rate of weights from shared storage, per host (start-up timeouts)
LOAD_GIB_PER_S = 0.5
#: `up` waits this much longer than the engines' own start-up timeout
READY_MARGIN_S = 120.0


class EnvironmentRules(PlannerState):
    """Host environments and timeouts."""

    def host_env(
        self,
        host: ResolvedHost,
        profile: ModelProfile,
        row: Row | None,
        nic_auto: bool,
        planned: Mapping[str, Value],
        own: Mapping[str, Value],
    ) -> dict[str, Value]:
        env: dict[str, Value] = dict(planned)
        for key, value in profile.env.items():
            env[key] = Value(value, f"plugin {profile.family}")
        if row is not None:  # the recipe's own: named with its source
            where = row_origin(profile.family, row)
            env.update({key: Value(value, where) for key, value in row.env.items()})
        nic_value = f"<NIC owning {host.address}>" if nic_auto else host.nic
        nic_origin = (
            "auto: resolved at run time from the host's address"
            if nic_auto
            else f"{self.inv.origins[host.name].get('nic', 'default')} nic"
        )
        env.update(
            {
                "HCCL_IF_IP": Value(host.address, "host address"),
                "GLOO_SOCKET_IFNAME": Value(nic_value, nic_origin),
                "TP_SOCKET_IFNAME": Value(nic_value, nic_origin),
                "HCCL_SOCKET_IFNAME": Value(nic_value, nic_origin),
                "VLLM_HOST_IP": Value(host.address, "host address"),
                "ASCEND_RT_VISIBLE_DEVICES": Value(
                    ",".join(map(str, host.devices)), f"{self.inv.origins[host.name].get('devices', 'default')} devices"
                ),
            }
        )
        env.update(own)  # the launcher's own (Ray's node IP, its device rule)
        for key, value in host.env.items():
            level = self.inv.origins[host.name].get(f"env.{key}", "host")
            if key in PLANNED_ENV:
                self.issue(
                    f"{level} env.{key}" if level != "--set" else f"--set env.{key}",
                    f"{key} is set by the planner from {PLANNED_ENV[key]}",
                    f"remove it from env and set {PLANNED_ENV[key]} instead",
                )
                continue
            env[key] = Value(value, f"inventory {level} env")
        return env

    def timeouts(
        self, mem: MemoryPlan | None, hosts: int, prediction: Prediction | None = None
    ) -> tuple[Value | None, dict[str, Value]]:
        """The predicted cold start (to the first /health 200) and the start-up timeouts sized from
        it: MARGIN x a measured start of the closest deployment (`planner.startup`), else the rule of
        thumb (weights at LOAD_GIB_PER_S, 300 s of compilation and warm-up, a minute per extra host).
        vLLM's 600 s engine wait and HCCL's 120 s connect timeout are too short for hundreds of GB of
        weights loaded on several hosts. HCCL_EXEC_TIMEOUT also bounds collectives while serving: it
        stays on the rule of thumb."""
        if prediction is not None:
            sized = startup_engine_timeout(prediction)
            why = f"{MARGIN:g} x the predicted cold start: {prediction.source}"
            predicted = Value(prediction.seconds, prediction.source)
        elif mem is not None:
            per_host = mem.per_device.weights * max(len(h.devices) for h in self.inv.hosts) / memory.GIB
            sized = timeout_for(per_host, hosts)
            why = f"sized: ~{per_host:.0f} GiB of weights per host at {LOAD_GIB_PER_S} GiB/s + {hosts} host(s)"
            seconds = 300 + per_host / LOAD_GIB_PER_S + 60 * (hosts - 1)
            predicted = Value(
                round(seconds),
                f"rule of thumb (no measured start of this model yet): {per_host:.0f} GiB per host at "
                f"{LOAD_GIB_PER_S} GiB/s + 300 s + 60 s per extra host",
            )
        else:
            return None, {}
        out = {"VLLM_ENGINE_READY_TIMEOUT_S": Value(str(sized), why + " (vLLM's default 600 s)")}
        if hosts > 1:
            out["HCCL_CONNECT_TIMEOUT"] = Value(
                str(min(7200, max(120, sized))), why + ": ranks that load first wait for the others to connect"
            )
            if mem is not None:
                per_host = mem.per_device.weights * max(len(h.devices) for h in self.inv.hosts) / memory.GIB
                rule = timeout_for(per_host, hosts)
                out["HCCL_EXEC_TIMEOUT"] = Value(
                    str(min(3600, max(1836, rule))),
                    f"sized: ~{per_host:.0f} GiB of weights per host at {LOAD_GIB_PER_S} GiB/s + {hosts} host(s) "
                    "(CANN's default 1836 s at least; it bounds collectives while serving too)",
                )
        return predicted, out

    def recipe_env(self, runtime: RuntimeProfile, device_class: str, hosts: int) -> dict[str, Value]:
        """The runtime's multi-node recipe settings (every host), when the plan spans hosts."""
        if hosts < 2:
            return {}
        where = f"runtime {runtime.name}: multi-node recipe"
        env = {k: Value(v, where) for k, v in runtime.multi_node_env.items()}
        for k, v in runtime.multi_node_env_by_class.get(device_class, {}).items():
            env[k] = Value(v, f"{where} on {device_class}")
        return env

    def ready_timeout(self, env: Mapping[str, Value], predicted: bool = False) -> Value:
        """`up`'s wait for /health: never shorter than the engine's own start-up timeout; sized to it
        (+ READY_MARGIN_S) when that comes from a measured start (not the fixed default)."""
        engine = env.get("VLLM_ENGINE_READY_TIMEOUT_S")
        need = float(engine.value) + READY_MARGIN_S if engine is not None and str(engine.value).isdigit() else 0.0
        given = float(self.serve.ready_timeout)
        if self.inv.section_origins.get("serve.ready_timeout", "default") != "default":
            if given < need:  # the user's choice stands (a quick failure on purpose), with a warning
                self.notes.append(
                    f"serve.ready_timeout {given:g}s is shorter than the engines' own start-up timeout "
                    f"(VLLM_ENGINE_READY_TIMEOUT_S={engine.value if engine else '?'}) + {READY_MARGIN_S:g}s: `up` "
                    f"may give up on a server that is still loading (at least {need:g}s lets it finish)"
                )
            return Value(given, origin_of(self.inv, "serve.ready_timeout"))
        if given < need:
            return Value(need, f"raised to the engines' start-up timeout + {READY_MARGIN_S:g}s")
        if predicted and engine is not None:
            return Value(need, f"the engines' start-up timeout + {READY_MARGIN_S:g}s ({engine.origin})")
        return Value(given, "default")


def timeout_for(per_host_gib: float, hosts: int) -> int:
    """Seconds for the engines to load and meet: weights at LOAD_GIB_PER_S, 300 s of graph
    compilation and warm-up, a minute per extra host; at least vLLM's 600 s, at most the
    recipes' 30000, in whole minutes."""
    seconds = 300 + per_host_gib / LOAD_GIB_PER_S + 60 * (hosts - 1)
    return int(min(30000, max(600, -(-seconds // 60) * 60)))
