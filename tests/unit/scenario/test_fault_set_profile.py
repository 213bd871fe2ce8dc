"""set-device / set-link faults: parsed against the topology's profile tables, one-line
errors naming the field; set-device becomes the worker's emulation profile changes (with
compute_scale) and its delay model switches at that iteration exactly."""

from __future__ import annotations

import numpy as np
import pytest

from common.perf.system import StragglerModel, WorkerProfile
from common.runtime.emulation import ComputeEmulator
from common.scenario import ScenarioError, parse_scenario
from hgc.testbed.config import device_changes, emulation_spec, scenario_plan
from services.worker.compute import Emulation


def scenario(*faults: dict, scale: float = 1.0):
    return parse_scenario(
        {
            "topology": {
                "workers_per_edge": [2, 2],
                "compute_scale": scale,
                "devices": {"hot-pi": {"shift_s": 0.9, "rate": 1.0}},
                "links": {"bad": {"latency_s": 0.2}},
            },
            "training": {"iterations": 10},
            "schemes": ["uncoded"],
            "faults": list(faults),
        }
    )


def test_set_device_and_set_link_parse():
    sc = scenario(
        {"iteration": 3, "node": "worker-1-0", "action": "set-device", "device": "hot-pi"},
        {"iteration": 4, "node": "edge-0", "action": "set-link", "link": "cellular"},
        {"iteration": 5, "node": "worker-0-1", "action": "set-link", "link": "bad"},
    )
    assert [(f.action, f.device, f.link) for f in sc.faults] == [
        ("set-device", "hot-pi", None),
        ("set-link", None, "cellular"),
        ("set-link", None, "bad"),
    ]


@pytest.mark.parametrize(
    ("fault", "field", "message"),
    [
        (
            {"action": "set-device", "node": "worker-0-0", "device": "toaster"},
            "device",
            "unknown device 'toaster'",
        ),
        (
            {"action": "set-device", "node": "edge-0", "device": "rpi3"},
            "node",
            "applies to a worker",
        ),
        ({"action": "set-device", "node": "worker-0-0"}, "device", "required"),
        (
            {"action": "set-link", "node": "edge-1", "link": "dialup"},
            "link",
            "unknown link 'dialup'",
        ),
        (
            {"action": "set-link", "node": "edge-1", "link": "lan", "duration_s": 2},
            "duration_s",
            "not allowed",
        ),
        (
            {"action": "set-device", "node": "worker-0-0", "device": "rpi3", "link": "lan"},
            "link",
            "not allowed",
        ),
        (
            {"action": "kill", "node": "worker-0-0", "device": "rpi3"},
            "device",
            "only for action set-device",
        ),
        (
            {"action": "slow", "node": "worker-0-0", "factor": 2, "link": "lan"},
            "link",
            "only for action set-link",
        ),
    ],
)
def test_bad_set_faults_name_the_field(fault, field, message):
    with pytest.raises(ScenarioError, match=message) as err:
        scenario({"iteration": 2, **fault})
    assert err.value.field == f"faults[0].{field}"


def test_set_device_reaches_the_workers_delay_model_at_its_iteration():
    sc = scenario(
        {"iteration": 3, "node": "worker-1-0", "action": "set-device", "device": "hot-pi"},
        scale=2.0,
    )
    assert device_changes(sc, "worker-1-0") == [{"iteration": 3, "shift_s": 1.8, "rate": 0.5}]
    assert device_changes(sc, "worker-0-0") == []
    spec = emulation_spec(sc, scenario_plan(sc, "uncoded"), "full")
    assert "changes" not in spec["worker-0-0"]
    emu = Emulation(spec["worker-1-0"], "w")
    assert emu.model is not None
    before = [emu.model.target_s(t) for t in range(3)]
    after = [emu.model.target_s(t) for t in range(3, 10)]
    load = spec["worker-1-0"]["load"]
    assert min(after) >= 1.8 * load > max(before) >= 0.2 * load  # laptop 0.1 x scale 2


def test_compute_emulator_profile_at_and_same_draws_elsewhere():
    base = WorkerProfile(0.1, 10.0)
    changed = ComputeEmulator(
        base, StragglerModel(), 0.5, 1, 7, changes=[(4, WorkerProfile(0.6, 1.0))]
    )
    plain = ComputeEmulator(base, StragglerModel(), 0.5, 1, 7)
    assert changed.profile_at(3) == base and changed.profile_at(4).shift_s == 0.6
    assert [changed.target_s(t) for t in range(4)] == [plain.target_s(t) for t in range(4)]
    assert np.mean([changed.target_s(t) for t in range(4, 200)]) > 4 * np.mean(
        [plain.target_s(t) for t in range(4, 200)]
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iteration": 1}, "must be a list"),
        ([{"iteration": 1, "shift_s": 0.1}], r"changes\[0\]: must be a map"),
        ([{"iteration": -1, "shift_s": 0.1, "rate": 1}], r"changes\[0\].iteration"),
        ([{"iteration": 1, "shift_s": "x", "rate": 1}], r"changes\[0\].shift_s"),
        ([{"iteration": 1, "shift_s": 0.1, "rate": 0}], "rate > 0"),
    ],
)
def test_worker_rejects_bad_changes(changes, message):
    with pytest.raises(ValueError, match=message):
        Emulation({"shift_s": 0.1, "rate": 10.0, "load": 0.5, "changes": changes}, "w")


def test_set_link_becomes_a_scheduled_link_for_both_ends():
    from common.runtime.emulation import LinkEmulator, ScheduledLink, link_of_entry

    sc = scenario({"iteration": 3, "node": "edge-1", "action": "set-link", "link": "bad"})
    spec = emulation_spec(sc, scenario_plan(sc, "uncoded"), "full")
    assert "link_changes" not in spec["edge-0"]
    link = link_of_entry(spec["edge-1"], "e")
    assert isinstance(link, ScheduledLink)
    assert link.at(2).latency_s == 0.0005 and link.at(3).latency_s == 0.2
    emu = LinkEmulator(link, seed=1)
    assert emu.schedule(0, 10.0, iteration=2) < 10.01
    assert emu.schedule(0, 20.0, iteration=3) == pytest.approx(20.2)
    with pytest.raises(ValueError, match=r"e.link_changes\[0\].iteration"):
        link_of_entry({"link_changes": [{"iteration": -1, "link": {}}]}, "e")
    with pytest.raises(ValueError, match=r"e.link_changes\[0\].link"):
        link_of_entry({"link_changes": [{"iteration": 1, "link": {"latency_s": -1}}]}, "e")
