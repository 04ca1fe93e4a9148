"""The one JSON serializer: computed extras, fields in order, skipped fields, rounding, typed
errors through their to_dict, enums as values; and reports keep their JSON keys."""

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
    __json_round__ = {"took": 2}

    name: str
    status: HostStatus
    inner: list[Inner] = field(default_factory=list)
    release: Callable[[], None] = print
    meta: dict[Any, Any] = field(default_factory=dict)
    took: float = 0.12345
    error: Any = None

    @property
    def ok(self) -> bool:
        return self.status != HostStatus.FAILED


def test_fields_extras_and_skips() -> None:
    from toolkit.errors import HostError

    data = plain(Outer("a", HostStatus.CHANGED, [Inner(1, ("x",))], meta={2: (3, 4)}, error=HostError("h", "boom")))
    assert list(data) == ["ok", "name", "status", "inner", "meta", "took", "error"]
    assert json.loads(json.dumps(data)) == {
        "ok": True,
        "name": "a",
        "status": "changed",
        "inner": [{"n": 1, "tags": ["x"]}],
        "meta": {"2": [3, 4]},
        "took": 0.12,
        "error": HostError("h", "boom").to_dict(),
    }


def test_ping_results_keep_their_json_shape() -> None:
    p = PingResult("h1", 0, "h2", 0, "29.1.0.2", 3, 2, 33.33, 0.1, None)
    assert p.to_dict() == {
        "host": "h1", "device": 0, "peer_host": "h2", "peer_device": 0, "peer_ip": "29.1.0.2",
        "sent": 3, "received": 2, "loss_pct": 33.33, "rtt_ms": 0.1, "error": None, "ok": False,
    }  # fmt: skip


def test_run_reports_keep_their_json_keys() -> None:
    from toolkit.engine.runner import HostReport, OpReport, RunReport, StageReport

    host = HostReport("h", HostStatus.CHANGED, [OpReport("true", "do it", True, 0, 0.5)], duration=1.23456)
    stage = StageReport("env", "env_file", {"h": host}, 2.0, None)
    data = json.loads(json.dumps(RunReport("up", False, [stage], None, 3.0).to_dict()))
    assert set(data) == {"ok", "playbook", "check", "failed_stage", "duration", "stages"}
    assert set(data["stages"][0]) == {"name", "step", "ok", "duration", "skipped", "hosts"}
    assert data["stages"][0]["hosts"]["h"] == {
        "host": "h", "status": "changed", "attempts": 1, "duration": 1.235, "data": {}, "error": None,
        "ops": [{"command": "true", "description": "do it", "ran": True, "exit_code": 0, "duration": 0.5}],
    }  # fmt: skip
