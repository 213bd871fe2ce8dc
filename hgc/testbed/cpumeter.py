"""CPU seconds the nodes of a local run use per iteration, from ``/proc`` (Linux).

``hgc run`` samples every node's CPU time (user + system, all its threads) each time new
records have landed, with the number of iterations ended so far; the slope of CPU time
against iterations, by least squares over the samples after the first iteration and before
the last, is the CPU cost of one iteration (``<run>/<scheme>/cpu.json``). A regression over
every sample is steadier than two end points, each of which may sit anywhere within a poll
interval of an iteration's end. docs/running.md says what a node costs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hgc.testbed.guard import proc_stat_fields

MIN_SAMPLES = 3  # fewer points give no slope worth reporting


def _sched_seconds(pid: int) -> float | None:
    """CPU seconds of all threads of ``pid`` from ``/proc/PID/task/*/sched`` (nanosecond
    ``se.sum_exec_runtime``, in ms; kernels with scheduler debug), or None."""
    total = 0.0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/sched", encoding="ascii") as f:
                text = f.read()
        except OSError:
            continue  # a thread that ended since the listing
        for line in text.splitlines():
            if line.startswith("se.sum_exec_runtime"):
                total += float(line.split(":")[1]) / 1e3
                break
        else:
            return None
    return total


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds of process ``pid`` (all its threads): from the scheduler's nanosecond
    account where the kernel shows it, else user + system clock ticks (10 ms steps); None
    when ``/proc`` has no such process (gone, or not Linux)."""
    precise = _sched_seconds(pid)
    if precise is not None:
        return precise
    fields = proc_stat_fields(pid)
    if fields is None:
        return None
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _slope(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < MIN_SAMPLES:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


@dataclass
class CpuMeter:
    """Samples of ``(iterations ended, CPU seconds per node)``; ``report()`` the slopes."""

    samples: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    def sample(self, ended: int, pids: dict[str, int]) -> None:
        """Record every node's CPU time now, with ``ended`` iterations ended; a node whose
        ``/proc`` entry is gone is missing from this sample (``report`` sums only the nodes
        present in every sample)."""
        cpu = {}
        for node, pid in pids.items():
            s = cpu_seconds(pid)
            if s is not None:
                cpu[node] = s
        if cpu:
            self.samples.append((ended, cpu))

    def report(self) -> dict[str, Any] | None:
        """``{"cpu_s_per_iteration", "per_node_s", "samples", "iterations"}`` over the
        samples taken after the first iteration ended and before the last did (start-up and
        shut-down are not an iteration's cost), or None with too few samples."""
        last = max((n for n, _ in self.samples), default=0)
        window = [(n, c) for n, c in self.samples if 1 <= n < last]
        if not window:
            return None
        nodes = sorted(set.intersection(*(set(c) for _, c in window)))
        xs = [float(n) for n, _ in window]
        total = _slope(xs, [sum(c[k] for k in nodes) for _, c in window])
        if total is None or not nodes:
            return None
        per_node = {k: _slope(xs, [c[k] for _, c in window]) for k in nodes}
        return {
            "cpu_s_per_iteration": total,
            "per_node_s": per_node,
            "samples": len(window),
            "iterations": [int(min(xs)), int(max(xs))],
        }
