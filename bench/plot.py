"""Plot docs/benchmarks.json (written by checknet_bench.py) as docs/benchmarks.png: wall time
versus hosts for each tool. Runs in the bench venv (matplotlib)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "benchmarks.json"
    data = json.loads(src.read_text())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for ax, mode in zip(axes, ("rail", "ring")):
        rows = sorted((r for r in data["results"] if r["mode"] == mode), key=lambda r: r["hosts"])
        hosts = [r["hosts"] for r in rows]
        for key, label, style in (
            ("ours", "ascend-deploy check-net", "o-"),
            ("openssh", "OpenSSH script (lower bound)", "s--"),
            ("ansibleN", "Ansible forks=N + pipelining", "^-"),
            ("ansible5", "Ansible defaults (forks 5)", "v-"),
        ):
            points = [(h, r[key]) for h, r in zip(hosts, rows) if r.get(key)]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
        ax.set_title(f"check-net, {mode} pings")
        ax.set_xlabel("simulated hosts (8 NPUs each)")
        ax.set_ylabel("wall time (s)")
        ax.set_xticks(hosts)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{data['machine']}; {data['ping_ms']} ms per ping packet; median of {data['runs']} runs", fontsize=9)
    fig.tight_layout()
    out = src.with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
