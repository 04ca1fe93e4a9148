"""A benchmark run on disk: `result.json` (the plan's identity, the settings, every point; what
`bench --baseline` reads back), `summary.md` (the table), and `latency.png` (latency against
throughput) when matplotlib is installed (the optional `plot` extra; without it, a note)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from toolkit.api.reports import BenchReport
from toolkit.errors import BadInput
from toolkit.serial import plain

COLUMNS = ("load", "req/s", "out tok/s", "total tok/s", "TTFT mean/p50/p99 ms", "TPOT mean/p50/p99 ms",
           "ITL mean/p50/p99 ms", "failed")  # fmt: skip


def rows(report: BenchReport) -> list[list[str]]:
    """One row per point: the table `bench` prints and `summary.md` holds."""

    def trio(point: object, metric: str) -> str:
        lat = getattr(point, "latency_ms", {})
        return " / ".join(
            f"{lat[f'{metric}_{s}']:.0f}" if f"{metric}_{s}" in lat else "-" for s in ("mean", "median", "p99")
        )

    out = []
    for p in report.points:
        if p.error:
            out.append([p.label, "-", "-", "-", "-", "-", "-", f"error: {p.error[:60]}"])
            continue
        out.append(
            [
                p.label,
                f"{p.request_throughput:.2f}",
                f"{p.output_throughput:.1f}",
                f"{p.total_token_throughput:.1f}",
                trio(p, "ttft"),
                trio(p, "tpot"),
                trio(p, "itl"),
                str(p.failed),
            ]
        )
    return out


def markdown(report: BenchReport) -> str:
    ident = report.identity
    lines = [
        f"# Serving benchmark: {ident['served_name']} on {ident['hosts']} x {ident['hardware']}",
        "",
        f"Launcher {ident['launcher']}, TP {ident['tp']} x PP {ident['pp']} x DP {ident['dp']}, runtime "
        f"{ident['runtime']['name']}; measured with vLLM's `vllm bench serve` by {ident['tool']}.",
        f"Settings: {json.dumps(report.settings)}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(r) + " |" for r in rows(report)),
    ]
    if report.search is not None:
        lines += ["", f"SLO {report.slo}: " + search_sentence(report)]
    for v in report.verdicts:
        lines.append(f"- {v.label}: {v.what} {v.measured:.1f} vs baseline {v.baseline:.1f} ({v.ratio:.2f}x) "
                     + ("ok" if v.passed else "BELOW"))  # fmt: skip
    if report.failure:
        lines += ["", f"Stopped: {report.failure}"]
    return "\n".join(lines) + "\n"


def search_sentence(report: BenchReport) -> str:
    s = report.search
    if s is None:
        return ""
    if s.best is None:
        return f"not even {s.points[0].label if s.points else 'the first rate'} met it ({len(s.points)} points)"
    above = f"; {s.above.label} missed it" if s.above is not None else "; no measured rate missed it"
    return f"highest rate that met it: {s.best.label}{above} ({len(s.points)} of at most {s.bound} points)"


def plot(report: BenchReport, path: Path) -> str | None:
    """Latency (p99 TTFT and TPOT) against output throughput; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install 'ascend-deploy[plot]')"
    good = [p for p in report.points if p.ok]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("ttft_p99", "p99 TTFT"), ("tpot_p99", "p99 TPOT")):
        pts = [(p.output_throughput, p.latency_ms[key]) for p in good if key in p.latency_ms]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=label)
            for p in good:
                if key in p.latency_ms:
                    ax.annotate(p.label, (p.output_throughput, p.latency_ms[key]), fontsize=7)
    ax.set_xlabel("output tokens/s")
    ax.set_ylabel("ms")
    ax.set_title(f"{report.identity['served_name']}: latency against throughput")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def save(report: BenchReport, out_dir: Path) -> tuple[str, str | None]:
    """Write the run under out_dir/CLUSTER-TIMESTAMP/; returns (folder, a note or None)."""
    folder = out_dir / f"{report.identity['cluster']}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"--out {out_dir}: {exc.strerror or exc}") from None
    document = {
        "identity": report.identity,
        "settings": report.settings,
        "points": plain(report.points),
        "search": plain(report.search),
        "slo_ms": report.slo,
        "failure": report.failure,
    }
    (folder / "result.json").write_text(json.dumps(document, indent=2) + "\n")
    (folder / "summary.md").write_text(markdown(report))
    note = plot(report, folder / "latency.png")
    return str(folder), note
