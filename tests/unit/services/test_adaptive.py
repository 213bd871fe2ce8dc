"""hgc-adaptive without sockets: the switching decision, the lifted code, the estimator on
synthetic windows, the controller, and the edge's and worker's plan-switch transitions."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from common.coding import HierarchicalCode
from common.coding import make_code as _make_code
from common.perf import plan_scheme
from common.perf.system import EdgeProfile, Link, SystemModel, WorkerProfile
from common.runtime.messages import (
    EdgeGradient,
    EdgeProgress,
    EdgeSetup,
    LateAnswer,
    ModelUpdate,
    Ready,
    Register,
    WorkerGradient,
    WorkerSetup,
)
from common.scenario import ScenarioError
from common.scenario.adaptive import parse_adaptive
from services.common.actions import (
    Compute,
    DataLoaded,
    Drop,
    GradientDone,
    LoadData,
    Received,
    SendDown,
    SendUp,
    Started,
)
from services.common.lifted import LiftedCode, plan_spec
from services.edge.state import EdgeState
from services.master.adaptive import (
    Adaptive,
    DriftTracker,
    RefitResult,
    Window,
    accumulate,
    calibrate_unmeasured,
    estimate_system,
    keep_switch,
    needs_full_replan,
    plan_json,
    predicted_gain,
    run_refit,
    should_switch,
    system_to_json,
    validate_adaptive,
    window_uncertainty,
)
from services.master.aggregation import Attempt
from services.worker.state import WorkerState


def make_code(*args: Any) -> HierarchicalCode:
    code = _make_code(*args)
    assert isinstance(code, HierarchicalCode)
    return code


# ---------------------------------------------------------------- the decision
@pytest.mark.parametrize(
    ("current", "best", "threshold", "same", "expected"),
    [
        (1.0, 0.90, 0.05, False, True),  # 10 % > 5 %
        (1.0, 0.97, 0.05, False, False),  # 3 % < 5 %
        (1.0, 0.96, 0.05, False, False),  # 4 % < 5 %
        (1.0, 0.50, 0.05, True, False),  # the best plan is the plan in force
        (1.0, 1.20, 0.00, False, False),  # worse
        (float("inf"), 0.5, 0.05, False, False),  # not a finite prediction
        (0.0, 0.0, 0.0, False, False),
    ],
)
def test_should_switch(
    current: float, best: float, threshold: float, same: bool, expected: bool
) -> None:
    assert should_switch(current, best, threshold, same) is expected


@pytest.mark.parametrize(
    ("best", "uncertainty", "persisted", "expected"),
    [
        (0.80, 0.10, False, True),  # 20 % > 5 % + 10 %: beyond the noise, at once
        (0.90, 0.10, False, False),  # 10 % > 5 % but within the noise: wait for a 2nd window
        (0.90, 0.10, True, True),  # ... which agrees
        (0.97, 0.00, True, False),  # 3 % < 5 %: persistence never lowers the threshold
        (0.90, -1.0, False, True),  # a negative uncertainty counts as none
    ],
)
def test_should_switch_beyond_the_uncertainty_or_on_a_persistent_gain(
    best: float, uncertainty: float, persisted: bool, expected: bool
) -> None:
    assert should_switch(1.0, best, 0.05, False, uncertainty, persisted) is expected


def test_window_uncertainty() -> None:
    assert window_uncertainty([0.1, 0.1, 0.1]) == pytest.approx(0.0, abs=1e-12)
    assert window_uncertainty([0.1]) == 1.0  # one iteration: all noise
    d = [0.1, 0.2, 0.1, 0.2]
    assert window_uncertainty(d) == pytest.approx(2 * np.std(d, ddof=1) / (0.15 * 2))
    assert window_uncertainty(d * 25) < window_uncertainty(d) / 4  # more iterations, less


def test_predicted_gain() -> None:
    assert predicted_gain(2.0, 1.5) == pytest.approx(0.25)
    assert predicted_gain(float("nan"), 1.0) == 0.0


# ---------------------------------------------------------------- the lifted code
def test_lifted_code_decodes_exactly_on_its_selection() -> None:
    inner = make_code("hgc", [2, 3], 0, 1)  # 2 selected edges of a 3-edge topology
    code = LiftedCode(inner, [3, 2, 3], edges=[2, 0], workers=[[0, 2], [0, 1, 2]])
    rng = np.random.default_rng(0)
    g = rng.normal(size=(code.K, 4))
    assert code.placement[1] == ((), ())  # edge 1 is not selected: no partition
    assert code.placement[2][1] == () and code.workers_needed(1) == 0
    vectors: dict[int, np.ndarray] = {}
    for i in code.position:
        sel = code.selected_workers(i)
        z = {
            j: sum(
                c * g[k]
                for c, k in zip(code.worker_coefficients[i][j], code.placement[i][j], strict=True)
            )
            for j in sel
        }
        responders = list(sel[-code.workers_needed(i) :])
        w = code.edge_decode_weights(i, responders)
        vectors[i] = sum(wj * z[j] for wj, j in zip(w, responders, strict=True))
    edges = list(vectors)[: code.edges_needed]
    w = code.master_decode_weights(edges)
    total = sum(wi * vectors[i] for wi, i in zip(w, edges, strict=True))
    np.testing.assert_allclose(total, g.sum(axis=0), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="not selected"):
        code.edge_decode_weights(2, [1])  # worker-2-1 is not part of the plan
    with pytest.raises(ValueError, match="not selected"):
        code.master_decode_weights([1])


def test_lifted_code_refuses_a_plan_that_does_not_fit() -> None:
    inner = make_code("hgc", [2, 2], 0, 0)
    with pytest.raises(ValueError, match=r"plan.workers\[0\]"):
        LiftedCode(inner, [2, 2], [0, 1], [[0, 5], [0, 1]])
    with pytest.raises(ValueError, match="plan.edges"):
        LiftedCode(inner, [2, 2], [0, 0], [[0, 1], [0, 1]])


# ---------------------------------------------------------------- the estimator
def _system(n: int = 2, m: int = 2) -> SystemModel:
    w = WorkerProfile(0.1, 10.0, Link(latency_s=0.001))
    e = EdgeProfile(Link(latency_s=0.001))
    return SystemModel(tuple((w,) * m for _ in range(n)), (e,) * n, gradient_bytes=1000)


def test_estimator_recovers_a_drifted_worker_with_censoring() -> None:
    rng = np.random.default_rng(1)
    true_shift, true_rate, load = 0.6, 10.0 / 6.0, 0.5
    window = Window()
    obs = []
    for _ in range(200):
        c = load * (true_shift + rng.exponential(1.0 / true_rate))
        wait = load * (true_shift + 0.72)  # ~30 % of the draws are cut off
        rtt = 0.004
        obs.append((c + rtt, c, wait + rtt, load) if c <= wait else (-1.0, -1.0, wait + rtt, load))
    censored = sum(1 for a, *_ in obs if a < 0) / len(obs)
    assert 0.2 < censored < 0.45
    window.workers[(1, 0)] = obs
    est = estimate_system(_system(), window)
    w = est.workers[1][0]
    assert w.shift_s == pytest.approx(true_shift, rel=0.1)
    assert w.rate == pytest.approx(true_rate, rel=0.15)
    assert est.workers[0][0] == _system().workers[0][0]  # not observed: unchanged
    # negative control: dropping the censored draws biases the rate up (a faster node)
    window2 = Window()
    window2.workers[(1, 0)] = [o for o in obs if o[0] >= 0]
    biased = estimate_system(_system(), window2).workers[1][0]
    assert biased.rate > 1.3 * true_rate


def test_estimator_sees_a_slower_uplink_and_a_never_answering_edge() -> None:
    window = Window()
    rng = np.random.default_rng(2)
    window.edges[0] = [(0.2 + rng.uniform(0, 0.01), False) for _ in range(20)]
    window.edges[1] = [(0.5, True), (0.7, True)]  # never answered: at least 0.7 s one way
    est = estimate_system(_system(), window)
    assert est.edges[0].uplink.mean_transfer_s(1000) == pytest.approx(0.205, abs=0.01)
    assert est.edges[1].uplink.mean_transfer_s(1000) >= 0.7


# ---------------------------------------------------------------- the controller
def _adaptive(**spec: Any) -> tuple[Adaptive, SystemModel]:
    system = _system(3, 2)
    plan = plan_scheme(system, "hgc-jncss")
    raw = {"window": 2, "threshold": 0.1, **spec}
    raw |= {"system": system_to_json(system), "plan": plan_json(plan)}
    return Adaptive(raw, plan.code, dict(plan.code.spec())), system


def test_controller_switches_only_for_a_fresh_result_with_enough_gain() -> None:
    ad, system = _adaptive()
    other = plan_scheme(system, "uncoded")
    ad.window.iterations = 2
    ad.window.durations = [1.0, 1.0]  # no noise: a gain above the threshold switches at once
    assert ad.due()
    job = ad.begin_refit()
    assert not ad.due()  # one re-plan at a time
    assert ad.finish_refit(RefitResult(job, other, 0.95, 1.0)) is None  # 5 % < 10 %
    stale = dataclasses.replace(job, epoch=7)
    assert ad.finish_refit(RefitResult(stale, other, 0.1, 1.0)) is None  # another epoch's
    switch = ad.finish_refit(RefitResult(job, other, 0.5, 1.0))
    assert switch is not None and switch.epoch == ad.epoch == 1
    assert switch.gain == pytest.approx(0.5)
    assert ad.code.edges == other.edges and ad.plan_spec_now()["epoch"] == 1
    assert all(v == 1.0 for v in ad.selected_nodes().values())  # uncoded uses every node


def test_adaptive_section_is_validated_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"adaptive.window: .*got 1"):
        validate_adaptive({"window": 1})
    with pytest.raises(ValueError, match=r"adaptive.threshold"):
        validate_adaptive({"threshold": 1.5})
    with pytest.raises(ValueError, match=r"adaptive.schemes"):
        validate_adaptive({"schemes": ["hgc"]})
    with pytest.raises(ValueError, match=r"adaptive.recheck"):
        validate_adaptive({"recheck": "yes"})
    with pytest.raises(ScenarioError, match=r"adaptive.recheck"):
        parse_adaptive({"recheck": 1})
    with pytest.raises(ValueError, match=r"adaptive.bogus"):
        validate_adaptive({"bogus": 1})
    with pytest.raises(ScenarioError, match=r"adaptive.window"):
        parse_adaptive({"window": "20"})
    with pytest.raises(ScenarioError, match=r"adaptive.schemes\[1\]"):
        parse_adaptive({"schemes": ["hgc-jncss", "flat-frc"]})
    assert parse_adaptive({"window": 5}).window == 5


# ---------------------------------------------------------------- edge and worker
def _setup(epoch: int, edges: list[int], workers: list[list[int]]) -> EdgeSetup:
    inner = make_code("hgc", [len(w) for w in workers], 0, 0)
    spec = plan_spec(epoch, [2, 2], edges, workers)
    return EdgeSetup(-1, 1, dict(inner.spec()), {"kind": "d"}, {"kind": "m"}, {},
                     plan_epoch=epoch, plan_spec=spec)  # fmt: skip


def test_edge_switches_plan_and_drops_vectors_of_the_old_plan() -> None:
    from common.coding import code_from_spec

    e = EdgeState(1, code_from_spec)
    e.handle(Started(), 0.0)
    for j in (0, 1):
        node = f"worker-1-{j}"
        e.handle(Received(node, Register(-1, "worker", node, 1, j)), 0.0)
    acts = e.handle(Received("master", _setup(0, [0, 1], [[0, 1], [1]])), 0.0)
    sent = [a for a in acts if isinstance(a, SendDown)]
    assert [a.to for a in sent] == ["worker-1-1"]  # only the selected worker
    acts = e.handle(Received("worker-1-1", Ready(-1, "worker-1-1", 1, 1)), 0.1)
    assert any(isinstance(a, SendUp) and isinstance(a.msg, Ready) for a in acts)
    e.handle(Received("master", ModelUpdate(0, np.zeros(3))), 1.0)
    # the switch: both workers now, epoch 1; the iteration in flight is abandoned
    acts = e.handle(Received("master", _setup(1, [1, 0], [[0, 1], [0, 1]])), 1.1)
    setups = [a.msg for a in acts if isinstance(a, SendDown)]
    assert [(s.worker, s.plan_epoch) for s in setups if isinstance(s, WorkerSetup)] == [
        (0, 1),
        (1, 1),
    ]
    assert e.answered
    e.handle(Received("master", ModelUpdate(1, np.zeros(3))), 2.0)
    old = WorkerGradient(1, 1, 1, np.ones(3), 0.1, plan_epoch=0)
    acts = e.handle(Received("worker-1-1", old), 2.1)
    assert any(isinstance(a, Drop) and a.reason == "late" for a in acts)
    new = WorkerGradient(1, 1, 0, np.ones(3), 0.1, plan_epoch=1)
    acts = e.handle(Received("worker-1-0", new), 2.2)
    assert not any(isinstance(a, Drop) for a in acts)
    # an older epoch's set-up arriving late changes nothing
    acts = e.handle(Received("master", _setup(0, [0, 1], [[0, 1], [1]])), 2.3)
    assert any(isinstance(a, Drop) for a in acts) and e.setup.plan_epoch == 1  # type: ignore[union-attr]


def test_worker_reloads_on_a_new_plan_and_never_sends_an_old_plan_vector() -> None:
    w = WorkerState(0, 1)
    w.handle(Started(), 0.0)

    def setup(epoch: int, parts: tuple[int, ...]) -> Received:
        msg = WorkerSetup(-1, 0, 1, parts, np.ones(len(parts)), 4, {"kind": "d"}, {"kind": "m"},
                          plan_epoch=epoch)  # fmt: skip
        return Received("edge-0", msg)

    assert any(isinstance(a, LoadData) for a in w.handle(setup(0, (0,)), 0.0))
    w.handle(DataLoaded(10, 3), 0.1)
    assert any(
        isinstance(a, Compute)
        for a in w.handle(Received("edge-0", ModelUpdate(0, np.zeros(3))), 0.2)
    )
    # the plan switches while iteration 0 computes
    assert any(isinstance(a, LoadData) for a in w.handle(setup(1, (0, 1)), 0.3))
    assert not w.ready
    acts = w.handle(GradientDone(0, np.ones(3), 0.1), 0.4)  # computed on the old partitions
    assert [type(a) for a in acts] == [Drop]
    assert w.handle(Received("edge-0", ModelUpdate(1, np.zeros(3))), 0.5) == []  # held
    acts = w.handle(DataLoaded(20, 3), 0.6)
    assert [a.iteration for a in acts if isinstance(a, Compute)] == [1]
    acts = w.handle(GradientDone(1, np.ones(3), 0.1), 0.7)
    up = [a.msg for a in acts if isinstance(a, SendUp)]
    assert len(up) == 1 and isinstance(up[0], WorkerGradient) and up[0].plan_epoch == 1


def test_worker_first_used_by_a_later_plan_answers_in_the_models_run_epoch() -> None:
    """A worker no plan had used gets its first set-up at a switch and the next model while
    its partitions load: its answer carries that model's run epoch (else the edge drops it
    and the iteration waits for its deadline)."""
    w = WorkerState(0, 2)
    w.handle(Started(), 0.0)
    msg = WorkerSetup(-1, 0, 2, (1,), np.ones(1), 4, {"kind": "d"}, {"kind": "m"}, plan_epoch=1)
    assert any(isinstance(a, LoadData) for a in w.handle(Received("edge-0", msg), 0.1))
    assert w.handle(Received("edge-0", ModelUpdate(24, np.zeros(3), epoch=2)), 0.2) == []
    acts = w.handle(DataLoaded(20, 3), 0.3)
    assert [a.iteration for a in acts if isinstance(a, Compute)] == [24]
    up = [a.msg for a in w.handle(GradientDone(24, np.ones(3), 0.1), 0.4) if isinstance(a, SendUp)]
    assert len(up) == 1 and isinstance(up[0], WorkerGradient)
    assert (up[0].epoch, up[0].plan_epoch, up[0].iteration) == (2, 1, 24)


# ------------------------------------------- noise alone never switches (negative control)
def _hetero_system() -> SystemModel:
    """3 x 3: edge-2's workers are slow, so JNCSS's plan leaves nodes out (unmeasured)."""
    fast = WorkerProfile(0.05, 40.0, Link(latency_s=0.002))
    slow = WorkerProfile(0.20, 8.0, Link(latency_s=0.004))
    e = EdgeProfile(Link(latency_s=0.002))
    workers = ((fast,) * 3, (fast, fast, slow), (slow,) * 3)
    return SystemModel(workers, (e,) * 3, gradient_bytes=1000)


def _runtime(system: SystemModel, overhead_s: float, factor: float) -> SystemModel:
    """What the runtime adds on every node, measured or not: per-message overhead on every
    link, compute slower by ``factor`` (a busy host)."""

    def link(x: Link) -> Link:
        return dataclasses.replace(x, latency_s=x.latency_s + overhead_s)

    workers = tuple(
        tuple(
            dataclasses.replace(
                w, shift_s=w.shift_s * factor, rate=w.rate / factor, link=link(w.link)
            )
            for w in ws
        )
        for ws in system.workers
    )
    edges = tuple(dataclasses.replace(e, uplink=link(e.uplink)) for e in system.edges)
    return dataclasses.replace(system, workers=workers, edges=edges)


def _observe(ad: Adaptive, truth: SystemModel, rng: np.random.Generator, n: int) -> None:
    """``n`` iterations of the plan in force drawn from ``truth`` into the open window."""
    code, g = ad.code, truth.gradient_bytes
    for _ in range(n):
        duration = 0.0
        for i in code.edges:
            seen = []
            for j in code.selected_workers(i):
                w, load = truth.workers[i][j], len(code.placement[i][j]) / code.K
                c = load * (w.shift_s + rng.exponential(1.0 / w.rate))
                seen.append((j, c + 2 * w.link.mean_transfer_s(g), c, load))
            wait = max(a for _, a, _, _ in seen)
            for j, a, c, load in seen:
                ad.window.workers.setdefault((i, j), []).append((a, c, wait, load))
            up = truth.edges[i].uplink.mean_transfer_s(g) * rng.uniform(0.9, 1.1)
            ad.window.edges.setdefault(i, []).append((up, False))
            duration = max(duration, wait + 2 * up)
        ad.window.iterations += 1
        ad.window.durations.append(duration)


def _adaptive_on(prior: SystemModel, threshold: float = 0.05) -> Adaptive:
    plan = plan_scheme(prior, "hgc-jncss")
    raw: dict[str, Any] = {"window": 5, "threshold": threshold}
    raw |= {"system": system_to_json(prior), "plan": plan_json(plan)}
    return Adaptive(raw, plan.code, dict(plan.code.spec()))


def test_noise_and_runtime_overhead_alone_never_switch() -> None:
    prior = _hetero_system()
    truth = _runtime(prior, overhead_s=0.01, factor=1.0)  # what a real host adds everywhere
    ad = _adaptive_on(prior)
    assert sum(len(ws) for ws in ad.code.workers) < 9  # some nodes are never measured
    rng = np.random.default_rng(3)
    for _ in range(4):
        _observe(ad, truth, rng, 5)
        assert ad.refit() is None
    assert ad.epoch == 0 and not ad.switches


def test_without_calibrating_unmeasured_nodes_the_overhead_looks_like_a_gain() -> None:
    """The control of the test above: scored without calibration, the plan in force (measured,
    overhead included) loses against plans over nodes still at their prior."""
    prior = _hetero_system()
    truth = _runtime(prior, overhead_s=0.01, factor=1.0)
    ad = _adaptive_on(prior)
    _observe(ad, truth, np.random.default_rng(3), 5)
    job = ad.begin_refit()
    from services.master.adaptive import run_refit

    biased = run_refit(dataclasses.replace(job, system=ad.system))
    fair = run_refit(job)
    assert predicted_gain(biased.current_s, biased.best_s) > 0.05
    assert predicted_gain(fair.current_s, fair.best_s) < predicted_gain(
        biased.current_s, biased.best_s
    )


def test_a_real_drift_switches_within_two_windows() -> None:
    prior = _hetero_system()
    ad = _adaptive_on(prior)
    drifted = _runtime(prior, 0.0, 1.0)
    i, j = ad.code.edges[0], ad.code.selected_workers(ad.code.edges[0])[0]
    workers = [list(ws) for ws in drifted.workers]
    workers[i][j] = WorkerProfile(2.0, 1.0, workers[i][j].link)  # throttles 40x
    drifted = dataclasses.replace(drifted, workers=tuple(tuple(ws) for ws in workers))
    rng = np.random.default_rng(4)
    switched = None
    for _ in range(2):
        _observe(ad, drifted, rng, 5)
        switched = switched or ad.refit()
    assert switched is not None and switched.gain > 0.05


def _throttled(ad: Adaptive, system: SystemModel, factor: float) -> tuple[SystemModel, str]:
    """``system`` with the first selected worker of the plan in force ``factor`` x slower."""
    i, j = ad.code.edges[0], ad.code.selected_workers(ad.code.edges[0])[0]
    workers = [list(ws) for ws in system.workers]
    w = workers[i][j]
    workers[i][j] = dataclasses.replace(w, shift_s=w.shift_s * factor, rate=w.rate / factor)
    return dataclasses.replace(
        system, workers=tuple(tuple(ws) for ws in workers)
    ), f"worker-{i}-{j}"


@pytest.mark.parametrize(("factor", "expect_drift"), [(6.0, True), (1.0, False)])
def test_a_drift_is_acted_on_within_three_iterations_not_a_window(
    factor: float, expect_drift: bool
) -> None:
    """A worker that throttles 6x (laptop -> Pi 3) calls a re-plan after 3 iterations, before
    its window of 5 is complete, and the switch does not wait for a second window; the same
    cluster unchanged (control) waits for its window and does not switch."""
    prior = _hetero_system()
    ad = _adaptive_on(prior)
    rng = np.random.default_rng(11)
    for _ in range(3):  # 15 iterations of history, no drift
        _observe(ad, prior, rng, 5)
        assert ad.refit() is None
    truth, node = _throttled(ad, prior, factor)
    _observe(ad, truth, rng, 3)
    assert ad.due() is expect_drift
    if not expect_drift:
        return
    job = ad.begin_refit()
    result = run_refit(job)
    assert job.drift == (node,) and result.full  # the optimisers run on a drift
    switch = ad.finish_refit(result)
    assert switch is not None and switch.drift == (node,) and switch.gain > 0.05


def test_drift_detector_false_alarms_are_rare_on_a_stationary_cluster() -> None:
    """500 iterations of the prior itself, judged after every one (as the master does): the
    detector compares every node of the plan with its own past; false alarms stay within the
    bound its docstring gives (~2e-4 per node and iteration once the history is full)."""
    prior = _hetero_system()
    ad = _adaptive_on(prior)
    rng = np.random.default_rng(5)
    tracker = DriftTracker()
    alarms = checks = 0
    for _ in range(100):
        ad.window = Window()
        tracker.new_window()
        for _ in range(5):
            _observe(ad, prior, rng, 1)
            tracker.observe(ad.window)
            checks += len(tracker.series)
            found = tracker.drifted()
            alarms += len(found)
            tracker.restart(found)
    assert checks > 5000 and alarms <= 3


def test_edge_uplink_degrading_to_cellular_is_a_drift() -> None:
    def fed(values: list[tuple[float, bool]], history: int = 12) -> DriftTracker:
        tracker = DriftTracker()
        past = Window(edges={0: [(0.003 + 0.001 * (k % 3), False) for k in range(history)]})
        tracker.observe(past)
        tracker.new_window()
        tracker.observe(Window(edges={0: values}))
        return tracker

    drift = [(0.004, False), (0.07, False), (0.075, False), (0.071, True)]
    assert fed(drift).drifted() == {"edge-0": 3}
    spike = [(0.004, False), (0.07, False), (0.004, False), (0.071, False)]
    assert fed(spike).drifted() == {}  # one spike is not a drift
    assert fed(drift, history=5).drifted() == {}  # too little history
    faster = [(0.0005, False)] * 3  # a link that got better is a drift too
    assert fed([(0.02, False)] * 3, history=0).drifted() == {}
    tracker = fed([(0.030, False)] * 12)
    tracker.restart(tracker.drifted())
    tracker.observe(Window(edges={0: [(0.030, False)] * 12 + faster}))
    assert tracker.drifted() == {"edge-0": 3}


def test_calibrate_unmeasured_moves_only_the_nodes_never_measured() -> None:
    prior = _system(2, 2)
    truth = _runtime(prior, overhead_s=0.02, factor=2.0)
    measured = {(0, 0), (0, 1)}
    mixed = dataclasses.replace(
        prior,
        workers=(truth.workers[0], prior.workers[1]),
        edges=(truth.edges[0], prior.edges[1]),
    )
    out = calibrate_unmeasured(mixed, prior, measured, {0})
    assert out.workers[0] == truth.workers[0] and out.edges[0] == truth.edges[0]
    assert out.workers[1][1].link.latency_s == pytest.approx(
        prior.workers[1][1].link.latency_s + 0.02
    )
    assert out.workers[1][1].shift_s == prior.workers[1][1].shift_s  # compute: not moved
    assert out.edges[1].uplink.latency_s == pytest.approx(0.021)
    # measured faster than the prior: unknown nodes are not assumed faster
    assert calibrate_unmeasured(truth, truth, set(), set()) == truth
    fast = _runtime(prior, -0.0005, 1.0)  # links measured faster than the prior
    assert (
        calibrate_unmeasured(
            dataclasses.replace(prior, workers=(fast.workers[0], prior.workers[1])),
            prior,
            measured,
            set(),
        ).workers[1]
        == prior.workers[1]
    )


def test_controller_switches_on_a_gain_within_the_noise_only_when_the_next_window_agrees() -> None:
    ad, system = _adaptive()
    other = plan_scheme(system, "uncoded")
    results: list[list[Any]] = []
    for gains in ([0.15, 0.15], [0.15, 0.0, 0.15]):  # 15 % > 10 %, within 30 % of noise
        ad, _ = _adaptive()
        results.append([])
        for g in gains:
            ad.window.iterations, ad.window.durations = 2, [0.1, 0.2]
            job = ad.begin_refit()
            assert job.uncertainty > 0.3
            results[-1].append(ad.finish_refit(RefitResult(job, other, 1.0 - g, 1.0)))
    assert results[0][0] is None and results[0][1] is not None  # two windows agree: switch
    assert all(r is None for r in results[1])  # interrupted by a window without a gain


def test_keep_switch_is_the_measured_test_of_the_predicted_gain() -> None:
    assert keep_switch([0.2, 0.2, 0.2], [0.1, 0.15, 0.1])  # measured faster: keep
    assert not keep_switch([0.1, 0.1, 0.12], [0.2, 0.15, 0.2])  # measured slower: back
    assert keep_switch([0.1], [0.5, 0.5])  # too few measurements before: keep


def test_a_switch_the_cluster_refutes_is_reverted_and_never_retried() -> None:
    ad, system = _adaptive(recheck=True)
    other = plan_scheme(system, "uncoded")
    first = ad.code
    for d in (0.1,) * 2:  # the plan in force: 0.1 s per iteration
        ad.recent.append(d)
    ad.window.iterations, ad.window.durations = 2, [0.1, 0.1]
    job = ad.begin_refit()
    assert ad.finish_refit(RefitResult(job, other, 0.5, 1.0)) is not None  # predicted 50 %
    assert ad.verify_switch() is None  # nothing measured on the new plan yet
    ad.trial[3].extend([1.0, 0.3])  # type: ignore[index]  # the switch-over, then 3x slower
    assert ad.verify_switch() is None  # the switch-over does not count: one more
    ad.trial[3].append(0.3)  # type: ignore[index]
    back = ad.verify_switch()
    assert back is not None and back.reverted and back.epoch == ad.epoch == 2
    assert ad.code is first and ad.plan_spec_now()["epoch"] == 2
    ad.window.iterations, ad.window.durations = 2, [0.1, 0.1]
    job = ad.begin_refit()
    assert ad.finish_refit(RefitResult(job, other, 0.5, 1.0)) is None  # refuted: not again


def test_needs_full_replan_only_when_the_plan_in_force_moved_beyond_the_noise() -> None:
    assert needs_full_replan(0.1, None, 0.2, 0)  # no re-plan on this plan yet
    assert not needs_full_replan(0.11, 0.1, 0.2, 0)  # 10 % within 20 %: re-score only
    assert needs_full_replan(0.13, 0.1, 0.2, 0)  # 30 %: the cluster changed
    assert needs_full_replan(0.07, 0.1, 0.2, 0)  # faster too
    assert needs_full_replan(0.1, 0.1, 0.2, 3)  # every 4th at the latest
    assert needs_full_replan(float("inf"), 0.1, 0.2, 0)


def test_estimates_are_fitted_on_each_nodes_last_30_observations_a_drifted_one_restarts() -> None:
    memory = Window()
    for k in range(10):  # 10 windows of 5 observations of worker (0, 0) and edge 0
        w = Window(
            workers={(0, 0): [(0.1, 0.05, 0.1, 0.5)] * 5},
            edges={0: [(0.001 * k, False)] * 5},
            iterations=5,
        )
        memory = accumulate(memory, w, {})
    assert len(memory.workers[(0, 0)]) == 30 and len(memory.edges[0]) == 30
    assert memory.edges[0][0] == (0.004, False)  # the oldest kept: window 4's
    run = Window(edges={0: [(0.07, False)] * 3}, iterations=3)
    after = accumulate(memory, run, {"edge-0": 3})
    assert after.edges[0] == [(0.07, False)] * 3  # what it was no longer counts
    assert after.workers[(0, 0)] == memory.workers[(0, 0)]  # nodes not in the window: kept


# ---------------------------------------------------------------- an edge the master left behind
def _tolerant_adaptive() -> Adaptive:
    """3 edges x 2 workers, s_e = 1: the master goes on without its slowest edge."""
    from common.perf import Plan

    system = _system(3, 2)
    code = make_code("hgc", [2, 2, 2], 1, 0)
    plan = Plan("hgc", (0, 1, 2), ((0, 1),) * 3, dict(code.spec()), s_e=1, s_w=0)
    raw: dict[str, Any] = {"window": 1000, "threshold": 0.05}
    raw |= {"system": system_to_json(system), "plan": plan_json(plan)}
    return Adaptive(raw, code, dict(code.spec()))


def _iterations(ad: Adaptive, n: int, start: int, slow: float, report: bool) -> list[Any]:
    """``n`` iterations in which worker-2-1 computes for ``slow`` s (the others ~0.1 s). When
    it is slower than the others, edge-2 never answers (the master decodes from edges 0 and
    1) and, with ``report``, says so at the next model (``EdgeProgress``); the worker, busy
    with one model while the next ones come, computes one in ``slow / 0.1`` and its result,
    too late, comes as a ``LateAnswer`` that many iterations on. The drops returned."""
    drops = []
    rng = np.random.default_rng(start)
    every = max(1, round(slow / 0.1))
    for t in range(start, start + n):
        ad.started(t, 0.0)
        computes = {(i, j): 0.1 + rng.uniform(0, 0.01) for i in range(3) for j in range(2)}
        computes[(2, 1)] = slow + rng.uniform(0, 0.01)
        arrivals = {k: c + 0.002 for k, c in computes.items()}
        late_edge = slow > 0.2
        a = Attempt(t, 0, 0.0)
        for i in range(3):
            if i == 2 and late_edge:
                continue
            arr = tuple(arrivals[(i, j)] for j in range(2))
            comp = tuple(computes[(i, j)] for j in range(2))
            msg = EdgeGradient(t, i, np.zeros(3), (0, 1), max(arr), 0.0, arr, (), 0, comp)
            a.edge_vectors.append((i, msg))
            a.edge_arrivals[i] = max(arr) + 0.002
        duration = max(a.edge_arrivals.values())
        ad.finished(a, duration)
        if late_edge and report:  # the next model reaches edge-2 while it waits for 2-1
            elapsed = duration + 0.001
            came = arrivals[(2, 0)] <= elapsed  # worker-2-0 had answered by then, or not
            arr2 = (arrivals[(2, 0)] if came else -1.0, -1.0)
            comp2 = (computes[(2, 0)] if came else -1.0, -1.0)
            drops.append(ad.progress(EdgeProgress(t, 2, elapsed, arr2, comp2)))
            if (t - start) % every == every - 1:  # the model it did compute, `every` ago
                c = computes[(2, 1)]
                drops.append(ad.late_answer(LateAnswer(t - every + 1, 2, 1, c, c + 0.003)))
        ad.drift.observe(ad.window)
    return drops


@pytest.mark.parametrize("report", [True, False])
def test_a_left_behind_edge_reports_its_slow_worker_which_is_the_drift_not_the_uplink(
    report: bool,
) -> None:
    """Worker-2-1 throttles 6x; edge-2 (s_e = 1: never waited for) reports at each next model
    which workers had answered, and the worker's results, too late, come as late answers:
    the drift is found on the worker (3 late answers in a row beyond its past) and the
    edge's uplink is never censored. The control without reports can only blame edge-2
    (its uplink censored at half the iteration): the misattribution the reports remove."""
    ad = _tolerant_adaptive()
    assert _iterations(ad, 20, 0, 0.1, report) == []
    drops = _iterations(ad, 18, 20, 0.6, report)
    found = ad.drift.drifted()
    if report:
        assert drops == [None] * (18 + 3)
        assert "worker-2-1" in found and "edge-2" not in found
        assert all(not c for _, c in ad.window.edges.get(2, []))  # no censored uplink
        late = [o for o in ad.window.workers[(2, 1)] if o[0] >= 0][-3:]
        assert [round(c, 1) for _, c, _, _ in late] == [0.6] * 3  # measured, not bounded
    else:
        assert "edge-2" in found and "worker-2-1" not in found


def _reason(drop: tuple[str, str] | None) -> str | None:
    return None if drop is None else drop[0]


def test_edge_progress_is_checked_and_taken_once() -> None:
    ad = _tolerant_adaptive()
    _iterations(ad, 1, 0, 0.6, report=False)  # iteration 0: edge-2 pending
    bad = [
        EdgeProgress(0, 2, float("nan"), (0.1, -1.0), (0.1, -1.0)),
        EdgeProgress(0, 2, 0.5, (0.1,), (0.1, -1.0)),  # not one figure per worker
        EdgeProgress(0, 2, 0.5, (0.9, -1.0), (0.1, -1.0)),  # after the abandonment
        EdgeProgress(0, 2, 0.5, (0.1, 0.2), (0.1, 0.1)),  # all answered: it would have decoded
    ]
    for msg in bad:
        assert ad.progress(msg) == ("malformed", "progress of edge-2: figures out of range")
    fine = EdgeProgress(0, 2, 0.5, (0.1, -1.0), (0.1, -1.0))
    assert _reason(ad.progress(dataclasses.replace(fine, plan_epoch=3))) == "late"
    assert _reason(ad.progress(dataclasses.replace(fine, iteration=7))) == "late"
    assert ad.progress(fine) is None
    assert _reason(ad.progress(fine)) == "late"  # taken once


def _edge_in_iteration_0() -> EdgeState:
    """Edge 1 under a plan (epoch 0) using both its workers, iteration 0's model in at 1.0 s."""
    from common.coding import code_from_spec

    e = EdgeState(1, code_from_spec)
    e.handle(Started(), 0.0)
    for j in (0, 1):
        node = f"worker-1-{j}"
        e.handle(Received(node, Register(-1, "worker", node, 1, j)), 0.0)
    e.handle(Received("master", _setup(0, [0, 1], [[0, 1], [0, 1]])), 0.0)
    e.handle(Received("master", ModelUpdate(0, np.zeros(3))), 1.0)
    return e


