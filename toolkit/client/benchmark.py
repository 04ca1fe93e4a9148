"""The serving benchmark's pure parts: what a point is, reading vLLM's result JSON (`vllm bench
serve --save-result`), comparing a run with a baseline, parsing SLOs and searching the highest
request rate that meets them. No I/O: the search is handed a `measure` function.

vLLM's result keys (vllm/benchmarks/serve.py): request_throughput, output_throughput,
total_token_throughput, completed, failed, duration, and mean_/median_/p99_ + ttft/tpot/itl + _ms
(with `--percentile-metrics ttft,tpot,itl --metric-percentiles 50,99`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from toolkit.errors import BadInput

LATENCIES = ("ttft", "tpot", "itl")
STATS = ("mean", "median", "p99")
#: the SLO keys a user may give: e.g. ttft_p99, tpot_mean, itl_median
SLO_KEYS = tuple(f"{m}_{s}" for m in LATENCIES for s in STATS)


@dataclass(frozen=True)
class Load:
    """One point's offered load: a request rate (inf: all at once) or a fixed concurrency."""

    rate: float | None = None
    concurrency: int | None = None

    __json_extra__ = ("label",)
    __json_as__ = {"rate": "finite_rate"}

    @property
    def finite_rate(self) -> float | None:
        """The rate for JSON: None for an unlimited one (JSON has no infinity)."""
        return None if self.rate is None or math.isinf(self.rate) else self.rate

    @property
    def label(self) -> str:
        if self.concurrency is not None:
            return f"concurrency {self.concurrency}"
        return "rate inf" if self.rate is None or math.isinf(self.rate) else f"rate {self.rate:g}/s"

    def args(self) -> list[str]:
        """`vllm bench serve` flags for this load."""
        if self.concurrency is not None:
            return ["--max-concurrency", str(self.concurrency), "--request-rate", "inf"]
        return ["--request-rate", "inf" if self.rate is None or math.isinf(self.rate) else f"{self.rate:g}"]


@dataclass
class Point:
    """One measured point: its load and the numbers vLLM's benchmark reported."""

    load: Load
    completed: int = 0
    failed: int = 0
    duration_s: float = 0.0
    request_throughput: float = 0.0
    output_throughput: float = 0.0
    total_token_throughput: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)  # e.g. "ttft_p99" -> 812.0
    error: str | None = None  # the point could not be measured (the failure, named)

    __json_extra__ = ("label", "ok")

    @property
    def label(self) -> str:
        return self.load.label

    @property
    def ok(self) -> bool:
        return self.error is None and self.completed > 0


def parse_result(load: Load, data: dict[str, Any]) -> Point:
    """A point from vLLM's result JSON (tolerant: a missing key is 0 / absent)."""
    latency = {}
    for metric in LATENCIES:
        for stat in STATS:
            value = data.get(f"{stat}_{metric}_ms")
            if isinstance(value, (int, float)):
                latency[f"{metric}_{stat}"] = float(value)
    return Point(
        load=load,
        completed=int(data.get("completed") or 0),
        failed=int(data.get("failed") or 0),
        duration_s=float(data.get("duration") or 0.0),
        request_throughput=float(data.get("request_throughput") or 0.0),
        output_throughput=float(data.get("output_throughput") or 0.0),
        total_token_throughput=float(data.get("total_token_throughput") or 0.0),
        latency_ms=latency,
    )


def parse_loads(rates: str | None, concurrency: str | None) -> list[Load]:
    """`--rates 1,4,16,inf` or `--concurrency 1,8,32` (exactly one of them; default rates 1,inf)."""
    if rates and concurrency:
        raise BadInput("give --rates or --concurrency, not both", hint="--rates 1,4,16,inf  or  --concurrency 1,8,32")
    loads: list[Load] = []
    if concurrency:
        for part in concurrency.split(","):
            if not part.strip().isdigit() or int(part) < 1:
                raise BadInput(f"--concurrency {concurrency!r}: {part.strip()!r} is not a whole number >= 1")
            loads.append(Load(concurrency=int(part)))
        return loads
    for part in (rates or "1,inf").split(","):
        text = part.strip().lower()
        try:
            value = math.inf if text in ("inf", "unlimited") else float(text)
        except ValueError:
            raise BadInput(f"--rates {rates!r}: {part.strip()!r} is not a rate", hint="requests/s, or inf") from None
        if value <= 0:
            raise BadInput(f"--rates {rates!r}: {part.strip()!r} must be above 0")
        loads.append(Load(rate=value))
    return loads


