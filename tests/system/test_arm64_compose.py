"""Per-node platform in the generated stack (``hgc compose --arm64`` and the scenario's
``platforms:`` section) and the multi-engine testbed's labels: no Docker needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.scenario import load_scenario, parse_scenario
from hgc.compose.generate import (
    GenerateError,
    StackOptions,
    arch_image,
    build_stack,
    node_platforms,
)
from hgc.testbed.engines import EngineError, EngineSwarm, engine_labels

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "homogeneous.yaml"


def test_arch_image_tags() -> None:
    assert arch_image("hgc-edge:latest", "linux/arm64") == "hgc-edge:latest-arm64"
    assert arch_image("hgc-edge:0.1.0", "linux/amd64") == "hgc-edge:0.1.0-amd64"
    assert arch_image("hgc-edge", "linux/arm64") == "hgc-edge:latest-arm64"
    assert arch_image("reg.local:5000/hgc-edge", "linux/arm64") == (
        "reg.local:5000/hgc-edge:latest-arm64"
    )


def test_arm64_nodes_get_the_arm64_image_platform_and_placement() -> None:
    scenario = load_scenario(SCENARIO)
    stack = build_stack(scenario, StackOptions(arm64=("edge-1", "worker-0-1"), curve=False))
    services = stack["services"]
    for node in ("edge-1", "worker-0-1"):
        svc = services[node]
        assert svc["platform"] == "linux/arm64"
        assert svc["image"] == "${HGC_IMAGE_ARM64:-hgc-edge:latest-arm64}"
        assert "node.labels.hgc.arch==arm64" in svc["deploy"]["placement"]["constraints"]
    # one arm64 image for the stack: the first arm64 node builds it on the arm64 base
    assert "ARM64" in services["edge-1"]["build"]["args"]["BASE_IMAGE"]
    assert "build" not in services["worker-0-1"]
    others = [n for n in services if n.startswith(("edge", "worker")) and n not in
              ("edge-1", "worker-0-1")]  # fmt: skip
    assert others and all("platform" not in services[n] for n in others)
    # Negative control: without --arm64 nothing is placed on arm64.
    plain = build_stack(scenario, StackOptions(curve=False))["services"]
    assert all("platform" not in s for s in plain.values())


def test_scenario_platforms_section_and_clear_errors(tmp_path: Path) -> None:
    raw = yaml.safe_load(SCENARIO.read_text())
    raw["platforms"] = {"worker-2-2": "linux/arm64", "edge-0": "linux/amd64"}
    scenario = parse_scenario(raw, base_dir=ROOT / "scenarios")
    assert node_platforms(scenario) == {"worker-2-2": "linux/arm64"}
    assert node_platforms(scenario, ["edge-0"]) == {
        "worker-2-2": "linux/arm64",
        "edge-0": "linux/arm64",
    }  # the command line wins
    raw["platforms"] = {"worker-2-2": "linux/s390x"}
    with pytest.raises(GenerateError, match=r"platforms\.worker-2-2: 'linux/s390x'"):
        node_platforms(parse_scenario(raw, base_dir=ROOT / "scenarios"))
    raw["platforms"] = {"worker-7-0": "linux/arm64"}
    with pytest.raises(GenerateError, match=r"platforms\.worker-7-0: not a node"):
        node_platforms(parse_scenario(raw, base_dir=ROOT / "scenarios"))
    with pytest.raises(GenerateError, match=r"--arm64 edge-9: not a node"):
        node_platforms(load_scenario(SCENARIO), ["edge-9"])


def test_hgc_compose_arm64_flag(tmp_path: Path) -> None:
    out = tmp_path / "pi.yaml"
    hgc = [sys.executable, "-m", "hgc.cli"]
    proc = subprocess.run([*hgc, "compose", str(SCENARIO), "-o", str(out), "--arm64",
                           "worker-1-2"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(out.read_text())["services"]
    assert services["worker-1-2"]["platform"] == "linux/arm64"
    assert "platform" not in services["worker-1-1"]
    bad = subprocess.run([*hgc, "compose", str(SCENARIO), "-o", str(out), "--arm64", "w1"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode != 0
    assert "--arm64 w1: not a node" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_engine_labels_place_edge_groups_round_robin() -> None:
    labels = engine_labels(3, 3, arm64=[2])
    assert labels["0"]["hgc.master"] == "true" and labels["0"]["hgc.role"] == "master"
    assert {k for k in labels["1"] if k.startswith("hgc.edge-")} == {"hgc.edge-0", "hgc.edge-2"}
    assert {k for k in labels["2"] if k.startswith("hgc.edge-")} == {"hgc.edge-1"}
    assert labels["2"]["hgc.arch"] == "arm64" and labels["1"]["hgc.arch"] != "arm64"
    assert labels["1"]["hgc.role"] == "edge"
    single = engine_labels(1, 2)
    assert {"hgc.edge-0", "hgc.edge-1", "hgc.master"} <= set(single["0"])
    with pytest.raises(EngineError, match="--arm64"):
        engine_labels(3, 3, arm64=[3])
    with pytest.raises(EngineError, match="--engines 0"):
        EngineSwarm(0)
    with pytest.raises(EngineError, match="--prefix"):
        EngineSwarm(2, prefix="bad-prefix")
