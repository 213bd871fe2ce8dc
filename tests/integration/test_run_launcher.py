"""The launcher in-process over a real LocalCluster: schemes back to back on one seed, plans
that select a subset of the topology (HGC-JNCSS) and flat plans, topology names in the CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from common.scenario import load_scenario
from hgc.testbed.launcher import RunRequest, run_testbed

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(240)


def test_schemes_back_to_back_train_the_same_model(tmp_path: Path) -> None:
    path = ROOT / "scenarios" / "heterogeneous.yaml"
    scenario = load_scenario(path)
    stream = io.StringIO()
    schemes = ("uncoded", "flat-frc", "hgc-jncss")
    outcome = run_testbed(
        RunRequest(path, scenario, schemes, 3, out=tmp_path / "run", stream=stream)
    )
    assert outcome.ok, outcome.failures
    assert list(outcome.results) == list(schemes)
    # exact coded schemes are plain gradient descent: the same final loss for every scheme
    losses = {s: r.stats.final_loss for s, r in outcome.results.items()}
    assert losses["uncoded"] is not None
    for scheme in schemes:
        assert losses[scheme] == pytest.approx(losses["uncoded"], rel=1e-9), losses
    jncss = outcome.results["hgc-jncss"]
    selected = {f"edge-{e}" for e in jncss.plan["edges"]}
    rows = list(csv.DictReader((tmp_path / "run" / "hgc-jncss.csv").open()))
    assert rows and all(r["scheme"] == "hgc-jncss" for r in rows)
    records = (tmp_path / "run" / "hgc-jncss" / "record.jsonl").read_text()
    assert records  # the master's raw records stay beside the translated CSV
    assert jncss.speedup is not None and jncss.predicted_speedup is not None
    assert selected <= {f"edge-{e}" for e in range(scenario.n_edges)}
    text = stream.getvalue()
    assert "[hgc-jncss] iter 2/3" in text and "meas/sim" in text


def test_the_twin_of_a_plan_runs_that_plan_not_its_own(tmp_path: Path) -> None:
    """``measure_overhead(plan=...)``: the deterministic twin runs the given plan of the real
    scenario (same nodes, loads, code), where planning on the twin's own profiles would
    choose another; the overhead it measures is that plan's."""
    import json

    from hgc.testbed.config import scenario_plan
    from hgc.testbed.overhead import deterministic_twin, measure_overhead

    path = ROOT / "scenarios" / "heterogeneous.yaml"
    scenario = load_scenario(path)
    plan = scenario_plan(scenario, "hgc-hetero")
    own = scenario_plan(deterministic_twin(scenario), "hgc-hetero")
    assert (own.edges, own.workers, own.code_spec) != (plan.edges, plan.workers, plan.code_spec)
    o = measure_overhead(path, scenario, 3, tmp_path / "twin", stream=io.StringIO(), plan=plan)
    assert o.iterations == 3 and o.measured_s > 0 and o.predicted_s > 0
    header = json.loads((tmp_path / "twin" / "hgc-hetero" / "record.jsonl").open().readline())
    selected = {f"edge-{e}" for e in plan.edges}
    selected |= {
        f"worker-{e}-{j}" for e, ws in zip(plan.edges, plan.workers, strict=True) for j in ws
    }
    assert set(header["selected"]) == selected
