"""Fidelity of the local testbed: ``hgc run`` on the shipped heterogeneous scenario, every
scheme back to back on the same emulated hardware, measured mean iteration time divided by
the simulator's prediction for the same scenario (target 0.9-1.15), and HGC-JNCSS's measured
speed-up over uncoded beside the simulator's.

First, in the same run, the scenario's deterministic twin (``hgc.testbed.overhead``)
measures the real system's cost per message hop; each scheme is then reported against the
pure model (``measured/sim``), against the model plus that measured overhead
(``measured/(sim+overhead)``), and -- hierarchical schemes -- against the model evaluated on
the run's own seeded compute draws plus the overhead (``measured/(paired+overhead)``,
``hgc.testbed.paired``), side by side. docs/running.md explains the figures."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench import Result
from common.scenario import load_scenario
from hgc.testbed.config import scenario_plan
from hgc.testbed.launcher import RunRequest, run_testbed
from hgc.testbed.overhead import HOPS_PER_ITERATION, measure_overhead
from hgc.testbed.paired import paired_prediction
from hgc.testbed.predict import predict

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "heterogeneous.yaml"
LOW, HIGH = 0.9, 1.15


def ratio_result(section: str, name: str, measured: float, predicted: float | None) -> Result:
    ratio = measured / predicted if predicted else float("nan")
    return Result(section, name, ratio, "ratio", f"{LOW}-{HIGH}", LOW <= ratio <= HIGH)


def run(quick: bool) -> list[Result]:
    scenario = load_scenario(SCENARIO)
    iterations = 10 if quick else scenario.training.iterations
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as tmp:
        overhead = measure_overhead(
            SCENARIO, scenario, iterations, Path(tmp) / "twin", stream=sys.stderr
        )
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
    hop = overhead.per_hop_s
    results = [
        Result(section, "overhead per message hop (deterministic twin)", hop * 1e3, "ms"),
        Result(
            section,
            f"overhead per iteration ({HOPS_PER_ITERATION} hops) / twin's model",
            overhead.per_iteration_s / overhead.predicted_s,
            "ratio",
        ),
    ]
    for scheme, r in outcome.results.items():
        if r.measured_over_predicted is None:
            continue
        measured = r.stats.mean_s
        results.append(
            ratio_result(section, f"{scheme} measured/sim", measured, r.predicted_mean_s)
        )
        plan = scenario_plan(scenario, scheme)  # deterministic: the plan the run used
        with_overhead, _ = predict(scenario, plan, message_overhead_s=hop)
        results.append(
            ratio_result(section, f"{scheme} measured/(sim+overhead)", measured, with_overhead)
        )
        paired = paired_prediction(scenario, plan, iterations, message_overhead_s=hop)
        if paired is not None:
            name = f"{scheme} measured/(paired+overhead)"
            results.append(ratio_result(section, name, measured, paired))
    jncss = outcome.results.get("hgc-jncss")
    if jncss is not None and jncss.speedup is not None:
        results.append(Result(section, "hgc-jncss speed-up measured", jncss.speedup, "x"))
    if jncss is not None and jncss.predicted_speedup is not None:
        results.append(Result(section, "hgc-jncss speed-up sim", jncss.predicted_speedup, "x"))
    for scheme, error in outcome.failures.items():
        print(f"# fidelity: {scheme} failed: {error}", file=sys.stderr)
    return results