def test_edge_under_a_plan_reports_an_abandoned_iteration_at_the_next_model() -> None:
    e = _edge_in_iteration_0()
    e.handle(Received("worker-1-0", WorkerGradient(0, 1, 0, np.ones(3), 0.05)), 1.1)
    acts = e.handle(Received("master", ModelUpdate(1, np.zeros(3))), 1.5)
    reports = [a.msg for a in acts if isinstance(a, SendUp)]
    assert len(reports) == 1 and isinstance(reports[0], EdgeProgress)
    r = reports[0]
    assert (r.iteration, r.edge, r.worker_compute_s) == (0, 1, (0.05, -1.0))
    assert r.elapsed_s == pytest.approx(0.5) and r.worker_arrivals_s[0] == pytest.approx(0.1)
    assert r.worker_arrivals_s[1] == -1.0
    # iteration 1 answered (both workers): the next model brings no report
    for j in (0, 1):
        e.handle(Received(f"worker-1-{j}", WorkerGradient(1, 1, j, np.ones(3), 0.05)), 1.6)
    acts = e.handle(Received("master", ModelUpdate(2, np.zeros(3))), 2.0)
    assert not any(isinstance(a, SendUp) for a in acts)


def test_a_late_answer_is_timed_by_the_edge_and_checked_by_the_master() -> None:
    e = _edge_in_iteration_0()
    e.handle(Received("master", ModelUpdate(1, np.zeros(3))), 1.5)
    acts = e.handle(Received("worker-1-1", LateAnswer(0, 1, 1, 0.7)), 1.75)
    up = [a.msg for a in acts if isinstance(a, SendUp)]
    assert len(up) == 1 and isinstance(up[0], LateAnswer)
    assert up[0].arrival_s == pytest.approx(0.75) and up[0].compute_s == 0.7
    again = e.handle(Received("worker-1-1", LateAnswer(0, 1, 1, 0.7)), 1.76)  # once only
    assert [a.reason for a in again if isinstance(a, Drop)] == ["late"]
    assert not any(isinstance(a, SendUp) for a in again)
    # another worker's name, a compute longer than the time since the model, an unknown
    # iteration: dropped
    for peer, msg, reason in [
        ("worker-1-0", LateAnswer(0, 1, 1, 0.7), "unknown_peer"),
        ("worker-1-1", LateAnswer(0, 1, 1, 5.0), "malformed"),
        ("worker-1-1", LateAnswer(-7, 1, 1, 0.1), "late"),
    ]:
        acts = e.handle(Received(peer, msg), 1.8)
        assert [a.reason for a in acts if isinstance(a, Drop)] == [reason]
    # the master: measured as an observation of the worker; bad figures dropped
    ad = _tolerant_adaptive()
    assert ad.late_answer(LateAnswer(0, 2, 1, 0.6, 0.61)) is None
    (arrival, compute, _, _) = ad.window.workers[(2, 1)][-1]
    assert compute == 0.6 and arrival == pytest.approx(0.6 + 2 * 0.001)  # its link not timed
    assert _reason(ad.late_answer(LateAnswer(0, 2, 1, 0.6, 0.61))) == "late"  # once only
    ad.started(100, 0.0)  # 100 iterations on: too old to be taken
    assert _reason(ad.late_answer(LateAnswer(1, 2, 1, 0.6, 0.61))) == "late"
    assert _reason(ad.late_answer(LateAnswer(0, 2, 1, 0.6, 0.5))) == "malformed"
    assert _reason(ad.late_answer(LateAnswer(0, 2, 1, 0.6, 0.7, plan_epoch=2))) == "late"
    assert _reason(ad.late_answer(LateAnswer(0, 5, 1, 0.6, 0.7))) == "late"


