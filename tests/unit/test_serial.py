"""The one JSON serializer: fields in order, computed extras, skipped fields, enums as values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from toolkit.checks.pings import PingResult
from toolkit.engine.runner import HostStatus
from toolkit.serial import plain


@dataclass
class Inner:
    n: int
    tags: tuple[str, ...] = ()


@dataclass
class Outer:
    __json_extra__ = ("ok",)
    __json_skip__ = ("release",)

    name: str
    status: HostStatus
    inner: list[Inner] = field(default_factory=list)
    release: Callable[[], None] = print
    meta: dict[Any, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != HostStatus.FAILED


def test_fields_extras_and_skips() -> None:
    data = plain(Outer("a", HostStatus.CHANGED, [Inner(1, ("x",))], meta={2: (3, 4)}))
    assert list(data) == ["name", "status", "inner", "meta", "ok"]
    assert json.loads(json.dumps(data)) == {
        "name": "a",
        "status": "changed",
        "inner": [{"n": 1, "tags": ["x"]}],
        "meta": {"2": [3, 4]},
        "ok": True,
    }


def test_ping_results_keep_their_json_shape() -> None:
    p = PingResult("h1", 0, "h2", 0, "29.1.0.2", 3, 2, 33.33, 0.1, None)
    assert p.to_dict() == {
        "host": "h1", "device": 0, "peer_host": "h2", "peer_device": 0, "peer_ip": "29.1.0.2",
        "sent": 3, "received": 2, "loss_pct": 33.33, "rtt_ms": 0.1, "error": None, "ok": False,
    }  # fmt: skip
