"""On every shipped scenario: exact and Monte Carlo agree; and the commands, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.coding import table_order
from common.perf import ExactUnavailableError, expected_time, plan_scheme, simulate_plan
from common.scenario import load_scenario
from hgc.cli import main

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
ITER = 40_000


def test_scenarios_are_shipped():
    assert len(SCENARIOS) >= 3


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_exact_and_monte_carlo_agree_on_shipped_scenario(path):
    scenario = load_scenario(path)
    sys_ = scenario.system_model()
    checked = 0
    for name in table_order([*scenario.schemes, "uncoded"]):
        plan = plan_scheme(sys_, name, scenario.code)
        mc = simulate_plan(sys_, plan, ITER, np.random.default_rng(scenario.seed))
        try:
            exact = expected_time(sys_, plan)
        except ExactUnavailableError as exc:
            # flat schemes queue on a shared uplink; traces are correlated: MC only, by design
            assert plan.is_flat or sys_.straggler.kind == "trace", str(exc)
            continue
        assert abs(exact - mc.mean_s) <= 4 * mc.stderr_s + 3e-3 * exact, (name, exact, mc.mean_s)
        checked += 1
    if sys_.straggler.kind != "trace":
        assert checked >= 3


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_json_schema_and_reproducibility(capsys):
    path = str(ROOT / "scenarios" / "heterogeneous.yaml")
    code, out, _ = run_cli(capsys, "simulate", path, "--iterations", "2000", "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"schemes", "optimizer"}
    keys = {"K", "D", "mean_s", "p50_s", "p95_s", "p99_s", "speedup_vs_uncoded"}
    keys |= {"master_ingress_bytes"}
    assert "uncoded" in doc["schemes"] and "hgc-jncss" in doc["schemes"]
    for row in doc["schemes"].values():
        assert set(row) == keys
        assert row["p50_s"] <= row["p95_s"] <= row["p99_s"]
    assert doc["schemes"]["uncoded"]["speedup_vs_uncoded"] == 1.0
    assert doc["optimizer"]["expected_time_s"] > 0
    _, again, _ = run_cli(capsys, "simulate", path, "--iterations", "2000", "--json")
    assert json.loads(again)["schemes"] == doc["schemes"]  # same seed, same numbers


def test_simulate_writes_csv_and_plots(capsys, tmp_path):
    path = str(ROOT / "scenarios" / "homogeneous.yaml")
    code, out, err = run_cli(
        capsys, "simulate", path, "--iterations", "500", "--sweep-iterations", "200",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    for name in (
        "schemes.csv", "optimizer.json", "iteration_time_cdf.png", "sweep_intensity.csv",
        "speedup_vs_intensity.png", "sweep_slow_edge.csv", "speedup_vs_slow_edge.png",
    ):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name
    assert "sweep" in err  # progress on stderr
    assert "uncoded" in out


def test_optimize_prints_choice_and_alternatives(capsys):
    path = str(ROOT / "scenarios" / "homogeneous.yaml")
    code, out, _ = run_cli(capsys, "optimize", path)
    assert code == 0
    assert "JNCSS choice" in out and "runner-up alternatives" in out
    code, out, _ = run_cli(capsys, "optimize", path, "--json")
    doc = json.loads(out)
    assert doc["exhaustive"]["greedy_gap"] <= 0.01
    assert doc["alternatives"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "no/such.yaml"], "no such file"),
        (["optimize", "no/such.yaml"], "no such file"),
        (["simulate", "HOMO", "--iterations", "1"], "--iterations: must be in [2, 1000000]"),
        (["simulate", "HOMO", "--slow-edge", "9"], "--slow-edge: must be in [0, 2]"),
    ],
)
def test_bad_requests_exit_2_with_a_named_field(capsys, argv, message):
    argv = [str(ROOT / "scenarios" / "homogeneous.yaml") if a == "HOMO" else a for a in argv]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err


def test_bad_scenario_is_a_usage_error(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "scenarios" / "homogeneous.yaml").read_text() + "\nbogus_key: 1\n")
    code, _, err = run_cli(capsys, "simulate", str(bad))
    assert code == 2
    assert "bogus_key" in err


def test_no_stragglers_scenario_shows_coding_losing(capsys):
    path = str(ROOT / "scenarios" / "no-stragglers.yaml")
    code, out, _ = run_cli(capsys, "simulate", path, "--iterations", "500", "--json")
    assert code == 0
    rows = json.loads(out)["schemes"]
    for name in ("worker-gc", "edge-gc", "hgc", "flat-frc", "flat-crc"):
        if name in rows:
            assert rows[name]["speedup_vs_uncoded"] < 1.0, name