def test_a_worker_sends_the_timing_of_a_result_a_newer_model_made_stale() -> None:
    w = WorkerState(0, 1)
    w.handle(Started(), 0.0)
    msg = WorkerSetup(-1, 0, 1, (0,), np.ones(1), 2, {"kind": "d"}, {"kind": "m"})
    w.handle(Received("edge-0", msg), 0.0)
    w.handle(DataLoaded(10, 3), 0.1)
    w.handle(Received("edge-0", ModelUpdate(0, np.zeros(3))), 0.2)
    w.handle(Received("edge-0", ModelUpdate(1, np.zeros(3))), 0.3)
    acts = w.handle(GradientDone(0, np.ones(3), 0.25), 0.45)
    late = [a.msg for a in acts if isinstance(a, SendUp)]
    assert len(late) == 1 and isinstance(late[0], LateAnswer)
    assert (late[0].iteration, late[0].edge, late[0].worker, late[0].compute_s) == (0, 0, 1, 0.25)
    assert [a.reason for a in acts if isinstance(a, Drop)] == ["late"]


def test_the_replan_child_decides_full_or_light_as_run_refit_does() -> None:
    """The master's I/O loop only fits; the E[T]s and the full-or-light decision are made in
    the re-plan child (a real process here), the same as :func:`run_refit` in process."""
    from services.master.adaptive import Replanner

    prior = _hetero_system()
    ad = _adaptive_on(prior)
    rng = np.random.default_rng(5)
    child = Replanner()
    try:
        fulls = []
        for _ in range(3):
            _observe(ad, prior, rng, 5)
            job = ad.begin_refit()
            here, there = run_refit(job), child.run(job)
            assert there.full == here.full
            assert there.best_s == pytest.approx(here.best_s, rel=1e-9)
            assert there.current_s == pytest.approx(here.current_s, rel=1e-9)
            fulls.append(there.full)
            ad.finish_refit(there)
    finally:
        child.close()
    assert fulls[0] and not all(fulls)  # the first runs the optimisers, a later one does not
    assert ad.light_in_a_row >= 1
