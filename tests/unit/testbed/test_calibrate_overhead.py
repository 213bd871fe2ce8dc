"""``hgc calibrate`` fits the per-message overhead: the hop floor common to every node goes
to ``emulation.message_overhead_s`` and every link is net of it, so the fitted scenario's
predictions are those of the gross links (pure: synthetic fits, the model, no cluster)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from common.perf.estimate import ComputeFit, LinkFit
from common.scenario import parse_scenario
from hgc.testbed import calibrate as cal
from hgc.testbed.config import scenario_plan
from hgc.testbed.predict import predict

SCHEMES = ["uncoded", "worker-gc", "hgc", "flat-frc"]
BASE: dict = {
    "name": "two-by-three",
    "seed": 3,
    "topology": {"workers_per_edge": [3, 3], "workers": {"device": "laptop"}},
    "training": {"iterations": 5},
    "schemes": SCHEMES,
    "code": {"s_e": 0, "s_w": 1},
}
O = 0.0023  # the overhead per hop built into every synthetic offset / uplink below


def fits(common: float, fallback: str | None = None) -> cal.Calibration:
    """Known fits whose every hop floor is ``common`` plus a per-node link part."""
    workers, offsets, noise, base = {}, {}, {}, {}
    for i in range(2):
        for j in range(3):
            w = f"worker-{i}-{j}"
            workers[w] = ComputeFit(0.1 + 0.1 * j, 10.0 / (1 + j), 0.0, 0.0, 100, 0)
            offsets[w] = 2 * (common + 0.001 * (i + j))  # worker-0-0's floor is exactly common
            noise[w] = 0.0004 * j
            if w == fallback:  # one load only: its offset is inside its compute fit
                load = 1 / 6
                workers[w] = dataclasses.replace(
                    workers[w], shift_s=workers[w].shift_s + offsets[w] / load
                )
                offsets[w], noise[w], base[w] = 0.0, 0.0, load
    uplinks = {
        f"edge-{i}": LinkFit(common + 0.003 + 0.01 * i, math.inf, 0.0, math.nan, 0.002, 50, False)
        for i in range(2)
    }
    return cal.Calibration(workers, uplinks, offsets, noise, 5200, 40, 0.5, base)


def predictions(doc: dict) -> dict[str, float]:
    sc = parse_scenario(doc)
    out = {}
    for scheme in sc.schemes:
        seconds, _ = predict(sc, scenario_plan(sc, scheme))
        assert seconds is not None
        out[scheme] = seconds
    return out


def gross(c: cal.Calibration) -> dict:
    """The control: the fitted scenario as before the split (no overhead term, every link
    carrying it)."""
    return cal.fitted_scenario(parse_scenario(BASE), c, split_overhead=False)


def test_split_recovers_the_common_floor_and_keeps_predictions():
    c = fits(O)
    assert cal.common_overhead_s(c) == pytest.approx(O, rel=1e-12)
    sc = parse_scenario(BASE)
    doc = cal.fitted_scenario(sc, c)
    assert doc["emulation"]["message_overhead_s"] == pytest.approx(O, rel=1e-5)
    links = doc["topology"]["links"]
    assert doc["topology"]["overrides"]["worker-0-0"]["link"] == "ideal"  # all of it common
    assert links["fit-worker-1-1"]["latency_s"] == pytest.approx(0.002 + 0.0002, rel=1e-5)
    assert links["fit-edge-0"]["latency_s"] == pytest.approx(0.003, rel=1e-5)
    # control: the gross-link scenario (no term) predicts the same for every scheme
    control_doc = gross(c)
    assert control_doc["emulation"]["message_overhead_s"] == 0.0
    split, control = predictions(doc), predictions(control_doc)
    for scheme in SCHEMES:
        assert split[scheme] == pytest.approx(control[scheme], rel=1e-4), scheme
    # and the term matters: without it the same net links predict less
    no_term = dict(doc, emulation={"message_overhead_s": 0.0})
    bare = predictions(no_term)
    for scheme in SCHEMES:
        assert bare[scheme] < split[scheme] - 3 * O, scheme


def test_a_worker_with_its_offset_inside_its_compute_keeps_its_prediction():
    c = fits(O, fallback="worker-1-2")
    assert cal.common_overhead_s(c) == pytest.approx(O, rel=1e-12)  # not pulled to 0
    sc = parse_scenario(BASE)
    doc = cal.fitted_scenario(sc, c)
    assert doc["topology"]["overrides"]["worker-1-2"]["link"] == "ideal"
    fitted = parse_scenario(doc)
    full = c.workers["worker-1-2"].shift_s * (1 / 6)  # its floor at its probed load
    p = fitted.worker_profile(1, 2)
    assert p.shift_s * (1 / 6) + 2 * O == pytest.approx(full, rel=1e-5)
    # at the probed loads (uncoded: 1/6) every prediction is the control's
    control = predictions(dict(gross(c), schemes=["uncoded"]))
    split = predictions(dict(doc, schemes=["uncoded"]))
    assert split["uncoded"] == pytest.approx(control["uncoded"], rel=1e-4)


def test_no_separated_offset_means_no_term():
    """A one-load probe (every worker's offset inside its compute): nothing separates the
    common part, the term is 0 and the links are as fitted."""
    c = fits(O)
    c = dataclasses.replace(
        c,
        offsets={w: 0.0 for w in c.offsets},
        noise={w: 0.0 for w in c.noise},
        base_loads={w: 1 / 6 for w in c.workers},
    )
    assert cal.common_overhead_s(c) == 0.0
    doc = cal.fitted_scenario(parse_scenario(BASE), c)
    assert doc["emulation"]["message_overhead_s"] == 0.0
    assert doc["topology"]["links"]["fit-edge-1"]["latency_s"] == pytest.approx(O + 0.013)


def test_the_json_reports_the_term():
    assert fits(O).to_json()["message_overhead_s"] == pytest.approx(O)


def test_the_summary_names_the_term():
    assert "message overhead per hop" in cal.describe(fits(O))
    assert "2.3 ms" in cal.describe(fits(O))
