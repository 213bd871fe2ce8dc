"""Every message that travels between master, edges and workers.

Messages are frozen dataclasses with a class-level ``op`` and the ``iteration`` they belong
to (``-1`` for messages outside the training loop: registration, heartbeats, shutdown).
Fields are plain msgpack-able values (int, float, str, bool, None, tuples/lists and dicts of
those) or ``numpy.ndarray``; the codec (``common.runtime.codec``) sends arrays as raw frames
and everything else in one msgpack header. Keep fields flat and typed: no free-form
payload dicts except the explicitly versioned ``*_spec`` dictionaries below.

Flow of one training run::

    worker --Register--> edge --Register--> master          (children connect, parents bind)
    master --EdgeSetup--> edge --WorkerSetup--> worker      (code parameters, data, emulation)
    worker --Ready--> edge --Ready--> master                 (barrier: all set up)
    master --ModelUpdate(t)--> edges --ModelUpdate(t)--> workers
    worker --WorkerGradient(t)--> edge                      (one coded vector)
    edge --EdgeGradient(t)--> master                        (hierarchical schemes)
    edge --WorkerGradient(t)--> master                      (flat schemes: edges only relay)
    edge --EdgeProgress(t)--> master                        (hgc-adaptive: t abandoned)
    worker --LateAnswer(t)--> edge --LateAnswer(t)--> master (a result too late: its timing)
    master --Shutdown--> edges --Shutdown--> workers
    anyone --Heartbeat--> parent / child                    (liveness)
    parent --Rejoin--> child it does not know                (after the parent restarted)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

NO_ITERATION = -1
# A node that registered but has no set-up after this many seconds registers again: a set-up
# lost on the way (a connection replaced during start-up, a send that found no route) is sent
# again by the parent (it answers every Register once its own set-up is known), so the Ready
# barrier cannot stall on one lost message.
SETUP_RETRY_S = 2.0
# Run epoch (issue 11): a master that resumes from its checkpoint starts a new epoch (one more
# than the checkpoint's). EdgeSetup and ModelUpdate carry it down, the answers carry it back
# up: a node orders models by (epoch, iteration), so the resumed master's iteration numbers,
# lower than those it already saw, are new, and answers of an old epoch are dropped as late.
# 0 for a master without a checkpoint (it cannot be resumed).
NO_EPOCH = 0


def _no_coefficients_lo() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


def _no_lo() -> np.ndarray:
    return np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class Message:
    op: ClassVar[str] = ""
    iteration: int


@dataclass(frozen=True)
class Register(Message):
    """A child announces itself to its parent. ``node`` is e.g. ``"edge-1"`` or ``"worker-1-2"``."""

    op: ClassVar[str] = "register"
    role: str
    node: str
    edge: int
    worker: int  # -1 for an edge


@dataclass(frozen=True)
class Rejoin(Message):
    """Parent -> child it hears from but does not know (the parent restarted and lost its
    registrations): register again. The child keeps its set-up and data; the parent's
    set-up answer tells it whether anything changed (a new epoch)."""

    op: ClassVar[str] = "rejoin"
    reason: str = ""


@dataclass(frozen=True)
class Heartbeat(Message):
    op: ClassVar[str] = "heartbeat"
    node: str


@dataclass(frozen=True)
class EdgeSetup(Message):
    """Master -> edge i: everything the edge needs to set up its subtree.

    ``code_spec`` is the JSON-able description from which every node rebuilds the same code
    deterministically (``common.coding.code_from_spec``); ``data_spec`` / ``model_spec`` say
    which dataset and model to use; ``emulation_spec`` holds per-node emulation profiles
    keyed by node name.
    """

    op: ClassVar[str] = "edge_setup"
    edge: int
    code_spec: dict[str, Any]
    data_spec: dict[str, Any]
    model_spec: dict[str, Any]
    emulation_spec: dict[str, Any] = field(default_factory=dict)
    # verify mode (services.common.integrity): wait up to verify_wait_s after the needed
    # worker answers for two more, and check them against each other before decoding
    verify: bool = False
    verify_wait_s: float = 0.0
    # plan position -> scenario name of this edge and its workers (services.master.naming):
    # what the edge labels its metrics and logs with; empty = positions are the names
    names: dict[str, Any] = field(default_factory=dict)
    epoch: int = NO_EPOCH  # the master's run epoch (NO_EPOCH above)
    # hgc-adaptive (services.master.adaptive): the plan this set-up belongs to. A set-up
    # with a higher plan_epoch replaces the one in force at an iteration boundary; plan_spec
    # (services.common.lifted.plan_spec) names the selected edges and workers by topology
    # index; empty: every node of the code takes part (every other scheme)
    plan_epoch: int = 0
    plan_spec: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerSetup(Message):
    """Edge -> worker (i, j): its partitions and the coefficient of each in its one vector."""

    op: ClassVar[str] = "worker_setup"
    edge: int
    worker: int
    partitions: tuple[int, ...]
    coefficients: np.ndarray  # float64, shape (len(partitions),)
    n_partitions: int  # K
    data_spec: dict[str, Any]
    model_spec: dict[str, Any]
    emulation_spec: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the worker's scenario name ("" = its position is its name)
    plan_epoch: int = 0  # hgc-adaptive: a new epoch's set-up is loaded even if unchanged
    # wide worker tier (docs/numerics.md): coefficients + coefficients_lo are the longdouble
    # coefficients (float64, same shape); empty (shape (0,)) for every other code
    coefficients_lo: np.ndarray = field(default_factory=_no_coefficients_lo)


@dataclass(frozen=True)
class Ready(Message):
    """A node finished set-up (worker: data loaded; edge: all its workers ready)."""

    op: ClassVar[str] = "ready"
    node: str
    edge: int
    worker: int  # -1 for an edge


@dataclass(frozen=True)
class ModelUpdate(Message):
    """The model parameters for iteration ``iteration`` (flattened float64 vector)."""

    op: ClassVar[str] = "model_update"
    params: np.ndarray
    epoch: int = NO_EPOCH


@dataclass(frozen=True)
class WorkerGradient(Message):
    """Worker (edge, worker) -> its edge: sum_k coefficient_k * g_k for its partitions."""

    op: ClassVar[str] = "worker_gradient"
    edge: int
    worker: int
    vector: np.ndarray
    compute_s: float  # wall-clock seconds the worker spent, emulated delay included
    epoch: int = NO_EPOCH  # of the model it answers
    plan_epoch: int = 0  # hgc-adaptive: the plan whose partitions it was computed on
    # wide worker tier (docs/numerics.md): vector + lo is the longdouble coded vector, lo the
    # float32 remainder (shape of vector); empty (shape (0,)) for every other code
    lo: np.ndarray = field(default_factory=_no_lo)


@dataclass(frozen=True)
class EdgeGradient(Message):
    """Edge -> master: the edge's decoded combination sum_k edge_target_ik * g_k."""

    op: ClassVar[str] = "edge_gradient"
    edge: int
    vector: np.ndarray
    responders: tuple[int, ...]  # workers whose vectors were combined, in arrival order
    wait_s: float  # seconds from model arrival to the (m_i - s_w)-th worker answer
    decode_s: float
    # seconds from model arrival to each worker's answer, indexed by worker; -1.0 for workers
    # that had not answered when the edge sent (the stragglers it ignored)
    worker_arrivals_s: tuple[float, ...] = ()
    # verify mode: workers whose vector the edge found inconsistent and left out
    excluded: tuple[int, ...] = ()
    epoch: int = NO_EPOCH
    # each worker's own compute time (WorkerGradient.compute_s), indexed by worker, -1.0 for
    # those that had not answered: hgc-adaptive separates compute from link and overhead
    worker_compute_s: tuple[float, ...] = ()
    plan_epoch: int = 0  # hgc-adaptive: the plan whose code combined it


