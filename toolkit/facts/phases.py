"""The start-up phases a vLLM log reports, parsed tolerantly (one line each; later lines win, the
lines of several ranks in one log give the slowest): weights loaded (seconds; GiB where the engine
says it), torch.compile, graph capture, and the engine's whole init (profile, KV cache, warm-up).

Formats (the sources' format strings): vLLM `default_loader.py`
"Loading weights took %.2f seconds", `base_loader.py` "Initializing model took %f seconds",
`core.py` "init engine (profile, create kv cache, warmup model) took %.2f s" (older: "seconds"),
"torch.compile takes %.2f s in total", "Graph capturing finished in %.0f secs"; vllm-ascend
`worker/model_runner_v1.py@182b75ea` "Loading model weights took %.4f GB" (and its rfork loader
"Loading model weights took %.2f seconds")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolkit.transport.shell import q

_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
_SECONDS = _NUMBER + r"\s*(?:s|secs?|seconds)\b"
PATTERNS: dict[str, re.Pattern[str]] = {
    "weights_s": re.compile(r"Loading (?:model )?weights took " + _SECONDS),
    "weights_gib": re.compile(r"(?:Loading model weights took|Model loading took) " + _NUMBER + r"\s*(?:GB|GiB)"),
    "compile_s": re.compile(r"torch\.compile takes " + _SECONDS),
    "graph_s": re.compile(r"Graph capturing finished in " + _SECONDS),
    "engine_init_s": re.compile(r"init engine \(profile, create kv cache, warmup model\) took " + _SECONDS),
}
#: the lines a log is searched for (grep -E), so the whole log never crosses the wire
GREP = "weights took|Model loading took|torch.compile takes|Graph capturing finished|init engine \\(profile"


@dataclass(frozen=True)
class Phases:
    weights_s: float | None = None
    weights_gib: float | None = None
    compile_s: float | None = None
    graph_s: float | None = None
    engine_init_s: float | None = None

    @property
    def found(self) -> bool:
        return any(v is not None for v in vars(self).values())


def parse_phases(text: str) -> Phases:
    """The phases in `text` (a log, or its grep): for each, the largest value any line reports (every
    rank loads in parallel: the slowest is the wait)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name, rx in PATTERNS.items():
            m = rx.search(line)
            if m:
                found[name] = max(found.get(name, 0.0), float(m.group(1)))
    return Phases(**found)


def phases_command(log: str) -> str:
    return f"grep -aE {q(GREP)} {q(log)} 2>/dev/null | tail -n 200; true"


#: where a start is, from the newest of these lines in its log (vLLM's own messages, in start order;
#: `gpu_model_runner.py` "Starting to load model", `core.py` "Available KV cache memory", `api_server.py`
#: "Starting vLLM API server", plus the phase lines above)
MARKERS: tuple[tuple[str, str], ...] = (
    (r"Starting to load model|Loading model from|Loading safetensors checkpoint", "loading weights"),
    (r"Loading (?:model )?weights took|Model loading took", "weights loaded, preparing the model"),
    (r"torch\.compile takes|Compiling a graph|Dynamo bytecode transform|Start compiling", "compiling (torch.compile)"),
    (r"Capturing (?:CUDA |ACL |NPU )?graphs?|Graph capturing", "capturing graphs"),
    (r"Available KV cache memory|GPU KV cache size|KV cache", "profiling memory / allocating the KV cache"),
    (r"init engine \(profile, create kv cache, warmup model\) took", "engine ready, the API server starting"),
    (r"Starting vLLM (?:API )?server|Uvicorn running|Application startup complete", "the API server starting"),
)
MARKER_GREP = "|".join(p for p, _ in MARKERS)


def phase_at(text: str) -> str | None:
    """The phase the newest marker line of `text` says a start is in (None: no marker yet, i.e. still
    importing, starting processes, or connecting the ranks)."""
    for line in reversed(text.splitlines()):
        for pattern, phase in reversed(MARKERS):
            if re.search(pattern, line):
                return phase
    return None


def phase_command(log: str) -> str:
    """The newest marker line of `log` (the phase a start that timed out was in)."""
    return f"grep -aE {q(MARKER_GREP)} {q(log)} 2>/dev/null | tail -n 1; true"
