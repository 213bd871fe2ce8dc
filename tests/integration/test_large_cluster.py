"""A hundred nodes on one machine: 10 edges x 10 workers as 111 real processes on loopback.

Coded training equals uncoded gradient descent (rel 1e-9) with one worker killed in every
edge mid-run, and each node's resident memory stays small (docs/numerics.md, "What a node
costs"). Few iterations and a small model keep it within its CI budget (about a minute).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.coding import HierarchicalCode, make_code
from hgc.cluster import LocalCluster, reference_trace
from tests.conftest import poll_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

EDGES, WORKERS = 10, 10
S_E, S_W = 2, 3  # neither s+1 divides 10: both tiers have real (non-0/1) coefficients
ITERATIONS = 12  # enough that iterations begin after every kill, even on a loaded host


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process, from /proc (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def test_ten_by_ten_processes_with_a_worker_killed_per_edge_is_gradient_descent(
    tmp_path: Path,
) -> None:
    code = make_code("hgc", [WORKERS] * EDGES, S_E, S_W)
    assert isinstance(code, HierarchicalCode) and code.variant == "lagrange"
    config: dict[str, Any] = {
        "code_spec": code.spec(),  # complete (orderings, seeds): no node searches
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        # a short fixed delay keeps the iterations going while the kills land
        "emulation_spec": {
            f"worker-{i}-{j}": {"fixed_delay_s": 0.1} for i in range(EDGES) for j in range(WORKERS)
        },
        "training": {"iterations": ITERATIONS, "learning_rate": 0.5, "deadline_s": 60.0},
        "seed": 5,
    }
    # a wide liveness window: 111 processes share two loaded cores
    with LocalCluster(
        config,
        workdir=tmp_path,
        params_trace=True,
        heartbeat_s=0.5,
        liveness=20,
        ready_timeout_s=240.0,
    ) as cluster:
        assert len(cluster.nodes) == 1 + EDGES + EDGES * WORKERS
        rss = {node: rss_bytes(pid) for node, pid in cluster.pids.items()}
        poll_for(lambda: len(cluster.records()) >= 1, 120, what="the first iteration")
        killed = {i: f"worker-{i}-{(i + 3) % WORKERS}" for i in range(EDGES)}
        for name in killed.values():  # one worker in every edge, spread over indices
            cluster.kill(name)
        ended_before_kills = len(cluster.records())  # iterations after these began without them
        assert cluster.wait(timeout=240) == 0
        records = cluster.records()
        trace = cluster.params_trace()
    assert [(r["iteration"], r["ok"]) for r in records] == [(t, True) for t in range(ITERATIONS)]
    # the kills took effect: in every iteration begun after them, each used edge decoded
    # without its killed worker (never an arrival, always one of the edge's stragglers)
    after = [r for r in records if r["iteration"] > ended_before_kills]
    assert after, f"every iteration had begun before the kills ({ended_before_kills} ended)"
    for r in after:
        assert not set(killed.values()) & set(r["worker_arrivals_s"]), r["iteration"]
        for edge in r["edges_used"]:
            assert killed[int(edge.split("-")[1])] in r["worker_stragglers"], (r["iteration"], edge)
    reference = reference_trace(config)
    assert list(trace["iterations"]) == list(range(ITERATIONS))
    errors = np.linalg.norm(trace["params"] - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert errors.max() < 1e-9, f"worst relative error {errors.max():.3g}"
    # what a node costs: generous bound (measured ~60-80 MB each, docs/numerics.md)
    live = [v for v in rss.values() if v > 0]
    assert len(live) >= len(rss) - EDGES
    assert max(live) < 400 * 2**20, f"largest node RSS {max(live) / 2**20:.0f} MiB"
