"""`ask`: one request to the deployed OpenAI-compatible endpoint, from the control machine, with
latency, time to first token (streaming) and token counts. Plain httpx: the control machine
needs no OpenAI SDK."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from toolkit.client.sampling import Sampling, validate_answer
from toolkit.errors import ToolkitError


class AskFailed(ToolkitError):
    """The endpoint refused or could not be reached (exit 1)."""

    kind = "ask-failed"


@dataclass
class AskReport:
    endpoint: str
    model: str
    mode: str  # completion | chat
    stream: bool
    prompt: str
    answers: list[str] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    parsed: list[Any] | None = None  # answers parsed as JSON (with --json-schema)
    problem: str | None = None  # an answer that does not validate against the schema

    @property
    def ok(self) -> bool:
        return self.problem is None and bool(self.answers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "endpoint": self.endpoint,
            "model": self.model,
            "mode": self.mode,
            "stream": self.stream,
            "prompt": self.prompt,
            "answers": self.answers,
            "finish_reasons": self.finish_reasons,
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens},
            "latency_s": round(self.latency_s, 4),
            "ttft_s": round(self.ttft_s, 4) if self.ttft_s is not None else None,
            "parsed": self.parsed,
            "problem": self.problem,
        }


def _error_text(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:500]
        return str(err)[:500]
    return str(data)[:300]


def ask(
    endpoint: str,
    model: str,
    prompt: str,
    sampling: Sampling,
    *,
    chat: bool = False,
    stream: bool = False,
    api_key: str | None = None,
    timeout: float = 300.0,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> AskReport:
    """Send one request; the report keeps every answer, the token usage and the timings."""
    mode = "chat" if chat else "completion"
    body: dict[str, Any] = {"model": model, **sampling.body()}
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = f"{endpoint.rstrip('/')}/{'chat/completions' if chat else 'completions'}"
    report = AskReport(endpoint, model, mode, stream, prompt)
    started = clock()
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            if stream:
                _stream(client, url, body, headers, report, started, clock)
            else:
                resp = client.post(url, json=body, headers=headers)
                if resp.status_code != 200:
                    raise AskFailed(
                        f"{url} answered HTTP {resp.status_code}: {_error_text(resp)}", hint=_hint(resp.status_code)
                    )
                _collect(resp.json(), report, chat)
    except httpx.HTTPError as exc:
        raise AskFailed(
            f"cannot reach {url}: {exc or type(exc).__name__}",
            hint="is the cluster up? `ascend-deploy status` shows the server's health",
        ) from None
    report.latency_s = clock() - started
    if sampling.json_schema is not None:
        try:
            report.parsed = [validate_answer(text, sampling.json_schema) for text in report.answers]
        except ValueError as exc:
            report.problem = str(exc)
    return report


def _hint(status: int) -> str | None:
    return {
        401: "the API key differs from the server's: set the variable serve.api_key_env names",
        404: "the model name differs from the served name: see `ascend-deploy status`",
        400: "the server rejected a parameter (the message says which)",
    }.get(status)


def _collect(data: dict[str, Any], report: AskReport, chat: bool) -> None:
    for choice in sorted(data.get("choices", []), key=lambda c: c.get("index", 0)):
        text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
        report.answers.append(text or "")
        report.finish_reasons.append(choice.get("finish_reason"))
    usage = data.get("usage") or {}
    report.prompt_tokens = usage.get("prompt_tokens")
    report.completion_tokens = usage.get("completion_tokens")


def _stream(
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    report: AskReport,
    started: float,
    clock: Callable[[], float],
) -> None:
    texts: dict[int, list[str]] = {}
    reasons: dict[int, str | None] = {}
    with client.stream("POST", url, json=body, headers=headers) as resp:
        if resp.status_code != 200:
            resp.read()
            raise AskFailed(
                f"{url} answered HTTP {resp.status_code}: {_error_text(resp)}", hint=_hint(resp.status_code)
            )
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            chunk = json.loads(payload)
            for choice in chunk.get("choices", []):
                idx = choice.get("index", 0)
                piece = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
                if piece:
                    if report.ttft_s is None:
                        report.ttft_s = clock() - started
                    texts.setdefault(idx, []).append(piece)
                if choice.get("finish_reason") is not None:
                    reasons[idx] = choice["finish_reason"]
                texts.setdefault(idx, [])
            if chunk.get("usage"):
                report.prompt_tokens = chunk["usage"].get("prompt_tokens")
                report.completion_tokens = chunk["usage"].get("completion_tokens")
    for idx in sorted(texts):
        report.answers.append("".join(texts[idx]))
        report.finish_reasons.append(reasons.get(idx))
