"""``hgc simulate SCENARIO``: every scheme of the scenario side by side — mean, p50, p95, p99
iteration time, speed-up vs uncoded, master ingress — by vectorised Monte Carlo (and the exact
mean where it applies), plus sweeps over straggler intensity and a slow edge. Writes CSV
files and PNG plots to --out. Reproducible from the scenario's seed (docs/simulator.md)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.coding import Tolerances
from common.perf.plan import InfeasiblePlanError
from common.perf.simulator import (
    SchemeResult,
    compare_schemes,
    optimizer_report,
    scale_stragglers,
    slow_edge,
    sweep,
)
from common.perf.system import SystemModel
from hgc.cli import UsageError
from hgc.format import cell

HELP = "simulate every scheme of a scenario and compare iteration times"
# Monte Carlo draws are held in memory (schemes x iterations x workers floats): 10^9
# iterations asked numpy for 22.4 GiB in one array; 10^6 needs ~1/1000 of that.
MAX_ITERATIONS = 1_000_000
INTENSITIES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
SLOWDOWNS = (1.0, 4.0, 16.0, 64.0, 256.0, 1024.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    parser.add_argument(
        "--iterations", type=int, default=20_000, help="simulated iterations per scheme"
    )
    parser.add_argument("--out", metavar="DIR", help="write CSV files and PNG plots here")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--sweep-iterations",
        type=int,
        default=5_000,
        help="iterations per point of the sweeps (only with --out)",
    )
    parser.add_argument(
        "--slow-edge", type=int, default=0, help="edge whose uplink the slow-edge sweep slows"
    )
    parser.add_argument("--no-sweeps", action="store_true", help="skip the sweeps and their plots")


def load_scenario_model(path: str) -> tuple[Any, SystemModel, Tolerances]:
    """Scenario, its SystemModel and the fixed schemes' tolerances; UsageError on bad input."""
    from common.scenario import ScenarioError, load_scenario

    if Path(path).is_dir():
        raise UsageError(f"SCENARIO: is a directory, not a scenario file: {path}")
    if not Path(path).is_file():
        raise UsageError(f"SCENARIO: no such file: {path}")
    try:
        scenario = load_scenario(path)
        system = scenario.system_model()
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    return scenario, system, scenario.code


def _check(args: argparse.Namespace, n_edges: int) -> None:
    checks = (("--iterations", args.iterations), ("--sweep-iterations", args.sweep_iterations))
    for flag, value in checks:
        if not 2 <= value <= MAX_ITERATIONS:
            raise UsageError(f"{flag}: must be in [2, {MAX_ITERATIONS}], got {value}")
    if not 0 <= args.slow_edge < n_edges:
        raise UsageError(f"--slow-edge: must be in [0, {n_edges - 1}], got {args.slow_edge}")


def prepare_out(out: Path) -> None:
    """Create ``out`` (a directory) and check it is writable; UsageError naming --out."""
    from hgc.testbed.runfolder import RunFolderError, prepare_folder

    try:
        prepare_folder(out, "--out")
    except RunFolderError as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    scenario, system, tol = load_scenario_model(args.scenario)
    _check(args, system.n_edges)
    if args.out:
        prepare_out(Path(args.out))  # before any work, so a bad --out loses nothing
    schemes = tuple(scenario.schemes) + ("hgc-best-fixed",)
    if "hgc" not in scenario.schemes:
        schemes = tuple(scenario.schemes)
    seed = int(scenario.seed)
    print(
        f"hgc simulate {scenario.name}: {len(schemes)} schemes x {args.iterations} iterations",
        file=sys.stderr,
    )
    try:
        results = compare_schemes(system, schemes, tol, args.iterations, seed, progress)
        optimizer = optimizer_report(system)
    except InfeasiblePlanError as exc:
        raise UsageError(str(exc)) from None
    if args.out:
        _write(Path(args.out), args, scenario.name, system, schemes, tol, seed, results, optimizer)
    if args.json:
        out = {
            "schemes": {
                r.name: {
                    "K": r.plan.K,
                    "D": r.plan.D,
                    "mean_s": r.mean_s,
                    "p50_s": r.p50_s,
                    "p95_s": r.p95_s,
                    "p99_s": r.p99_s,
                    "speedup_vs_uncoded": r.speedup_vs_uncoded,
                    "master_ingress_bytes": r.master_ingress_bytes,
                }
                for r in results
            },
            "optimizer": optimizer,
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"scenario {scenario.name} (seed {seed}, {args.iterations} iterations per scheme)")
        print(table(results))
        print(
            f"JNCSS: {optimizer['plan']}, E[T] {optimizer['expected_time_s']:.4f} s "
            f"({speedup_text(optimizer['speedup_vs_uncoded'])} vs uncoded)"
        )
    return 0


def _write(out, args, name, system, schemes, tol, seed, results, optimizer) -> None:  # type: ignore[no-untyped-def]
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "schemes.csv", [r.row() for r in results])
    (out / "optimizer.json").write_text(json.dumps(optimizer, indent=2))
    plot_cdf(out / "iteration_time_cdf.png", results, f"{name}: iteration-time CDF")
    if not args.no_sweeps:
        progress("sweep: straggler intensity")
        rows = sweep(
            [(f, scale_stragglers(system, f)) for f in INTENSITIES],
            schemes, tol, args.sweep_iterations, seed, progress, label="intensity",
        )  # fmt: skip
        write_csv(out / "sweep_intensity.csv", rows)
        plot_sweep(
            out / "speedup_vs_intensity.png", rows, "intensity",
            "straggler intensity (x mean straggling time)", f"{name}: speed-up vs stragglers",
        )  # fmt: skip
        progress(f"sweep: slow edge-{args.slow_edge} uplink")
        rows = sweep(
            [(f, slow_edge(system, args.slow_edge, f)) for f in SLOWDOWNS],
            schemes, tol, args.sweep_iterations, seed, progress, label="uplink_slowdown",
        )  # fmt: skip
        write_csv(out / "sweep_slow_edge.csv", rows)
        plot_sweep(
            out / "speedup_vs_slow_edge.png", rows, "uplink_slowdown",
            f"edge-{args.slow_edge} uplink slowdown (x)", f"{name}: effect of a slow edge",
        )  # fmt: skip
    print(f"hgc simulate: wrote {out}", file=sys.stderr)


# --- output: progress, table, CSV, plots (matplotlib imported lazily, Agg backend) ---


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def speedup_text(value: float | None) -> str:
    """``2.31x``, or ``-`` where there is no meaningful ratio (a ~0 time)."""
    text = cell(value, ".2f")
    return text if text == "-" else f"{text}x"


def table(results: Sequence[SchemeResult]) -> str:
    head = (
        f"{'scheme':<15} {'mean s':>9} {'p50 s':>9} {'p95 s':>9} {'p99 s':>9} "
        f"{'exact s':>9} {'speed-up':>8} {'master in':>10}  plan"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        exact = f"{r.exact_mean_s:9.4f}" if r.exact_mean_s is not None else f"{'-':>9}"
        speedup = f"{speedup_text(r.speedup_vs_uncoded):>8}"
        lines.append(
            f"{r.name:<15} {r.mean_s:9.4f} {r.p50_s:9.4f} {r.p95_s:9.4f} {r.p99_s:9.4f} "
            f"{exact} {speedup} {r.master_ingress_bytes:>9}B  "
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
