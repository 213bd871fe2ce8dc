"""hgc-adaptive on real processes: training across plan switches is exactly gradient descent.

Every node of a 3 x 2 scenario runs (all laptop-class, the delay model); the master's prior
is deliberately wrong -- it believes edge-0's workers are 100x faster than they are -- so
its first plan leans on edge-0, and the first refit (window 3, threshold 0) sees the truth
and switches. Worker-2-1 is killed after the first iterations, before any re-plan could
have come back, so the later switches happen while it is down (a plan that still counts on
it fails its attempts, which are censored observations; the master re-plans around it).

Checks: at least one switch (the record's ``plan_epoch`` grows, the switch is logged with
its predicted gain), every iteration's parameters equal uncoded gradient descent to rel
1e-9, the killed worker is left out of the plan in force at the end, and the master's
/metrics shows ``hgc_master_plan_switches_total`` and the epoch gauge. A negative control:
the same trace compared with a different learning rate's reference is far off.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.scenario import parse_scenario
from hgc.cluster import LocalCluster, reference_trace
from hgc.testbed.config import master_config, scenario_plan
from tests.conftest import poll_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

ITERATIONS = 24
SCENARIO: dict[str, Any] = {
    "name": "adaptive-exact",
    "seed": 5,
    "topology": {
        "workers_per_edge": [2, 2, 2],
        "workers": {"device": "laptop", "link": "lan"},
        "edges": {"device": "laptop", "uplink": "lan"},
    },
    "model": {"kind": "logreg"},
    "data": {"kind": "digits"},
    "training": {
        "iterations": ITERATIONS,
        "learning_rate": 0.5,
        "eval_every": 6,
        "deadline_s": 2.0,
        "on_failure": "retry",
        "max_retries": 40,
    },
    "schemes": ["hgc-adaptive"],
    "adaptive": {"window": 3, "threshold": 0.0},
}


def config_with_wrong_prior() -> dict[str, Any]:
    scenario = parse_scenario(SCENARIO)
    plan = scenario_plan(scenario, "hgc-adaptive")
    config = master_config(scenario, plan, ITERATIONS, "full")
    for w in config["adaptive"]["system"]["workers"][0]:  # "edge-0's workers are 100x faster"
        w["shift_s"] /= 100.0
        w["rate"] *= 100.0
    # the initial plan from that prior, as the launcher would ship it
    from common.perf import plan_scheme
    from services.master.adaptive import plan_json, system_from_json

    wrong = plan_scheme(system_from_json(config["adaptive"]["system"]), "hgc-adaptive")
    config["adaptive"]["plan"] = plan_json(wrong)
    config["code_spec"] = dict(wrong.code.spec())
    config["training"]["eval_every"] = 6
    for name, entry in config["emulation_spec"].items():  # long enough for re-plans to land
        if name.startswith("worker-"):
            entry["fixed_delay_s"] = 0.15
    return config


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not in /metrics")


def test_training_across_plan_switches_with_a_worker_down_is_gradient_descent(
    tmp_path: Path,
) -> None:
    config = config_with_wrong_prior()
    first_edges = config["adaptive"]["plan"]["edges"]
    assert 0 in first_edges  # the wrong prior makes edge-0 part of the first plan
    with LocalCluster(config, workdir=tmp_path, params_trace=True, curve=False) as cluster:
        assert len(cluster.nodes) == 1 + 3 + 6  # every node runs, whatever the plan selects
        poll_for(lambda: len(cluster.records()) >= 2, 90, what="2 iterations")
        cluster.kill("worker-2-1")
        poll_for(
            lambda: any(r.get("plan_epoch", 0) >= 1 for r in cluster.records()),
            120,
            what="a plan switch",
        )
        switches = metric(cluster.metrics_ports["master"], "hgc_master_plan_switches_total")
        epoch = metric(cluster.metrics_ports["master"], "hgc_master_plan_epoch")
        assert switches >= 1 and epoch >= 1
        assert cluster.wait(timeout=180) == 0
        records = cluster.records()
        log = cluster.log("master", 400)
        trace = cluster.params_trace()
    ok = [r for r in records if r["ok"]]
    assert [r["iteration"] for r in ok] == list(range(ITERATIONS))
    epochs = [r["plan_epoch"] for r in records]
    assert epochs == sorted(epochs) and epochs[-1] >= 1, epochs
    switched = [(r["iteration"], r["plan_switch"]) for r in records if r.get("plan_switch")]
    assert len(switched) == epochs[-1]
    assert "plan switch to epoch 1" in log and "predicted gain" in log
    # every switch was decided after the kill: the worker was down when the new plan went out
    assert all(t >= 2 for t, _ in switched), switched
    # the plan in force at the end does not wait for the dead worker
    last = switched[-1][1]
    assert "worker-2-1" not in last["workers"] or last["s_w"] >= 1 or last["s_e"] >= 1, last
    reference = reference_trace(config)
    assert list(trace["iterations"]) == list(range(ITERATIONS))
    errors = np.linalg.norm(trace["params"] - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert errors.max() < 1e-9, f"worst relative error {errors.max():.3g}"
    # negative control: a reference with another learning rate is measurably different
    other = json.loads(json.dumps(config))
    other["training"]["learning_rate"] = 0.5001
    off = np.linalg.norm(trace["params"] - reference_trace(other), axis=1)
    assert (off / np.linalg.norm(reference, axis=1)).max() > 1e-6
