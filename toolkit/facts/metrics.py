"""The server's live state from its Prometheus `/metrics` (read twice, a second apart, on the
head), per served model: running and waiting requests, KV-cache usage, prompt and generation
throughput, preemptions. Parsed with prometheus_client's exposition parser, not by hand.

vLLM's names (vllm/v1/metrics/loggers.py): vllm:num_requests_running, vllm:num_requests_waiting,
vllm:kv_cache_usage_perc (0..1; vllm:gpu_cache_usage_perc before), counters vllm:prompt_tokens,
vllm:generation_tokens, vllm:num_preemptions (exposed with `_total`); labels model_name, engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.facts import Raw
from toolkit.transport.shell import q

SPLIT = "@@ascend-deploy-metrics@@"
GAUGES = {"vllm:num_requests_running": "running", "vllm:num_requests_waiting": "waiting"}
KV = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
COUNTERS = {"vllm:prompt_tokens": "prompt", "vllm:generation_tokens": "generation", "vllm:num_preemptions": "preempt"}


@dataclass(frozen=True)
class ModelLoad:
    model: str
    engines: int
    running: float
    waiting: float
    kv_cache_usage: float | None  # the fullest engine's share of its KV cache, 0..1
    prompt_tokens_per_s: float | None
    generation_tokens_per_s: float | None
    preemptions: float


def metrics_command(base_url: str) -> str:
    """/metrics, a second's pause, /metrics again, each after the time it was read."""
    url = q(base_url + "/metrics")
    return (
        f"echo {SPLIT} $(date +%s.%N); curl -s -m 5 {url}; sleep 1; "
        f"echo; echo {SPLIT} $(date +%s.%N); curl -s -m 5 {url}; true"
    )


def _samples(text: str) -> dict[str, dict[tuple[str, str], float]]:
    """metric name -> (model, engine) -> value, for the metrics this fact reads."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {*GAUGES, *KV, *COUNTERS}
    out: dict[str, dict[tuple[str, str], float]] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:
        return out
    for family in families:
        if family.name not in wanted:
            continue
        for sample in family.samples:
            if sample.name.endswith(("_created",)):
                continue
            key = (sample.labels.get("model_name", "-"), sample.labels.get("engine", "0"))
            out.setdefault(family.name, {})[key] = out.get(family.name, {}).get(key, 0.0) + float(sample.value)
    return out


def parse_metrics(raw: Raw) -> list[ModelLoad] | None:
    """Per model: the second reading's gauges, and counters' rates between the two readings.
    None when the server gave no metrics."""
    parts = raw.stdout.split(SPLIT)[1:]
    readings: list[tuple[float, dict[str, dict[tuple[str, str], float]]]] = []
    for part in parts:
        stamp, _, body = part.partition("\n")
        try:
            at = float(stamp.strip())
        except ValueError:
            continue
        readings.append((at, _samples(body)))
    readings = [r for r in readings if r[1]]
    if not readings:
        return None
    at, last = readings[-1]
    first_at, first = readings[0]
    seconds = at - first_at
    models = sorted({m for values in last.values() for m, _ in values})
    out = []
    for model in models:

        def total(name: str, sample: dict[str, dict[tuple[str, str], float]], m: str = model) -> float:
            return sum(v for (mm, _), v in sample.get(name, {}).items() if mm == m)

        def rate(name: str) -> float | None:
            if len(readings) < 2 or seconds <= 0:
                return None
            return max(0.0, (total(name, last) - total(name, first)) / seconds)

        engines = {e for values in last.values() for mm, e in values if mm == model}
        kv = [v for name in KV for (mm, _), v in last.get(name, {}).items() if mm == model]
        out.append(
            ModelLoad(
                model=model,
                engines=len(engines),
                running=total("vllm:num_requests_running", last),
                waiting=total("vllm:num_requests_waiting", last),
                kv_cache_usage=max(kv) if kv else None,
                prompt_tokens_per_s=rate("vllm:prompt_tokens"),
                generation_tokens_per_s=rate("vllm:generation_tokens"),
                preemptions=total("vllm:num_preemptions", last),
            )
        )
    return out


def as_rows(loads: list[ModelLoad] | None) -> list[dict[str, Any]]:
    from toolkit.serial import plain

    return [dict(plain(x)) for x in loads or []]
