"""Sampling rules (each refused with exit 2 before anything is sent) and the `ask` client against
a scripted HTTP server (httpx's MockTransport): answers, streaming, usage, errors, JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.helpers import cli
from toolkit.client import sampling
from toolkit.client.ask import AskFailed, ask
from toolkit.errors import BadInput

RULES = [
    (["--max-tokens", "0"], "--max-tokens must be at least 1"),
    (["--temperature", "-0.5"], "--temperature must be >= 0"),
    (["--top-p", "0"], "--top-p must be in (0, 1]"),
    (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
    (["--top-k", "0"], "--top-k must be -1"),
    (["--presence-penalty", "2.5"], "--presence-penalty must be in [-2, 2]"),
    (["--frequency-penalty", "-3"], "--frequency-penalty must be in [-2, 2]"),
    (["--n", "11", "--temperature", "1"], "--n must be in 1..10"),
    (["--n", "2"], "--n 2 needs --temperature > 0"),
    (["--n", "2", "--temperature", "0"], "--n 2 needs --temperature > 0"),
    (["--stop", ""], "--stop strings must not be empty"),
    (["--beam-width", "1"], "--beam-width must be in 2..10"),
    (["--beam-width", "3", "--stream"], "beam search cannot stream"),
    (["--beam-width", "3", "--n", "2", "--temperature", "1"], "--beam-width replaces --n"),
    (["--beam-width", "3", "--top-p", "0.9"], "beam search ignores --top-p/--top-k"),
]


@pytest.mark.parametrize("args, rule", RULES, ids=[" ".join(a) for a, _ in RULES])
def test_every_rule_is_refused_with_exit_2(args: list[str], rule: str) -> None:
    r = cli("ask", "inventories/example.yaml", "hello", *args)  # the example's hosts do not exist: nothing is sent
    assert r.returncode == 2, r.stderr
    assert rule in r.stderr


def test_schema_file_rules(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    bad_schema = tmp_path / "schema.json"
    bad_schema.write_text(json.dumps({"type": "objekt"}))
    for path, rule in (
        (bad_json, "is not JSON"),
        (bad_schema, "is not a valid JSON Schema"),
        (tmp_path / "none.json", "No such file"),
    ):
        r = cli("ask", "inventories/example.yaml", "hi", "--json-schema", str(path))
        assert r.returncode == 2 and rule in r.stderr, r.stderr
    with pytest.raises(BadInput, match="beam search cannot be combined with --json-schema"):
        good = tmp_path / "ok.json"
        good.write_text(json.dumps({"type": "object"}))
        sampling.make(beam_width=2, json_schema=good)


def test_generate_rules_and_prompt_files(tmp_path: Path) -> None:
    r = cli("generate", "inventories/example.yaml", "--prompts", str(tmp_path / "missing.txt"))
    assert r.returncode == 2 and "No such file" in r.stderr
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "a"}\n{"text": "b"}\n')
    r = cli("generate", "inventories/example.yaml", "--prompts", str(bad))
    assert r.returncode == 2 and "p.jsonl:2: expected an object with a non-empty string 'prompt'" in r.stderr
    r = cli("generate", "inventories/example.yaml", "--prompts", str(bad), "--top-p", "2")
    assert r.returncode == 2 and "--top-p must be in (0, 1]" in r.stderr


def test_body_for_server_and_offline(tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}}))
    s = sampling.make(max_tokens=5, temperature=0.7, top_k=-1, stop=["\n"], n=2, seed=3, json_schema=schema)
    body = s.body()
    assert body == {
        "max_tokens": 5,
        "temperature": 0.7,
        "top_k": -1,
        "seed": 3,
        "stop": ["\n"],
        "n": 2,
        "structured_outputs": {"json": {"type": "object", "properties": {"a": {"type": "integer"}}}},
    }
    assert "structured_outputs" not in s.offline() and s.offline()["n"] == 2
    old = sampling.make(json_schema=schema, structured="guided_json").body()
    assert "guided_json" in old and "structured_outputs" not in old
    beam = sampling.make(beam_width=3).body()
    assert beam["use_beam_search"] is True and beam["n"] == 3


def server(handler):  # type: ignore[no-untyped-def]
    return httpx.MockTransport(handler)


def test_ask_completion_with_usage_and_key() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(url=str(request.url), auth=request.headers.get("authorization"), body=json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "choices": [
                    {"index": 1, "text": " b", "finish_reason": "stop"},
                    {"index": 0, "text": " a", "finish_reason": "length"},
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 7},
            },
        )

    rep = ask("http://h:8000/v1", "m", "hi", sampling.make(n=2, temperature=1), api_key="k", transport=server(handler))
    assert seen["url"] == "http://h:8000/v1/completions" and seen["auth"] == "Bearer k"
    assert seen["body"] == {"model": "m", "max_tokens": 16, "temperature": 1, "n": 2, "prompt": "hi"}
    assert rep.answers == [" a", " b"] and rep.finish_reasons == ["length", "stop"]
    assert (rep.prompt_tokens, rep.completion_tokens) == (3, 7) and rep.ok and rep.ttft_s is None


def test_ask_chat_stream_measures_first_token() -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}},
    ]
    sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert (
            body["stream"] is True
            and body["stream_options"] == {"include_usage": True}
            and body["messages"][0]["content"] == "hi"
        )
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    ticks = iter([0.0, 0.25, 0.5, 0.75, 1.0])
    rep = ask(
        "http://h/v1",
        "m",
        "hi",
        sampling.make(),
        chat=True,
        stream=True,
        transport=server(handler),
        clock=lambda: next(ticks),
    )
    assert (
        rep.answers == ["Hello"]
        and rep.finish_reasons == ["stop"]
        and rep.ttft_s == 0.25
        and rep.completion_tokens == 2
    )


def test_ask_errors_name_the_cause() -> None:
    def unauthorized(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "Unauthorized"}})

    with pytest.raises(AskFailed, match="HTTP 401: Unauthorized") as exc:
        ask("http://h/v1", "m", "hi", sampling.make(), transport=server(unauthorized))
    assert "serve.api_key_env" in (exc.value.hint or "")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    with pytest.raises(AskFailed, match="cannot reach http://h/v1/completions"):
        ask("http://h/v1", "m", "hi", sampling.make(), transport=server(down))


def test_ask_validates_structured_answers(tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}))
    answers = iter(['{"a": 1}', '{"a": "x"}'])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"index": 0, "text": next(answers), "finish_reason": "stop"}]})

    good = ask("http://h/v1", "m", "hi", sampling.make(json_schema=schema), transport=server(handler))
    assert good.ok and good.parsed == [{"a": 1}]
    bad = ask("http://h/v1", "m", "hi", sampling.make(json_schema=schema), transport=server(handler))
    assert not bad.ok and "does not validate" in (bad.problem or "")
