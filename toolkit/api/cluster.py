"""`Cluster`: one object for a cluster run, holding what every entry point needs (the inventory,
the options, where progress events go, how hosts are reached). The CLI builds one per command;
library users can too. Each method is the module function of the same name (`api.up`, `api.status`
...), which stay for callers that prefer plain functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from toolkit.api.context import ConnectFn, Options, load
from toolkit.engine.executor import EventSink, no_events

if TYPE_CHECKING:
    from toolkit.api.benchmark import BenchSettings
    from toolkit.api.images import ImageLoadReport, ImageStatusReport
    from toolkit.api.recorded import HistoryReport
    from toolkit.api.reports import BenchReport, DownReport, GenerateReport, LogsReport, StatusReport, UpReport
    from toolkit.api.rollout import Gate, UpgradeReport
    from toolkit.api.watch import WatchEvent
    from toolkit.api.weights import WeightsStatusReport, WeightsSyncReport
    from toolkit.checks.report import CheckNetReport
    from toolkit.config.inventory import Inventory
    from toolkit.engine.runner import RunReport
    from toolkit.planner.plan import Plan


@dataclass
class Cluster:
    """The inventory, the options, the event sink and the connection factory of one run.

    cluster = Cluster.open(Path("inventories/prod.yaml"))
    if cluster.check_net().ok:
        report = cluster.up()
    """

    inventory: Inventory
    opts: Options = field(default_factory=Options)
    emit: EventSink = no_events
    connect: ConnectFn | None = None

    @classmethod
    def open(
        cls, path: Path, opts: Options | None = None, *, emit: EventSink = no_events, connect: ConnectFn | None = None
    ) -> Cluster:
        """Load the inventory (with `opts.overrides` applied) and hold it with the rest."""
        opts = opts or Options()
        return cls(load(path, opts), opts, emit, connect)

    def _io(self) -> dict[str, Any]:
        return {"emit": self.emit, "connect": self.connect}

    def plan(self) -> Plan:
        from toolkit.api.context import plan

        return plan(self.inventory)

    def run(self, playbook: str) -> RunReport:
        from toolkit.api.playbooks import run

        return run(playbook, self.inventory, self.opts, **self._io())

    def facts(self) -> RunReport:
        from toolkit.api.playbooks import facts

        return facts(self.inventory, self.opts, **self._io())

    def check_net(self, *, mode: str = "rail", packets: int = 3) -> CheckNetReport:
        from toolkit.api.playbooks import check_net

        return check_net(self.inventory, self.opts, mode=mode, packets=packets, **self._io())

    def up(self, *, skip_preflight: bool = False, record: Callable[[Path], None] | None = None) -> UpReport:
        from toolkit.api.deploy import up

        return up(self.inventory, self.opts, skip_preflight=skip_preflight, record=record, **self._io())

    def upgrade(self, *, gate: Gate | None = None, dry_run: bool = False) -> UpgradeReport:
        """The inventory's plan onto the running deployment; rolled back on failure (see api.rollout)."""
        from toolkit.api.rollout import upgrade

        return upgrade(self.inventory, self.opts, gate=gate, dry_run=dry_run, **self._io())

    def history(self) -> HistoryReport:
        from toolkit.api.recorded import history

        return history(self.inventory, self.opts, **self._io())

    def down(self) -> DownReport:
        from toolkit.api.teardown import down

        return down(self.inventory, self.opts, **self._io())

    def status(self, *, metrics: bool = False) -> StatusReport:
        from toolkit.api.inspect import status

        return status(self.inventory, self.opts, metrics=metrics, **self._io())

    def watch(self, *, interval: float = 30.0, heal: bool = False, count: int | None = None) -> Iterator[WatchEvent]:
        """`status` every `interval` s, an event per change; `heal`: the healing `up` on a breakage."""
        from toolkit.api.watch import watch

        return watch(self.status, self.up if heal else None, interval=interval, count=count)

    def weights_sync(
        self, *, from_local: Path | None = None, from_host: str | None = None, fanout: int = 1, replace: bool = False
    ) -> WeightsSyncReport:
        from toolkit.api.weights import sync

        return sync(
            self.inventory,
            self.opts,
            from_local=from_local,
            from_host=from_host,
            fanout=fanout,
            replace=replace,
            **self._io(),
        )

    def weights_status(self) -> WeightsStatusReport:
        from toolkit.api.weights import status

        return status(self.inventory, self.opts, **self._io())

    def bench(self, settings: BenchSettings, *, out_dir: Path | None = Path("bench-results")) -> BenchReport:
        from toolkit.api.benchmark import bench

        return bench(self.inventory, self.opts, settings, out_dir=out_dir, **self._io())

    def image_load(self, archive: Path) -> ImageLoadReport:
        from toolkit.api.images import load_image

        return load_image(self.inventory, self.opts, archive, **self._io())

    def image_status(self) -> ImageStatusReport:
        from toolkit.api.images import image_status

        return image_status(self.inventory, self.opts, **self._io())

    def logs(self, *, tail: int | None = None, out_dir: Path = Path(".")) -> LogsReport:
        from toolkit.api.collect import logs

        return logs(self.inventory, self.opts, tail=tail, out_dir=out_dir, **self._io())

    def generate(
        self,
        prompts: list[dict[str, Any]],
        sampling: Any,
        *,
        on_result: Callable[[dict[str, Any]], None],
        stop_server: bool = False,
        timeout: float = 3600.0,
    ) -> GenerateReport:
        from toolkit.api.batch import generate

        return generate(
            self.inventory,
            self.opts,
            prompts,
            sampling,
            on_result=on_result,
            stop_server=stop_server,
            timeout=timeout,
            **self._io(),
        )
