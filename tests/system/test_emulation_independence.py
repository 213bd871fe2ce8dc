"""In a real run, workers straggle independently, as the model assumes: the arrivals of four
identical workers at their edge are uncorrelated over iterations. Regression test: every
worker used to get the same exponential draw each iteration (correlation ~1). Real processes
via ``hgc run``'s launcher; a correlation threshold with a wide margin, no timing threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.scenario import load_scenario
from hgc.testbed.launcher import RunRequest, run_testbed
from hgc.testbed.records import read_records

pytestmark = pytest.mark.timeout(240)

ITERATIONS = 20
SCENARIO = f"""
name: independence
seed: 3
topology:
  workers_per_edge: [4]
  devices:
    straggly: {{shift_s: 0.2, rate: 5.0}}
  workers: {{device: straggly, link: ideal}}
  edges: {{device: laptop, uplink: ideal}}
model: {{kind: logreg}}
data: {{kind: digits}}
training: {{iterations: {ITERATIONS}, eval_every: {ITERATIONS}, deadline_s: 30}}
schemes: [uncoded]
emulation: {{compute: delay, cpu_quota: false, network: in-process}}
"""


def test_identical_workers_arrive_independently(tmp_path: Path) -> None:
    path = tmp_path / "independence.yaml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    out = tmp_path / "run"
    outcome = run_testbed(RunRequest(path, scenario, ("uncoded",), ITERATIONS, out=out))
    assert outcome.ok, outcome.failures
    records = [r for r in read_records(out / "uncoded" / "record.jsonl") if r["ok"]]
    assert len(records) == ITERATIONS
    names = [f"worker-0-{j}" for j in range(4)]
    arrivals = np.array([[r["worker_arrivals_s"][n] for n in names] for r in records]).T
    corr = np.corrcoef(arrivals)
    mean_pairwise = corr[np.triu_indices(4, k=1)].mean()
    # independent: ~0 +- 0.1; one shared draw per iteration (the old bug): ~0.95
    assert mean_pairwise < 0.5, (mean_pairwise, corr)
    # the straggling is really there (a run without spread would make the test vacuous):
    # shift 0.05 s + Exp(mean 0.05 s) per iteration gives a coefficient of variation ~0.5
    cv = arrivals.std(axis=1) / arrivals.mean(axis=1)
    assert cv.min() > 0.15, cv
