"""A worker played by a test, on the real transport: honest, lying or broken on demand.

``RogueWorker`` speaks the worker protocol over a real ``ChildEndpoint`` (CURVE when given a
key folder): it registers, loads its partitions from the ``WorkerSetup`` it receives,
answers ``Ready``, and for every ``ModelUpdate`` computes its true coded vector
(``sum_k c_k * gradient_sum(params, X_k, y_k)``) and sends ``tamper(vector, iteration)``.
The cluster tests use it for a NaN sender, a lying worker (a scaled vector), and a node that
restarts with its own key. It runs in a thread of the test; ``close()`` ends it without a
goodbye (its edge sees a crash).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from common.learning import build_model, dataset_shape, load_partitions
from common.runtime.messages import (
    ModelUpdate,
    Ready,
    Register,
    Shutdown,
    WorkerGradient,
    WorkerSetup,
)
from common.runtime.metrics import WorkerMetrics
from common.runtime.security import load_auth
from common.runtime.transport import ChildEndpoint, Received, TransportConfig

Tamper = Callable[[np.ndarray, int], np.ndarray]


def honest(vector: np.ndarray, iteration: int) -> np.ndarray:
    return vector


class RogueWorker:
    def __init__(
        self,
        edge: int,
        worker: int,
        edge_addr: str,
        *,
        keys: Path | None,
        tamper: Tamper = honest,
        claim: str | None = None,
        heartbeat_s: float = 0.25,
    ) -> None:
        self.edge, self.worker = edge, worker
        self.name = f"worker-{edge}-{worker}"
        self.claim = claim  # a name to claim at registration (an impersonation attempt)
        self.tamper = tamper
        config = TransportConfig(heartbeat_interval_s=heartbeat_s, liveness=8)
        if keys is not None:
            config = dataclasses.replace(config, auth=load_auth(keys))
        self.metrics = WorkerMetrics(CollectorRegistry(), edge, worker)
        self.up = ChildEndpoint(
            self.name, self.metrics, edge_addr, parent=f"edge-{edge}", config=config
        )
        self.setups: list[WorkerSetup] = []
        self.sent: list[int] = []  # iterations answered
        self.received_ops: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rogue-{self.name}", daemon=True)
        self._data: tuple[object, np.ndarray, list[np.ndarray], list[np.ndarray]] | None = None

    def start(self) -> RogueWorker:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.up.close()

    def _run(self) -> None:
        if self.claim is not None:
            e, w = (int(x) for x in self.claim.split("-")[1:])
            self.up.send(Register(-1, "worker", self.claim, e, w))
        self.up.send(Register(-1, "worker", self.name, self.edge, self.worker))
        while not self._stop.is_set():
            for ev in self.up.poll(0.05):
                if isinstance(ev, Received):
                    self._on(ev.message)

    def _on(self, msg: object) -> None:
        self.received_ops.append(getattr(msg, "op", "?"))
        if isinstance(msg, WorkerSetup):
            self.setups.append(msg)
            _, n_features, n_classes = dataset_shape(msg.data_spec)
            model = build_model(msg.model_spec, n_features, n_classes)
            X, y = load_partitions(msg.data_spec, msg.n_partitions, msg.partitions)
            self._data = (model, np.asarray(msg.coefficients), list(X), list(y))
            self.up.send(Ready(-1, self.name, self.edge, self.worker))
        elif isinstance(msg, ModelUpdate) and self._data is not None:
            model, coeffs, Xs, ys = self._data
            z = np.zeros_like(msg.params)
            for c, X, y in zip(coeffs, Xs, ys, strict=True):
                z += c * model.gradient_sum(msg.params, X, y)  # type: ignore[attr-defined]
            vector = np.ascontiguousarray(self.tamper(z, msg.iteration), dtype=np.float64)
            self.up.send(
                WorkerGradient(msg.iteration, self.edge, self.worker, vector, 0.0, epoch=msg.epoch)
            )
            self.sent.append(msg.iteration)
        elif isinstance(msg, Shutdown):
            self._stop.set()
