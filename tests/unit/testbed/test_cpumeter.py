"""``hgc.testbed.cpumeter``: CPU seconds per iteration from ``/proc`` samples."""

from __future__ import annotations

import os
import sys
import time

import pytest

from hgc.testbed.cpumeter import CpuMeter, cpu_seconds

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_cpu_seconds_follows_this_process() -> None:
    before = cpu_seconds(os.getpid())
    spent = time.process_time()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    after = cpu_seconds(os.getpid())
    spent = time.process_time() - spent
    assert before is not None and after is not None
    # the kernel's clock-tick account may be 10 ms coarse
    assert after - before == pytest.approx(spent, abs=0.025)


def test_a_process_that_is_gone_has_no_figure() -> None:
    assert cpu_seconds(2**22 + 12345) is None


def test_report_is_the_least_squares_slope_after_start_up_and_before_shut_down() -> None:
    meter = CpuMeter()
    meter.samples = [
        (0, {"a": 5.0, "b": 1.0}),  # start-up: not an iteration's cost
        (1, {"a": 5.0, "b": 1.0}),
        (2, {"a": 5.1, "b": 1.02}),
        (2, {"a": 5.13, "b": 1.025}),  # within iteration 3: on the line in the mean
        (3, {"a": 5.2, "b": 1.04}),
        (4, {"a": 5.3, "b": 1.06}),
        (5, {"a": 9.0, "b": 3.0}),  # the last count: shut-down after the last iteration
    ]
    report = meter.report()
    assert report is not None
    assert report["per_node_s"]["a"] == pytest.approx(0.1, rel=0.05)
    assert report["per_node_s"]["b"] == pytest.approx(0.02, rel=0.05)
    assert report["cpu_s_per_iteration"] == pytest.approx(0.12, rel=0.05)
    assert report["iterations"] == [1, 4] and report["samples"] == 5


def test_a_node_missing_from_a_sample_is_left_out_of_the_sum() -> None:
    meter = CpuMeter()
    meter.samples = [(n, {"a": 0.1 * n, "b": 0.5 * n}) for n in range(1, 6)]
    meter.samples[2][1].pop("b")  # b's /proc entry was gone at that moment
    meter.samples.append((9, {"a": 0.0}))
    report = meter.report()
    assert report is not None and set(report["per_node_s"]) == {"a"}
    assert report["cpu_s_per_iteration"] == pytest.approx(0.1)


def test_too_few_samples_give_no_report() -> None:
    meter = CpuMeter()
    assert meter.report() is None
    meter.samples = [(1, {"a": 1.0}), (2, {"a": 1.1}), (3, {"a": 1.2})]
    assert meter.report() is None  # the last count is cut: two points are no slope


def test_sample_reads_live_processes() -> None:
    meter = CpuMeter()
    meter.sample(1, {"me": os.getpid(), "gone": 2**22 + 12345})
    assert len(meter.samples) == 1 and set(meter.samples[0][1]) == {"me"}
