"""``hgc simulate SCENARIO``: every scheme of the scenario side by side — mean, p50, p95, p99
iteration time, speed-up vs uncoded, master ingress — by vectorised Monte Carlo (and the exact
mean where it applies), plus sweeps over straggler intensity and a slow edge. Writes CSV
files and PNG plots to --out. Reproducible from the scenario's seed (docs/simulator.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common.cli import UsageError
from common.perf import report as io
from common.perf.plan import InfeasiblePlanError
from common.perf.simulator import (
    Tolerances,
    compare_schemes,
    optimizer_report,
    scale_stragglers,
    slow_edge,
    sweep,
)
from common.perf.system import SystemModel

HELP = "simulate every scheme of a scenario and compare iteration times"
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

    if not Path(path).is_file():
        raise UsageError(f"SCENARIO: no such file: {path}")
    try:
        scenario = load_scenario(path)
        system = scenario.system_model()
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    code = scenario.code
    tol = Tolerances(s_e=code.s_e, s_w=code.s_w, s=code.s)
    return scenario, system, tol


def _check(args: argparse.Namespace, n_edges: int) -> None:
    if args.iterations < 2:
        raise UsageError(f"--iterations: must be >= 2, got {args.iterations}")
    if args.sweep_iterations < 2:
        raise UsageError(f"--sweep-iterations: must be >= 2, got {args.sweep_iterations}")
    if not 0 <= args.slow_edge < n_edges:
        raise UsageError(f"--slow-edge: must be in [0, {n_edges - 1}], got {args.slow_edge}")


def run(args: argparse.Namespace) -> int:
    scenario, system, tol = load_scenario_model(args.scenario)
    _check(args, system.n_edges)
    schemes = tuple(scenario.schemes) + ("hgc-best-fixed",)
    if "hgc" not in scenario.schemes:
        schemes = tuple(scenario.schemes)
    seed = int(scenario.seed)
    print(
        f"hgc simulate {scenario.name}: {len(schemes)} schemes x {args.iterations} iterations",
        file=sys.stderr,
    )
    try:
        results = compare_schemes(system, schemes, tol, args.iterations, seed, io.progress)
        optimizer = optimizer_report(system)
    except InfeasiblePlanError as exc:
        raise UsageError(str(exc)) from None
    if args.out:
        _write(Path(args.out), args, scenario.name, system, schemes, tol, seed, results, optimizer)
    if args.json:
        out = {
            "schemes": {
                r.name: {
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
        print(io.table(results))
        print(
            f"JNCSS: {optimizer['plan']}, E[T] {optimizer['expected_time_s']:.4f} s "
            f"({optimizer['speedup_vs_uncoded']:.2f}x vs uncoded)"
        )
    return 0


def _write(out, args, name, system, schemes, tol, seed, results, optimizer) -> None:  # type: ignore[no-untyped-def]
    out.mkdir(parents=True, exist_ok=True)
    io.write_csv(out / "schemes.csv", [r.row() for r in results])
    (out / "optimizer.json").write_text(json.dumps(optimizer, indent=2))
    io.plot_cdf(out / "iteration_time_cdf.png", results, f"{name}: iteration-time CDF")
    if not args.no_sweeps:
        io.progress("sweep: straggler intensity")
        rows = sweep(
            [(f, scale_stragglers(system, f)) for f in INTENSITIES],
            schemes, tol, args.sweep_iterations, seed, io.progress, label="intensity",
        )  # fmt: skip
        io.write_csv(out / "sweep_intensity.csv", rows)
        io.plot_sweep(
            out / "speedup_vs_intensity.png", rows, "intensity",
            "straggler intensity (x mean straggling time)", f"{name}: speed-up vs stragglers",
        )  # fmt: skip
        io.progress(f"sweep: slow edge-{args.slow_edge} uplink")
        rows = sweep(
            [(f, slow_edge(system, args.slow_edge, f)) for f in SLOWDOWNS],
            schemes, tol, args.sweep_iterations, seed, io.progress, label="uplink_slowdown",
        )  # fmt: skip
        io.write_csv(out / "sweep_slow_edge.csv", rows)
        io.plot_sweep(
            out / "speedup_vs_slow_edge.png", rows, "uplink_slowdown",
            f"edge-{args.slow_edge} uplink slowdown (x)", f"{name}: effect of a slow edge",
        )  # fmt: skip
    print(f"hgc simulate: wrote {out}", file=sys.stderr)
