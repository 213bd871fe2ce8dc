"""Valid scenarios parse into the right model; every bad-input class is rejected with a message
that names the dotted field and what is allowed."""

from __future__ import annotations

import math
from typing import Any

import pytest

from common.scenario import ScenarioError, parse_scenario

from .helpers import DELETE, base, with_field


def test_base_scenario_is_valid_and_resolves_profiles() -> None:
    sc = parse_scenario(base())
    assert sc.workers_per_edge == (3, 3, 3)
    assert sc.worker_profile(0, 0).device == "rpi4"
    assert sc.worker_profile(0, 1).device == "fast"
    assert sc.worker_profile(0, 1).shift_s == 0.05 and sc.worker_profile(0, 1).rate == 20.0
    assert sc.edge_profile(2).uplink.bandwidth_bytes_per_s == 2e6 / 8
    assert sc.edge_profile(2).uplink.latency_s == 0.05
    assert sc.edge_profile(0).combine_s_per_byte == 1e-9
    assert sc.code.s_e == 1 and sc.code.s_w == 1 and sc.code.s == 2 and sc.code.K is None
    assert sc.faults[0].node == "worker-1-1" and sc.faults[0].factor == 3.0
    assert sc.ports.metrics_base_port is None
    assert sc.gradient_bytes == 650 * 8


def test_defaults_fill_a_minimal_scenario() -> None:
    sc = parse_scenario({"topology": {"workers_per_edge": [2, 2]}})
    assert sc.name == "scenario" and sc.seed == 0
    assert sc.model_spec == {"kind": "logreg", "l2": 0.0}
    assert sc.data_spec["kind"] == "digits"
    assert sc.training.on_failure == "retry" and sc.emulation.compute == "delay"
    assert "hgc-jncss" in sc.schemes and "ignore" not in sc.schemes
    assert sc.code.s_e == 0 and sc.code.s_w == 0 and sc.code.s == 0


def test_system_model_shapes() -> None:
    sc = parse_scenario(with_field(base(), "topology.workers_per_edge", [2, 4, 3]))
    model = sc.system_model()
    assert model.n_edges == 3 and model.workers_per_edge == (2, 4, 3) and model.n_workers == 9
    assert len(model.edges) == 3 and [len(w) for w in model.workers] == [2, 4, 3]
    assert model.gradient_bytes == sc.n_params * 8
    assert model.straggler.kind == "shifted-exponential"


def test_compute_scale_scales_shift_and_rate() -> None:
    one = parse_scenario(base()).worker_profile(0, 0)
    two = parse_scenario(with_field(base(), "topology.compute_scale", 2.0)).worker_profile(0, 0)
    assert two.shift_s == pytest.approx(2 * one.shift_s)
    assert two.rate == pytest.approx(one.rate / 2)


def test_mlp_gradient_bytes() -> None:
    sc = parse_scenario(with_field(base(), "model", {"kind": "mlp", "hidden": 16}))
    assert sc.gradient_bytes == (64 * 16 + 16 + 16 * 10 + 10) * 8


def test_speed_relative_device() -> None:
    doc = with_field(base(), "topology.devices.half", {"speed": 0.5})
    doc = with_field(doc, "topology.overrides.worker-2-0", {"device": "half"})
    profile = parse_scenario(doc).worker_profile(2, 0)
    assert profile.shift_s == pytest.approx(0.2) and profile.rate == pytest.approx(5.0)


def test_markov_stragglers() -> None:
    doc = with_field(
        base(), "stragglers", {"kind": "markov", "p_slow": 0.1, "p_recover": 0.5, "slowdown": 4}
    )
    model = parse_scenario(doc).system_model().straggler
    assert (model.kind, model.p_slow, model.p_recover, model.slowdown) == ("markov", 0.1, 0.5, 4.0)


def test_fixed_metrics_port() -> None:
    assert (
        parse_scenario(with_field(base(), "ports.metrics_base_port", 9100)).ports.metrics_base_port
        == 9100
    )


