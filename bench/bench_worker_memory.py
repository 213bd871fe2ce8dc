"""Peak memory (RSS) of a real worker process against its data plus three gradient copies.

The bench plays the worker's edge with a raw ROUTER: it sends the worker the set-up of
worker (0, 0) of an hgc code (3 edges x 3 workers, s_e = s_w = 1: 4 of K = 9 partitions) on
a synthetic dataset and on MNIST-format gzipped IDX files (random pixels written to a
temporary directory), then a few model updates, and reads the worker's ``VmHWM`` (peak RSS)
from /proc:

- ``setup``: peak over the whole life (loading its partitions' rows included; the worker
  never builds the whole dataset: ``common.learning.load_partitions``);
- ``training``: peak while computing gradients (``clear_refs`` resets the peak after set-up).

Both are reported above the interpreter's baseline (RSS after start-up, before set-up:
Python, numpy, zmq), relative to ``own rows + 3 x gradient`` bytes. Target <= 2x.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bench import Result
from common.coding import make_code
from common.learning import build_model, dataset_shape, partition_rows
from common.runtime.codec import decode, encode
from common.runtime.messages import ModelUpdate, Shutdown, WorkerSetup

ROOT = Path(__file__).resolve().parent.parent


def _kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _await(sock: zmq.Socket, op: str, timeout_s: float = 300.0) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sock.poll(1000):
            _, *frames = sock.recv_multipart()
            msg = decode(frames)
            if msg.op == op:
                return msg
    raise TimeoutError(f"no {op} from the worker in {timeout_s} s")


def worker_peaks(
    code: Any,
    data_spec: dict[str, Any],
    model_spec: dict[str, Any],
    iterations: int = 5,
    *,
    reset_after_setup: bool = True,
) -> dict[str, int]:
    """Run a real worker process as worker (0, 0) of ``code``, playing its edge with a raw
    ROUTER: set-up, ``iterations`` model updates, shut-down. Bytes of its RSS after start-up
    (``baseline``), its peak after set-up (``setup_peak``) and after training
    (``train_peak``; with ``reset_after_setup`` the peak of training alone, else of the whole
    life)."""
    parts = tuple(code.placement[0][0])
    _, d, c = dataset_shape(data_spec)
    model = build_model(model_spec, d, c)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    edge = ctx.socket(zmq.ROUTER)
    edge.setsockopt(zmq.LINGER, 0)
    port = edge.bind_to_random_port("tcp://127.0.0.1")
    cmd = [sys.executable, "-m", "services.worker", "--edge", "0", "--worker", "0"]
    cmd += ["--edge-addr", f"tcp://127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _await(edge, "register", 60)
        baseline = _kib(proc.pid, "VmRSS")
        ident = b"worker-0-0"
        coeffs = np.asarray(code.worker_coefficients[0][0], dtype=np.float64)
        setup = WorkerSetup(-1, 0, 0, parts, coeffs, code.K, data_spec, model_spec)
        edge.send_multipart([ident, *encode(setup)])
        _await(edge, "ready")
        setup_peak = _kib(proc.pid, "VmHWM")
        if reset_after_setup:
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # reset the peak
        params = model.init_params(0)
        for t in range(iterations):
            edge.send_multipart([ident, *encode(ModelUpdate(t, params))])
            _await(edge, "worker_gradient")
        train_peak = _kib(proc.pid, "VmHWM")
        edge.send_multipart([ident, *encode(Shutdown(-1, "bench over"))])
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        edge.close()
    return {"baseline": baseline, "setup_peak": setup_peak, "train_peak": train_peak}


def measure(data_spec: dict[str, Any], iterations: int = 5) -> dict[str, float]:
    model_spec = {"kind": "logreg"}
    code = make_code("hgc", [3, 3, 3], 1, 1)
    parts = tuple(code.placement[0][0])
    n_train, d, c = dataset_shape(data_spec)
    rows = partition_rows(n_train, code.K)
    own_rows = sum(len(rows[k]) for k in parts)
    model = build_model(model_spec, d, c)
    grad_bytes = model.n_params * 8
    own_bytes = own_rows * (d * 8 + 8)  # float64 features + int64 label
    peaks = worker_peaks(code, data_spec, model_spec, iterations)
    baseline = peaks["baseline"]
    budget = own_bytes + 3 * grad_bytes
    return {
        "budget_mb": budget / 1e6,
        "baseline_mb": baseline / 1e6,
        "setup_ratio": (peaks["setup_peak"] - baseline) / budget,
        "train_ratio": (peaks["train_peak"] - baseline) / budget,
        "full_data_mb": n_train * (d * 8 + 8) / 1e6,
    }


def write_mnist_like(folder: Path, n_train: int) -> None:
    """Gzipped IDX files in the MNIST layout (28 x 28 uint8 images, labels 0..9), random."""
    rng = np.random.default_rng(0)
    for stem, n in (("train", n_train), ("t10k", 100)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            with gzip.open(folder / f"{stem}-{kind}-ubyte.gz", "wb", compresslevel=1) as fh:
                fh.write(header + array.tobytes())


def run(quick: bool) -> list[Result]:
    n, d = (40_000, 200) if quick else (200_000, 400)
    m = measure({"kind": "synthetic", "n_samples": n, "n_features": d})
    section = f"worker memory ({n} x {d} synthetic, own data {m['budget_mb']:.0f} MB)"
    results = _results(section, m)
    n_mnist = 10_000 if quick else 60_000
    with tempfile.TemporaryDirectory() as tmp:
        write_mnist_like(Path(tmp), n_mnist)
        m = measure({"kind": "mnist", "path": tmp})
    section = f"worker memory (MNIST-format {n_mnist} x 784 .gz IDX, own data "
    section += f"{m['budget_mb']:.0f} MB)"
    return results + _results(section, m)


def _results(section: str, m: dict[str, float]) -> list[Result]:
    return [
        Result(section, "training peak RSS / (own data + 3 gradients)", m["train_ratio"],
               "ratio", "<= 2", m["train_ratio"] <= 2.0),
        Result(section, "set-up peak RSS / (own data + 3 gradients)", m["setup_ratio"],
               "ratio", "<= 2", m["setup_ratio"] <= 2.0),
        Result(section, "interpreter baseline (not counted above)", m["baseline_mb"], "MB"),
        Result(section, "whole training set", m["full_data_mb"], "MB"),
    ]  # fmt: skip
