"""What authentication costs: the project transport with CurveZMQ over the same without.

``transport CURVE <size>``: worker -> edge gradients of 4 MB and 40 MB through the project's
endpoints (``common.runtime.transport``), sender and receiver in their own processes, with
CURVE (per-run keys, the ZAP handler) and plain, measured back to back in rounds (the order
rotating) so a busy machine's noise hits both alike; the ratio is the median of the per-round
ratios. ``verify`` compares in-process clusters with verify mode on and off (mean iteration
time, side by side), the cost of waiting for and checking the extra answers.

Run: ``.venv/bin/python -m bench security`` (``make bench`` runs it with the rest).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench import Result
from bench.bench_transport import _measure_transport

MB = 1_000_000
WARMUP = 2


def _receiver(queue: Any, n: int, size: int, keys: str | None) -> None:
    # bench_transport's loop, with this bench's settings: the allocator tuned on both sides,
    # CURVE keys or none, 2 warm-up messages
    rate, _ = _measure_transport(
        n, size, True, keys=keys, sender_tune=True, warmup=WARMUP, timeout_s=300.0
    )
    queue.put(rate)


def _rate(n: int, size: int, keys: str | None) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_receiver, args=(queue, n, size, keys))
    proc.start()
    try:
        return float(queue.get(timeout=600))
    finally:
        proc.join(30)


def _transport(quick: bool, keys: str) -> list[Result]:
    plans = [("4MB", 4 * MB, 10 if quick else 40), ("40MB", 40 * MB, 3 if quick else 8)]
    rounds = 3 if quick else 5
    results: list[Result] = []
    for label, size, n in plans:
        rates: dict[str, list[float]] = {"curve": [], "plain": []}
        for r in range(rounds):
            order = ["curve", "plain"] if r % 2 == 0 else ["plain", "curve"]
            for mode in order:
                rates[mode].append(_rate(n, size, keys if mode == "curve" else None))
        section = f"transport CURVE {label}"
        for mode, values in rates.items():
            results.append(
                Result(
                    section, f"{mode} (median of {rounds})", statistics.median(values) / MB, "MB/s"
                )
            )
        ratio = statistics.median(
            c / p for c, p in zip(rates["curve"], rates["plain"], strict=True)
        )
        results.append(Result(section, "CURVE / plain throughput", ratio, "ratio"))
    return results


def _iteration_mean(verify: bool, iterations: int) -> float:
    from hgc.cluster import InProcessCluster

    config = {
        "code": {"scheme": "hgc", "workers_per_edge": [4, 4, 4], "s_e": 1, "s_w": 2},
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        # a 20 % straggler tail: verify mode waits for it, plain mode does not
        "emulation_spec": {
            f"worker-{i}-{j}": {"fixed_delay_s": 0.05 if j < 3 else 0.1}
            for i in range(3)
            for j in range(4)
        },
        "training": {
            "iterations": iterations,
            "learning_rate": 0.5,
            "deadline_s": 30.0,
            "verify": verify,
            "verify_wait_s": 1.0,
        },
    }
    with InProcessCluster(config) as cluster:
        cluster.wait(300)
        durations = [r["duration_s"] for r in cluster.records() if r["ok"]]
    return float(np.mean(durations))


def _verify(quick: bool) -> list[Result]:
    iterations = 10 if quick else 30
    rounds = 2 if quick else 3
    on: list[float] = []
    off: list[float] = []
    for r in range(rounds):
        pair = [(True, on), (False, off)] if r % 2 == 0 else [(False, off), (True, on)]
        for verify, sink in pair:
            sink.append(_iteration_mean(verify, iterations))
    section = "verify mode (3 edges x 4 workers, s_e=1, s_w=2)"
    return [
        Result(section, "mean iteration, verify on", statistics.median(on), "s"),
        Result(section, "mean iteration, verify off", statistics.median(off), "s"),
        Result(
            section,
            "verify on / off mean iteration",
            statistics.median(a / b for a, b in zip(on, off, strict=True)),
            "ratio",
        ),
    ]


def _hgc_run_mean(curve: bool, iterations: int) -> float:
    """Mean iteration (s) of ``hgc run scenarios/heterogeneous.yaml --schemes hgc``."""
    import subprocess
    import sys

    from hgc.testbed.records import read_records

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="hgc-bench-run-") as tmp:
        out = Path(tmp) / "run"
        flag = "--curve" if curve else "--no-curve"
        cmd = [str(Path(sys.executable).parent / "hgc"), "run"]
        cmd += [str(root / "scenarios" / "heterogeneous.yaml"), "--schemes", "hgc"]
        cmd += ["--iterations", str(iterations), "--out", str(out), flag]
        subprocess.run(cmd, check=True, capture_output=True, timeout=1200)
        rows = read_records(out / "hgc" / "record.jsonl")  # skips the run header
    return float(np.mean([r["duration_s"] for r in rows if r["ok"]]))


def _hgc_run(quick: bool) -> list[Result]:
    iterations = 10 if quick else 40
    rounds = 1 if quick else 3
    on: list[float] = []
    off: list[float] = []
    for r in range(rounds):
        pair = [(True, on), (False, off)] if r % 2 == 0 else [(False, off), (True, on)]
        for curve, sink in pair:
            sink.append(_hgc_run_mean(curve, iterations))
    ratio = statistics.median(a / b for a, b in zip(on, off, strict=True))
    section = f"hgc run heterogeneous, hgc, {iterations} iterations"
    return [
        Result(section, "mean iteration, CURVE on", statistics.median(on), "s"),
        Result(section, "mean iteration, CURVE off", statistics.median(off), "s"),
        Result(section, "CURVE on / off mean iteration", ratio, "ratio", "<= 1.05", ratio <= 1.05),
    ]


def run(quick: bool) -> list[Result]:
    from common.runtime.security import tree_parents, write_keys

    with tempfile.TemporaryDirectory(prefix="hgc-bench-keys-") as keys:
        write_keys(keys, tree_parents([1]))
        results = _transport(quick, keys)
    return results + _verify(quick) + _hgc_run(quick)
