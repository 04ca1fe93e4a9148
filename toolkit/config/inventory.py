"""The inventory: what a user writes about their cluster, validated before anything runs.

Pure data: the schema and the resolved `Inventory`. `toolkit.config.loader.load_inventory` turns
a YAML file into one whose hosts are already resolved through the precedence levels (see
`toolkit.config.vars`), or raises `InvalidFile` with file, line, field path and a did-you-mean
for every problem found.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from toolkit.config.hardware import HARDWARE_KINDS
from toolkit.config.yamlsrc import Document, did_you_mean, format_path
from toolkit.errors import InputIssue

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NIC_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
MAX_DEVICE_ID = 15  # Atlas 800 A3: 8 cards x 2 dies, phy ids 0..15


#: Keys that would put a secret inline; each points at the reference field to use instead.
SECRET_KEYS = {
    "password": "password_env (or password_file)",
    "passphrase": "key_passphrase_env (or key_passphrase_file)",
    "api_key": "api_key_env (or api_key_file)",
    "token": "api_key_env (or api_key_file)",
}


def _scalar_to_str(value: Any) -> Any:
    """YAML turns `HCCL_CONNECT_TIMEOUT: 1200` into an int; env values are strings."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return str(value)
    return value


EnvValue = Annotated[str, BeforeValidator(_scalar_to_str)]
Port = Annotated[int, Field(ge=1, le=65535)]
PositiveSeconds = Annotated[float, Field(gt=0, le=86400)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, validate_default=True)


def _check_env(env: dict[str, str] | None) -> dict[str, str] | None:
    if env is None:
        return env
    for key in env:
        if not ENV_KEY_RE.match(key):
            raise ValueError(
                f"environment variable name {key!r} is not valid (letters, digits, _; not starting with a digit)"
            )
    return env


def _check_devices(devices: list[int] | None) -> list[int] | None:
    if devices is None:
        return devices
    if not devices:
        raise ValueError("devices must list at least one NPU id")
    for dev in devices:
        if not 0 <= dev <= MAX_DEVICE_ID:
            raise ValueError(f"device id {dev} is out of range 0..{MAX_DEVICE_ID}")
    if any(b <= a for a, b in zip(devices, devices[1:])):
        raise ValueError(f"devices must be ascending without repeats (ASCEND_RT_VISIBLE_DEVICES order), got {devices}")
    return devices


def _check_nic(nic: str | None) -> str | None:
    if nic is None or nic == "auto":
        return nic
    if not NIC_RE.match(nic):
        raise ValueError(f"NIC name {nic!r} is not a valid interface name (or use 'auto')")
    return nic


