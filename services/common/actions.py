"""Events in and actions out of the services' pure state machines.

Each service's state machine has one method ``handle(event, now) -> list[Action]``: it never
touches a socket, a clock (``now`` is given, in seconds, monotonic) or a thread. The I/O loop
(``services.common.loop``) turns socket traffic, timers and compute results into events and
performs the actions. Unit tests drive the state machines with these small dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.runtime.messages import Message


# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class Started:
    """The node's sockets are up."""


@dataclass(frozen=True)
class Received:
    """A decoded message. ``peer`` is the sender's identity (``"master"`` for a child's parent)."""

    peer: str
    msg: Message


@dataclass(frozen=True)
class Tick:
    """A periodic timer (heartbeats, liveness, deadlines)."""


@dataclass(frozen=True)
class PeerChanged:
    """The transport's liveness verdict on a peer: heard from (again), or silent too long."""

    peer: str
    alive: bool


@dataclass(frozen=True)
class DataLoaded:
    """Worker only: the compute thread finished loading this worker's partitions."""

    n_rows: int
    n_params: int = 0  # length of the model's parameter vector (0: unknown, not checked)


@dataclass(frozen=True)
class GradientDone:
    """Worker only: the coded vector for ``iteration`` is ready (computed off the I/O loop)."""

    iteration: int
    vector: np.ndarray
    compute_s: float


@dataclass(frozen=True)
class ComputeFailed:
    """Worker only: loading data or computing raised; the worker reports it and exits."""

    error: str


@dataclass(frozen=True)
class RefitDone:
    """Master only (hgc-adaptive): a re-plan computed off the I/O loop finished (``result``
    is ``services.master.adaptive.RefitResult``; ``error`` if it raised)."""

    result: Any
    error: str | None = None


Event = (
    Started | Received | Tick | PeerChanged | DataLoaded | GradientDone | ComputeFailed | RefitDone
)


# ---------------------------------------------------------------- actions
@dataclass(frozen=True)
class SendUp:
    """Send to the parent (edge -> master, worker -> edge)."""

    msg: Message


@dataclass(frozen=True)
class SendDown:
    """Send to the child with identity ``to``."""

    to: str
    msg: Message


@dataclass(frozen=True)
class Drop:
    """A message was dropped; counted in ``hgc_<role>_messages_dropped_total{reason}``."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Observe:
    """A metric observation: ``name`` is a key the I/O loop maps to a Prometheus metric."""

    name: str
    value: float = 1.0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Log:
    """One line for the node's log (stderr)."""

    text: str


@dataclass(frozen=True)
class LoadData:
    """Worker only: load the dataset and keep only these partitions (off the I/O loop)."""

    partitions: tuple[int, ...]
    coefficients: np.ndarray
    n_partitions: int
    data_spec: dict[str, Any]
    model_spec: dict[str, Any]
    emulation: Any  # this worker's emulation_spec entry as received: the runner validates it


@dataclass(frozen=True)
class Compute:
    """Worker only: compute the coded vector for ``iteration`` at ``params`` (off the I/O loop)."""

    iteration: int
    params: np.ndarray


@dataclass(frozen=True)
class Record:
    """Master only: one line of the ``--record`` file (see docs/operations.md)."""

    row: dict[str, Any]


@dataclass(frozen=True)
class ParamsUpdated:
    """Master only: the parameters after ``iteration`` (for ``--params-trace``)."""

    iteration: int
    params: np.ndarray


@dataclass(frozen=True)
class Exit:
    """Stop the node: flush what was sent, close sockets, exit with ``status``."""

    status: int
    message: str = ""


@dataclass(frozen=True)
class Refit:
    """Master only (hgc-adaptive): re-plan on ``job`` (``services.master.adaptive.RefitJob``)
    off the I/O loop; the answer is a :class:`RefitDone` event."""

    job: Any


Action = (
    SendUp
    | SendDown
    | Drop
    | Observe
    | Log
    | LoadData
    | Compute
    | Record
    | ParamsUpdated
    | Exit
    | Refit
)
