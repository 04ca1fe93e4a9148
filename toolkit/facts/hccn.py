"""Per-device RoCE NIC facts from `hccn_tool` (formats: docs/ascend-facts.md section 1).

One remote round trip reads every command for every device: devices run in parallel, each
device's commands one after another (the real tool serves one command per device at a time),
each device's output buffered to a file so lines never interleave.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from toolkit.facts import Raw, sections
from toolkit.serial import plain

#: The usual per-device preflight (vllm-ascend "Verify Multi-Node Communication").
COMMANDS = ("ip", "link", "net_health", "netdetect", "gateway", "tls", "optical", "lldp")
BUSY = "hccn_tool is busy, please try again."
ERRORS = (
    "Get invalid device id.",
    "Get ipconf failed, because no ip was preset there!",
    "Get gateway failed, because no gateway was preset there!",
    BUSY,
    "permission denied: pls check this cmd run permission.",
    "The device is not exist!",
    "Execute failed: Link status is down.",
    "Cmd execute failed!",
)
HCCN = "hccn_tool"


@dataclass
class DeviceFacts:
    id: int
    ip: str | None = None
    netmask: str | None = None
    link: str | None = None  # UP / DOWN
    health: str | None = None  # net_health: Success, Socket fail, ...
    netdetect: str | None = None
    gateway: str | None = None
    tls_switch: int | None = None
    optical: str | None = None  # "present" or what the tool said instead
    lldp_port: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # command -> error text

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def _error_of(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip()
        if line in ERRORS or line.startswith(("Get ", "Execute failed", "Cmd execute failed", "permission denied")):
            return line
    return None


def _value(text: str, key: str) -> str | None:
    """`key: value` or `key:value` on any line (tolerant of spacing and case)."""
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*:\s*(.+?)\s*$", re.I | re.M)
    m = pattern.search(text)
    return m.group(1) if m else None


def parse_command(dev: DeviceFacts, command: str, raw: Raw) -> None:
    """Fold one command's output (stdout and stderr merged) into `dev`."""
    text = raw.stdout
    error = _error_of(text)
    if error:
        dev.errors[command] = error
        return
    if command == "ip":
        dev.ip = _value(text, "ipaddr")
        dev.netmask = _value(text, "netmask")
    elif command == "link":
        value = _value(text, "link status")
        dev.link = value.upper() if value else None
    elif command == "net_health":
        dev.health = _value(text, "net health status")
    elif command == "netdetect":
        dev.netdetect = _value(text, "netdetect addr")
    elif command == "gateway":
        m = re.search(r"default gateway\s*:\s*([^,\s]+)", text, re.I)
        dev.gateway = m.group(1) if m else None
    elif command == "tls":
        m = re.search(r"tls switch\[(\d)\]", text)
        dev.tls_switch = int(m.group(1)) if m else None
    elif command == "optical":
        dev.optical = _value(text, "present")
    elif command == "lldp":
        dev.lldp_port = _value(text, "Ifname")
    if raw.exit_code != 0 and command not in dev.errors:
        dev.errors[command] = f"exit {raw.exit_code}: {text.strip()[:200]}"
    if command in ("ip", "link", "net_health", "tls", "optical") and not text.strip():
        dev.errors.setdefault(command, "no output")


def retrying_call(nonce: str, tries: int) -> str:
    """Shell function `h TAG ARG...`: runs `hccn_tool ARG...`, retrying while the device answers
    busy (the real tool serves one command per device at a time), and prints the output as a
    section `@@nonce@@ TAG` ... `@@nonce@@ rc=N` (read back by `toolkit.facts.sections`)."""
    attempts = " ".join(str(n) for n in range(1, tries + 1))
    return (
        f"h() {{ local tag=$1 out rc try; shift; for try in {attempts}; do\n"
        f'  out=$({HCCN} "$@" 2>&1); rc=$?\n'
        f"  case $out in *'{BUSY}'*) sleep 0.$try ;; *) break ;; esac; done\n"
        f'  echo "@@{nonce}@@ $tag"; printf \'%s\\n\' "$out"; echo "@@{nonce}@@ rc=$rc"; }}'
    )


def per_device(queues: dict[int, list[str]]) -> str:
    """Each device's commands in sequence, devices in parallel; each device's output buffered to a
    file and printed in device order, so sections of different devices never interleave."""
    if not queues:
        return "true"
    lines = ["t=$(mktemp -d) || exit 1; trap 'rm -rf \"$t\"' EXIT"]
    lines += [f'( {"; ".join(cmds)} ) > "$t/{dev}" &' for dev, cmds in sorted(queues.items())]
    lines.append("wait")
    lines.append(" ".join(f'cat "$t/{dev}";' for dev in sorted(queues)))
    return "\n".join(lines)


def device_script(devices: list[int], nonce: str, commands: tuple[str, ...] = COMMANDS) -> str:
    """Shell that reads `commands` for every device: devices in parallel, commands in sequence."""
    queues = {d: [f"h '{int(d)} {c}' -i {int(d)} -{c} -g" for c in commands] for d in devices}
    return retrying_call(nonce, 5) + "\n" + per_device(queues)


def parse_devices(raw: Raw, nonce: str, devices: list[int]) -> dict[int, DeviceFacts]:
    """Split the device script's output back into DeviceFacts per device (partial output tolerated:
    a command whose section never ended is recorded as an error)."""
    result = {d: DeviceFacts(d) for d in devices}
    seen: set[tuple[int, str]] = set()
    for tag, text, code in sections(raw.stdout, nonce):
        parts = tag.split()
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in result:
            dev, cmd = int(parts[0]), parts[1]
            parse_command(result[dev], cmd, Raw(text, code))
            seen.add((dev, cmd))
    for facts in result.values():
        for cmd in COMMANDS:
            if (facts.id, cmd) not in seen:
                facts.errors[cmd] = "no answer (output cut short)"
    return result


HCCN_CONF = "/etc/hccn.conf"
#: what `hccn_conf_command` prints when the file is missing (its own line, never a key=value)
NO_CONF = "@@no hccn.conf@@"


def hccn_conf_command() -> str:
    return f"cat {HCCN_CONF} 2>/dev/null || echo {NO_CONF!r}"


def parse_hccn_conf(raw: Raw) -> dict[int, str] | None:
    """`address_N=IP` of /etc/hccn.conf as {N: IP}; None when the file is missing. Other keys
    (netmask_N, netdetect_N, ...) and lines that are not `key=value` are ignored."""
    if raw.stdout.strip() == NO_CONF:
        return None
    addresses: dict[int, str] = {}
    for line in raw.stdout.splitlines():
        m = re.match(r"\s*address_(\d+)\s*=\s*(\S+)\s*$", line)
        if m:
            addresses[int(m.group(1))] = m.group(2)
    return addresses
