"""Card-to-card pings across hosts: which pairs (pure), the on-host script, and its parser.

Modes: `rail` (device i of every host pings device i of every other host), `ring` (device i of
each host pings device i of the next host: O(N)), `full` (every device pair across hosts). Each
host runs its pings in one remote round trip: devices in parallel, one ping at a time per device,
retrying when the tool answers busy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from toolkit.facts import Raw, sections
from toolkit.facts.hccn import BUSY, per_device, retrying_call
from toolkit.serial import plain
from toolkit.transport.shell import q

MODES = ("rail", "ring", "full")


@dataclass(frozen=True)
class Target:
    device: int  # local device that pings
    peer_host: str
    peer_device: int
    peer_ip: str


@dataclass
class PingResult:
    host: str
    device: int
    peer_host: str
    peer_device: int
    peer_ip: str
    sent: int = 0
    received: int = 0
    loss_pct: float = 100.0
    rtt_ms: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.sent > 0 and self.received == self.sent

    __json_extra__ = ("ok",)

    def to_dict(self) -> dict[str, Any]:
        return dict(plain(self))


def plan(card_ips: dict[str, dict[int, str]], mode: str = "rail", only: str | None = None) -> dict[str, list[Target]]:
    """Who pings whom. `card_ips`: host -> device -> IP, hosts in inventory order; devices without an
    IP are left out (their own check reports them). Pings only cross hosts, so the two dies of one
    A3 card are never asked to ping each other. `only` plans for one host (each host's step plans its
    own pings: planning the whole cluster on every host would be O(N^3))."""
    if mode not in MODES:
        raise ValueError(f"unknown ping mode {mode!r}")
    hosts = list(card_ips)
    out: dict[str, list[Target]] = {h: [] for h in hosts if only is None or h == only}
    for i, host in enumerate(hosts):
        if host not in out:
            continue
        if mode == "ring":
            peers = [hosts[(i + 1) % len(hosts)]] if len(hosts) > 1 else []
        else:
            peers = [p for p in hosts if p != host]
        for dev in sorted(card_ips[host]):
            for peer in peers:
                if mode == "full":
                    for pdev, pip in sorted(card_ips[peer].items()):
                        out[host].append(Target(dev, peer, pdev, pip))
                elif dev in card_ips[peer]:
                    out[host].append(Target(dev, peer, dev, card_ips[peer][dev]))
    return out


def script(targets: list[Target], nonce: str, packets: int = 3) -> str:
    """Per device a sequential queue of pings (background per device); output buffered per device."""
    queues: dict[int, list[str]] = {}
    for t in targets:
        # peer IPs were read from other hosts' tool output: quoted like any remote argument
        queues.setdefault(t.device, []).append(
            f"h {q(f'{t.device} {t.peer_ip}')} -i {int(t.device)} -ping -g address {q(t.peer_ip)} pkt {int(packets)}"
        )
    if not queues:
        return "true"
    return retrying_call(nonce, 8) + "\n" + per_device(queues)


_SUMMARY = re.compile(r"(\d+)\s+packets transmitted,\s*(\d+)\s+received,\s*([\d.]+)%\s+packet loss")
_RTT = re.compile(r"recv seq=\d+,\s*time=([\d.]+)\s*ms")


def parse_one(text: str, code: int) -> tuple[int, int, float, float | None, str | None]:
    """(sent, received, loss %, mean RTT ms, error) from one ping's output."""
    m = _SUMMARY.search(text)
    rtts = [float(x) for x in _RTT.findall(text)]
    rtt = sum(rtts) / len(rtts) if rtts else None
    error = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("Execute failed", "Get ", "Cmd execute failed", "permission denied")) or s == BUSY:
            error = s
            break
    if m:
        sent, received, loss = int(m.group(1)), int(m.group(2)), float(m.group(3))
        if "Destination Host Unreachable" in text and received == 0:
            error = error or "Destination Host Unreachable"
        return sent, received, loss, rtt, error
    return 0, 0, 100.0, rtt, error or (f"no ping summary (exit {code})" if text.strip() else f"no output (exit {code})")


def parse(raw: Raw, nonce: str, host: str, targets: list[Target]) -> list[PingResult]:
    """Every planned target gets a result; one missing from the output is an error, not a pass."""
    by_key = {(t.device, t.peer_ip): t for t in targets}
    results: dict[tuple[int, str], PingResult] = {}
    for tag, text, code in sections(raw.stdout, nonce):
        parts = tag.split()
        key = (int(parts[0]), parts[1]) if len(parts) == 2 and parts[0].isdigit() else None
        t = by_key.get(key) if key else None
        if key is not None and t is not None:
            sent, received, loss, rtt, error = parse_one(text, code)
            results[key] = PingResult(
                host, t.device, t.peer_host, t.peer_device, t.peer_ip, sent, received, loss, rtt, error
            )
    out = []
    for k, t in by_key.items():
        out.append(
            results.get(k)
            or PingResult(host, t.device, t.peer_host, t.peer_device, t.peer_ip, error="no result (output cut short)")
        )
    return out
