"""What a plan is: every value with where it came from (`Value`), the per-host parts, the vLLM
arguments, and `PlanInvalid` listing every reason a deployment would fail. Plain data."""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping

from toolkit.errors import BadInput
from toolkit.facts.deploy import START_ONLY_VARS
from toolkit.planner import memory
from toolkit.plugin_api import Row, RuntimeProfile
from toolkit.serial import plain

NIC_VARS = ("GLOO_SOCKET_IFNAME", "TP_SOCKET_IFNAME", "HCCL_SOCKET_IFNAME")


@dataclass(frozen=True)
class Value:
    """A planned value and why it has that value."""

    value: Any
    origin: str


@dataclass(frozen=True)
class PlanIssue:
    field: str
    message: str
    hint: str | None = None

    def render(self) -> str:
        return f"{self.field}: {self.message}" + (f"\n    hint: {self.hint}" if self.hint else "")

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


class PlanInvalid(BadInput):
    """Every reason the deployment would fail, found before anything starts (exit 2)."""

    kind = "plan-invalid"

    def __init__(self, inventory: str, issues: list[PlanIssue]) -> None:
        super().__init__(
            f"{inventory}: the deployment plan is not valid ({len(issues)} problem{'s' if len(issues) != 1 else ''})"
        )
        self.inventory = inventory
        self.issues = issues

    def lines(self) -> list[str]:
        out = [self.message]
        for issue in self.issues:
            out += ["  " + line for line in issue.render().splitlines()]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "issues": [i.to_dict() for i in self.issues]}


@dataclass(frozen=True)
class Arg:
    """One vLLM flag; `value` None for a switch that is on, False for one that stays off."""

    flag: str
    value: Any
    origin: str
    inline: bool = False  # written as `--flag=value` (kept as the user wrote it)

    def argv(self) -> list[str]:
        if self.value is False:
            return []
        if self.value is None or self.value is True:
            return [self.flag]
        if self.inline:
            return [f"{self.flag}={self.value}"]
        return [self.flag, str(self.value)]


def is_flag(token: str) -> bool:
    """`-x`/`--xy` start a flag; `-1` or `-0.5` are values (a negative number)."""
    if not token.startswith("-") or token == "-":
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


def paired_args(tokens: list[str] | tuple[str, ...], origin: str) -> list[Arg]:
    """Pass-through arguments as flag/value pairs, so `plan` shows `--x '{"a": 1}'` as one row.

    A flag takes the next token as its value unless that token is itself a flag; `--x=v` stays
    written that way. The argv they produce is exactly the tokens given."""
    out: list[Arg] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if is_flag(token) and token.startswith("--") and "=" in token:
            flag, value = token.split("=", 1)
            out.append(Arg(flag, value, origin, inline=True))
        elif is_flag(token) and i + 1 < len(tokens) and not is_flag(tokens[i + 1]):
            out.append(Arg(token, tokens[i + 1], origin))
            i += 1
        else:
            out.append(Arg(token, None, origin))
        i += 1
    return out


