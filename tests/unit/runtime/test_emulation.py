"""Link and compute emulation: the arithmetic of release times and model compute times."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest

from common.perf.system import Link, StragglerModel, WorkerProfile
from common.runtime.emulation import (
    ComputeEmulator,
    LinkEmulator,
    emulate_compute,
    link_from_spec,
    link_is_trivial,
    link_of_entry,
)

# ------------------------------------------------------------------ links


def test_latency_plus_transmission() -> None:
    em = LinkEmulator(Link(latency_s=0.1, bandwidth_bytes_per_s=1000.0))
    assert em.schedule(500, now=10.0) == pytest.approx(10.0 + 0.5 + 0.1)


def test_transmissions_are_serialised_on_a_link() -> None:
    em = LinkEmulator(Link(latency_s=0.1, bandwidth_bytes_per_s=1000.0))
    first = em.schedule(1000, now=0.0)  # on the wire 0..1
    second = em.schedule(1000, now=0.5)  # waits for the first: on the wire 1..2
    third = em.schedule(1000, now=5.0)  # link idle again: 5..6
    assert (first, second, third) == pytest.approx((1.1, 2.1, 6.1))


def test_jitter_is_bounded_deterministic_and_keeps_order() -> None:
    link = Link(latency_s=0.05, jitter_s=0.04)
    a, b = LinkEmulator(link, seed=3), LinkEmulator(link, seed=3)
    times_a = [a.schedule(0, now=0.001 * k) for k in range(500)]
    times_b = [b.schedule(0, now=0.001 * k) for k in range(500)]
    assert times_a == times_b
    delays = np.array(times_a) - 0.001 * np.arange(500)
    assert delays.min() >= 0.01 - 1e-12 and delays.max() <= 0.09 + 1e-12
    assert all(x <= y for x, y in zip(times_a, times_a[1:], strict=False))  # TCP order
    other = LinkEmulator(link, seed=4)
    assert [other.schedule(0, now=0.001 * k) for k in range(500)] != times_a


def test_loss_costs_a_retransmission_at_the_configured_rate() -> None:
    em = LinkEmulator(Link(loss=0.2, retransmit_s=1.0), seed=0)
    n = 5000
    delays = [em.schedule(0, now=10.0 * k) - 10.0 * k for k in range(n)]
    lost = sum(d == pytest.approx(1.0) for d in delays)
    assert set(np.round(delays, 9)) == {0.0, 1.0}
    assert abs(lost / n - 0.2) < 0.03


def test_mean_delay_matches_the_model_mean() -> None:
    link = Link(
        latency_s=0.02, jitter_s=0.01, bandwidth_bytes_per_s=1e6, loss=0.1, retransmit_s=0.2
    )
    em = LinkEmulator(link, seed=1)
    n = 4000
    delays = [em.schedule(10_000, now=100.0 * k) - 100.0 * k for k in range(n)]
    assert np.mean(delays) == pytest.approx(link.mean_transfer_s(10_000), rel=0.05)


@pytest.mark.parametrize(
    "link, field",
    [
        (Link(latency_s=-1), "latency_s"),
        (Link(jitter_s=-0.1), "jitter_s"),
        (Link(bandwidth_bytes_per_s=0), "bandwidth_bytes_per_s"),
        (Link(loss=1.0), "loss"),
        (Link(retransmit_s=-1), "retransmit_s"),
    ],
)
def test_bad_links_are_refused_naming_the_field(link: Link, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        LinkEmulator(link)


def test_trivial_link() -> None:
    assert link_is_trivial(Link())
    assert not link_is_trivial(Link(latency_s=0.001))
    assert not link_is_trivial(Link(bandwidth_bytes_per_s=1e9))
    with pytest.raises(ValueError, match="nbytes"):
        LinkEmulator(Link()).schedule(-1, 0.0)


def test_link_from_spec() -> None:
    spec = {"latency_s": 0.01, "jitter_s": 0.002, "loss": 0.01, "retransmit_s": 0.2}
    assert link_from_spec(spec) == Link(0.01, 0.002, math.inf, 0.01, 0.2)
    assert link_from_spec({"bandwidth_bytes_per_s": 1e6}).bandwidth_bytes_per_s == 1e6
    assert link_from_spec({}) == Link()


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"latency": 0.1}, r"edge-0.link: unknown keys \['latency'\]"),
        ({"latency_s": "10ms"}, "edge-0.link.latency_s: must be a number"),
        ({"loss": True}, "edge-0.link.loss: must be a number"),
        ({"loss": float("nan")}, "edge-0.link.loss: must be a finite number, got nan"),
        ({"latency_s": float("inf")}, "edge-0.link.latency_s: must be a finite number"),
        ({"bandwidth_bytes_per_s": math.inf}, "edge-0.link.bandwidth_bytes_per_s: must be a fin"),
        ({"latency_s": -1}, r"edge-0.link.latency_s: must be >= 0, got -1$"),
        ({"jitter_s": -0.5}, r"edge-0.link.jitter_s: must be >= 0, got -0.5$"),
        ({"retransmit_s": -1}, "edge-0.link.retransmit_s: must be >= 0"),
        ({"loss": 1.5}, r"edge-0.link.loss: must be in \[0, 1\), got 1.5$"),
        ({"loss": 1}, r"edge-0.link.loss: must be in \[0, 1\), got 1$"),
        ({"loss": -0.1}, r"edge-0.link.loss: must be in \[0, 1\)"),
        ({"bandwidth_bytes_per_s": 0}, "edge-0.link.bandwidth_bytes_per_s: must be > 0, got 0"),
        ({"latency_s": None}, "edge-0.link.latency_s: must be a number, got None"),
        ([0.1], "edge-0.link: must be a map"),
        (None, "edge-0.link: must be a map"),
    ],
)
def test_bad_link_specs_name_the_field(spec: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        link_from_spec(spec, "edge-0.link")


def test_link_spec_edges_of_the_valid_range_are_accepted() -> None:
    """Negative control for the strictness: the bounds themselves and ints are fine."""
    spec = {"latency_s": 0, "jitter_s": 0, "loss": 0, "retransmit_s": 0}
    assert link_from_spec(spec) == Link(retransmit_s=0.0)
    assert link_from_spec({"loss": 0.999, "bandwidth_bytes_per_s": 1}).loss == 0.999


def test_link_of_an_emulation_entry() -> None:
    where = "emulation_spec['edge-0']"
    assert link_of_entry({}, where) is None
    assert link_of_entry({"fixed_delay_s": 1}, where) is None  # other keys are not its business
    assert link_of_entry({"link": {"latency_s": 0.1}}, where) == Link(latency_s=0.1)
    with pytest.raises(ValueError) as info:
        link_of_entry({"link": {"latency_s": -1}}, where)
    assert str(info.value) == "emulation_spec['edge-0'].link.latency_s: must be >= 0, got -1"
    with pytest.raises(ValueError, match=r"emulation_spec\['edge-0'\]: must be a map, got str"):
        link_of_entry("slow", where)


# ------------------------------------------------------------------ compute


def test_shifted_exponential_mean_and_minimum() -> None:
    profile = WorkerProfile(shift_s=2.0, rate=4.0)
    load = 0.25
    em = ComputeEmulator(profile, StragglerModel(), load, seed=7)
    times = np.array([em.target_s(t) for t in range(4000)])
    assert times.min() >= 2.0 * load
    assert times.mean() == pytest.approx(2.0 * load + load / 4.0, rel=0.05)


def test_draws_are_deterministic_per_iteration() -> None:
    em = ComputeEmulator(WorkerProfile(shift_s=1.0, rate=1.0), StragglerModel(), 0.5, seed=3)
    forward = [em.target_s(t) for t in range(20)]
    assert em.target_s(5) == forward[5]  # asking again (a retried iteration) gives the same
    again = ComputeEmulator(WorkerProfile(shift_s=1.0, rate=1.0), StragglerModel(), 0.5, seed=3)
    assert [again.target_s(t) for t in range(20)] == forward
    other = ComputeEmulator(WorkerProfile(shift_s=1.0, rate=1.0), StragglerModel(), 0.5, seed=4)
    assert [other.target_s(t) for t in range(20)] != forward


def test_infinite_rate_is_deterministic_shift() -> None:
    em = ComputeEmulator(WorkerProfile(shift_s=3.0, rate=math.inf), StragglerModel(), 0.5)
    assert {em.target_s(t) for t in range(10)} == {1.5}


def test_markov_slow_state_fraction_and_slowdown() -> None:
    model = StragglerModel(kind="markov", p_slow=0.1, p_recover=0.3, slowdown=10.0)
    em = ComputeEmulator(WorkerProfile(shift_s=1.0, rate=math.inf), model, 1.0, seed=2)
    times = np.array([em.target_s(t) for t in range(6000)])
    assert set(np.unique(times)) <= {1.0, 10.0}
    stationary_slow = 0.1 / (0.1 + 0.3)
    assert np.mean(times == 10.0) == pytest.approx(stationary_slow, abs=0.05)
    # the state is a chain, not independent draws: slow iterations come in runs
    slow = times == 10.0
    p_stay = np.mean(slow[1:][slow[:-1]])
    assert p_stay == pytest.approx(0.7, abs=0.07)
    # going back in time replays the same chain
    assert em.target_s(17) == times[17]


def test_trace_replay_scales_with_load_and_cycles() -> None:
    trace = np.array([[1.0, 2.0], [3.0, 4.0]])
    model = StragglerModel(kind="trace", trace=trace, trace_load=0.5)
    em = ComputeEmulator(WorkerProfile(shift_s=0, rate=1.0), model, 0.25, worker_index=1)
    assert [em.target_s(t) for t in range(4)] == [1.0, 2.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="worker_index"):
        ComputeEmulator(WorkerProfile(shift_s=0, rate=1.0), model, 0.25, worker_index=2)


def test_extra_delay_tops_up_to_the_model_time() -> None:
    em = ComputeEmulator(WorkerProfile(shift_s=2.0, rate=math.inf), StragglerModel(), 0.5)
    assert em.extra_delay_s(0, measured_s=0.25) == pytest.approx(0.75)
    assert em.extra_delay_s(0, measured_s=3.0) == 0.0  # already slower than the model


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"load": 0.0}, "load"),
        ({"load": 1.5}, "load"),
        ({"profile": WorkerProfile(shift_s=-1, rate=1)}, "shift_s"),
        ({"profile": WorkerProfile(shift_s=1, rate=0)}, "rate"),
        ({"straggler": StragglerModel(kind="pareto")}, "kind"),
        ({"straggler": StragglerModel(kind="trace")}, "trace"),
    ],
)
def test_bad_compute_parameters(kwargs: dict, match: str) -> None:
    args: dict[str, Any] = {
        "profile": WorkerProfile(shift_s=1, rate=1),
        "straggler": StragglerModel(),
        "load": 0.5,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ComputeEmulator(**args)


def test_negative_iteration_is_refused() -> None:
    em = ComputeEmulator(WorkerProfile(shift_s=1, rate=1), StragglerModel(), 0.5)
    with pytest.raises(ValueError, match="iteration"):
        em.target_s(-1)


def test_emulate_compute_spends_at_least_the_time() -> None:
    for mode in ("delay", "work"):
        started = time.perf_counter()
        spent = emulate_compute(0.05, mode)
        assert spent >= 0.05
        assert time.perf_counter() - started >= 0.05
    assert emulate_compute(5.0, "off") == 0.0
    with pytest.raises(ValueError, match="mode"):
        emulate_compute(0.1, "nap")
    with pytest.raises(ValueError, match="extra_s"):
        emulate_compute(-0.1, "delay")


def test_work_mode_really_uses_the_cpu() -> None:
    """CPU time of this thread only (other threads of the test process cannot add to it),
    per wall second spent: ``work`` burns the CPU it is given, ``delay`` sleeps. Load only
    lowers the CPU share of ``work`` (~0.6 under two busy loops on two cores, 0.08 seen at
    a load average of 10), never raises that of ``delay`` (~0.0003), so the direction holds
    with a wide margin on a busy machine; no floor on the share itself."""

    def cpu_share(mode: str) -> float:
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        emulate_compute(0.2, mode)
        return (time.thread_time() - cpu0) / (time.perf_counter() - wall0)

    busy, idle = cpu_share("work"), cpu_share("delay")
    assert idle < 0.05, (busy, idle)
    assert busy > 5 * idle, (busy, idle)
