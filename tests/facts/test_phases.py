"""Start-up phases parsed from vLLM logs: a real one (the CPU build behind Ray on the simulated
cluster, as `logs --tail` brought it back) and the lines vllm-ascend's engines print (built from
their format strings; two DP ranks: the slowest counts), and the grep that fetches only those lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

from toolkit.facts.phases import Phases, parse_phases, phases_command

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
