"""Calibration (``hgc calibrate``, issue 14): probe the shipped heterogeneous scenario's
local cluster, fit its profiles, then run the same cluster again -- a *following* run with
another seed, so its emulated draws are not the probe's -- and compare the fitted scenario's
simulated mean iteration time with the measured one (target: within 10 %).

``uncoded`` is a probed load (1/M); ``hgc`` (the scenario's s_e = s_w = 1: load 4/M) is not
(the probe's second scheme runs at 2/M), so it checks the separation of each worker's link
round trip from its compute across loads. The fitted scenario carries the per-hop overhead
as ``emulation.message_overhead_s`` (links net of it); the same fit with the overhead left
inside every link is shown beside it as a control (the split must not change predictions)."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import yaml

from bench import Result
from common.scenario import load_scenario
from hgc.testbed import calibrate as cal
from hgc.testbed.launcher import RunRequest, run_testbed

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "heterogeneous.yaml"
TOLERANCE = 0.10
SCHEMES = ("uncoded", "hgc")


def run(quick: bool) -> list[Result]:
    scenario = load_scenario(SCENARIO)
    probe_iterations = 15 if quick else 40
    iterations = 15 if quick else 40
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as tmp:
        obs = cal.run_probe(
            SCENARIO, scenario, probe_iterations, Path(tmp) / "probe", stream=sys.stderr
        )
        fit = cal.fit(obs, scenario.gradient_bytes)
        fitted = Path(tmp) / "fitted.yaml"
        cal.write_fitted(fitted, scenario, fit, "fitted.json")
        gross = Path(tmp) / "gross.yaml"  # the control: overhead left inside every link
        gross.write_text(yaml.safe_dump(cal.fitted_scenario(scenario, fit, split_overhead=False)))
        following = dataclasses.replace(scenario, seed=scenario.seed + 1, faults=())
        outcome = run_testbed(
            RunRequest(
                SCENARIO, following, SCHEMES, iterations, out=Path(tmp) / "run", stream=sys.stderr
            )
        )
        predicted = {s: cal.predicted_mean_s(fitted, s) for s in SCHEMES}
        predicted_gross = {s: cal.predicted_mean_s(gross, s) for s in SCHEMES}
    section = f"calibrate ({scenario.name}, probe {probe_iterations} it, run {iterations} it)"
    results = [
        Result(section, "probe measured mean", fit.measured_mean_s, "s"),
        Result(section, "fitted message_overhead_s per hop", fit.message_overhead_s * 1e3, "ms"),
    ]
    for scheme in SCHEMES:
        r = outcome.results.get(scheme)
        if r is None:
            continue
        measured = r.stats.mean_s
        ratio = predicted[scheme] / measured
        results.append(Result(section, f"{scheme} measured mean (following run)", measured, "s"))
        results.append(
            Result(
                section,
                f"{scheme} fitted-sim / measured",
                ratio,
                "ratio",
                f"{1 - TOLERANCE:.2f}-{1 + TOLERANCE:.2f}",
                abs(ratio - 1) <= TOLERANCE,
            )
        )
        name = f"{scheme} fitted-sim, overhead inside the links (control) / measured"
        results.append(Result(section, name, predicted_gross[scheme] / measured, "ratio"))
        if r.predicted_mean_s:  # the hand-written profiles, for comparison
            results.append(
                Result(
                    section,
                    f"{scheme} scenario-sim / measured",
                    r.predicted_mean_s / measured,
                    "ratio",
                )
            )
    return results
