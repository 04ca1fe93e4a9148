"""The server's /metrics read twice a second apart, parsed with prometheus_client: per model,
requests running and waiting, KV-cache usage, token throughput, preemptions."""

from __future__ import annotations

from toolkit.facts import Raw
from toolkit.facts.metrics import SPLIT, parse_metrics

#: the relevant lines of a data-parallel vLLM's /metrics (two engines), as the CPU build prints them
ONE = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny-llama"} 2.0
vllm:num_requests_running{engine="1",model_name="tiny-llama"} 1.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny-llama"} 4.0
vllm:num_requests_waiting{engine="1",model_name="tiny-llama"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="tiny-llama"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="tiny-llama"} 0.5
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="tiny-llama"} 1.0
vllm:num_preemptions_total{engine="1",model_name="tiny-llama"} 0.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="tiny-llama"} 100.0
vllm:prompt_tokens_total{engine="1",model_name="tiny-llama"} 50.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="tiny-llama"} 10.0
vllm:generation_tokens_total{engine="1",model_name="tiny-llama"} 10.0
"""


def test_gauges_now_and_rates_between_the_readings() -> None:
    two = ONE.replace("} 100.0", "} 160.0").replace(
        'engine="1",model_name="tiny-llama"} 10.0', 'engine="1",model_name="tiny-llama"} 50.0'
    )
    raw = f"{SPLIT} 1000.0\n{ONE}\n{SPLIT} 1002.0\n{two}"
    (load,) = parse_metrics(Raw(raw, 0)) or []
    assert (load.model, load.engines, load.running, load.waiting) == ("tiny-llama", 2, 3.0, 4.0)
    assert load.kv_cache_usage == 0.5 and load.preemptions == 1.0
    assert load.prompt_tokens_per_s == 30.0 and load.generation_tokens_per_s == 20.0


def test_one_reading_has_no_rates_and_no_metrics_is_none() -> None:
    (load,) = parse_metrics(Raw(f"{SPLIT} 5.0\n{ONE}", 0)) or []
    assert load.prompt_tokens_per_s is None and load.running == 3.0
    assert parse_metrics(Raw(f"{SPLIT} 5.0\n\n{SPLIT} 6.0\n", 0)) is None
    assert parse_metrics(Raw(f"{SPLIT} 5.0\n<html>not metrics</html>\n", 0)) is None
