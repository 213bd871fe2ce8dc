"""The launcher's emulated hardware, for real: cgroups and namespaces made from a scenario,
each mechanism reported, and nothing left behind after cleanup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.scenario import parse_scenario
from hgc.testbed.cgroups import PREFIX, detect_cgroups
from hgc.testbed.cleanup import CleanupStack
from hgc.testbed.emulation import EmulatedHardware, kernel_shapes
from hgc.testbed.netns import list_lab_netns

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def scenario_with(**emulation: Any) -> Any:
    raw = yaml.safe_load((ROOT / "scenarios" / "heterogeneous.yaml").read_text())
    raw["emulation"] = {**raw["emulation"], **emulation}
    return parse_scenario(raw, base_dir=ROOT / "scenarios")


def leftovers(pid_tag: str) -> list[str]:
    support = detect_cgroups()
    groups = (
        [str(p) for p in support.cpu_root.glob(f"{PREFIX}{pid_tag}")] if support.cpu_root else []
    )
    return groups + [n for n in list_lab_netns() if n.startswith(f"hgcrun-{pid_tag}-")]


def test_in_process_default_reports_every_mechanism() -> None:
    cleanup = CleanupStack()
    bed = EmulatedHardware.setup(scenario_with(), cleanup)
    assert set(bed.mechanisms) == {
        "compute_delay",
        "cpu_quota",
        "inprocess_link",
        "tbf",
        "htb",
        "netem",
    }
    assert bed.mechanisms["inprocess_link"].active and bed.mechanisms["compute_delay"].active
    assert not bed.mechanisms["cpu_quota"].active
    assert "off in the scenario" in bed.mechanisms["cpu_quota"].detail
    assert bed.command_prefix("worker-0-0") == [] and bed.address("master") == "127.0.0.1"
    assert cleanup.run() == []


def test_kernel_network_and_cpu_quota_are_real_and_cleaned_up() -> None:
    cleanup = CleanupStack()
    scenario = scenario_with(cpu_quota=True, network="kernel")
    try:
        bed = EmulatedHardware.setup(scenario, cleanup)
        m = bed.mechanisms
        assert m["cpu_quota"].active and m["tbf"].active and m["htb"].active
        assert m["netem"].active != m["inprocess_link"].active  # exactly one does the delay
        assert bed.quotas is not None
        # rpi3 = 0.25 of a core, rpi4 = 0.5, laptops unconstrained
        assert bed.quotas.quota_of("worker-2-3") == pytest.approx(0.25)
        assert bed.quotas.quota_of("worker-1-0") == pytest.approx(0.5)
        assert "worker-0-0" not in bed.quotas.groups
        assert "cpu_quota" in bed.node_env("worker-2-3")["HGC_EMULATION_EXTERNAL"]
        assert "cpu_quota" not in bed.node_env("worker-0-0")["HGC_EMULATION_EXTERNAL"]
        # a process started with the prefix runs inside the node's namespace, and can reach
        # the master's address over the bridge
        out = subprocess.run(
            [*bed.command_prefix("worker-3-0"), "ip", "-4", "-o", "addr", "show", "eth0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert bed.address("worker-3-0") in out
        ping = subprocess.run(
            [
                *bed.command_prefix("edge-3"),
                sys.executable,
                "-c",
                "import socket,sys; s=socket.socket(); s.settimeout(5); "
                f"s.bind(('{bed.address('edge-3')}', 0)); print('bound')",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "bound" in ping.stdout
        assert leftovers(str(os.getpid()))
    finally:
        problems = cleanup.run()
    assert problems == []
    assert leftovers(str(os.getpid())) == []


def test_shapes_follow_the_profiles() -> None:
    shapes = kernel_shapes(scenario_with())
    slow = shapes["edge-3"]
    assert slow.peer == "master" and slow.rate_bytes_per_s == pytest.approx(2e6 / 8)
    assert slow.delay_s == pytest.approx(0.08) and slow.loss == pytest.approx(0.02)
    assert shapes["worker-0-0"].peer is None
