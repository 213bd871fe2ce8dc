"""``hgc compose --scheme hgc-adaptive`` without Docker: every node of the topology gets a
service at its own position (the plan in force picks among them at run time), the master's
configuration is the launcher's (``adaptive`` section, emulation per topology name with the
``set-device`` / ``set-link`` drift), keys and scrape targets cover every node, and the same
file is a valid swarm stack (placement by label, no top-level name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.scenario import load_scenario
from hgc.cli import main
from hgc.commands.compose import PROJECT_ROOT
from hgc.compose.generate import (
    GenerateError,
    StackOptions,
    build_stack,
    key_nodes,
    master_config,
    plan_stack,
    stack_nodes,
)
from hgc.testbed import config as nodeconfig

DRIFTING = PROJECT_ROOT / "scenarios" / "drifting.yaml"
HETEROGENEOUS = PROJECT_ROOT / "scenarios" / "heterogeneous.yaml"


def node_services(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in stack["services"].items() if "hgc.node" in v["labels"]}


@pytest.fixture(scope="module")
def drifting() -> Any:
    return load_scenario(DRIFTING)


def test_adaptive_stack_runs_every_node_at_its_topology_position(drifting: Any) -> None:
    opts = StackOptions(scheme="hgc-adaptive", network="in-process")
    plan = plan_stack(drifting, opts)
    assert nodeconfig.is_adaptive(plan)
    services = node_services(build_stack(drifting, opts, plan))
    assert sorted(services) == sorted(drifting.node_names())
    for name, svc in services.items():
        env = svc["environment"]
        if env["HGC_ROLE"] == "edge":
            assert name == f"edge-{env['HGC_EDGE']}"
        elif env["HGC_ROLE"] == "worker":
            assert name == f"worker-{env['HGC_EDGE']}-{env['HGC_WORKER']}"
            assert env["HGC_EDGE_ADDR"] == f"tcp://edge-{env['HGC_EDGE']}:5555"
    # the CPU limit of each node is its own device's (worker-1-0: laptop, the others rpi4)
    limits = {
        n: s["deploy"].get("resources", {}).get("limits", {}).get("cpus")
        for n, s in services.items()
    }
    assert limits["worker-1-0"] is None  # laptop: a whole CPU, no limit
    rpi4 = drifting.worker_profile(2, 0).cpu_fraction
    assert rpi4 < 1.0 and limits["worker-2-0"] == f"{rpi4:.2f}"
    # names cover every node, the keys too (a tree over the whole topology)
    assert set(stack_nodes(plan, drifting).to_topology.values()) == set(services)
    assert set(key_nodes(plan, drifting)) == set(services)
    # Negative control: without the scenario the full layout cannot be known: refused.
    with pytest.raises(GenerateError, match="hgc-adaptive"):
        key_nodes(plan)
    with pytest.raises(GenerateError, match="hgc-adaptive"):
        stack_nodes(plan)


def test_adaptive_master_config_is_the_launchers(drifting: Any) -> None:
    opts = StackOptions(scheme="hgc-adaptive", network="in-process")
    plan = plan_stack(drifting, opts)
    config = master_config(drifting, opts, plan)
    launcher = nodeconfig.master_config(drifting, plan, drifting.training.iterations, "full")
    assert json.loads(json.dumps(config)) == json.loads(json.dumps(launcher))
    assert config["adaptive"]["workers_per_edge"] == [3, 3, 3]
    assert config["adaptive"]["plan"]["scheme"] != "uncoded"  # the optimiser's initial plan
    emulation = config["emulation_spec"]
    # every node emulated under its topology name, drift included
    assert set(emulation) == set(drifting.node_names()) - {"master"}
    faults = {(f.node, f.action): f.iteration for f in drifting.faults}
    assert emulation["worker-1-0"]["changes"][0]["iteration"] == faults["worker-1-0", "set-device"]
    assert emulation["edge-0"]["link_changes"][0]["iteration"] == faults["edge-0", "set-link"]
    assert "changes" not in emulation["worker-1-1"]  # only the drifting worker


def test_cli_writes_an_adaptive_stack_that_is_a_swarm_stack_too(tmp_path: Path) -> None:
    out = tmp_path / "drift.yaml"
    args = ["compose", str(DRIFTING), "-o", str(out), "--scheme", "hgc-adaptive", "--offline"]
    assert main(args) == 0
    stack = yaml.safe_load(out.read_text())
    scenario = load_scenario(DRIFTING)
    services = node_services(stack)
    assert sorted(services) == sorted(scenario.node_names())
    assert "name" not in stack  # docker stack deploy refuses a top-level name
    for name, svc in services.items():
        (constraint,) = svc["deploy"]["placement"]["constraints"]
        edge = "master" if name == "master" else "edge-" + name.split("-")[1]
        assert constraint == f"node.labels.hgc.{edge}==true"
        assert svc["deploy"]["restart_policy"] == {"condition": "none"}
    config = json.loads((tmp_path / "drift.master.json").read_text())
    assert "adaptive" in config
    assert json.loads((tmp_path / "drift.run.json").read_text())["scheme"] == "hgc-adaptive"
    prom = yaml.safe_load((tmp_path / "prometheus" / "drift.yml").read_text())
    targets = {t["labels"]["node"] for j in prom["scrape_configs"] for t in j["static_configs"]}
    assert targets == set(services)
    keys = {p.name for p in (tmp_path / "drift.keys" / "nodes").iterdir()}
    assert keys == set(services)  # cluster names = topology names for hgc-adaptive
    # every key the services mount exists in the stack's top-level secrets/configs
    for svc in services.values():
        for secret in svc["secrets"]:
            assert secret["source"] in stack["secrets"]
        for cfg in svc["configs"]:
            assert cfg["source"] in stack["configs"]


def test_optimised_scheme_still_drops_nodes(tmp_path: Path) -> None:
    """Negative control: hgc-jncss's stack has only the selected nodes (not every node)."""
    scenario = load_scenario(HETEROGENEOUS)
    jncss = node_services(build_stack(scenario, StackOptions(scheme="hgc-jncss")))
    adaptive = node_services(build_stack(scenario, StackOptions(scheme="hgc-adaptive")))
    assert set(jncss) < set(adaptive) == set(scenario.node_names())


def test_dashboard_has_the_plan_switch_panels() -> None:
    board = json.loads((PROJECT_ROOT / "compose/grafana/dashboards/hgc.json").read_text())
    exprs = {t["expr"] for p in board["panels"] for t in p["targets"]}
    assert "max(hgc_master_plan_switches_total)" in exprs
    assert "max(hgc_master_plan_epoch)" in exprs
    assert "max by (node) (hgc_master_node_selected)" in exprs  # the plan in force
