"""The worker's pure state machine: register, set up, one coded vector per iteration.

The worker never computes inside ``handle``: it asks the I/O loop to load data
(:class:`LoadData`) or compute (:class:`Compute`) on its compute thread and hears back with
:class:`DataLoaded` / :class:`GradientDone`, so the transport's heartbeats keep flowing while
it computes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.coding.combine import split_wide
from common.runtime.messages import (
    NO_EPOCH,
    NO_ITERATION,
    SETUP_RETRY_S,
    LateAnswer,
    Message,
    ModelUpdate,
    Ready,
    Register,
    Rejoin,
    Shutdown,
    WorkerGradient,
    WorkerSetup,
)
from services.common.actions import (
    Action,
    Compute,
    ComputeFailed,
    DataLoaded,
    Drop,
    Event,
    Exit,
    GradientDone,
    LoadData,
    Log,
    Observe,
    PeerChanged,
    Received,
    SendUp,
    Started,
    Tick,
)
from services.common.lifecycle import model_key


class WorkerState:
    """State of worker ``j`` of edge ``i``.

    Parameters
    ----------
    edge, worker : int
        Topology indices (0-based); the node name is ``worker-<edge>-<worker>``.
    """

    def __init__(self, edge: int, worker: int) -> None:
        if edge < 0 or worker < 0:
            raise ValueError(f"edge and worker must be >= 0, got edge={edge} worker={worker}")
        self.edge = edge
        self.worker = worker
        self.node = f"worker-{edge}-{worker}"
        self.ready = False
        self.latest = NO_ITERATION  # newest iteration asked for
        self.n_params = 0
        self.setup_key: tuple[Any, ...] | None = None  # the set-up in use (None: none yet)
        self.registered_at: float | None = None  # when Register was last sent
        self.epoch = NO_EPOCH  # the master's run epoch of the newest model (lifecycle)
        self.rejoined = False  # asked to register again by a restarted edge
        # hgc-adaptive: a model that came while a new plan's partitions were loading, computed
        # once they are (the plan switch costs the load, never the iteration)
        self.pending: ModelUpdate | None = None
        self.plan_epoch = 0  # of the set-up in use

    def handle(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, Started):
            return self._register(now)
        if isinstance(event, Tick | PeerChanged):
            # heartbeats and liveness are the transport's job; a set-up that never came is ours
            if (
                self.setup_key is None
                and self.registered_at is not None
                and now - self.registered_at >= SETUP_RETRY_S
            ):
                return self._register(now)
            return []
        if isinstance(event, DataLoaded):
            self.ready, self.n_params = True, event.n_params
            return [
                Log(f"{self.node}: loaded {event.n_rows} rows"),
                SendUp(Ready(NO_ITERATION, self.node, self.edge, self.worker)),
                *self._run_pending(),
            ]
        if isinstance(event, GradientDone):
            return self._on_gradient(event)
        if isinstance(event, ComputeFailed):
            return [Log(f"{self.node}: compute failed: {event.error}"), Exit(1, event.error)]
        if isinstance(event, Received):
            return self._on_message(event.msg)
        raise TypeError(f"worker: unknown event {event!r}")

    def _register(self, now: float) -> list[Action]:
        self.registered_at = now
        return [SendUp(Register(NO_ITERATION, "worker", self.node, self.edge, self.worker))]

    def _on_message(self, msg: Message) -> list[Action]:
        if isinstance(msg, WorkerSetup):
            return self._on_setup(msg)
        if isinstance(msg, ModelUpdate):
            if not self.ready and self.setup_key is not None and msg.iteration >= self.latest:
                return self._hold(msg)
            if not self.ready:
                return [Drop("late", f"model for iteration {msg.iteration} before set-up")]
            if model_key(msg.epoch, msg.iteration) < model_key(self.epoch, self.latest):
                return [Drop("late", f"model for iteration {msg.iteration} < {self.latest}")]
            if not _is_vector(msg.params, self.n_params):
                return [Drop("malformed", f"model {msg.params.dtype}{msg.params.shape}")]
            self.latest, self.epoch = msg.iteration, msg.epoch
            return [Compute(msg.iteration, msg.params)]
        if isinstance(msg, Shutdown):
            return [Log(f"{self.node}: shutdown ({msg.reason})"), Exit(0)]
        if isinstance(msg, Rejoin):
            # the edge restarted and lost its registrations: register again (set-up and
            # data are kept; a repeated set-up is answered with Ready)
            self.rejoined = True
            return [
                Log(f"{self.node}: edge-{self.edge} asks to register again"),
                SendUp(Register(NO_ITERATION, "worker", self.node, self.edge, self.worker)),
            ]
        return [Drop("unknown_op", f"worker does not handle {msg.op}")]

    def _on_setup(self, msg: WorkerSetup) -> list[Action]:
        if (msg.edge, msg.worker) != (self.edge, self.worker):
            return [Drop("unknown_peer", f"setup for worker-{msg.edge}-{msg.worker}")]
        if len(msg.coefficients) != len(msg.partitions):
            return [
                Drop(
                    "malformed",
                    f"setup: {len(msg.coefficients)} coefficients "
                    f"for {len(msg.partitions)} partitions",
                )
            ]
        lo = msg.coefficients_lo
        if lo.size and (
            lo.dtype != np.float64 or lo.shape != np.shape(msg.coefficients)
            or not np.isfinite(lo).all()
        ):  # fmt: skip
            return [Drop("malformed", f"setup: coefficients_lo {lo.dtype}{lo.shape}")]
        key = (
            tuple(msg.partitions),
            np.asarray(msg.coefficients).tobytes() + lo.tobytes(),
            msg.n_partitions,
            repr(msg.data_spec),
            repr(msg.model_spec),
            msg.plan_epoch,
        )
        if key == self.setup_key:
            if self.ready and self.rejoined:
                # a restarted edge set us up again: same set-up, data loaded: ready again
                self.rejoined = False
                return [SendUp(Ready(NO_ITERATION, self.node, self.edge, self.worker))]
            # the same set-up again (answer to a re-register that crossed the first): in use
            return [Drop("late", "a repeated set-up")]
        if self.setup_key is not None:
            self.ready = False  # a plan switch: no model is computed on the old partitions
        self.setup_key = key
        self.plan_epoch = msg.plan_epoch
        # validated by the runner (``Emulation``), which fails the worker naming the field
        emulation = msg.emulation_spec.get(self.node, {})
        return [
            LoadData(
                tuple(msg.partitions),
                # a wide tier: the longdouble coefficients hi + lo (docs/numerics.md)
                msg.coefficients.astype(np.longdouble) + lo if lo.size else msg.coefficients,
                msg.n_partitions,
                msg.data_spec,
                msg.model_spec,
                emulation,
            )
        ]

    # ------------------------------------------------------------ plan switch (hgc-adaptive)
    def _hold(self, msg: ModelUpdate) -> list[Action]:
        """Keep the newest model that came while the new plan's partitions load."""
        if not _is_vector(msg.params, self.n_params):
            return [Drop("malformed", f"model {msg.params.dtype}{msg.params.shape}")]
        if model_key(msg.epoch, msg.iteration) < model_key(self.epoch, self.latest):
            return [Drop("late", f"model for iteration {msg.iteration} < {self.latest}")]
        # its run epoch too: a worker no plan had used yet has none, and its answer must
        # carry the model's (the edge drops a vector of another run epoch)
        self.latest, self.epoch = msg.iteration, msg.epoch
        self.pending = msg
        return []

    def _run_pending(self) -> list[Action]:
        msg, self.pending = self.pending, None
        if msg is None or msg.iteration < self.latest:
            return []
        if not _is_vector(msg.params, self.n_params):
            return [Drop("malformed", f"model {msg.params.dtype}{msg.params.shape}")]
        return [Compute(msg.iteration, msg.params)]

    def _on_gradient(self, event: GradientDone) -> list[Action]:
        if not self.ready:
            # computed on the partitions of the plan before the one loading now (the offload
            # thread runs in order: every result that comes before DataLoaded is such a one)
            return [Drop("late", f"result for iteration {event.iteration} of an older plan")]
        if event.iteration < self.latest:
            # a newer model arrived while computing: the edge would drop the vector as late;
            # its timing still tells hgc-adaptive how slow this worker is (a few bytes)
            late = LateAnswer(
                event.iteration,
                self.edge,
                self.worker,
                event.compute_s,
                epoch=self.epoch,
                plan_epoch=self.plan_epoch,
            )
            return [Drop("late", f"stale result for iteration {event.iteration}"), SendUp(late)]
        vector, lo = event.vector, np.zeros(0, dtype=np.float32)
        if vector.dtype == np.longdouble:  # a wide tier: sent as hi (float64) + lo (float32)
            vector, lo = split_wide(vector)
        return [
            Observe("compute", event.compute_s),
            SendUp(
                WorkerGradient(
                    event.iteration,
                    self.edge,
                    self.worker,
                    vector,
                    event.compute_s,
                    epoch=self.epoch,
                    plan_epoch=self.plan_epoch,
                    lo=lo,
                )
            ),
        ]


def _is_vector(a: np.ndarray, n: int) -> bool:
    """float64 of shape (n,) (any length when n is 0: not known yet)."""
    return a.dtype == np.float64 and a.ndim == 1 and (n == 0 or a.shape[0] == n)
