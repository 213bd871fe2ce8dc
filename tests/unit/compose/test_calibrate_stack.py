"""``hgc calibrate --stack`` without Docker: the probe stacks are the generator's (every node,
the probe scheme, the record in the run folder, no monitoring), the engine drivers issue the
documented docker commands and always remove the stack, a failed master is an error naming
the stack, the records are read as the local probe reads them, and bad flags are refused.
The docker CLI is replaced by a recording fake (the real engine: docs/simulator.md, the
command run by hand in the report; the generator's stacks on a real engine:
tests/system/test_compose_adaptive.py)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.scenario import parse_scenario
from hgc.cli import main
from hgc.testbed import calibrate as cal
from hgc.testbed import calibrate_stack as cs

SCENARIO: dict[str, Any] = {
    "name": "cal-unit",
    "seed": 4,
    "topology": {
        "workers_per_edge": [2, 2],
        "workers": {"device": "rpi4", "link": "lan"},
        "edges": {"device": "laptop", "uplink": "lan"},
    },
    "model": {"kind": "logreg"},
    "data": {"kind": "digits"},
    "training": {"iterations": 10},
    "code": {"s_e": 1, "s_w": 1},
    "faults": [{"iteration": 2, "node": "worker-0-0", "action": "kill"}],
}


@pytest.fixture
def scenario() -> Any:
    return parse_scenario(SCENARIO)


class FakeDocker:
    """Records every command; answers ``ps``/``wait``/``service ps`` as told, and plays the
    master by writing ``record`` rows into the run folder on ``up``/``deploy``."""

    def __init__(self, out: Path, exit_code: str = "0", states: Sequence[str] = ()) -> None:
        self.out = out
        self.calls: list[tuple[list[str], Path]] = []
        self.exit_code = exit_code
        self.states = list(states)

    def __call__(self, cmd: Sequence[str], timeout: float, cwd: Path) -> str:
        cmd = list(cmd)
        self.calls.append((cmd, cwd))
        if "up" in cmd or "deploy" in cmd:
            file = Path(cmd[cmd.index("-f" if "-f" in cmd else "-c") + 1])
            self.play_master(file)
        if cmd[:2] == ["docker", "wait"]:
            return self.exit_code + "\n"
        if "ps" in cmd and "-aq" in cmd:
            return "abc123\n"
        if cmd[:3] == ["docker", "service", "ps"]:
            return (self.states.pop(0) if self.states else "Complete 1 second ago|") + "\n"
        return ""

    def play_master(self, file: Path) -> None:
        stack = yaml.safe_load(file.read_text())
        env = stack["services"]["master"]["environment"]
        record = Path(env["HGC_RECORD"].replace("/out", str(self.out), 1))
        config = json.loads((file.parent / stack["configs"]["master-config"]["file"]).read_text())
        workers = [f"worker-{i}-{j}" for i in range(2) for j in range(2)]
        rows = []
        for it in range(config["training"]["iterations"]):
            rows.append(
                {
                    "scheme": record.parent.name, "names": "scenario",
                    "iteration": it, "attempt": 0, "ok": True, "duration_s": 0.3,
                    "edges_used": ["edge-0", "edge-1"],
                    "edge_arrivals_s": {"edge-0": 0.28, "edge-1": 0.29},
                    "worker_arrivals_s": {w: 0.1 + 0.01 * k + 0.001 * it
                                          for k, w in enumerate(workers)},
                }
            )  # fmt: skip
        record.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_probe_stack_is_the_generators_without_monitoring(scenario: Any, tmp_path: Path) -> None:
    probe = cal.probe_scenario(scenario)
    assert probe.schemes == ("uncoded", "worker-gc") and probe.faults == ()
    opts = cs.StackProbe(image="reg/hgc:1", network="in-process")
    file = cs.write_probe_stack(probe, "worker-gc", 12, tmp_path, opts)
    assert file == tmp_path / "stack" / "probe-worker-gc.yaml"
    stack = yaml.safe_load(file.read_text())
    services = stack["services"]
    assert set(services) == {"master", "edge-0", "edge-1"} | {
        f"worker-{i}-{j}" for i in range(2) for j in range(2)
    }
    assert not any("build" in s for s in services.values())  # prebuilt image: swarm-safe
    assert {s["image"] for s in services.values()} == {"${HGC_IMAGE:-reg/hgc:1}"}
    master = services["master"]
    assert master["environment"]["HGC_RECORD"] == "/out/worker-gc/record.jsonl"
    assert master["volumes"] == [f"${{HGC_RUNS_DIR:-{tmp_path.resolve()}}}:/out"]
    assert all(s["environment"]["HGC_METRICS_LINGER_S"] == "0" for s in services.values())
    # every config and secret the stack names is a file beside it
    for entry in [*stack["configs"].values(), *stack.get("secrets", {}).values()]:
        assert (file.parent / entry["file"]).is_file(), entry
    config = json.loads((file.parent / "probe-worker-gc.master.json").read_text())
    assert config["training"]["iterations"] == 12
    assert config["code_spec"]["s_w"] == 1  # the probe's second scheme: s_w = 1
    assert (tmp_path / "worker-gc").is_dir()


def test_compose_probe_runs_both_schemes_and_reads_their_records(
    scenario: Any, tmp_path: Path
) -> None:
    fake = FakeDocker(tmp_path)
    obs = cs.run_stack_probe(scenario, 15, tmp_path, cs.StackProbe(), run=fake)
    ups = [c for c, _ in fake.calls if "up" in c]
    downs = [c for c, _ in fake.calls if "down" in c]
    assert len(ups) == len(downs) == 2
    assert all("--no-build" in c for c in ups)
    assert [c[c.index("-f") + 1].rsplit("/", 1)[1] for c in ups] == [
        "probe-uncoded.yaml",
        "probe-worker-gc.yaml",
    ]
    assert all(cwd == tmp_path / "stack" for _, cwd in fake.calls)
    # both probes' records went in: 15 rows per worker per scheme, the two loads
    for rows in obs.workers.values():
        assert len(rows) == 30
        assert len({load for _, _, load in rows}) == 2
    assert len(obs.iteration_s) == 15  # timing from the uncoded probe only
    assert set(obs.uplink_hops) == {"edge-0", "edge-1"}


def test_a_failed_master_is_an_error_and_the_stack_is_still_removed(
    scenario: Any, tmp_path: Path
) -> None:
    fake = FakeDocker(tmp_path, exit_code="3")
    with pytest.raises(cs.StackProbeError, match="the master exited 3"):
        cs.run_stack_probe(scenario, 10, tmp_path, cs.StackProbe(), run=fake)
    assert "down" in fake.calls[-1][0]


def test_swarm_probe_deploys_waits_and_removes(scenario: Any, tmp_path: Path) -> None:
    fake = FakeDocker(tmp_path, states=["Running 2 seconds ago|", "Complete 1 second ago|"])
    cs.run_stack_probe(scenario, 10, tmp_path, cs.StackProbe(engine="swarm"), run=fake, poll_s=0)
    deploys = [c for c, _ in fake.calls if "deploy" in c]
    assert len(deploys) == 2 and all("--resolve-image" in c for c in deploys)
    assert [c for c, _ in fake.calls if c[:3] == ["docker", "stack", "rm"]]
    failed = FakeDocker(tmp_path, states=["Failed 1 second ago|task: non-zero exit (2)"])
    with pytest.raises(cs.StackProbeError, match="non-zero exit"):
        cs.run_stack_probe(scenario, 10, tmp_path, cs.StackProbe(engine="swarm"), run=failed)
    assert failed.calls[-1][0][:3] == ["docker", "stack", "rm"]


def test_no_record_is_an_error_naming_the_file(scenario: Any, tmp_path: Path) -> None:
    class Silent(FakeDocker):
        def play_master(self, file: Path) -> None:
            pass

    with pytest.raises(cs.StackProbeError, match="record.jsonl: the master wrote no record"):
        cs.run_stack_probe(scenario, 10, tmp_path, cs.StackProbe(), run=Silent(tmp_path))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "x"], "--image: only with --stack"),
        (["--network", "off"], "--network: only with --stack"),
        (["--stack", "compose", "--network", "pigeon"], "--network 'pigeon'"),
        (["--stack", "k8s"], "invalid choice: 'k8s'"),
    ],
)
def test_bad_flags_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    with pytest.raises(SystemExit) if "k8s" in args else contextlib.nullcontext():
        code = main(["calibrate", str(path), "--out", str(tmp_path / "o"), *args])
        assert code == 2
    assert message in capsys.readouterr().err
