"""Pure parts of the services: the master's run description, HGC_* flags, the worker's
coded vector and its emulation entry."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pytest

from common.coding import make_code
from common.learning import build_model, load_dataset, partition_rows
from services.common.node import add_flag, env_name
from services.master.config import ConfigError, parse_config
from services.worker.compute import Emulation, coded_gradient, load_partitions


def _raw(**kw: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "code": {"scheme": "hgc", "workers_per_edge": [2, 2], "s_e": 1, "s_w": 1},
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
    }
    raw.update(kw)
    return raw


def test_config_builds_the_code_spec_and_applies_overrides() -> None:
    config, seed = parse_config(_raw(seed=4), {"iterations": 7, "deadline_s": None})
    assert config.code_spec["scheme"] == "hgc" and config.iterations == 7 and seed == 4
    assert config.deadline_s == 10.0  # None override leaves the default


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (_raw(extra=1), "unknown fields ['extra']"),
        (_raw(training={"iterationz": 3}), "iterationz"),
        (_raw(training={"on_failure": "pray"}), "on_failure"),
        (_raw(code_spec={}), "exactly one of 'code' and 'code_spec'"),
        ({k: v for k, v in _raw().items() if k != "model_spec"}, "model_spec"),
        (_raw(code={"scheme": "hgc", "workers_per_edge": [2, 2], "sw": 1}), "sw"),
        (_raw(seed="x"), "seed"),
        (_raw(training=5), "config.training: must be a JSON object"),
    ],
)
def test_bad_config_names_the_field(raw: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace("]", r"\]")):
        parse_config(raw)


def test_flags_default_from_environment_and_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_name("--edge-addr") == "HGC_EDGE_ADDR"
    monkeypatch.setenv("HGC_EDGE", "2")
    p = argparse.ArgumentParser()
    add_flag(p, "--edge", type=int, required=True)
    assert p.parse_args([]).edge == 2
    assert p.parse_args(["--edge", "5"]).edge == 5


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HGC_EDGE", "two")
    p = argparse.ArgumentParser()
    with pytest.raises(SystemExit):
        add_flag(p, "--edge", type=int)


def test_worker_keeps_only_its_rows_and_computes_its_coded_vector() -> None:
    code = make_code("hgc", [3, 3, 3], 1, 1)
    parts = tuple(code.placement[1][2])
    coeffs = np.asarray(code.worker_coefficients[1][2])
    spec = {"kind": "digits"}
    data = load_partitions(parts, coeffs, code.K, spec, {"kind": "logreg"})
    full = load_dataset(spec)
    rows = partition_rows(full.n_train, code.K)
    assert data.n_rows == sum(len(rows[k]) for k in parts) < full.n_train
    model = build_model({"kind": "logreg"}, full.n_features, full.n_classes)
    params = model.init_params(1)
    expected = sum(
        c * model.gradient_sum(params, full.X_train[rows[k]], full.y_train[rows[k]])
        for c, k in zip(coeffs, parts, strict=True)
    )
    np.testing.assert_allclose(coded_gradient(data, params), expected, rtol=1e-12, atol=1e-12)
    # negative control: another worker's vector differs
    other = load_partitions(
        tuple(code.placement[1][0]), np.asarray(code.worker_coefficients[1][0]), code.K, spec,
        {"kind": "logreg"},
    )  # fmt: skip
    assert not np.allclose(coded_gradient(other, params), expected)


def test_partition_outside_K_is_rejected() -> None:
    with pytest.raises(ValueError, match="outside 0..3"):
        load_partitions((4,), np.ones(1), 4, {"kind": "digits"}, {"kind": "logreg"})


def test_emulation_entry_validation_and_delay() -> None:
    assert not Emulation({}).active
    e = Emulation({"fixed_delay_s": 0.2, "compute": "off"})
    assert e.extra_s(0, 0.0) == 0.2 and not e.active  # off: nothing is spent
    m = Emulation({"shift_s": 1.0, "rate": float("inf"), "load": 0.5})
    assert m.extra_s(3, 0.1) == pytest.approx(0.4)  # shift * load - measured
    with pytest.raises(ValueError, match="unknown keys"):
        Emulation({"dealy": 1})
    with pytest.raises(ValueError, match="compute"):
        Emulation({"compute": "sleepy"})
    with pytest.raises(ValueError, match="straggler"):
        Emulation({"shift_s": 1.0, "straggler": {"kind": "markov", "p_sloww": 1}})
    assert Emulation({}).link is None
    assert Emulation({"link": {"latency_s": 0.1}}).link.latency_s == 0.1  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="latency"):
        Emulation({"link": {"latency": 0.1}})


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ({"latency_s": -1}, "latency_s: must be >= 0, got -1"),
        ({"loss": True}, "loss: must be a number, got True"),
        ({"jitter_s": float("nan")}, "jitter_s: must be a finite number, got nan"),
    ],
)
def test_a_bad_link_in_the_workers_entry_names_the_entry_and_field(
    link: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        Emulation({"link": link}, "emulation_spec['worker-0-1']")
    assert str(info.value) == f"emulation_spec['worker-0-1'].link.{message}"
    with pytest.raises(ValueError, match=r"emulation_spec\['worker-0-1'\]: must be a map"):
        Emulation([1, 2], "emulation_spec['worker-0-1']")  # type: ignore[arg-type]


def test_external_emulation_is_exported_and_unknown_mechanisms_rejected() -> None:
    from prometheus_client import CollectorRegistry

    from common.runtime.metrics import WorkerMetrics
    from services.common.node import mark_external_emulation

    reg = CollectorRegistry()
    m = WorkerMetrics(reg, 0, 1)
    mark_external_emulation(m, {"HGC_EMULATION_EXTERNAL": "cpu_quota, tbf"})
    value = reg.get_sample_value
    assert value("hgc_worker_emulation_active", {"mechanism": "cpu_quota"}) == 1
    assert value("hgc_worker_emulation_active", {"mechanism": "tbf"}) == 1
    assert value("hgc_worker_emulation_active", {"mechanism": "netem"}) == 0
    with pytest.raises(ValueError, match="HGC_EMULATION_EXTERNAL"):
        mark_external_emulation(m, {"HGC_EMULATION_EXTERNAL": "warp"})
