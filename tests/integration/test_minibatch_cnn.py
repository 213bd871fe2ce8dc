"""Coded minibatch training of the CNN on the vendored MNIST sample, with real processes, equals
uncoded minibatch training (every partition's batch from seed, iteration and partition) to
rel 1e-9 after 20 iterations, with a worker and an edge killed within tolerance (HGC s_e=1,
s_w=1), and with momentum at the master."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.learning import build_model, load_dataset
from common.learning.minibatch import minibatch_gradient_sum, rows_per_iteration
from hgc.cluster import LocalCluster
from services.master.optimiser import Optimiser
from tests.conftest import poll_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

ITERATIONS = 20
HGC = {"scheme": "hgc", "workers_per_edge": [3, 3, 3], "s_e": 1, "s_w": 1}
CONFIG: dict[str, Any] = {
    "code": HGC,
    "data_spec": {"kind": "mnist", "max_train": 270, "minibatch": 6, "seed": 5},
    "model_spec": {"kind": "cnn", "filters": 4, "kernel": 5, "pool": 4, "l2": 1e-4},
    "training": {
        "iterations": ITERATIONS,
        "learning_rate": 0.05,
        "eval_every": 10,
        "deadline_s": 60.0,
        "on_failure": "retry",  # a retry recomputes the same batch at the same params: exact
        "optimiser": {"kind": "momentum", "beta": 0.9},
    },
    "seed": 2,
}


def uncoded_minibatch_trace(config: dict[str, Any], K: int) -> np.ndarray:
    """Plain minibatch training in this process: no code, no network."""
    data = load_dataset(config["data_spec"])
    model = build_model(config["model_spec"], data.n_features, data.n_classes)
    params = model.init_params(config["seed"])
    batch, seed = config["data_spec"]["minibatch"], config["data_spec"]["seed"]
    n_rows = rows_per_iteration(data.n_train, K, batch)
    opt = Optimiser(config["training"]["optimiser"], config["training"]["learning_rate"])
    out = []
    for t in range(config["training"]["iterations"]):
        g = minibatch_gradient_sum(model, params, data.X_train, data.y_train, K, batch, seed, t)
        params = opt.step(params, g, n_rows)
        out.append(params)
    return np.stack(out)


def test_coded_minibatch_cnn_equals_uncoded_with_a_worker_and_an_edge_killed(
    tmp_path: Path,
) -> None:
    orphan = ["--orphan-timeout-s", "15"]  # a starved live edge must not orphan its workers
    with LocalCluster(
        CONFIG,
        workdir=tmp_path,
        params_trace=True,
        extra_args=lambda node: orphan,
        liveness=20,  # a 5 s window: a live node starved on a loaded machine is not "dead"
    ) as cluster:
        poll_for(lambda: len(cluster.records()) >= 2, 120, what="2 iterations")
        cluster.kill("worker-0-2")
        cluster.kill("edge-1")
        assert cluster.wait(timeout=180) == 0
        records = cluster.records()
        trace = cluster.params_trace()
        K = int(records[0]["K"])
    ok = [r["iteration"] for r in records if r["ok"]]
    assert ok == list(range(ITERATIONS)), records
    assert "edge-1" in records[-1]["edge_stragglers"]
    reference = uncoded_minibatch_trace(CONFIG, K)
    params = trace["params"]
    errors = np.linalg.norm(params - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert errors.max() < 1e-9, f"worst relative error {errors.max():.3g}"
    # negative controls: the full-batch run and another batch draw are far from it
    full_batch = dict(CONFIG, data_spec={**CONFIG["data_spec"], "minibatch": None})
    other_draw = dict(CONFIG, data_spec={**CONFIG["data_spec"], "minibatch": 5})
    for other in (uncoded_minibatch_trace(c, K) for c in (full_batch, other_draw)):
        assert np.linalg.norm(params[-1] - other[-1]) / np.linalg.norm(other[-1]) > 1e-6
