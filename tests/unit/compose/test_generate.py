"""The compose generator's branches without Docker: one image built once, the offline stack
(local Prometheus, no Grafana) against the online one, and a stack written anywhere that
names only files that exist beside it or absolute paths."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.scenario import load_scenario
from hgc.cli import main
from hgc.commands.compose import PROJECT_ROOT
from hgc.compose.generate import (
    GRAFANA_IMAGE,
    LOCAL_PROMETHEUS_IMAGE,
    PROMETHEUS_IMAGE,
    GenerateError,
    StackOptions,
    build_stack,
)

SCENARIO = PROJECT_ROOT / "scenarios" / "homogeneous.yaml"


@pytest.fixture(scope="module")
def scenario() -> Any:
    return load_scenario(SCENARIO)


def nodes(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in stack["services"].items() if "hgc.node" in v["labels"]}


def test_one_image_built_once_by_the_master_service(scenario: Any) -> None:
    stack = build_stack(scenario, StackOptions())
    services = nodes(stack)
    assert len(services) == 13
    assert [name for name, s in services.items() if "build" in s] == ["master"]
    assert {s["image"] for s in services.values()} == {"${HGC_IMAGE:-hgc-edge:latest}"}
    prebuilt = build_stack(scenario, StackOptions(build_context=None, image="reg/hgc:1"))
    assert not any("build" in s for s in prebuilt["services"].values())
    assert {s["image"] for s in nodes(prebuilt).values()} == {"${HGC_IMAGE:-reg/hgc:1}"}


def test_online_stack_has_official_images_and_provisioned_grafana(scenario: Any) -> None:
    stack = build_stack(scenario, StackOptions())
    services = stack["services"]
    assert services["prometheus"]["image"] == f"${{HGC_PROMETHEUS_IMAGE:-{PROMETHEUS_IMAGE}}}"
    assert services["grafana"]["image"] == f"${{HGC_GRAFANA_IMAGE:-{GRAFANA_IMAGE}}}"
    sources = {c["source"] for c in services["grafana"]["configs"]}
    assert sources == {"grafana-datasource", "grafana-dashboards", "grafana-dashboard-hgc"}
    assert sources <= set(stack["configs"])


def test_offline_stack_has_local_prometheus_and_no_grafana(scenario: Any) -> None:
    stack = build_stack(scenario, StackOptions(offline=True))
    services = stack["services"]
    assert "grafana" not in services
    assert not any(name.startswith("grafana") for name in stack["configs"])
    image = f"${{HGC_PROMETHEUS_IMAGE:-{LOCAL_PROMETHEUS_IMAGE}}}"
    assert services["prometheus"]["image"] == image
    assert len(nodes(stack)) == 13  # the rest of the stack is unchanged


def test_nodes_linger_and_the_master_records_to_the_host(scenario: Any) -> None:
    stack = build_stack(scenario, StackOptions(metrics_linger_s=7.5, runs_dir="/data/r"))
    for service in nodes(stack).values():
        assert service["environment"]["HGC_METRICS_LINGER_S"] == "7.5"
    master = stack["services"]["master"]
    assert master["volumes"] == ["${HGC_RUNS_DIR:-/data/r}:/out"]
    assert master["environment"]["HGC_RECORD"] == "/out/hgc/record.jsonl"
    # the checkpoint beside it, on the host: a master container started again resumes
    assert master["environment"]["HGC_CHECKPOINT"] == "/out/hgc/checkpoint.npz"
    with pytest.raises(GenerateError, match="--metrics-linger-s"):
        build_stack(scenario, StackOptions(metrics_linger_s=-1))


def referenced_files(stack: dict[str, Any]) -> list[str]:
    return [
        entry["file"] for key in ("configs", "secrets") for entry in stack.get(key, {}).values()
    ]


@pytest.mark.parametrize("offline", [False, True])
def test_relative_output_elsewhere_is_a_complete_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: bool
) -> None:
    """``-o`` relative to the caller's directory, outside the project: the build context is
    the project by absolute path, and every file the stack names exists beside it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    args = ["compose", str(SCENARIO), "-o", "sub/my.yaml", *(["--offline"] if offline else [])]
    assert main(args) == 0
    out = tmp_path / "sub" / "my.yaml"
    stack = yaml.safe_load(out.read_text())
    master = stack["services"]["master"]
    assert master["build"]["context"] == str(PROJECT_ROOT)
    assert Path(master["build"]["context"], "Dockerfile").is_file()
    assert master["volumes"] == ["${HGC_RUNS_DIR:-./runs/my}:/out"]
    files = referenced_files(stack)
    assert "./prometheus/rules.yml" in files and "./prometheus/my.yml" in files
    assert any(f.startswith("./grafana/") for f in files) != offline
    for name in files:
        assert (out.parent / name).is_file(), name
    rules = (out.parent / "prometheus" / "rules.yml").read_text()
    assert rules == (PROJECT_ROOT / "compose" / "prometheus" / "rules.yml").read_text()
    assert (out.parent / "grafana").exists() != offline
    info = json.loads((out.parent / "my.run.json").read_text())
    assert info["scenario"] == str(SCENARIO) and info["scheme"] == "hgc"
    header = out.read_text().splitlines()[:6]
    assert any("grafana: left out" in line for line in header) == offline


def test_output_inside_the_project_stays_relative(tmp_path: Path) -> None:
    """The checked-in stack: build context and run folder relative, so any checkout works."""
    stack = yaml.safe_load((PROJECT_ROOT / "compose" / "default.yaml").read_text())
    master = stack["services"]["master"]
    assert master["build"]["context"] == ".."
    assert master["volumes"] == ["${HGC_RUNS_DIR:-../runs/default}:/out"]
    info = json.loads((PROJECT_ROOT / "compose" / "default.run.json").read_text())
    assert info == {"scenario": "../scenarios/homogeneous.yaml", "scheme": "hgc", "iterations": 30}
    for name in referenced_files(stack):
        if ".keys/" not in name:  # keys are written by `make up` / hgc keys, not checked in
            assert (PROJECT_ROOT / "compose" / name).is_file(), name


def test_no_build_and_bad_linger_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.yaml"
    assert main(["compose", str(SCENARIO), "-o", str(out), "--no-build", "--image", "r/x:1"]) == 0
    stack = yaml.safe_load(out.read_text())
    assert not any("build" in s for s in stack["services"].values())
    bad = ["compose", str(SCENARIO), "-o", str(tmp_path / "t.yaml"), "--metrics-linger-s", "-2"]
    assert main(bad) == 2
    assert "--metrics-linger-s" in capsys.readouterr().err
    assert not (tmp_path / "t.yaml").exists()
    assert os.path.isdir(tmp_path)