@dataclass(frozen=True)
class PortUse:
    """A port (or range) the deployment binds on its hosts, and the field that moves it."""

    what: str
    first: int
    last: int
    field: str

    @property
    def shown(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


#: HCCL binds from its base port up (docs/ascend-facts.md section 7); one per device of a host
HCCL_BASE_PORT = 60000
HCCL_PORTS_PER_HOST = 16


#: what a process is, in the launchers' and the steps' words (a plugin's launcher may add its own)
RAY_NODE = "ray-node"  # `ray start`: a Ray node (the head's GCS, or a worker joining it)
VLLM_SERVER = "vllm-server"  # the API server on a Ray head (its workers are Ray's)
VLLM_RANK = "vllm-rank"  # a host's own `vllm serve` (dp: its DP ranks, headless on workers; mp: the only one)


@dataclass(frozen=True)
class Process:
    """One long-running process a host runs for the deployment, as data: what the launcher planned,
    what `plan` shows, what the record keeps, and what the steps start, probe and compare."""

    name: str  # unique on its host (its files there: the pid, log and settings hash)
    kind: str  # RAY_NODE | VLLM_SERVER | VLLM_RANK
    argv: tuple[str, ...]
    group: str  # the start group it belongs to ("nodes", "server", "ranks"): the playbook's order
    ready: str  # how readiness is told: "ray-nodes" (Ray lists every node), "http" (/health), "alive"
    same: str  # what "unchanged" means: "self" (its argv and env) | "group" (every process of the group)
    env: Mapping[str, str] = field(default_factory=dict)  # set for this process only, besides the env file
    ports: tuple[int, ...] = ()  # what it binds (besides HCCL's range)
    args: tuple[Arg, ...] = ()  # the flags that differ per host (dp: local ranks, start rank, headless)
    ranks: tuple[int, ...] = ()  # the data-parallel ranks it runs
    api: bool = False  # serves the OpenAI API

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class HostPlan:
    name: str
    address: str
    role: str
    devices: tuple[int, ...]
    nic: str | None  # None: 'auto', resolved at run time from the address
    env: Mapping[str, Value]
    processes: tuple[Process, ...] = ()  # what runs here, in start order (the launcher's `host_plans`)

    def process(self, kind: str) -> Process | None:
        """This host's (first) process of `kind`, or None."""
        return next((p for p in self.processes if p.kind == kind), None)

    @property
    def ray_argv(self) -> tuple[str, ...]:
        """The Ray node's `ray start` (empty when no Ray node runs here: launchers dp and mp)."""
        node = self.process(RAY_NODE)
        return node.argv if node else ()

    @property
    def server_argv(self) -> tuple[str, ...]:
        """This host's own vLLM process (launchers dp and mp), else empty."""
        rank = self.process(VLLM_RANK)
        return rank.argv if rank else ()

    @property
    def rank_args(self) -> tuple[Arg, ...]:
        rank = self.process(VLLM_RANK)
        return rank.args if rank else ()

    @property
    def ranks(self) -> tuple[int, ...]:
        """The global data-parallel ranks this host runs (dp)."""
        rank = self.process(VLLM_RANK)
        return rank.ranks if rank else ()

    def running_env(self, nic: str | None = None) -> dict[str, str]:
        """The environment that shapes what runs (`resolved_env` without START_ONLY_VARS): what the
        restart decisions compare."""
        return {k: v for k, v in self.resolved_env(nic).items() if k not in START_ONLY_VARS}

    def resolved_env(self, nic: str | None = None) -> dict[str, str]:
        """The environment with the NIC filled in (`nic` is the run-time answer for 'auto')."""
        chosen = self.nic or nic
        if chosen is None:
            raise ValueError(f"{self.name}: the NIC is 'auto' and was not resolved")
        return {k: (chosen if k in NIC_VARS and self.nic is None else str(v.value)) for k, v in self.env.items()}

    @property
    def ray_command(self) -> str:
        return shlex.join(self.ray_argv)

    @property
    def server_command(self) -> str:
        return shlex.join(self.server_argv)


@dataclass(frozen=True)
class MemoryPlan:
    per_device: memory.Estimate
    min_devices: int | None
    max_len_fits: int
    hbm_gib: float


#: a container's own process: it only keeps the container alive; the launcher's commands run beside it
KEEPALIVE = ("sleep", "infinity")


@dataclass(frozen=True)
class RunArg:
    """One part of `docker run`, with why it is there."""

    what: str
    argv: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class ContainerPlan:
    """What every host's container is: the same on all hosts (each maps all of its devices; the
    plan's ASCEND_RT_VISIBLE_DEVICES picks the ones it uses, as on bare metal)."""

    engine: Value  # auto | docker | podman
    image: Value
    name: Value
    args: tuple[RunArg, ...]
    setup: tuple[str, ...]  # shell lines run inside before every command
    state_dir: str  # the cluster folder, mounted at the same path (env file, logs, pid files)

    @property
    def run_argv(self) -> tuple[str, ...]:
        """`run`'s arguments after the engine's name, up to and including the image and its command."""
        out: list[str] = ["run", "-d", "--name", str(self.name.value)]
        for arg in self.args:
            out += arg.argv
        return (*out, str(self.image.value), *KEEPALIVE)

    @property
    def config_hash(self) -> str:
        """What shaped the container (image reference and every argument): a change recreates it."""
        data = {"image": self.image.value, "args": [a.argv for a in self.args if a.what != "labels"]}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    cluster: str
    hardware: Value
    device_class: str
    runtime: RuntimeProfile
    runtime_origin: str
    model_path: str
    served_name: Value
    family: str
    plugin: str
    plugin_source: str
    row: Row | None
    config_source: str | None
    tp: Value
    pp: Value
    dp: Value
    backend: Value
    vllm_args: tuple[Arg, ...]
    api_key: str | None  # where the key comes from (never the key)
    hosts: tuple[HostPlan, ...]
    memory: MemoryPlan | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    endpoint: str = ""
    ray_port: int = 6379
    probe_url: str = ""  # where the head itself reaches the server (readiness probes)
    launcher: Value = field(default_factory=lambda: Value("ray", "default"))  # how ranks start (toolkit.launch)
    placement: Value = field(default_factory=lambda: Value("host", "default"))  # where processes run (toolkit.launch)
    api_key_env: str | None = None  # the local variable that holds the key (for clients' examples)
    api_key_file: str | None = None  # or the local file, resolved against the inventory
    ready_timeout: Value = field(default_factory=lambda: Value(1800.0, "default"))  # `up`'s wait for /health
    #: the next cold start's seconds to the first /health 200: measured (a recorded start) or the rule
    #: of thumb, its origin says which (None: no config.json to size it)
    startup: Value | None = None
    dp_rpc_port: int | None = None  # dp: the head's data-parallel RPC port
    ports: tuple[PortUse, ...] = ()  # what the deployment binds on its hosts (preflight checks them free)
    container: ContainerPlan | None = None  # placement container: what every host's container is
    #: the weights' quantization and where it was read (inventory, description file, config.json, name)
    quantization: Value = field(default_factory=lambda: Value(None, "not read"))
    #: the plugin's other published layouts for this hardware and device count (`--set` picks one)
    alternatives: tuple[Row, ...] = ()

    @property
    def ray_address(self) -> str:
        return f"{self.head.address}:{self.ray_port}"

    @property
    def head(self) -> HostPlan:
        return next(h for h in self.hosts if h.role == "head")

    @property
    def devices(self) -> int:
        return sum(len(h.devices) for h in self.hosts)

    @property
    def server_hosts(self) -> tuple[HostPlan, ...]:
        """The hosts that run a vLLM process of their own (dp: every host; ray: none, the head's
        server is `vllm_argv`)."""
        return tuple(h for h in self.hosts if h.server_argv)

    def vllm_argv(self) -> list[str]:
        """The API server's command on the head (its own rank, or the server on a Ray head; built from
        the arguments for a plan that has no processes: `status`'s observation plan)."""
        if self.head.server_argv:
            return list(self.head.server_argv)
        server = self.head.process(VLLM_SERVER)
        if server is not None:
            return list(server.argv)
        argv = ["python3", "-m", self.runtime.server_module]
        for arg in self.vllm_args:
            argv += arg.argv()
        return argv

    @property
    def vllm_command(self) -> str:
        return shlex.join(self.vllm_argv())


def ray_temp_dir(cluster: str) -> str:
    """Per-cluster Ray temp dir; short, because Ray's socket paths must stay under 107 bytes."""
    return f"/tmp/ray-{cluster[:32]}"
