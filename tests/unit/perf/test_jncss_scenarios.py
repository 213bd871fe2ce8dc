"""No regression: on every shipped scenario the optimiser's choice is at least as fast (exact
expected time) as the choice of the optimiser of commit c69e7d4, whose values are stored in
fixtures/jncss_old_scenario_values.json (measured with that commit's code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.perf import greedy_jncss
from common.perf.fit import optimisation_model
from common.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
OLD = json.loads(
    (Path(__file__).parent / "fixtures" / "jncss_old_scenario_values.json").read_text()
)
TOL = 1e-3  # the fine-grid re-evaluation of the same plan agrees to this


def test_every_shipped_scenario_has_a_stored_old_value():
    assert sorted(OLD["scenarios"]) == sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(OLD["scenarios"]))
@pytest.mark.parametrize("hetero", [False, True])
def test_new_choice_is_no_slower_than_the_old_one(name, hetero):
    sys_ = optimisation_model(load_scenario(ROOT / "scenarios" / name).system_model())
    old = OLD["scenarios"][name]["hgc-hetero" if hetero else "hgc-jncss"]
    assert greedy_jncss(sys_, hetero=hetero).best.mean_s <= old * (1 + TOL)
