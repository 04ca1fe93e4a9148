"""Start-up phases parsed from vLLM logs: a real one (the CPU build behind Ray on the simulated
cluster, as `logs --tail` brought it back) and the lines vllm-ascend's engines print (built from
their format strings; two DP ranks: the slowest counts), and the grep that fetches only those lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

from toolkit.facts.phases import Phases, parse_phases, phase_at, phase_command, phases_command

GOLDEN = Path(__file__).parent / "golden"


def test_the_cpu_builds_log_gives_weights_and_engine_init() -> None:
    phases = parse_phases((GOLDEN / "vllm-log.cpu-ray").read_text())
    assert phases == Phases(weights_s=0.0, engine_init_s=0.6)


def test_vllm_ascend_lines_give_every_phase_the_slowest_rank_winning() -> None:
    phases = parse_phases((GOLDEN / "vllm-log.ascend-phases").read_text())
    assert phases == Phases(weights_s=214.02, weights_gib=43.1207, compile_s=52.31, graph_s=38.0, engine_init_s=127.1)
    assert not parse_phases("INFO nothing to see\n").found


def test_the_grep_keeps_only_the_phase_lines(tmp_path: Path) -> None:
    log = tmp_path / "vllm log.txt"
    log.write_text((GOLDEN / "vllm-log.cpu-ray").read_text())
    out = subprocess.run(["bash", "-c", phases_command(str(log))], capture_output=True, text=True).stdout
    assert parse_phases(out) == parse_phases(log.read_text()) and len(out.splitlines()) == 2


def test_the_phase_a_start_is_in_is_the_newest_marker_line(tmp_path: Path) -> None:
    """What a readiness timeout names: the log cut where the start was when time ran out."""
    lines = (GOLDEN / "vllm-log.cpu-ray").read_text().splitlines()
    assert phase_at("\n".join(lines[:41])) is None  # imports, Ray and the workers: no marker yet
    assert phase_at("\n".join(lines[:42])) == "loading weights"
    assert phase_at("\n".join(lines[:52])) == "loading weights"
    assert phase_at("\n".join(lines[:67])) == "weights loaded, preparing the model"
    assert phase_at("\n".join(lines[:70])) == "profiling memory / allocating the KV cache"
    assert phase_at("\n".join(lines[:71])) == "engine ready, the API server starting"
    assert phase_at("\n".join(lines)) == "the API server starting"
    ascend = (GOLDEN / "vllm-log.ascend-phases").read_text()
    assert phase_at(ascend) is not None
    log = tmp_path / "vllm log.txt"
    log.write_text("\n".join(lines[:67]) + "\n")
    out = subprocess.run(["bash", "-c", phase_command(str(log))], capture_output=True, text=True).stdout
    assert len(out.splitlines()) == 1 and phase_at(out) == "weights loaded, preparing the model"