class HostSettings(_Strict):
    """Settings a host inherits from `defaults` and may override in its own entry."""

    user: str | None = Field(None, description="SSH user (default: ~/.ssh/config, else the local user)")
    port: Port | None = Field(None, description="SSH port (default: ~/.ssh/config, else 22)")
    key_file: str | None = Field(None, description="private key for SSH (default: ~/.ssh/config, agent, ~/.ssh/id_*)")
    password_env: str | None = Field(None, description="name of a local environment variable holding the SSH password")
    key_passphrase_env: str | None = Field(
        None, description="name of a local environment variable holding the key passphrase"
    )
    password_file: str | None = Field(
        None, description="local file (~ expanded) holding the SSH password; keep it 0600"
    )
    key_passphrase_file: str | None = Field(
        None, description="local file (~ expanded) holding the key passphrase; keep it 0600"
    )
    connection: Literal["ssh", "local"] | None = Field(None, description="'local' runs on the control machine itself")
    nic: str | None = Field(None, description="NIC for GLOO/TP/HCCL sockets; 'auto' = the NIC that owns the address")
    devices: list[int] | None = Field(None, description="NPU physical ids to use, ascending")
    setup: list[str] | None = Field(
        None, description="shell lines run before every command (source set_env.sh, venv activation)"
    )
    env: dict[str, EnvValue] | None = Field(None, description="environment for every command on the host")
    connect_timeout: PositiveSeconds | None = Field(None, description="seconds to wait for SSH connect")
    command_timeout: PositiveSeconds | None = Field(None, description="default per-command timeout in seconds")

    _v_env = field_validator("env")(classmethod(lambda cls, v: _check_env(v)))
    _v_devices = field_validator("devices")(classmethod(lambda cls, v: _check_devices(v)))
    _v_nic = field_validator("nic")(classmethod(lambda cls, v: _check_nic(v)))

    @field_validator("password_env", "key_passphrase_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_KEY_RE.match(v):
            raise ValueError(
                f"{v!r} is not an environment variable name; put the secret in a variable and name it here"
            )
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$", v):
            raise ValueError(f"{v!r} is not a valid user name")
        return v


def _check_address(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address (the address is the node IP used by Ray, HCCL_IF_IP and VLLM_HOST_IP; "
                "put an SSH alias in ssh_host)"
            ) from None
    return value


class HostEntry(HostSettings):
    name: str = Field(..., pattern=NAME_RE, description="short unique host name")
    address: Annotated[str, BeforeValidator(_check_address)] = Field(..., description="node IP address")
    ssh_host: str | None = Field(None, description="name to connect to (e.g. a ~/.ssh/config alias); default: address")
    role: Literal["head", "worker"] = Field("worker", description="exactly one host is the Ray head")


class ResolvedHost(BaseModel):
    """A host after merging every precedence level; what the engine and planner consume."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    address: str
    ssh_host: str | None
    role: Literal["head", "worker"]
    user: str | None
    port: int | None
    key_file: str | None
    password_env: str | None
    key_passphrase_env: str | None
    password_file: str | None
    key_passphrase_file: str | None
    connection: Literal["ssh", "local"]
    nic: str
    devices: tuple[int, ...]
    setup: tuple[str, ...]
    env: dict[str, str]
    connect_timeout: float
    command_timeout: float

    @property
    def is_head(self) -> bool:
        return self.role == "head"

    @property
    def connect_to(self) -> str:
        return self.ssh_host or self.address


class ModelSettings(_Strict):
    path: str = Field(..., min_length=1, description="model directory on every host (same path everywhere)")
    served_name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$", description="name clients ask for"
    )
    trust_remote_code: bool | None = Field(
        None, description="allow the model's own Python code (default: the model plugin decides)"
    )
    config: str | None = Field(
        None, description="local copy of the model's config.json, for planning where the weights are not local"
    )
    storage: Literal["local", "shared"] = Field(
        "local",
        description="where model.path lives on the hosts: each host's local disk (`weights sync` puts it there), or "
        "shared storage (NFS, Lustre...): then vLLM prefetches the checkpoint where the runtime can",
    )
    quantization: Literal["w8a8", "w8a8_dynamic", "w4a8"] | None = Field(
        None, description="weight format (default: inferred from the name, e.g. '-w8a8')"
    )


class ServeSettings(_Strict):
    host: str = Field("0.0.0.0", description="address vLLM binds on the head")
    port: Port = Field(8000, description="vLLM HTTP port on the head")
    max_model_len: int | None = Field(None, gt=0)
    api_key_env: str | None = Field(None, description="local environment variable holding the API key")
    api_key_file: str | None = Field(None, description="local file holding the API key")
    ready_timeout: PositiveSeconds = Field(1800, description="seconds to wait for vLLM readiness")
    initial_delay: float = Field(0, ge=0, description="seconds before the first readiness probe")
    extra_args: list[str] = Field(default_factory=list, description="extra vLLM arguments, passed through quoted")
    tensor_parallel_size: int | None = Field(None, gt=0, description="default: plugin row, else NPUs per host")
    pipeline_parallel_size: int | None = Field(None, gt=0, description="default: plugin row, else number of hosts")
    data_parallel_size: int | None = Field(None, gt=0, description="default: plugin row, else 1")
    launcher: str = Field(
        "auto",
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="how ranks start, a registered launcher: ray (a Ray node per host, vLLM on the head), dp "
        "(vLLM's own data parallel across hosts, no Ray), mp (one host), one a plugin adds, or auto (one host: mp; "
        "MoE across hosts where Ray + expert parallel is broken: dp; the plugin row's published launcher; else "
        "ray). The planner checks the name against the registry",
    )
    data_parallel_rpc_port: Port = Field(13345, description="dp launcher: the head's data-parallel RPC port")
    speculative: Literal["auto", "off"] = Field(
        "auto",
        description="speculative decoding with the checkpoint's MTP layers as the plugin's recipe runs it (auto), "
        "or none (off)",
    )

    @field_validator("speculative", mode="before")
    @classmethod
    def _yaml_switch(cls, value: object) -> object:
        """YAML reads a bare `off` as false (and `on` as true): both mean the words here."""
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value

    max_num_seqs: int | None = Field(None, gt=0, description="default 256")
    max_num_batched_tokens: int | None = Field(
        None, gt=0, description="default: max-model-len without chunked prefill, else 8192"
    )
    block_size: int | None = Field(
        None, gt=0, description="KV cache block size (default: the runtime's, 128 on Ascend)"
    )
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="share of each NPU's HBM vLLM may use (default 0.9)"
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] | None = Field(None, description="default auto")
    enforce_eager: bool | None = Field(None, description="disable graph capture (default off)")
    enable_chunked_prefill: bool | None = Field(None, description="default: the runtime's default (on)")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_KEY_RE.match(v):
            raise ValueError(f"{v!r} is not an environment variable name")
        return v


class RaySettings(_Strict):
    port: Port = Field(6379, description="Ray GCS port on the head")
    object_store_memory: int | None = Field(None, gt=0, description="bytes of object store per node")
    num_cpus: int | None = Field(None, gt=0)
    extra_args: list[str] = Field(
        default_factory=list, description="extra `ray start` arguments, passed through quoted"
    )


MOUNT_RE = re.compile(r"^(/[^:\s]*):(/[^:\s]*)(:(ro|rw))?$")
SIZE_RE = re.compile(r"^[1-9][0-9]*[kmgKMG]?$")


class ContainerSettings(_Strict):
    """`container:` present = Ray and vLLM run inside one long-running container per host (the
    vendor image, vllm-ascend's installation guide); absent = in each host's own Python."""

    engine: Literal["auto", "docker", "podman"] = Field(
        "auto", description="container engine on the hosts (auto: docker if its daemon answers, else podman)"
    )
    image: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9._/:@-]{0,254}$",
        description="image reference (default: the runtime profile's vendor image, -a3 on A3)",
    )
    name: str | None = Field(None, pattern=NAME_RE, description="container name (default: ascend-deploy-CLUSTER)")
    shm_size: str | None = Field(
        None,
        description="--shm-size (default: what the plan's processes map on the busiest host, in whole GiB, "
        "at least the vendor guide's 1g)",
    )
    mounts: list[str] = Field(
        default_factory=list, description="extra bind mounts HOST:CONTAINER[:ro|rw] (absolute paths)"
    )
    env: dict[str, EnvValue] = Field(default_factory=dict, description="extra environment set at container start")
    privileged: bool = Field(False, description="--privileged (off, as the vendor guide says; its FAQ's last resort)")
    setup: list[str] = Field(
        default_factory=lambda: [
            "[ -f /usr/local/Ascend/ascend-toolkit/set_env.sh ] && . /usr/local/Ascend/ascend-toolkit/set_env.sh",
            "[ -f /usr/local/Ascend/nnal/atb/set_env.sh ] && . /usr/local/Ascend/nnal/atb/set_env.sh",
        ],
        description="shell lines run inside the container before every command (the image's CANN environment)",
    )

    _v_env = field_validator("env")(classmethod(lambda cls, v: _check_env(v)))

    @field_validator("mounts")
    @classmethod
    def _mounts(cls, v: list[str]) -> list[str]:
        for m in v:
            if not MOUNT_RE.match(m):
                raise ValueError(f"mount {m!r} is not HOST:CONTAINER[:ro|rw] with absolute paths")
        return v

    @field_validator("shm_size")
    @classmethod
    def _shm(cls, v: str | None) -> str | None:
        if v is not None and not SIZE_RE.match(v):
            raise ValueError(f"shm_size {v!r} is not a size like 1g, 512m")
        return v


class InventoryFile(_Strict):
    """The file as written. `hosts` entries inherit from `defaults`."""

    cluster: str = Field(..., pattern=NAME_RE, description="cluster name (used in remote paths)")
    hardware: Literal[HARDWARE_KINDS] | None = Field(None, description="NPU kind (default 910B, 64 GB per device)")  # type: ignore[valid-type]
    runtime: str | None = Field(
        None, description="target vLLM / vllm-ascend profile, e.g. vllm-ascend-0.23.0 (default: newest)"
    )
    known_hosts: str | None = Field(None, description="extra known_hosts file, relative to the inventory")
    plugins: list[str] = Field(default_factory=list, description="extra plugin folders, relative to the inventory")
    defaults: HostSettings = Field(default_factory=HostSettings)
    hosts: list[HostEntry] = Field(..., min_length=1)
    model: ModelSettings | None = None
    serve: ServeSettings = Field(default_factory=ServeSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    container: ContainerSettings | None = Field(
        None, description="run Ray and vLLM in a container per host (absent: in each host's own Python)"
    )


class Inventory(BaseModel):
    """A loaded inventory: the file as written plus hosts resolved through every level."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: Path
    spec: InventoryFile
    hosts: list[ResolvedHost]
    origins: dict[str, dict[str, str]]  # host name -> dotted key -> level name
    section_origins: dict[str, str]  # dotted cluster key -> level name

    @property
    def name(self) -> str:
        return self.spec.cluster

    @property
    def head(self) -> ResolvedHost:
        return next(h for h in self.hosts if h.is_head)

    @property
    def workers(self) -> list[ResolvedHost]:
        return [h for h in self.hosts if not h.is_head]

    def host(self, name: str) -> ResolvedHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def resolve_path(self, value: str) -> Path:
        """Paths in the inventory are relative to the inventory file."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.path.parent / p)


# ---------------------------------------------------------------- validation helpers


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside Optional[...] / list[...] / Annotated[...], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def model_at(root: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that owns the keys at `path` (ints skip list indexes)."""
    model: type[BaseModel] | None = root
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _unwrap_model(field.annotation)
    return model


def _message(err: dict[str, Any]) -> tuple[str, str | None]:
    """Turn one pydantic error into (message, hint) in the user's words."""
    kind = err["type"]
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "missing":
        return "required field is missing", None
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        if pattern == NAME_RE:
            return (
                f"{err['input']!r} is not a valid name",
                "letters, digits, '.', '_', '-'; starting with a letter or digit",
            )
        return f"{err['input']!r} does not match {pattern}", None
    if kind == "literal_error":
        return (
            f"{err.get('input')!r} is not allowed: "
            f"{msg[len('Input should be ') :] if msg.startswith('Input should be ') else msg}",
            None,
        )
    return msg, None


def issues_from_validation(
    exc: ValidationError, doc: Document, root: type[BaseModel], prefix: tuple[str | int, ...] = ()
) -> list[InputIssue]:
    issues = []
    hint: str | None
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # pydantic appends the literal/union branch names to loc; keep only real path parts
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in {"str", "int", "list"})))
        path_str = format_path(loc)
        line = doc.source.line_of(loc)
        if err["type"] == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            owner = model_at(root, tuple(loc[:-1]) if loc else ())
            choices = list(owner.model_fields) if owner else []
            if key in SECRET_KEYS:
                hint = (
                    "secrets are never inline: put it in an environment variable or a 0600 file and set "
                    f"{SECRET_KEYS[key]}"
                )
            else:
                guess = did_you_mean(key, choices)
                hint = (
                    f"did you mean '{guess}'?" if guess else (f"known keys: {', '.join(choices)}" if choices else None)
                )
            issues.append(InputIssue(doc.source.file, line, path_str, f"unknown key '{key}'", hint))
            continue
        msg, hint = _message(dict(err))
        issues.append(InputIssue(doc.source.file, line, path_str, msg, hint))
    return issues
