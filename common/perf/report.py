"""Output of the simulator for ``hgc simulate`` / ``hgc optimize``: a text table, CSV files and
PNG plots. matplotlib is imported lazily (Agg backend), so the maths never needs it."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.perf.simulator import SchemeResult


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def table(results: Sequence[SchemeResult]) -> str:
    head = (
        f"{'scheme':<15} {'mean s':>9} {'p50 s':>9} {'p95 s':>9} {'p99 s':>9} "
        f"{'exact s':>9} {'speed-up':>8} {'master in':>10}  plan"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        exact = f"{r.exact_mean_s:9.4f}" if r.exact_mean_s is not None else f"{'-':>9}"
        lines.append(
            f"{r.name:<15} {r.mean_s:9.4f} {r.p50_s:9.4f} {r.p95_s:9.4f} {r.p99_s:9.4f} "
            f"{exact} {r.speedup_vs_uncoded:7.2f}x {r.master_ingress_bytes:>9}B  "
            f"{r.plan.describe()}"
        )
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cdf(path: Path, results: Sequence[SchemeResult], title: str) -> None:
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        t = np.sort(r.times)
        ax.plot(t, np.arange(1, t.size + 1) / t.size, label=r.name)
    ax.set_xlabel("iteration time (s)")
    ax.set_ylabel("P[T <= t]")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(path: Path, rows: Sequence[dict[str, Any]], x: str, xlabel: str, title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for scheme in dict.fromkeys(r["scheme"] for r in rows):
        pts = [(r[x], r["speedup_vs_uncoded"]) for r in rows if r["scheme"] == scheme]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=scheme)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("speed-up vs uncoded (mean)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
