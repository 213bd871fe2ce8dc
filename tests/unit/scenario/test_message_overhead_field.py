"""``emulation.message_overhead_s``: the runtime's per-hop cost as a term of the model."""

from __future__ import annotations

from typing import Any

import pytest

from common.perf import expected_time, plan_scheme
from common.scenario import ScenarioError, parse_scenario
from tests.unit.scenario.helpers import base, with_field


def parse(doc: dict[str, Any]) -> Any:
    return parse_scenario(doc)


def test_default_is_zero_and_the_model_is_unchanged() -> None:
    sc = parse(base())
    assert sc.emulation.message_overhead_s == 0.0
    links = [w.link.latency_s for ws in sc.topology.workers for w in ws]
    assert [w.link.latency_s for ws in sc.system_model().workers for w in ws] == links


def test_the_overhead_is_added_to_every_hop_of_the_prediction() -> None:
    plain = parse(base())
    slow = parse(with_field(base(), "emulation.message_overhead_s", 0.002))
    assert slow.emulation.message_overhead_s == 0.002
    sys0, sys1 = plain.system_model(), slow.system_model()
    for ws0, ws1 in zip(sys0.workers, sys1.workers, strict=True):
        for w0, w1 in zip(ws0, ws1, strict=True):
            assert w1.link.latency_s == pytest.approx(w0.link.latency_s + 0.002)
    for e0, e1 in zip(sys0.edges, sys1.edges, strict=True):
        assert e1.uplink.latency_s == pytest.approx(e0.uplink.latency_s + 0.002)
    # the topology the emulation reads is untouched (the overhead is real, not emulated)
    assert slow.topology == plain.topology
    # uncoded waits for every node: deterministic links, four hops more per critical path
    t0 = expected_time(sys0, plan_scheme(sys0, "uncoded", plain.code))
    t1 = expected_time(sys1, plan_scheme(sys1, "uncoded", slow.code))
    assert t1 == pytest.approx(t0 + 4 * 0.002, rel=1e-3)


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (-0.001, "must be >= 0"),
        (2.0, "must be <= 1"),
        ("2ms", "must be a number"),
        (True, "number"),
    ],
)
def test_bad_values_name_the_field(value: Any, phrase: str) -> None:
    with pytest.raises(ScenarioError, match="emulation.message_overhead_s") as err:
        parse(with_field(base(), "emulation.message_overhead_s", value))
    assert phrase in str(err.value)
