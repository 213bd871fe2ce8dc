"""``hgc compose`` and the container entry point's pure parts, without Docker: the checked-in
default stack is what the generator makes, profiles become CPU limits and tc settings, and
bad input is refused with a message naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from common.coding import code_from_spec
from common.runtime.shaping import Shape
from common.scenario import load_scenario
from hgc.cli import main
from hgc.compose.generate import GenerateError, prometheus_config
from hgc.testbed import config as nodeconfig
from services.common.entrypoint import EntrypointError, mechanisms, plan_from_env
from services.master.config import parse_config
from tests.system.docker_helpers import COMPOSE_DIR, ROOT

pytestmark = pytest.mark.timeout(120)
HOMOGENEOUS = str(ROOT / "scenarios" / "homogeneous.yaml")
HETEROGENEOUS = ROOT / "scenarios" / "heterogeneous.yaml"
TRACE = ROOT / "scenarios" / "trace-replay.yaml"


def generate(tmp_path: Path, *args: str, scenario: str = HOMOGENEOUS) -> dict:
    out = tmp_path / "default.yaml"
    assert main(["compose", scenario, "-o", str(out), *args]) == 0
    return yaml.safe_load(out.read_text())


def test_checked_in_default_stack_is_up_to_date(tmp_path: Path) -> None:
    stack = generate(tmp_path)
    # Written outside the project, the stack points at it by absolute path and keeps its run
    # folder beside itself; checked in, both are relative (the only differences).
    master = stack["services"]["master"]
    assert master["build"]["context"] == str(ROOT)
    assert master["volumes"] == ["${HGC_RUNS_DIR:-./runs/default}:/out"]
    master["build"]["context"] = ".."
    master["volumes"] = ["${HGC_RUNS_DIR:-../runs/default}:/out"]
    assert stack == yaml.safe_load((COMPOSE_DIR / "default.yaml").read_text())
    for rel in ("default.master.json",):
        assert json.loads((tmp_path / rel).read_text()) == json.loads(
            (COMPOSE_DIR / rel).read_text()
        )
    assert (tmp_path / "prometheus" / "prometheus.yml").read_text() == (
        COMPOSE_DIR / "prometheus" / "prometheus.yml"
    ).read_text()


def test_one_service_per_node_with_profiles(tmp_path: Path) -> None:
    services = generate(tmp_path)["services"]
    nodes = [s for s, v in services.items() if "hgc.node" in v["labels"]]
    assert len(nodes) == 13 and {"prometheus", "grafana"} <= set(services)
    w = services["worker-1-2"]
    assert w["deploy"]["resources"]["limits"]["cpus"] == "0.50"  # rpi4: cpu_fraction 0.5
    assert w["environment"]["HGC_SHAPE_RATE_BPS"] == "1.25e+07"  # lan: 100 Mbit/s
    assert w["environment"]["HGC_EDGE_ADDR"] == "tcp://edge-1:5555"
    assert "HGC_SHAPE_PEER" not in w["environment"]  # a worker talks only to its edge
    assert w["cap_add"] == ["NET_ADMIN"]
    e = services["edge-1"]
    assert e["environment"]["HGC_SHAPE_PEER"] == "master"
    assert "resources" not in e["deploy"]  # laptop: full CPU, no limit
    assert e["deploy"]["placement"]["constraints"] == ["node.labels.hgc.edge-1==true"]
    assert services["master"]["environment"]["HGC_CONFIG"] == "/etc/hgc/master.json"


def test_in_process_network_turns_tc_off(tmp_path: Path) -> None:
    services = generate(tmp_path, "--network", "in-process")["services"]
    env = services["worker-0-0"]["environment"]
    assert env["HGC_SHAPING"] == "off" and "HGC_SHAPE_RATE_BPS" not in env
    config = json.loads((tmp_path / "default.master.json").read_text())
    assert config["emulation_spec"]["worker-0-0"]["link"]["bandwidth_bytes_per_s"] == 1.25e7


def test_flat_scheme_and_heterogeneous_scenario(tmp_path: Path) -> None:
    generate(tmp_path, "--scheme", "flat-frc")
    config = json.loads((tmp_path / "default.master.json").read_text())
    assert config["code_spec"]["scheme"] == "flat-frc" and "s" in config["code_spec"]
    stack = generate(tmp_path, scenario=str(ROOT / "scenarios" / "heterogeneous.yaml"))
    assert len([s for s in stack["services"] if s.startswith("worker-")]) >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheme", "hgc-best"], "--scheme 'hgc-best'"),
        (["--network", "carrier-pigeon"], "--network"),
        (["--iterations", "0"], "--iterations 0"),
    ],
)
def test_bad_options_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["compose", HOMOGENEOUS, "-o", str(tmp_path / "x.yaml"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_bad_paths_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compose", HOMOGENEOUS, "-o", str(tmp_path / "x.json")]) == 2
    assert "must end in .yaml" in capsys.readouterr().err
    assert main(["compose", str(tmp_path / "none.yaml"), "-o", str(tmp_path / "x.yaml")]) == 2
    assert "none.yaml" in capsys.readouterr().err


def test_entrypoint_reads_the_shape_and_names_bad_variables() -> None:
    plan = plan_from_env(
        {"HGC_SHAPE_RATE_BPS": "125000", "HGC_SHAPE_DELAY_S": "0.02", "HGC_SHAPE_PEER": "master"}
    )
    assert plan.shape == Shape(rate_bytes_per_s=125000.0, peer="master", delay_s=0.02)
    assert plan.enabled and plan.dev == "eth0"
    for env, name in [
        ({"HGC_SHAPE_RATE_BPS": "x"}, "HGC_SHAPE_RATE_BPS"),
        ({"HGC_SHAPE_LOSS": "1.5"}, "HGC_SHAPE_LOSS"),
        ({"HGC_SHAPING": "on"}, "HGC_SHAPING"),
    ]:
        with pytest.raises(EntrypointError, match=name):
            plan_from_env(env)


def test_mechanisms_report_what_the_kernel_does_and_what_is_left() -> None:
    rate_and_delay = Shape(rate_bytes_per_s=1e6, delay_s=0.01)
    assert mechanisms(rate_and_delay, netem=False) == (["tbf"], True)
    assert mechanisms(rate_and_delay, netem=True) == (["tbf", "netem"], False)
    to_master = Shape(rate_bytes_per_s=1e6, peer="master")
    assert mechanisms(to_master, netem=False) == (["htb"], False)
    assert mechanisms(Shape(), netem=True) == ([], False)


def node_services(stack: dict) -> dict[str, dict]:
    return {k: v for k, v in stack["services"].items() if "hgc.node" in v["labels"]}


@pytest.mark.parametrize("scheme", ["hgc-jncss", "hgc-hetero"])
def test_optimised_scheme_gets_only_the_selected_nodes(tmp_path: Path, scheme: str) -> None:
    """The launcher's plan and node map decide the services; the master config is the
    launcher's for the same scheme (kernel network = tc does the rate: link mode no-rate)."""
    scenario = load_scenario(HETEROGENEOUS)
    plan = nodeconfig.scenario_plan(scenario, scheme)
    names = nodeconfig.NodeMap.of(plan)
    services = node_services(generate(tmp_path, "--scheme", scheme, scenario=str(HETEROGENEOUS)))

    assert list(services) == list(names.to_topology.values())
    assert set(services) < set(scenario.node_names())  # the planner dropped some nodes
    for name, svc in services.items():
        env = svc["environment"]
        if env["HGC_ROLE"] == "edge":
            assert names(f"edge-{env['HGC_EDGE']}") == name
        elif env["HGC_ROLE"] == "worker":
            assert names(f"worker-{env['HGC_EDGE']}-{env['HGC_WORKER']}") == name
            topo_edge = name.rsplit("-", 1)[0].replace("worker", "edge")
            assert env["HGC_EDGE_ADDR"] == f"tcp://{topo_edge}:5555"
            device = scenario.worker_profile(*map(int, name.split("-")[1:]))
            limits = svc["deploy"].get("resources", {}).get("limits", {})
            assert limits.get("cpus") == (
                f"{device.cpu_fraction:.2f}" if device.cpu_fraction < 1.0 else None
            )

    config = json.loads((tmp_path / "default.master.json").read_text())
    launcher = nodeconfig.master_config(scenario, plan, scenario.training.iterations, "no-rate")
    assert config == json.loads(json.dumps(launcher))
    code = code_from_spec(config["code_spec"])
    assert dict(code.spec()) == config["code_spec"]
    training, _ = parse_config(config)  # what the master does with it at start-up
    assert training.code_spec == config["code_spec"]
    per_edge = [len(w) for w in plan.workers]
    assert list(code.workers_per_edge) == per_edge
    workers = [n for n in services if n.startswith("worker-")]
    assert len(workers) == sum(per_edge) == len([k for k in config["emulation_spec"] if "w" in k])

    prom = yaml.safe_load((tmp_path / "prometheus" / "prometheus.yml").read_text())
    targets = {t["labels"]["node"] for job in prom["scrape_configs"] for t in job["static_configs"]}
    assert targets == set(services)