def test_unlimited_bandwidth() -> None:
    doc = with_field(base(), "topology.links.free", {"bandwidth": "unlimited"})
    doc = with_field(doc, "topology.edges.uplink", "free")
    assert math.isinf(parse_scenario(doc).edge_profile(0).uplink.bandwidth_bytes_per_s)


# (dotted field to change, new value, expected start of message, expected phrase)
BAD: list[tuple[str, Any, str, str]] = [
    # unknown keys, at every level, list what is allowed
    ("colour", "red", "colour: unknown key", "allowed keys: adaptive, code, data"),
    ("topology.edge_count", 3, "topology.edge_count: unknown key", "allowed keys"),
    ("training.epochs", 3, "training.epochs: unknown key", "learning_rate"),
    ("code.t", 1, "code.t: unknown key", "s_e, s_w"),
    ("topology.links.slow.speed", 1, "topology.links.slow.speed: unknown key", "bandwidth"),
    ("topology.workers.cpu", 1, "topology.workers.cpu: unknown key", "device, link"),
    ("topology.overrides.edge-2.link", "lan", "topology.overrides.edge-2.link: unknown", "uplink"),
    ("emulation.gpu", True, "emulation.gpu: unknown key", "cpu_quota"),
    ("model.layers", 2, "model.layers: unknown key", "allowed keys: kind, l2"),
    ("data.rows", 2, "data.rows: unknown key", "test_fraction"),
    ("stragglers.p_slow", 0.1, "stragglers.p_slow: unknown key", "kind"),
    ("ports.http", 80, "ports.http: unknown key", "metrics_base_port"),
    ("faults.0.when", 1, "faults[0].when: unknown key", "iteration"),
    # wrong types
    ("topology.workers_per_edge", 3, "topology.workers_per_edge: must be a list", ""),
    (
        "topology.workers_per_edge",
        [3, "3", 3],
        "topology.workers_per_edge[1]: must be an integer",
        "",
    ),
    ("topology.workers_per_edge", [3, 2.5], "topology.workers_per_edge[1]: must be an integer", ""),
    (
        "topology.workers_per_edge",
        [3, True],
        "topology.workers_per_edge[1]: must be an integer",
        "",
    ),
    ("training.iterations", "ten", "training.iterations: must be an integer", "str"),
    ("training.learning_rate", "fast", "training.learning_rate: must be a number", ""),
    ("emulation.cpu_quota", "yes", "emulation.cpu_quota: must be true or false", ""),
    ("seed", -1, "seed: must be >= 0", ""),
    ("seed", 1.5, "seed: must be an integer", ""),
    ("name", "", "name: must be a non-empty string", ""),
    ("training", [1], "training: must be a mapping", ""),
    ("topology", None, "topology: must be a mapping", ""),
    ("schemes", "hgc", "schemes: must be a list", ""),
    ("faults", {"iteration": 1}, "faults: must be a list", ""),
    # missing required
    ("topology.workers_per_edge", DELETE, "topology.workers_per_edge: is required", ""),
    ("topology.workers_per_edge", [], "topology.workers_per_edge: must list at least one", ""),
    # out of range / negative rates
    ("topology.workers_per_edge", [3, 0, 3], "topology.workers_per_edge[1]: must be >= 1", ""),
    ("topology.devices.fast.rate", -2.0, "topology.devices.fast.rate: must be > 0.0", ""),
    ("topology.devices.fast.rate", 0, "topology.devices.fast.rate: must be > 0.0", ""),
    ("topology.devices.fast.shift_s", -0.1, "topology.devices.fast.shift_s: must be >= 0.0", ""),
    (
        "topology.devices.fast.cpu_fraction",
        1.5,
        "topology.devices.fast.cpu_fraction: must be <= 1",
        "",
    ),
    (
        "topology.devices.fast.cpu_fraction",
        0,
        "topology.devices.fast.cpu_fraction: must be > 0",
        "",
    ),
    (
        "topology.devices.fast.speed",
        2,
        "topology.devices.fast.shift_s: give either speed or shift_s",
        "",
    ),
    ("topology.devices.fast", {"rate": 1}, "topology.devices.fast.shift_s: is required", ""),
    ("topology.devices.9lives", {"speed": 1}, "topology.devices.9lives: names must start", ""),
    ("topology.links.slow.latency_s", -1, "topology.links.slow.latency_s: must be >= 0", ""),
    ("topology.links.slow.loss", 1.0, "topology.links.slow.loss: must be <= 0.99", ""),
    (
        "topology.edges.combine_s_per_byte",
        -1e-9,
        "topology.edges.combine_s_per_byte: must be >=",
        "",
    ),
    ("topology.compute_scale", 0, "topology.compute_scale: must be > 0", ""),
    ("training.iterations", 0, "training.iterations: must be >= 1", ""),
    ("training.learning_rate", 0, "training.learning_rate: must be > 0", ""),
    ("training.learning_rate", float("nan"), "training.learning_rate: must be a number", "NaN"),
    ("training.deadline_s", -1, "training.deadline_s: must be > 0", ""),
    ("training.max_retries", -1, "training.max_retries: must be >= 0", ""),
    (
        "stragglers",
        {"kind": "markov", "p_slow": 1.2, "p_recover": 0.5, "slowdown": 2},
        "stragglers.p_slow: must be <= 1",
        "",
    ),
    (
        "stragglers",
        {"kind": "markov", "p_slow": 0.1, "p_recover": 0.5, "slowdown": 0.5},
        "stragglers.slowdown: must be >= 1",
        "",
    ),
    (
        "stragglers",
        {"kind": "markov", "p_slow": 0.1, "slowdown": 2},
        "stragglers.p_recover: is required",
        "",
    ),
    ("ports.metrics_base_port", 80, "ports.metrics_base_port: must be >= 1024", ""),
    ("ports.metrics_base_port", 65530, "ports.metrics_base_port: must be <=", ""),
    ("ports.metrics_base_port", "any", "ports.metrics_base_port: must be 'auto' or an integer", ""),
    # bad choices
    ("training.on_failure", "ignore", "training.on_failure: must be one of retry, skip, stop", ""),
    ("emulation.compute", "sleep", "emulation.compute: must be one of delay, work, off", ""),
    ("emulation.network", "tc", "emulation.network: must be one of in-process, kernel, off", ""),
    ("stragglers.kind", "pareto", "stragglers.kind: must be one of shifted-exponential", ""),
    ("schemes", ["hgc", "magic"], "schemes[1]: unknown scheme 'magic'", "allowed: uncoded"),
    ("schemes", ["hgc", "hgc"], "schemes[1]: scheme 'hgc' is listed twice", ""),
    ("schemes", [], "schemes: must list at least one", ""),
    ("model.kind", "rnn", "model.kind: must be one of logreg, mlp, cnn", ""),
    ("model", {"kind": "mlp", "hidden": -3}, "model.hidden: must be in", ""),
    ("data.kind", "cifar", "data.kind: must be one of digits, synthetic, mnist", ""),
    ("data.test_fraction", 2, "data.test_fraction: must be in", ""),
    ("data", {"kind": "mnist", "path": "/definitely/not/here"}, "data.path:", "no such file"),
    ("topology.workers.device", "rpi5", "topology.workers.device: unknown device 'rpi5'", "rpi4"),
    ("topology.edges.uplink", "fiber", "topology.edges.uplink: unknown link 'fiber'", "lan"),
    (
        "topology.overrides.worker-0-1.device",
        "gpu",
        "topology.overrides.worker-0-1.device: unknown device",
        "",
    ),
    # bandwidth strings
    (
        "topology.links.slow.bandwidth",
        "20 mbps",
        "topology.links.slow.bandwidth: cannot parse",
        "kbit",
    ),
    ("topology.links.slow.bandwidth", "fast", "topology.links.slow.bandwidth: cannot parse", ""),
    ("topology.links.slow.bandwidth", "0mbit", "topology.links.slow.bandwidth: must be > 0", ""),
    ("topology.links.slow.bandwidth", -5, "topology.links.slow.bandwidth: must be > 0", ""),
    (
        "topology.links.slow.bandwidth",
        True,
        "topology.links.slow.bandwidth: must be a bandwidth",
        "",
    ),
    # bad node names in overrides and faults
    (
        "topology.overrides.worker-3-0",
        {"device": "rpi3"},
        "topology.overrides.worker-3-0: no node",
        "0..2",
    ),
    (
        "topology.overrides.worker-0-3",
        {"device": "rpi3"},
        "topology.overrides.worker-0-3: no node",
        "workers 0..2",
    ),
    (
        "topology.overrides.edge-5",
        {"uplink": "lan"},
        "topology.overrides.edge-5: no node",
        "edge-0..edge-2",
    ),
    (
        "topology.overrides.node-1",
        {"device": "rpi3"},
        "topology.overrides.node-1: bad node name",
        "worker-<i>-<j>",
    ),
    (
        "topology.overrides.master",
        {"device": "rpi3"},
        "topology.overrides.master: bad node name",
        "",
    ),
    ("faults.0.node", "worker-9-9", "faults[0].node: no node", ""),
    ("faults.0.iteration", 10, "faults[0].iteration: must be <= 9", ""),
    ("faults.0.action", "explode", "faults[0].action: must be one of kill, slow, pause", ""),
    (
        "faults.0",
        {"iteration": 1, "node": "edge-0", "action": "slow"},
        "faults[0].factor: is required",
        "",
    ),
    (
        "faults.0",
        {"iteration": 1, "node": "edge-0", "action": "slow", "factor": 0.5},
        "faults[0].factor: must be > 1",
        "",
    ),
    (
        "faults.0",
        {"iteration": 1, "node": "edge-0", "action": "pause"},
        "faults[0].duration_s: is required",
        "",
    ),
    (
        "faults.0",
        {"iteration": 1, "node": "edge-0", "action": "kill", "duration_s": 1},
        "faults[0].duration_s: not allowed",
        "",
    ),
    (
        "faults.0",
        {"iteration": 1, "node": "edge-0", "action": "pause", "duration_s": 1, "factor": 2},
        "faults[0].factor: only for action slow",
        "",
    ),
    # code values
    ("code.s_e", -1, "code.s_e: must be >= 0", ""),
    ("code.K", 0, "code.K: must be >= 1", ""),
    ("code.K", 100000, "code.K: must be <= 1438", ""),
]


@pytest.mark.parametrize(
    ("dotted", "value", "start", "phrase"), BAD, ids=[f"{b[0]}={b[1]!r}"[:60] for b in BAD]
)
def test_bad_input_is_rejected_with_the_field(
    dotted: str, value: Any, start: str, phrase: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(with_field(base(), dotted, value))
    message = str(info.value)
    assert message.startswith(start), message
    assert phrase in message, message


def test_error_carries_the_field_path() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(with_field(base(), "topology.workers_per_edge", [3, 0, 3]))
    assert info.value.field == "topology.workers_per_edge[1]"


def test_too_few_training_rows_for_the_workers() -> None:
    doc = with_field(base(), "data", {"kind": "synthetic", "n_samples": 10, "n_features": 3})
    with pytest.raises(
        ScenarioError, match="data: 8 training rows cannot be split among 9 workers"
    ):
        parse_scenario(doc)


def test_non_mapping_document() -> None:
    with pytest.raises(ScenarioError, match="must be a mapping"):
        parse_scenario([1, 2])  # type: ignore[arg-type]
