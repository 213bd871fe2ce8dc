"""Loading from files: the shipped scenarios, YAML errors, traces, relative paths."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from common.scenario import ScenarioError, load_scenario

from ..learning.test_datasets import write_mnist_dir
from .helpers import base, with_field

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_the_three_required_scenarios_are_shipped() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"homogeneous", "heterogeneous", "no-stragglers"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    sc = load_scenario(path)
    model = sc.system_model()
    assert sc.name == path.stem
    assert model.workers_per_edge == sc.workers_per_edge
    assert [len(w) for w in model.workers] == list(sc.workers_per_edge)
    assert len(model.edges) == sc.n_edges
    assert model.gradient_bytes == sc.n_params * 8 > 0
    assert all(w.shift_s > 0 and w.rate > 0 for edge in model.workers for w in edge)


def test_heterogeneous_mixes_devices_and_has_a_slow_uplink() -> None:
    sc = load_scenario(ROOT / "scenarios" / "heterogeneous.yaml")
    devices = {w.device for edge in sc.system_model().workers for w in edge}
    assert {"laptop", "rpi4", "rpi3"} <= devices
    bandwidths = [e.uplink.bandwidth_bytes_per_s for e in sc.system_model().edges]
    assert min(bandwidths) < 0.1 * max(bandwidths)
    assert sc.n_edges >= 4


def test_no_stragglers_is_deterministic() -> None:
    model = load_scenario(ROOT / "scenarios" / "no-stragglers.yaml").system_model()
    for edge in model.workers:
        for w in edge:
            assert math.isinf(w.rate)  # no exponential tail
            assert w.link.is_deterministic
    assert all(e.uplink.is_deterministic for e in model.edges)


def test_shipped_compute_scale_fits_a_real_run() -> None:
    # A real run emulates each device; the hgc load of a shipped scenario should cost tens to a
    # few hundred ms of modelled compute per iteration (mean of the slowest worker).
    for name in ("homogeneous", "heterogeneous"):
        sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
        load = (sc.code.s_e + 1) * (sc.code.s_w + 1) / sc.n_workers
        worst = max(w.shift_s * load + load / w.rate for e in sc.system_model().workers for w in e)
        assert 0.05 <= worst <= 0.5, (name, worst)


def _write(tmp_path: Path, doc: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    doc = base()
    del doc["name"]
    assert load_scenario(_write(tmp_path, doc, "my-cluster.yaml")).name == "my-cluster"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "is empty"),
        ("topology: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "must be a mapping"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "absent.yaml")


# ---- traces --------------------------------------------------------------------------------


def _trace_doc(path: str) -> dict:
    doc = with_field(base(), "topology.workers_per_edge", [2, 1])
    doc = with_field(doc, "topology.overrides", {})
    doc = with_field(doc, "faults", [])
    doc = with_field(doc, "code", {"s_e": 0, "s_w": 0})
    return with_field(doc, "stragglers", {"kind": "trace", "path": path, "load": 0.5})


GOOD_TRACE = """iteration,node,seconds
0,worker-0-0,0.1
0,worker-0-1,0.2
0,worker-1-0,0.3
1,worker-1-0,0.6
1,worker-0-1,0.5
1,worker-0-0,0.4
"""


def test_trace_relative_to_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "t.csv").write_text(GOOD_TRACE)
    sc = load_scenario(_write(tmp_path, _trace_doc("traces/t.csv")))
    straggler = sc.system_model().straggler
    assert straggler.kind == "trace" and straggler.trace_load == 0.5
    assert straggler.trace is not None
    np.testing.assert_array_equal(straggler.trace, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("iter,node,s\n0,worker-0-0,1\n", "first line must be the header"),
        (
            GOOD_TRACE.replace("1,worker-0-0,0.4\n", ""),
            "1 missing cells .* iteration 1, node worker-0-0",
        ),
        (GOOD_TRACE + "1,worker-0-0,0.9\n", "duplicate row for iteration 1"),
        (GOOD_TRACE + "2,worker-2-0,0.9\n", "no node 'worker-2-0'"),
        (GOOD_TRACE + "2,edge-0,0.9\n", "trace rows are worker times"),
        (GOOD_TRACE + "2,worker-0-0,fast\n", "bad iteration or seconds"),
        (GOOD_TRACE + "2,worker-0-0,-1\n", "seconds >= 0"),
        (GOOD_TRACE + "2,worker-0-0\n", "expected 3 columns"),
        ("iteration,node,seconds\n", "no rows"),
    ],
)
def test_bad_traces(tmp_path: Path, body: str, match: str) -> None:
    (tmp_path / "t.csv").write_text(body)
    with pytest.raises(ScenarioError, match=match) as info:
        load_scenario(_write(tmp_path, _trace_doc("t.csv")))
    assert info.value.field.startswith("stragglers.path")


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="stragglers.path: cannot read trace"):
        load_scenario(_write(tmp_path, _trace_doc("nope.csv")))


def test_mnist_path_relative_to_scenario_file(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path / "data" / "mnist", n_train=20)
    doc = with_field(base(), "data", {"kind": "mnist", "path": "data/mnist"})
    doc = with_field(doc, "topology.workers_per_edge", [2, 2, 2])
    doc = with_field(doc, "topology.overrides", {})
    sc = load_scenario(_write(tmp_path, doc))
    assert Path(sc.data_spec["path"]) == tmp_path / "data" / "mnist"
    assert (sc.n_train, sc.n_features, sc.n_classes) == (20, 12, 10)
