"""The tc command lists, checked as data (the kernel part is in tests/system)."""

from __future__ import annotations

import pytest

from common.runtime.shaping import Shape, tc_commands
from hgc.testbed.netns import address_of


def test_addresses_are_private_and_distinct() -> None:
    addrs = {address_of(k) for k in range(600)}
    assert len(addrs) == 600
    assert all(a.startswith("10.213.") for a in addrs)
    with pytest.raises(ValueError, match="address range"):
        address_of(250 * 250)


def test_unshaped_node_gets_no_qdisc() -> None:
    assert tc_commands("eth0", Shape(), None, netem=False) == []


def test_worker_rate_uses_tbf_in_bits() -> None:
    cmds = tc_commands("eth0", Shape(rate_bytes_per_s=125_000), None, netem=False)
    assert len(cmds) == 1
    assert cmds[0][:8] == ["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "tbf"]
    assert "1000000bit" in cmds[0]


def test_netem_part_only_when_kernel_has_it() -> None:
    shape = Shape(rate_bytes_per_s=125_000, delay_s=0.01, jitter_s=0.002, loss=0.01)
    without = tc_commands("eth0", shape, None, netem=False)
    with_netem = tc_commands("eth0", shape, None, netem=True)
    assert not any("netem" in c for c in without)
    netem = [c for c in with_netem if "netem" in c]
    assert len(netem) == 1
    assert "10.000ms" in netem[0] and "2.000ms" in netem[0] and "1.0000%" in netem[0]


def test_edge_uplink_uses_htb_matching_the_master() -> None:
    shape = Shape(rate_bytes_per_s=1_000_000, peer="master")
    cmds = tc_commands("v3", shape, "10.213.0.1", netem=False, match="src")
    assert any("htb" in c and "default" in c for c in cmds)
    flt = [c for c in cmds if c[0] == "filter"][0]
    assert flt[flt.index("match") + 2 :][:2] == ["src", "10.213.0.1/32"]
    assert any("8000000bit" in c for c in cmds)


def test_peer_shape_without_peer_address_is_an_error() -> None:
    with pytest.raises(ValueError, match="peer 'master'"):
        tc_commands("eth0", Shape(rate_bytes_per_s=1e6, peer="master"), None, netem=False)