@dataclass(frozen=True)
class IterationFailed(Message):
    """Edge -> master: not enough workers answered before the edge's deadline."""

    op: ClassVar[str] = "iteration_failed"
    edge: int
    missing_workers: tuple[int, ...]
    reason: str
    epoch: int = NO_EPOCH


@dataclass(frozen=True)
class EdgeProgress(Message):
    """Edge -> master, under a plan (``hgc-adaptive``) only: how far the edge had got with an
    iteration it never answered, sent when the next model makes it abandon that iteration.
    The master had moved on without this edge (a tolerated straggler); without this report it
    could only censor the edge's uplink, blaming the link for what its slow workers did."""

    op: ClassVar[str] = "edge_progress"
    edge: int
    elapsed_s: float  # seconds from the model's arrival at the edge to the abandonment
    # as in EdgeGradient: seconds from model arrival to each worker's answer, and each
    # worker's own compute time, indexed by worker; -1.0 for those that had not answered
    worker_arrivals_s: tuple[float, ...] = ()
    worker_compute_s: tuple[float, ...] = ()
    epoch: int = NO_EPOCH
    plan_epoch: int = 0


@dataclass(frozen=True)
class LateAnswer(Message):
    """Worker -> edge -> master: the timing of a result computed after a newer model had
    come (the vector itself is useless by then and is not sent). Under a plan
    (``hgc-adaptive``) the edge fills ``arrival_s`` and forwards it; it is how the master
    measures a worker too slow to ever answer in time instead of only bounding it."""

    op: ClassVar[str] = "late_answer"
    edge: int
    worker: int
    compute_s: float  # as WorkerGradient.compute_s
    arrival_s: float = -1.0  # set by the edge: seconds from the model's arrival there
    epoch: int = NO_EPOCH
    plan_epoch: int = 0


@dataclass(frozen=True)
class Shutdown(Message):
    op: ClassVar[str] = "shutdown"
    reason: str


ALL_MESSAGES: tuple[type[Message], ...] = (
    Register,
    Heartbeat,
    EdgeSetup,
    WorkerSetup,
    Ready,
    ModelUpdate,
    WorkerGradient,
    EdgeGradient,
    IterationFailed,
    EdgeProgress,
    LateAnswer,
    Shutdown,
    Rejoin,
)
MESSAGE_TYPES: dict[str, type[Message]] = {m.op: m for m in ALL_MESSAGES}
