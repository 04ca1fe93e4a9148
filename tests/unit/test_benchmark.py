"""The serving benchmark's pure parts on recorded results: parsing vLLM's result JSON, the
loads, the SLO syntax, the baseline comparison and the rate search (a fake server whose latency
grows with the rate)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.helpers import RECORDED_BENCH
from toolkit.client.benchmark import Load, Point, compare, misses, parse_loads, parse_result, parse_slo, search_rate
from toolkit.errors import BadInput


def test_a_result_gives_every_metric() -> None:
    p = parse_result(Load(rate=4), RECORDED_BENCH)
    assert (p.completed, p.failed, p.output_throughput, p.request_throughput) == (20, 0, 38.0, 4.75)
    assert (
        p.latency_ms["ttft_p99"] == 301.2 and p.latency_ms["tpot_median"] == 21.0 and p.latency_ms["itl_mean"] == 22.5
    )
    assert p.ok and p.label == "rate 4/s"
    empty = parse_result(Load(concurrency=8), {})
    assert not empty.ok and empty.label == "concurrency 8" and empty.latency_ms == {}


def test_loads_from_rates_or_concurrency() -> None:
    assert [x.label for x in parse_loads("1,4,16,inf", None)] == ["rate 1/s", "rate 4/s", "rate 16/s", "rate inf"]
    assert parse_loads(None, None)[-1].rate == math.inf
    assert [x.args() for x in parse_loads(None, "1,8")] == [
        ["--max-concurrency", "1", "--request-rate", "inf"],
        ["--max-concurrency", "8", "--request-rate", "inf"],
    ]
    for rates, conc in (("1,x", None), ("0", None), (None, "0"), ("1", "2")):
        with pytest.raises(BadInput):
            parse_loads(rates, conc)


def test_slo_keys_and_units() -> None:
    assert parse_slo("ttft_p99=2s, tpot_p99=80ms") == {"ttft_p99": 2000.0, "tpot_p99": 80.0}
    for bad, words in (("ttft=2s", "not an objective"), ("ttft_p99=2", "needs a unit"), ("", "empty")):
        with pytest.raises(BadInput) as exc:
            parse_slo(bad)
        assert words in exc.value.message


def test_comparison_names_each_point_that_fell_below() -> None:
    now = [parse_result(Load(rate=r), {**RECORDED_BENCH, "output_throughput": t}) for r, t in ((1, 10.0), (4, 38.0))]
    same = compare(now, now)
    assert all(v.passed for v in same) and [v.ratio for v in same] == [1.0, 1.0]
    tenfold = [
        parse_result(Load(rate=r), {**RECORDED_BENCH, "output_throughput": t * 10}) for r, t in ((1, 10.0), (4, 38.0))
    ]
    verdicts = compare(now, tenfold)
    assert [(v.label, v.passed, round(v.ratio, 2)) for v in verdicts] == [
        ("rate 1/s", False, 0.1),
        ("rate 4/s", False, 0.1),
    ]
    slower = [parse_result(Load(rate=4), {**RECORDED_BENCH, "p99_ttft_ms": 700.0})]
    lat = compare(slower, [parse_result(Load(rate=4), RECORDED_BENCH)], latency=True)
    assert [(v.what, v.passed) for v in lat] == [
        ("output tokens/s", True),
        ("ttft_p99 ms", False),
        ("tpot_p99 ms", True),
    ]


def server(capacity: float):
    """A fake endpoint: p99 TTFT grows steeply once the rate passes `capacity`."""
    seen: list[float] = []

    def measure(load: Load) -> Point:
        rate = load.rate or math.inf
        seen.append(rate)
        ttft = 100.0 if rate <= capacity else 100.0 * (rate / capacity) ** 3
        return parse_result(load, {**RECORDED_BENCH, "p99_ttft_ms": ttft, "completed": 10})

    return measure, seen


def test_search_finds_the_highest_rate_within_its_bound() -> None:
    measure, seen = server(capacity=5.0)
    slo = {"ttft_p99": 200.0}  # met up to 5 * 2 ** (1/3) = 6.3 requests/s
    result = search_rate(measure, slo, max_points=6)
    assert len(result.points) == 6 and seen == [1.0, 2.0, 4.0, 8.0, 6.0, 7.0]
    assert result.best is not None and result.above is not None
    assert (result.best.load.rate, result.above.load.rate) == (6.0, 7.0)
    assert not misses(result.best, slo) and misses(result.above, slo) == ["ttft_p99 274 ms > 200 ms"]


def test_search_when_even_the_first_rate_misses_or_nothing_misses() -> None:
    measure, _ = server(capacity=0.1)
    first = search_rate(measure, {"ttft_p99": 500.0}, max_points=3)
    assert first.best is None and first.above is not None and len(first.points) <= 3
    measure, _ = server(capacity=1e9)
    never = search_rate(measure, {"ttft_p99": 500.0}, max_points=3)
    assert never.above is None and never.best.load.rate == 4.0 and len(never.points) == 3


def test_a_baseline_that_is_missing_or_not_a_result_is_refused_with_the_fix(tmp_path: Path) -> None:
    from toolkit.api.benchmark import read_baseline

    cases = {
        "missing.json": (None, "No such file"),
        "text.json": ("throughput was fine", "not JSON"),
        "other.json": ('{"rows": []}', "not a result of `ascend-deploy bench`"),
        "edited.json": ('{"identity": {}, "points": [{"completed": 3}]}', "a point is not readable"),
    }
    for name, (text, words) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(BadInput) as exc:
            read_baseline(path)
        assert words in exc.value.message and str(path) in exc.value.message and exc.value.hint
    good = tmp_path / "good.json"
    good.write_text('{"identity": {"tp": 2}, "points": [{"load": {"rate": 4}, "output_throughput": 38}]}')
    identity, _, points = read_baseline(good)
    assert identity == {"tp": 2} and [(p.load.label, p.output_throughput) for p in points] == [("rate 4/s", 38.0)]
