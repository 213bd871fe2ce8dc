from __future__ import annotations

import math

import pytest

from common.scenario import ScenarioError, parse_bandwidth


@pytest.mark.parametrize(
    ("text", "bytes_per_s"),
    [
        ("20mbit", 2.5e6),
        ("20Mbit", 2.5e6),
        ("512kbit", 64e3),
        ("1gbit", 125e6),
        ("800bit", 100.0),
        ("1.5MB/s", 1.5e6),
        ("250kB/s", 250e3),
        ("1e3B/s", 1e3),
        (1000, 1000.0),
        (12.5, 12.5),
    ],
)
def test_bandwidths(text: object, bytes_per_s: float) -> None:
    assert parse_bandwidth(text, "x") == pytest.approx(bytes_per_s)


def test_unlimited() -> None:
    assert math.isinf(parse_bandwidth("unlimited", "x"))
    assert math.isinf(parse_bandwidth(None, "x"))


@pytest.mark.parametrize(
    "bad", ["20 mbps", "mbit", "20", "20mbit/s", "-3mbit", 0, -1.0, "0kbit", [1]]
)
def test_bad_bandwidths_name_the_field(bad: object) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_bandwidth(bad, "topology.links.x.bandwidth")
    assert info.value.field == "topology.links.x.bandwidth"
