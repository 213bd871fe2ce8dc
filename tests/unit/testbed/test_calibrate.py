"""hgc.testbed.calibrate on synthetic master records drawn from known profiles: the offsets
(link round trip) and compute profiles are recovered, the slowest worker of an edge in the
s_w = 1 probe is censored (not dropped), and the fitted scenario parses and carries the fits.
The real probe on a real cluster is bench_calibrate (docs/simulator.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from common.scenario import load_scenario, parse_scenario
from hgc.testbed import calibrate as cal

# worker -> (offset s, shift_s, rate): two fast workers and one slow per edge
TRUE = {
    "worker-0-0": (0.004, 0.1, 10.0),
    "worker-0-1": (0.004, 0.1, 10.0),
    "worker-0-2": (0.004, 0.3, 10 / 3),
    "worker-1-0": (0.020, 0.1, 10.0),
    "worker-1-1": (0.020, 0.1, 10.0),
    "worker-1-2": (0.020, 0.3, 10 / 3),
}
EDGES = {
    "edge-0": ["worker-0-0", "worker-0-1", "worker-0-2"],
    "edge-1": ["worker-1-0", "worker-1-1", "worker-1-2"],
}
UPLINK = {"edge-0": 0.002, "edge-1": 0.05}
M = 6


def records(load: float, wait_for: int, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        arrivals, stragglers, edge_arrivals = {}, [], {}
        for edge, names in EDGES.items():
            times = {
                w: TRUE[w][0] + load * (TRUE[w][1] + rng.exponential(1 / TRUE[w][2])) for w in names
            }
            kept = sorted(times, key=times.get)[:wait_for]
            for w in names:
                if w in kept:
                    arrivals[w] = times[w]
                else:
                    stragglers.append(w)
            edge_arrivals[edge] = max(times[w] for w in kept) + 2 * UPLINK[edge]
        out.append(
            {
                "scheme": "x",
                "iteration": t,
                "ok": True,
                "duration_s": max(edge_arrivals.values()),
                "edge_arrivals_s": edge_arrivals,
                "edges_used": list(EDGES),
                "worker_arrivals_s": arrivals,
                "worker_stragglers": stragglers,
            }
        )
    return out


def probe(n: int = 400, seed: int = 0) -> cal.Calibration:
    obs = []
    for load, wait_for, uplinks in [(1 / M, 3, True), (2 / M, 2, False)]:
        loads = {w: load for w in TRUE}
        obs.append(cal.observations(records(load, wait_for, n, seed), loads, EDGES, uplinks))
        seed += 1
    return cal.fit(cal.merge(obs[0], obs[1], timing=False), gradient_bytes=5200)


def test_fit_recovers_offsets_and_profiles_from_two_loads():
    c = probe()
    for w, (offset, shift, rate) in TRUE.items():
        f = c.workers[w]
        if c.offsets[w] == 0.0:  # the edge's slowest: mostly censored at 2/M, one line only
            assert w.endswith("-2")
            assert f.mean_s == pytest.approx(offset * M + shift + 1 / rate, rel=0.15)
            continue
        assert c.offsets[w] == pytest.approx(offset, abs=0.004)
        assert f.shift_s == pytest.approx(shift, rel=0.15)
        assert abs(f.rate - rate) < 4 * f.rate_se  # the slow ones: few answers at 2/M
        if not w.endswith("-2"):
            assert f.rate == pytest.approx(rate, rel=0.25)
    for edge, hop in UPLINK.items():
        assert c.uplinks[edge].latency_s == pytest.approx(hop, rel=0.01)
    # the slowest worker of each edge was censored at the second load, not dropped
    assert c.workers["worker-0-2"].censored > 200


def test_fitted_scenario_parses_and_carries_the_fits(tmp_path):
    base = {
        "name": "two-by-three",
        "seed": 3,
        "topology": {"workers_per_edge": [3, 3], "workers": {"device": "laptop"}},
        "training": {"iterations": 5},
        "faults": [{"iteration": 1, "node": "worker-0-0", "action": "kill"}],
    }
    scenario = parse_scenario(base)
    c = probe(200)
    path = tmp_path / "fitted.yaml"
    cal.write_fitted(path, scenario, c, "fitted.json")
    text = path.read_text()
    assert text.startswith("# Fitted by `hgc calibrate`")
    fitted = load_scenario(path)
    assert fitted.name == "two-by-three-fitted" and fitted.faults == ()
    o = fitted.emulation.message_overhead_s
    assert o == pytest.approx(cal.common_overhead_s(c), rel=1e-5) and o > 0
    for i in range(2):
        assert fitted.edge_profile(i).uplink.latency_s + o == pytest.approx(
            c.uplinks[f"edge-{i}"].latency_s, rel=1e-5
        )
        for j in range(3):
            w = f"worker-{i}-{j}"
            p = fitted.worker_profile(i, j)
            shift = c.workers[w].shift_s
            if w in c.base_loads:  # offset inside the compute: the overhead left the shift
                shift -= 2 * o / c.base_loads[w]
                assert p.link.latency_s == 0.0
            else:
                mean_link = 2 * (p.link.latency_s + o)  # jitter <= latency: no clipping
                assert mean_link == pytest.approx(c.offsets[w] + c.noise[w], rel=1e-4, abs=1e-9)
            assert p.shift_s == pytest.approx(shift, rel=1e-5)
            assert p.rate == pytest.approx(c.workers[w].rate, rel=1e-5)
    assert yaml.safe_load(text)["stragglers"] == {"kind": "shifted-exponential"}
    assert math.isfinite(cal.predicted_mean_s(path))


def test_a_worker_without_answers_is_named():
    obs = cal.Observations({"worker-0-0": [(0.1, True, 0.5)] * 3}, {}, [])
    with pytest.raises(ValueError, match="worker-0-0: need at least 2 observed"):
        cal.fit(obs, 100)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calibrate", "no-such.yaml"], "SCENARIO: no such file"),
        (["calibrate", "scenarios/homogeneous.yaml", "--iterations", "2"], "--iterations"),
        (["calibrate", "scenarios"], "is a directory"),
    ],
)
def test_calibrate_command_rejects_bad_requests_before_any_work(argv, message, capsys):
    from hgc.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
