"""Fidelity of the local testbed: ``hgc run`` on the shipped heterogeneous scenario, every
scheme back to back on the same emulated hardware, measured mean iteration time divided by
the simulator's prediction for the same scenario (target 0.9-1.15), and HGC-JNCSS's measured
speed-up over uncoded beside the simulator's."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench import Result
from common.scenario import load_scenario
from common.testbed.launcher import RunRequest, run_testbed

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "heterogeneous.yaml"
LOW, HIGH = 0.9, 1.15


def run(quick: bool) -> list[Result]:
    scenario = load_scenario(SCENARIO)
    iterations = 10 if quick else scenario.training.iterations
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as tmp:
        outcome = run_testbed(
            RunRequest(
                SCENARIO,
                scenario,
                scenario.schemes,
                iterations,
                out=Path(tmp) / "run",
                stream=sys.stderr,
            )
        )
    section = f"fidelity ({scenario.name}, {iterations} it)"
    results: list[Result] = []
    for scheme, r in outcome.results.items():
        ratio = r.measured_over_predicted
        if ratio is None:
            continue
        results.append(
            Result(
                section,
                f"{scheme} measured/sim",
                ratio,
                "ratio",
                f"{LOW}-{HIGH}",
                LOW <= ratio <= HIGH,
            )
        )
    jncss = outcome.results.get("hgc-jncss")
    if jncss is not None and jncss.speedup is not None:
        results.append(Result(section, "hgc-jncss speed-up measured", jncss.speedup, "x"))
    if jncss is not None and jncss.predicted_speedup is not None:
        results.append(Result(section, "hgc-jncss speed-up sim", jncss.predicted_speedup, "x"))
    for scheme, error in outcome.failures.items():
        print(f"# fidelity: {scheme} failed: {error}", file=sys.stderr)
    return results