_UNITS = {"ms": 1.0, "s": 1000.0}


def parse_slo(text: str) -> dict[str, float]:
    """`ttft_p99=2s,tpot_p99=80ms` -> {"ttft_p99": 2000.0, "tpot_p99": 80.0} (milliseconds)."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in SLO_KEYS:
            raise BadInput(
                f"--slo {text!r}: {key or part!r} is not an objective",
                hint=f"use KEY=VALUE with KEY one of {', '.join(SLO_KEYS)}, e.g. ttft_p99=2s,tpot_p99=80ms",
            )
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)\s*", value)
        if not m:
            raise BadInput(
                f"--slo {text!r}: {value.strip()!r} for {key} needs a unit", hint="a number with ms or s: 80ms, 2s"
            )
        out[key] = float(m.group(1)) * _UNITS[m.group(2)]
    if not out:
        raise BadInput("--slo is empty", hint="e.g. --slo ttft_p99=2s,tpot_p99=80ms")
    return out


def misses(point: Point, slo: dict[str, float]) -> list[str]:
    """The objectives this point misses, in words (empty: it meets them all)."""
    if not point.ok:
        return [point.error or "no request completed"]
    out = []
    if point.failed:
        out.append(f"{point.failed} failed requests")
    for key, limit in slo.items():
        value = point.latency_ms.get(key)
        if value is None:
            out.append(f"{key} not reported")
        elif value > limit:
            out.append(f"{key} {value:.0f} ms > {limit:.0f} ms")
    return out


@dataclass
class Search:
    """The highest rate that meets the SLO, with the measured point on each side."""

    best: Point | None  # the highest rate that met every objective (None: not even the first)
    above: Point | None  # the lowest measured rate above it that missed (None: none missed)
    points: list[Point]  # every point measured, in order
    bound: int  # the most points the search may measure


def search_rate(
    measure: Callable[[Load], Point], slo: dict[str, float], *, start: float = 1.0, max_points: int = 6
) -> Search:
    """Double the rate from `start` until a point misses, then bisect between the last rate that
    met the objectives and the first that missed; never more than `max_points` measurements."""
    points: list[Point] = []
    good: Point | None = None
    bad: Point | None = None

    def take(rate: float) -> Point:
        point = measure(Load(rate=rate))
        points.append(point)
        return point

    rate = start
    while len(points) < max_points:
        point = take(rate)
        if misses(point, slo):
            bad = point
            break
        good = point
        rate *= 2
    while bad is not None and len(points) < max_points:
        low = good.load.rate if good is not None and good.load.rate is not None else 0.0
        high = bad.load.rate or 0.0
        mid = (low + high) / 2
        if high - low < max(0.05, 0.1 * low) or mid <= 0:
            break
        point = take(mid)
        if misses(point, slo):
            bad = point
        else:
            good = point
    return Search(good, bad, points, max_points)


@dataclass
class Verdict:
    label: str
    measured: float
    baseline: float
    ratio: float
    passed: bool
    what: str = "output tokens/s"


def compare(
    points: list[Point], baseline: list[Point], *, min_ratio: float = 0.97, latency: bool = False
) -> list[Verdict]:
    """Each point against the baseline's point of the same load: output throughput at least
    `min_ratio` x the baseline's; with `latency`, p99 TTFT and TPOT at most baseline / min_ratio."""
    base = {p.label: p for p in baseline}
    out = []
    for point in points:
        ref = base.get(point.label)
        if ref is None:
            continue
        ratio = point.output_throughput / ref.output_throughput if ref.output_throughput else math.inf
        out.append(Verdict(point.label, point.output_throughput, ref.output_throughput, ratio, ratio >= min_ratio))
        if latency:
            for key in ("ttft_p99", "tpot_p99"):
                mine, theirs = point.latency_ms.get(key), ref.latency_ms.get(key)
                if mine is None or theirs is None or theirs <= 0:
                    continue
                ratio = theirs / mine if mine else math.inf  # higher is better, like throughput
                out.append(Verdict(point.label, mine, theirs, ratio, ratio >= min_ratio, f"{key} ms"))
    return out