def test_fixed_scheme_keeps_every_node_at_its_own_position(tmp_path: Path) -> None:
    """Negative control for the test above: a fixed scheme drops nobody."""
    scenario = load_scenario(HETEROGENEOUS)
    services = node_services(generate(tmp_path, "--scheme", "hgc", scenario=str(HETEROGENEOUS)))
    assert sorted(services) == sorted(scenario.node_names())
    assert services["worker-3-2"]["environment"]["HGC_WORKER"] == "2"


@pytest.mark.parametrize("scheme", ["hgc", "hgc-hetero"])
def test_trace_stragglers_ship_in_the_emulation_spec(tmp_path: Path, scheme: str) -> None:
    """Each selected worker replays its own scenario column of the trace."""
    scenario = load_scenario(TRACE)
    assert scenario.straggler.kind == "trace" and scenario.straggler.trace is not None
    generate(tmp_path, "--scheme", scheme, scenario=str(TRACE))
    config = json.loads((tmp_path / "default.master.json").read_text())
    names = nodeconfig.NodeMap.of(nodeconfig.scenario_plan(scenario, scheme))
    flat = {n: k for k, n in enumerate(x for x in scenario.node_names() if x.startswith("w"))}
    workers = {k: v for k, v in config["emulation_spec"].items() if k.startswith("worker-")}
    assert workers
    for node, entry in workers.items():
        column = scenario.straggler.trace[:, [flat[names(node)]]].tolist()
        assert entry["straggler"]["kind"] == "trace"
        assert entry["straggler"]["trace"] == column


def test_prometheus_targets_refuse_nodes_outside_the_scenario() -> None:
    with pytest.raises(GenerateError, match="worker-9-9"):
        prometheus_config(load_scenario(HOMOGENEOUS), nodes=["master", "worker-9-9"])
