"""Sampling options shared by `ask` and `generate`, checked with vLLM's rules before anything is
sent (a broken rule is exit 2 naming the rule), and rendered for the OpenAI-compatible server
or for vLLM's offline `SamplingParams`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import BadInput

MAX_N = 10


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 16
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    ignore_eos: bool = False
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    beam_width: int | None = None
    structured: str = "structured_outputs"  # how the target vLLM takes a JSON schema (runtime profile)

    def body(self) -> dict[str, Any]:
        """Request fields for /v1/completions and /v1/chat/completions."""
        data: dict[str, Any] = {"max_tokens": self.max_tokens}
        for key in ("temperature", "top_p", "top_k", "presence_penalty", "frequency_penalty", "seed"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.stop:
            data["stop"] = list(self.stop)
        if self.ignore_eos:
            data["ignore_eos"] = True
        if self.beam_width:
            data.update(use_beam_search=True, n=self.beam_width)
        elif self.n != 1:
            data["n"] = self.n
        if self.json_schema is not None:
            if self.structured == "structured_outputs":
                data["structured_outputs"] = {"json": self.json_schema}
            elif self.structured == "guided_json":
                data["guided_json"] = self.json_schema
            else:
                data["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": self.json_schema},
                }
        return data

    def offline(self) -> dict[str, Any]:
        """Keyword arguments for vLLM's `SamplingParams` (the JSON schema travels separately)."""
        drop = ("response_format", "use_beam_search", "structured_outputs", "guided_json")
        return {k: v for k, v in self.body().items() if k not in drop}


def _fail(rule: str, hint: str | None = None) -> BadInput:
    return BadInput(f"sampling: {rule}", hint=hint)


def load_schema(path: Path) -> dict[str, Any]:
    """A JSON Schema file, checked to be a valid schema (jsonschema's meta-schema)."""
    import jsonschema

    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(f"--json-schema {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _fail(f"--json-schema {path} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise _fail(f"--json-schema {path} must be a JSON object (a JSON Schema)")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise _fail(f"--json-schema {path} is not a valid JSON Schema: {exc.message}") from None
    return schema


def make(
    *,
    max_tokens: int = 16,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    presence_penalty: float | None = None,
    frequency_penalty: float | None = None,
    stop: list[str] | None = None,
    n: int = 1,
    ignore_eos: bool = False,
    seed: int | None = None,
    json_schema: Path | None = None,
    beam_width: int | None = None,
    stream: bool = False,
    beam_search_available: bool = True,
    structured: str = "structured_outputs",
) -> Sampling:
    """Check every rule, then build the options. Raises BadInput (exit 2) with the rule broken."""
    if max_tokens < 1:
        raise _fail(f"--max-tokens must be at least 1, got {max_tokens}")
    if temperature is not None and temperature < 0:
        raise _fail(f"--temperature must be >= 0 (0 = greedy), got {temperature:g}")
    if top_p is not None and not 0 < top_p <= 1:
        raise _fail(
            f"--top-p must be in (0, 1], got {top_p:g}",
            "1 keeps every token; 0.9 keeps the smallest set holding 90% of the probability",
        )
    if top_k is not None and top_k != -1 and top_k < 1:
        raise _fail(f"--top-k must be -1 (all tokens) or at least 1, got {top_k}")
    for name, value in (("--presence-penalty", presence_penalty), ("--frequency-penalty", frequency_penalty)):
        if value is not None and not -2 <= value <= 2:
            raise _fail(f"{name} must be in [-2, 2], got {value:g}")
    if not 1 <= n <= MAX_N:
        raise _fail(f"--n must be in 1..{MAX_N}, got {n}")
    if any(s == "" for s in stop or []):
        raise _fail("--stop strings must not be empty")
    if beam_width is not None:
        if not beam_search_available:
            raise _fail(
                "beam search is not offered here",
                "use it with `ask` against a vLLM version that has it (the server's use_beam_search)",
            )
        if not 2 <= beam_width <= MAX_N:
            raise _fail(f"--beam-width must be in 2..{MAX_N}, got {beam_width}")
        if n != 1:
            raise _fail("--beam-width replaces --n (the server returns beam-width answers)", "drop --n")
        if stream:
            raise _fail(
                "beam search cannot stream (vLLM: 'Streaming is not currently supported with beam search')",
                "drop --stream",
            )
        if top_p is not None or top_k is not None:
            raise _fail("beam search ignores --top-p/--top-k; refusing to pretend they apply", "drop them")
        if json_schema is not None:
            raise _fail("beam search cannot be combined with --json-schema")
    elif n > 1 and (temperature is None or temperature == 0):
        raise _fail(
            f"--n {n} needs --temperature > 0: greedy sampling returns {n} identical answers",
            "add e.g. --temperature 0.8, or use --beam-width",
        )
    schema = load_schema(json_schema) if json_schema is not None else None
    return Sampling(
        max_tokens,
        temperature,
        top_p,
        top_k,
        presence_penalty,
        frequency_penalty,
        tuple(stop or ()),
        n,
        ignore_eos,
        seed,
        schema,
        beam_width,
        structured,
    )


def validate_answer(text: str, schema: dict[str, Any]) -> Any:
    """The answer must be JSON that validates against the schema; returns the parsed value."""
    import jsonschema

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the answer is not JSON ({exc}): {text[:200]!r}") from None
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        raise ValueError(f"the answer does not validate against the schema: {exc.message}") from None
    return value
