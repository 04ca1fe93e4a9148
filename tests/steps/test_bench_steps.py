"""`bench` against fake hosts whose head answers `vllm bench serve` with recorded results: the
sweep, the saved files, the baseline gate, the SLO search, and every refusal before a point runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RECORDED_BENCH, Cluster, inventory, run, settle
from toolkit import api
from toolkit.client.benchmark import Load
from toolkit.errors import BadInput
from toolkit.steps.commands import RESULT_MARKER
from toolkit.testing import fake_factory


@pytest.fixture
def served(tmp_path: Path) -> tuple[Any, Cluster]:
    inv = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"tensor_parallel_size": 2})
    cluster = Cluster(inv)
    plan = api.plan(inv)
    assert run(inv, cluster, plan).ok
    settle(cluster, inv, plan)
    return inv, cluster


def bench_handler(cluster: Cluster, capacity: float = 5.0, dies_after: int | None = None):
    """The head runs `vllm bench serve`: p99 TTFT grows past `capacity` requests/s."""
    calls: list[str] = []

    def handler(name: str, script: str) -> tuple[int, str, str]:
        if "vllm bench serve" not in script:
            return cluster(name, script)
        calls.append(script)
        if dies_after is not None and len(calls) > dies_after:
            return 1, "Initial test run failed - Please make sure arguments are correct\n" + RESULT_MARKER + "\n", ""
        rate_m = re.search(r"--request-rate '?([0-9.inf]+)'?", script)
        rate = float("inf") if not rate_m or rate_m.group(1) == "inf" else float(rate_m.group(1))
        ttft = 100.0 if rate <= capacity else 100.0 * (rate / capacity) ** 3
        result = {**RECORDED_BENCH, "p99_ttft_ms": ttft, "output_throughput": min(rate, capacity) * 8}
        return 0, f" 100%|##########| 20/20\n{RESULT_MARKER}\n{json.dumps(result)}", ""

    return handler, calls


def test_a_sweep_measures_each_point_and_saves_it_with_the_plan_identity(served: Any, tmp_path: Path) -> None:
    inv, cluster = served
    handler, calls = bench_handler(cluster)
    connect, _ = fake_factory(handler)
    settings = api.BenchSettings(loads=[Load(rate=1.0), Load(rate=4.0)], num_prompts=20, output_len=8)
    report = api.bench(inv, api.Options(), settings, out_dir=tmp_path / "res", connect=connect)
    assert report.ok, report.to_dict()
    assert [(p.label, p.output_throughput) for p in report.points] == [("rate 1/s", 8.0), ("rate 4/s", 32.0)]
    assert len(calls) == 2 and all("--served-model-name Qwen2.5-7B-Instruct" in c for c in calls)
    assert "--tokenizer /data/models/Qwen2.5-7B-Instruct" in calls[0] and "OPENAI_API_KEY" in calls[0]
    assert "--random-output-len 8" in calls[0] and "--num-prompts 20" in calls[0]
    saved = Path(report.saved or "")
    document = json.loads((saved / "result.json").read_text())
    assert document["identity"]["launcher"] == "ray" and document["identity"]["tp"] == 2
    assert [p["label"] for p in document["points"]] == ["rate 1/s", "rate 4/s"]
    assert "| rate 4/s | 4.75 | 32.0 |" in (saved / "summary.md").read_text()
    assert any("matplotlib is not installed" in n for n in report.notes) or (saved / "latency.png").exists()
    data = report.to_dict()
    assert data["ok"] and data["points"][0]["load"] == {"label": "rate 1/s", "rate": 1.0, "concurrency": None}

    # its own result as the baseline passes; one with ten times the throughput fails naming each point
    same = api.bench(
        inv, api.Options(), api.BenchSettings(loads=settings.loads, baseline=saved / "result.json"), out_dir=None,
        connect=connect,
    )  # fmt: skip
    assert same.ok and [v.passed for v in same.verdicts] == [True, True]
    tenfold = json.loads((saved / "result.json").read_text())
    for point in tenfold["points"]:
        point["output_throughput"] *= 10
    (tmp_path / "fast.json").write_text(json.dumps(tenfold))
    slower = api.bench(
        inv, api.Options(), api.BenchSettings(loads=settings.loads, baseline=tmp_path / "fast.json"), out_dir=None,
        connect=connect,
    )  # fmt: skip
    assert not slower.ok and slower.regressions == [
        "rate 1/s: output tokens/s 8.0 vs baseline 80.0 (0.10x)",
        "rate 4/s: output tokens/s 32.0 vs baseline 320.0 (0.10x)",
    ]
    other = json.loads((saved / "result.json").read_text())
    other["identity"]["tp"] = 8
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(BadInput) as exc:
        api.bench(
            inv, api.Options(), api.BenchSettings(baseline=tmp_path / "other.json"), out_dir=None, connect=connect
        )
    assert "another plan: tp 8 there, 2 here" in exc.value.message and "--compare-anyway" in (exc.value.hint or "")


def test_the_slo_search_reports_the_highest_rate_within_its_bound(served: Any) -> None:
    inv, cluster = served
    handler, calls = bench_handler(cluster, capacity=5.0)
    connect, _ = fake_factory(handler)
    settings = api.BenchSettings(slo={"ttft_p99": 200.0}, max_points=5)
    report = api.bench(inv, api.Options(), settings, out_dir=None, connect=connect)
    assert report.ok and report.search is not None and len(calls) == len(report.points) <= 5
    assert report.search.best is not None and report.search.best.load.rate == 6.0
    assert report.search.above is not None and report.search.above.load.rate == 8.0


def test_a_failing_point_stops_the_run_and_keeps_the_points_before_it(served: Any) -> None:
    inv, cluster = served
    handler, _ = bench_handler(cluster, dies_after=1)
    connect, _ = fake_factory(handler)
    settings = api.BenchSettings(loads=[Load(rate=1.0), Load(rate=2.0), Load(rate=4.0)])
    report = api.bench(inv, api.Options(), settings, out_dir=None, connect=connect)
    assert not report.ok and [p.ok for p in report.points] == [True, False]
    assert "vllm bench serve (rate 2/s) failed: exit 1" in (report.failure or "")


def test_not_serving_or_another_served_name_is_refused_before_any_point(served: Any, tmp_path: Path) -> None:
    inv, cluster = served
    handler, calls = bench_handler(cluster)
    cluster.hosts["n0"].vllm_pid = None

    def down(name: str, script: str) -> tuple[int, str, str]:
        if "/v1/models" in script:
            return 0, "\nHTTP 000", ""
        return handler(name, script)

    connect, _ = fake_factory(down)
    with pytest.raises(BadInput) as exc:
        api.bench(inv, api.Options(), api.BenchSettings(), out_dir=None, connect=connect)
    assert "not serving" in exc.value.message and "ascend-deploy up" in (exc.value.hint or "")
    renamed = inventory(tmp_path, "Qwen2.5-7B-Instruct", devices=[0], serve={"tensor_parallel_size": 2})
    renamed_text = renamed.path.read_text().replace(
        "/data/models/Qwen2.5-7B-Instruct", "/data/models/Qwen2.5-7B-Instruct\n  served_name: other"
    )
    renamed.path.write_text(renamed_text)
    connect, _ = fake_factory(handler)
    with pytest.raises(BadInput) as exc:
        api.bench(
            api.load(renamed.path, api.Options()), api.Options(), api.BenchSettings(), out_dir=None, connect=connect
        )
    assert "serves Qwen2.5-7B-Instruct, not 'other'" in exc.value.message
    assert calls == []
    with pytest.raises(BadInput) as exc:
        api.bench(inv, api.Options(), api.BenchSettings(baseline=tmp_path / "none.json"), out_dir=None, connect=connect)
    assert "--baseline" in exc.value.message and "No such file" in exc.value.message


def test_a_prompts_file_is_uploaded_and_used_as_vllms_custom_dataset(served: Any) -> None:
    inv, cluster = served
    handler, calls = bench_handler(cluster)
    uploads: list[str] = []

    def recording(name: str, script: str) -> tuple[int, str, str]:
        if "bench/prompts.jsonl" in script and "cat >" in script:
            uploads.append(script)
            return 0, "", ""
        return handler(name, script)

    connect, _ = fake_factory(recording)
    prompts = [{"id": 1, "prompt": "def f(x):"}, {"id": 2, "prompt": "Hello"}]
    settings = api.BenchSettings(loads=[Load(rate=2.0)], prompts=prompts, output_len=8)
    report = api.bench(inv, api.Options(), settings, out_dir=None, connect=connect)
    assert report.ok and len(uploads) == 1 and "umask 077" in uploads[0]
    assert "--dataset-name custom --dataset-path .ascend-deploy/t/bench/prompts.jsonl" in calls[0]
    assert "--custom-output-len 8" in calls[0] and "--random-input-len" not in calls[0]
    assert report.settings["dataset"] == "prompts file"
