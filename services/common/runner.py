"""The I/O loop shared by every service: transport events in, state-machine actions out.

``NodeRunner`` owns the endpoints (``common.runtime.transport``), an optional ``Offload``
for compute, and the node's metrics. Each poll round it turns transport events into state
machine events (``Received``, ``PeerChanged``, ``Tick``; compute results via
``task_event``) and performs the returned actions. Role-specific actions (compute, records)
go to ``perform_extra``; metric observations to ``observe``. Subclasses override those three.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Protocol

from common.runtime import transport
from common.runtime.metrics import NodeMetrics
from common.runtime.offload import Offload, TaskDone
from services.common.actions import (
    Action,
    Drop,
    Event,
    Exit,
    Log,
    Observe,
    PeerChanged,
    Received,
    SendDown,
    SendUp,
    Started,
    Tick,
)

TICK_S = 0.05  # how often deadlines are checked: a bound on how late a deadline fires
EXIT_INTERRUPTED = 130
EXIT_ORPHANED = 3


class StateMachine(Protocol):
    def handle(self, event: Event, now: float) -> list[Action]: ...


class NodeRunner:
    """Drive ``state`` from the transport until it asks to exit (or ``stop`` is set).

    Parameters
    ----------
    name : str
        Node name, for log lines.
    state : StateMachine
    metrics : NodeMetrics
    up : ChildEndpoint or None
        Link to the parent (edges, workers).
    down : ParentEndpoint or None
        Link to the children (master, edges).
    offload : Offload or None
        Compute thread (workers).
    stop : threading.Event or None
        Set from outside (in-process clusters, signal handlers) to end the loop; the node
        then exits with status 130 without waiting for its state machine.
    orphan_timeout_s : float
        Exit with status 3 when the parent has been down (no heartbeat) this long; 0: never.
    """

    def __init__(
        self,
        name: str,
        state: StateMachine,
        metrics: NodeMetrics,
        *,
        up: transport.ChildEndpoint | None = None,
        down: transport.ParentEndpoint | None = None,
        offload: Offload | None = None,
        stop: threading.Event | None = None,
        log: Any = None,
        orphan_timeout_s: float = 0.0,
    ) -> None:
        endpoints = [e for e in (down, up) if e is not None]
        if not endpoints:
            raise ValueError(f"{name}: a node needs at least one endpoint")
        self.name = name
        self.state = state
        self.metrics = metrics
        self.up, self.down, self.offload = up, down, offload
        self.loop = transport.Loop(*endpoints, offload=offload)
        self.stop = stop or threading.Event()
        self.log = log or sys.stderr
        self.exit: Exit | None = None
        self.orphan_timeout_s = orphan_timeout_s
        self._parent_down_since: float | None = None

    # ------------------------------------------------------------ hooks for roles
    def task_event(self, done: TaskDone) -> Event | None:
        """Turn a finished offload task into a state-machine event (None: nothing to tell)."""
        raise TypeError(f"{self.name}: unexpected compute result {done.key!r}")

    def perform_extra(self, action: Action) -> None:
        raise TypeError(f"{self.name}: cannot perform {action!r}")

    def observe(self, obs: Observe) -> None:
        """Map an observation onto this role's metrics (unknown names are a bug)."""
        raise KeyError(f"{self.name}: unknown observation {obs.name!r}")

    # ------------------------------------------------------------ the loop
    def run(self) -> int:
        """Run until the state machine exits; return the exit status."""
        try:
            self._dispatch(Started())
            next_tick = time.monotonic()
            while self.exit is None and not self.stop.is_set():
                timeout = max(0.0, next_tick - time.monotonic())
                for ev in self.loop.poll(timeout):
                    self._dispatch_transport(ev)
                    if self.exit is not None:
                        break
                if self.exit is None and time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_S
                    self._dispatch(Tick())
                    self._check_orphaned()
            if self.exit is not None:
                self._flush()
        finally:
            self.close()
        if self.exit is None:
            return EXIT_INTERRUPTED
        if self.exit.message and self.exit.status:
            self._log(f"{self.name}: exiting with status {self.exit.status}: {self.exit.message}")
        return self.exit.status

    def _check_orphaned(self) -> None:
        since = self._parent_down_since
        if self.orphan_timeout_s > 0 and since is not None and self.up is not None:
            silent = time.monotonic() - since
            if silent > self.orphan_timeout_s:
                message = f"parent {self.up.parent} silent for {silent:.1f} s; giving up"
                self.exit = Exit(EXIT_ORPHANED, message)

    def _flush(self, timeout_s: float = 5.0) -> None:
        """Release messages held back by in-process link emulation (e.g. the Shutdown) before
        the sockets close; what is already queued in zmq goes out during linger."""
        deadline = time.monotonic() + timeout_s
        endpoints = [e for e in (self.up, self.down) if e is not None]
        while any(e.pending_delayed for e in endpoints):
            if time.monotonic() > deadline:
                self._log(f"{self.name}: dropping delayed messages at exit")
                return
            self.loop.poll(0.01)

    def close(self) -> None:
        if self.offload is not None:
            self.offload.close(wait=False)
        for ep in (self.up, self.down):
            if ep is not None:
                ep.close()

    def _dispatch_transport(self, ev: transport.Event) -> None:
        if isinstance(ev, transport.Received):
            self._dispatch(Received(ev.peer, ev.message))
        elif isinstance(ev, transport.PeerUp):
            if self.up is not None and ev.peer == self.up.parent:
                self._parent_down_since = None
            self._dispatch(PeerChanged(ev.peer, True))
        elif isinstance(ev, transport.PeerDown):
            if self.up is not None and ev.peer == self.up.parent:
                self._parent_down_since = time.monotonic()
            self._dispatch(PeerChanged(ev.peer, False))
        elif isinstance(ev, TaskDone):
            event = self.task_event(ev)
            if event is not None:
                self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        for action in self.state.handle(event, time.monotonic()):
            self._perform(action)

    def _perform(self, action: Action) -> None:
        if isinstance(action, SendUp):
            assert self.up is not None, f"{self.name} has no parent"
            self.up.send(action.msg)
        elif isinstance(action, SendDown):
            assert self.down is not None, f"{self.name} has no children"
            self.down.send(action.to, action.msg)
        elif isinstance(action, Drop):
            self.metrics.dropped(action.reason)
        elif isinstance(action, Observe):
            self.observe(action)
        elif isinstance(action, Log):
            self._log(action.text)
        elif isinstance(action, Exit):
            self.exit = action
        else:
            self.perform_extra(action)

    def _log(self, text: str) -> None:
        print(text, file=self.log, flush=True)
