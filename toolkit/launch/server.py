"""The vLLM API server as every launcher starts, stops and probes it: the shell commands (run
on a host, through its placement) and the parsers of their output."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from toolkit.engine.readiness import Probe
from toolkit.facts.deploy import VLLM_ENGINE_PATTERN, VLLM_PATTERN, Paths, ProcFiles
from toolkit.planner.plan import Plan
from toolkit.transport.shell import q

STOP_WAIT_S = 30


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def server_hash(plan: Plan, key: str | None) -> str:
    data = {"argv": plan.vllm_argv(), "key": digest(key) if key else None}
    return digest(json.dumps(data, sort_keys=True))[:16]


def stop_vllm_command(f: ProcFiles, *, strays: bool = True) -> str:
    """TERM the server (its pid file, then any vLLM server of this user) and vLLM's own engine
    processes, wait, then KILL. The engine must be named too: a server stopped while it still
    starts can leave its EngineCore behind, holding the NPUs (found by the Ctrl-C tests)."""
    find = f"cat {q(f.pid)} 2>/dev/null"
    if strays:
        find += f"; pgrep -u \"$(id -u)\" -f '{VLLM_PATTERN}|{VLLM_ENGINE_PATTERN}'"
    return (
        f"pids=$( ( {find} ) | sort -u | tr '\\n' ' '); "
        "alive=''; for p in $pids; do kill -0 $p 2>/dev/null && alive=\"$alive $p\"; done; "
        'if [ -n "$alive" ]; then kill -TERM $alive 2>/dev/null; '
        f"for i in $(seq 1 {STOP_WAIT_S * 5}); do left=''; for p in $alive; do kill -0 $p 2>/dev/null && left=\"$left "
        '$p"; done; '
        '[ -z "$left" ] && break; sleep 0.2; done; '
        f'[ -n "$left" ] && {{ echo "killing $left after {STOP_WAIT_S}s" >&2; kill -KILL $left 2>/dev/null; }}; fi; '
        f"rm -f {q(f.pid)} {q(f.hash)}; true"
    )


def _alive(f: ProcFiles) -> str:
    return (
        f'pid=$(cat {q(f.pid)} 2>/dev/null); if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo alive=1; '
        "else echo alive=0; fi; "
    )


def _last_line(f: ProcFiles) -> str:
    return f"echo \"last=$(tail -n 1 {q(f.log)} 2>/dev/null | sed 's/\\x1b\\[[0-9;]*m//g' | cut -c1-200)\""


def probe_command(plan: Plan, f: ProcFiles) -> str:
    """The server's liveness (pid file), /health and its log's last line (`parse_probe` reads it)."""
    return (
        _alive(f)
        + f"health=$(curl -s -m 5 -o /dev/null -w '%{{http_code}}' {q(plan.probe_url + '/health')} 2>/dev/null); echo "
        "health=$health; " + _last_line(f)
    )


def rank_probe_command(f: ProcFiles) -> str:
    """A vLLM process's liveness and its log's last line, without HTTP (a headless DP rank)."""
    return _alive(f) + _last_line(f)


def parse_probe(stdout: str) -> Probe:
    values = dict(line.partition("=")[::2] for line in stdout.splitlines() if "=" in line)
    code = values.get("health", "").strip()
    return Probe(
        values.get("alive", "0").strip() == "1",
        int(code) if code.isdigit() and code != "000" else None,
        values.get("last", "").strip(),
    )


def curl_command(plan: Plan, p: Paths, path: str, body: dict[str, Any] | None, max_s: int = 120) -> str:
    """A curl to the server (at most `max_s` seconds) whose Authorization header comes from the key file
    via stdin config (`-K -`), so the key is in no process's argv."""
    data = f"-H 'Content-Type: application/json' -d {q(json.dumps(body))}" if body is not None else ""
    return (
        f'{{ if [ -f {q(p.api_key)} ]; then printf \'header = "Authorization: Bearer %s"\\n\' "$(cat '
        f'{q(p.api_key)})"; fi; }} | '
        f"curl -s -m {max_s} -K - -w '\\nHTTP %{{http_code}}' {data} {q(plan.probe_url + path)}"
    )


def smoke_requests(plan: Plan) -> list[tuple[str, str, dict[str, Any] | None]]:
    """The runbook's test requests: the model list, one completion, one chat completion."""
    name = plan.served_name.value
    return [
        ("models", "/v1/models", None),
        (
            "completion",
            "/v1/completions",
            {"model": name, "prompt": "The capital of France is", "max_tokens": 16, "temperature": 0},
        ),
        (
            "chat",
            "/v1/chat/completions",
            {
                "model": name,
                "messages": [{"role": "user", "content": "Hello! Who are you?"}],
                "max_tokens": 16,
                "temperature": 0,
            },
        ),
    ]


def parse_answer(kind: str, text: str) -> tuple[int | None, Any]:
    body, _, status = text.rpartition("\nHTTP ")
    code = int(status.strip()) if status.strip().isdigit() else None
    try:
        data = json.loads(body)
    except ValueError:
        return code, body.strip()[:300]
    if kind == "models":
        return code, [m.get("id") for m in data.get("data", [])] if isinstance(data, dict) else data
    if isinstance(data, dict) and data.get("choices"):
        choice = data["choices"][0]
        return code, choice.get("text") if kind == "completion" else (choice.get("message") or {}).get("content")
    return code, data
