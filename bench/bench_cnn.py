"""The CNN (``common.learning.cnn``) on the shipped MNIST sample.

- Gradient throughput in samples per CPU-second (so per core, whatever BLAS threads and the
  machine's load), of the vectorised im2col implementation, and of the same network's forward
  + backward written as plain per-sample loops (per image, per output pixel, per filter),
  measured side by side in this run: the ratio is the speed-up of the formulation. The loop
  version's gradient is checked equal to the vectorised one first (rel 1e-9), so both compute
  the same thing.
- A real worker process (the set-up of worker (0, 0) of hgc 3 x 3, s_e = s_w = 1, 4 of 9
  partitions, minibatch 8, the CNN of scenarios/paper-mnist.yaml): its peak RSS while training,
  above the interpreter's baseline, per byte of its own data (float64 rows + int64 labels).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench import Result
from bench.bench_worker_memory import ROOT, worker_peaks
from common.coding import make_code
from common.learning import CNN, build_model, dataset_shape, load_dataset, partition_rows

SPEC = {"kind": "cnn", "filters": 8, "kernel": 5, "pool": 2, "l2": 1e-4}


def loop_gradient_sum(model: CNN, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The CNN's summed gradient, one image at a time, with explicit loops (no im2col)."""
    s = model.shapes
    p = s.split(params)
    grad = np.zeros_like(params)
    g = s.split(grad)
    k, f, q, hp, co = s.kernel, s.filters, s.pool, s.pool_side, s.conv_side
    Wc = p["Wc"].reshape(s.channels, k, k, f)
    gWc = g["Wc"].reshape(s.channels, k, k, f)
    for x, label in zip(X, y, strict=True):
        img = x.reshape(s.channels, s.side, s.side)
        pre = np.empty((co, co, f))
        for i in range(co):
            for j in range(co):
                patch = img[:, i : i + k, j : j + k]
                for c in range(f):
                    pre[i, j, c] = np.sum(patch * Wc[..., c]) + p["bc"][c]
        act = np.maximum(pre, 0.0)
        pooled = np.empty((hp, hp, f))
        where = {}
        for i in range(hp):
            for j in range(hp):
                for c in range(f):
                    win = act[i * q : (i + 1) * q, j * q : (j + 1) * q, c]
                    a = int(np.argmax(win))
                    pooled[i, j, c] = win.flat[a]
                    where[i, j, c] = (i * q + a // q, j * q + a % q)
        flat = pooled.reshape(-1)
        top = flat if not s.hidden else np.maximum(flat @ p["W1"] + p["b1"], 0.0)
        logits = top @ p["W"] + p["b"]
        e = np.exp(logits - logits.max())
        delta = e / e.sum()
        delta[label] -= 1.0
        g["W"] += np.outer(top, delta)
        g["b"] += delta
        d_top = p["W"] @ delta
        if s.hidden:
            hpre = flat @ p["W1"] + p["b1"]
            d_h = d_top * (hpre > 0)
            g["W1"] += np.outer(flat, d_h)
            g["b1"] += d_h
            d_top = p["W1"] @ d_h
        d_pool = d_top.reshape(hp, hp, f)
        d_pre = np.zeros((co, co, f))
        for (i, j, c), (a, b) in where.items():
            if pre[a, b, c] > 0:
                d_pre[a, b, c] += d_pool[i, j, c]
        for i in range(co):
            for j in range(co):
                patch = img[:, i : i + k, j : j + k]
                for c in range(f):
                    if d_pre[i, j, c] != 0.0:
                        gWc[..., c] += d_pre[i, j, c] * patch
                        g["bc"][c] += d_pre[i, j, c]
    for name in s.fan:
        if name in g:
            g[name] += len(y) * model.l2 * p[name]
    return grad


def _samples_per_cpu_s(fn: Any, n: int, min_cpu_s: float) -> float:
    fn()  # warm up
    done, start = 0, time.process_time()
    while time.process_time() - start < min_cpu_s or done == 0:
        fn()
        done += n
    return done / (time.process_time() - start)


def throughput(quick: bool) -> dict[str, float]:
    data = load_dataset({"kind": "mnist"})
    model = build_model(SPEC, data.n_features, data.n_classes)
    assert isinstance(model, CNN)
    params = model.init_params(0)
    n_fast, n_loop = 256, 2 if quick else 8
    X, y = data.X_train[:n_fast], data.y_train[:n_fast]
    fast = model.gradient_sum(params, X[:n_loop], y[:n_loop])
    slow = loop_gradient_sum(model, params, X[:n_loop], y[:n_loop])
    rel = float(np.linalg.norm(fast - slow) / np.linalg.norm(fast))
    if rel > 1e-9:
        raise AssertionError(f"loop CNN gradient differs from im2col: rel {rel:.3g}")
    vec = _samples_per_cpu_s(
        lambda: model.gradient_sum(params, X, y), n_fast, 1.0 if quick else 4.0
    )
    loop = _samples_per_cpu_s(
        lambda: loop_gradient_sum(model, params, X[:n_loop], y[:n_loop]),
        n_loop,
        1.0 if quick else 4.0,
    )
    return {"vec": vec, "loop": loop, "rel": rel}


def worker_rss() -> dict[str, float]:
    data_spec = {"kind": "mnist", "minibatch": 8}
    code = make_code("hgc", [3, 3, 3], 1, 1)
    parts = tuple(code.placement[0][0])
    n_train, d, _ = dataset_shape(data_spec)
    rows = partition_rows(n_train, code.K)
    own_bytes = sum(len(rows[k]) for k in parts) * (d * 8 + 8)
    # the peak of the worker's whole life (set-up included), as this bench always reported
    peaks = worker_peaks(code, data_spec, SPEC, 5, reset_after_setup=False)
    return {
        "per_byte": (peaks["train_peak"] - peaks["baseline"]) / own_bytes,
        "own_mb": own_bytes / 1e6,
    }


def paper_accuracy(quick: bool) -> tuple[int, float]:
    """Held-out accuracy of scenarios/paper-mnist.yaml's training, run as uncoded minibatch
    gradient descent in this process (K = one partition per worker, the scenario's model,
    data, minibatch, optimiser, learning rate and iterations; parameters initialised with
    seed 0). Coded runs take exactly these steps (tests/integration/test_minibatch_cnn.py)."""
    from common.learning.minibatch import minibatch_gradient_sum, rows_per_iteration
    from common.scenario import load_scenario
    from services.master.optimiser import Optimiser

    sc = load_scenario(ROOT / "scenarios" / "paper-mnist.yaml")
    data = load_dataset(sc.data_spec)
    model = build_model(sc.model_spec, data.n_features, data.n_classes)
    K, b = sc.n_workers, int(sc.data_spec["minibatch"])
    iterations = 50 if quick else sc.training.iterations
    opt = Optimiser(sc.training.optimiser, sc.training.learning_rate)
    n = rows_per_iteration(data.n_train, K, b)
    params = model.init_params(0)
    for t in range(iterations):
        g = minibatch_gradient_sum(model, params, data.X_train, data.y_train, K, b, 0, t)
        params = opt.step(params, g, n)
    return iterations, float(model.accuracy(params, data.X_test, data.y_test))


def run(quick: bool) -> list[Result]:
    iterations, accuracy = paper_accuracy(quick)
    t = throughput(quick)
    section = "CNN gradient (8 5x5 filters, 2x2 max pool, MNIST 28x28, float64)"
    ratio = t["vec"] / t["loop"]
    m = worker_rss()
    mem = f"CNN worker memory (shipped MNIST, 4 of 9 partitions, {m['own_mb']:.1f} MB own data)"
    return [
        Result("CNN on the shipped MNIST sample (scenarios/paper-mnist.yaml, uncoded minibatch)",
               f"held-out accuracy after {iterations} iterations", accuracy, "fraction",
               ">= 0.95", accuracy >= 0.95 if not quick else None),
        Result(section, "im2col throughput", t["vec"], "samples/CPU-s"),
        Result(section, "per-sample loops throughput", t["loop"], "samples/CPU-s"),
        Result(section, "im2col / loops", ratio, "ratio", ">= 10", ratio >= 10),
        Result(mem, "training peak RSS above baseline / own data bytes", m["per_byte"], "ratio",
               "<= 2", m["per_byte"] <= 2.0),
    ]  # fmt: skip
