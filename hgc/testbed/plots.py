"""PNG plots of a run: iteration-time CDF per scheme, time per iteration, loss against
wall-clock time (what coding buys). matplotlib is imported lazily with the Agg backend so the
launcher works headless and ``hgc`` stays fast when no plot is drawn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hgc.testbed.records import wall_clock


def write_plots(
    folder: Path, records_by_scheme: Mapping[str, Sequence[dict[str, Any]]]
) -> list[Path]:
    """Draw the three plots into ``folder`` (created); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for scheme, records in records_by_scheme.items():
        times = np.sort([r["duration_s"] for r in records if r.get("ok")])
        if len(times):
            ax.step(times, np.arange(1, len(times) + 1) / len(times), where="post", label=scheme)
    ax.set(xlabel="iteration time (s)", ylabel="fraction of iterations", title="Iteration-time CDF")
    written.append(_save(fig, ax, folder / "iteration_time_cdf.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for scheme, records in records_by_scheme.items():
        ok = [r for r in records if r.get("ok")]
        ax.plot([r["iteration"] for r in ok], [r["duration_s"] for r in ok], ".-", label=scheme)
    ax.set(xlabel="iteration", ylabel="time (s)", title="Time per iteration")
    written.append(_save(fig, ax, folder / "time_per_iteration.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for scheme, records in records_by_scheme.items():
        walls = wall_clock(records)
        points = [
            (w, r["loss"])
            for w, r in zip(walls, records, strict=True)
            if r.get("ok") and r.get("loss") is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, ".-", label=scheme)
    ax.set(xlabel="wall-clock time (s)", ylabel="training loss", title="Loss vs wall-clock time")
    written.append(_save(fig, ax, folder / "loss_vs_wallclock.png"))
    return written


def _save(fig: Any, ax: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
