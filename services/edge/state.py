"""The edge's pure state machine: set up its workers, relay the model, decode its tier.

Hierarchical schemes: from the first ``m_i - s_w`` worker vectors of iteration t the edge
computes ``y_i = sum_j a_j z_ij`` (``code.edge_decode_weights``) and sends one
:class:`EdgeGradient`. Flat schemes (``code.is_flat``): the edge relays every worker vector
to the master unchanged. The family is looked at once, at set-up: ``EdgeState.decoder`` is
the hierarchical code the edge decodes with, or None when it only relays. A worker the
transport declares down (no heartbeat) is presumed dead; when too few live workers remain to
decode, the edge tells the master with :class:`IterationFailed` naming the missing workers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from common.coding import combine
from common.coding.combine import combine_wide
from common.coding.protocol import HierarchicalCodeLike, ServiceCode, is_hierarchical_code
from common.runtime.messages import (
    NO_EPOCH,
    NO_ITERATION,
    SETUP_RETRY_S,
    EdgeGradient,
    EdgeProgress,
    EdgeSetup,
    IterationFailed,
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
from services.common import integrity
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
from services.common.lifecycle import Rejoiner, model_key
from services.common.lifted import LiftedCode, lift

PARENT = "master"
RECENT_ITERATIONS = 64  # iterations whose model arrival a late answer is timed against


class EdgeState:
    """State of edge ``i``.

    Parameters
    ----------
    edge : int
        Topology index; the node name is ``edge-<edge>``.
    build_code : callable
        ``code_spec -> ServiceCode`` (``common.coding.code_from_spec``; a fake in unit
        tests).
    """

    def __init__(
        self,
        edge: int,
        build_code: Callable[[dict[str, Any]], ServiceCode],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if edge < 0:
            raise ValueError(f"edge must be >= 0, got {edge}")
        self.edge = edge
        self.node = f"edge-{edge}"
        self.build_code = build_code
        self.clock = clock  # only to time the decode arithmetic (decode_s)
        self.code: ServiceCode | None = None
        # the code this edge decodes its tier with; None for a flat code (the edge relays)
        self.decoder: HierarchicalCodeLike | None = None
        self.setup: EdgeSetup | None = None
        self.m = 0  # workers under this edge, known from the code
        self.registered: dict[int, str] = {}  # worker index -> identity
        self.alive: set[str] = set()  # workers the transport hears from
        self.setups_sent = False
        self.registered_at: float | None = None  # when Register was last sent to the master
        self.ready: set[int] = set()
        self.ready_sent = False
        # the iteration in flight
        self.current = NO_ITERATION
        self.t0 = 0.0
        # (run epoch, iteration) -> when its model came, for the last RECENT_ITERATIONS: the
        # arrival time of a worker's LateAnswer (hgc-adaptive)
        self.recent_t0: dict[tuple[int, int], float] = {}
        self.late_sent: set[tuple[int, int, int]] = set()  # (epoch, iteration, worker) forwarded
        self.arrivals: dict[int, float] = {}  # worker -> seconds after model arrival
        self.computes: dict[int, float] = {}  # worker -> its reported compute seconds
        self.vectors: list[tuple[int, np.ndarray]] = []  # arrival order
        self.los: dict[int, np.ndarray] = {}  # a wide tier: worker -> lo part of its vector
        self.answered = False  # EdgeGradient or IterationFailed sent for ``current``
        self.n_params = 0  # length of the model in flight: every vector must match it
        self.failures_reported = 0  # IterationFailed messages sent (for tests and logs)
        self.refused: set[int] = set()  # workers whose answer this iteration was refused
        self.needed_at: float | None = None  # when the needed-th vector came (verify mode)
        # restarts (services.common.lifecycle): the master's run epoch of the model in flight,
        # and Rejoin requests to workers heard from but not registered (this edge restarted)
        self.epoch = NO_EPOCH
        self.rejoiner = Rejoiner(self.node)
        self.master_rejoin = False  # the master asked us to register again (it restarted)

    # ------------------------------------------------------------ identities
    def accepts_peer(self, peer: str) -> bool:
        """True for ``worker-<edge>-<j>`` with ``j`` a canonical int ``>= 0`` and, once the
        set-up told the edge its size, ``j < m``. The edge's transport drops (as
        ``unknown_peer``) every other identity before decoding, so an intruder neither
        gets heartbeats nor counts as a live worker."""
        prefix = f"worker-{self.edge}-"
        if not peer.startswith(prefix):
            return False
        j = peer[len(prefix) :]
        if not (j.isascii() and j.isdigit()) or (len(j) > 1 and j[0] == "0"):
            return False
        return self.code is None or int(j) < self.m

    # ------------------------------------------------------------ dispatch
    def handle(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, Started):
            return self._register(now)
        if isinstance(event, Tick):
            acts = [*self._check_alive(), *self._verify_timeout(now), *self._rejoin(now)]
            if (
                self.setup is None
                and self.registered_at is not None
                and now - self.registered_at >= SETUP_RETRY_S
            ):
                acts += self._register(now)  # our set-up never came: ask again
            return acts
        if isinstance(event, PeerChanged):
            if event.peer == PARENT:
                return [] if event.alive else [Log(f"{self.node}: master not heard from")]
            if event.alive and not self.accepts_peer(event.peer):
                return []  # not one of our workers: never part of the liveness count
            (self.alive.add if event.alive else self.alive.discard)(event.peer)
            return self._check_alive()
        if isinstance(event, Received):
            if event.peer == PARENT:
                return self._from_master(event.msg, now)
            if not self.accepts_peer(event.peer):
                return [Drop("unknown_peer", f"{event.msg.op} from {event.peer!r}")]
            self.alive.add(event.peer)
            return self._from_worker(event.peer, event.msg, now)
        raise TypeError(f"edge: unknown event {event!r}")

    def _rejoin(self, now: float) -> list[Action]:
        """Workers heard from but not registered: this edge restarted; ask them back."""
        known = set(self.registered.values())
        return self.rejoiner.ask(self.alive, known.__contains__, now)

    def _register(self, now: float) -> list[Action]:
        self.registered_at = now
        return [SendUp(Register(NO_ITERATION, "edge", self.node, self.edge, -1))]

    def _from_master(self, msg: Message, now: float) -> list[Action]:
        if isinstance(msg, EdgeSetup):
            return self._on_setup(msg)
        if isinstance(msg, ModelUpdate):
            return self._on_model(msg, now)
        if isinstance(msg, Rejoin):
            # the master restarted: register again; its set-up answer says its run epoch
            self.master_rejoin = True
            return [Log(f"{self.node}: the master asks to register again"), *self._register(now)]
        if isinstance(msg, Shutdown):
            downs: list[Action] = [SendDown(w, msg) for w in self.registered.values()]
            return [*downs, Log(f"{self.node}: shutdown ({msg.reason})"), Exit(0)]
        return [Drop("unknown_op", f"edge does not take {msg.op} from the master")]

    def _from_worker(self, peer: str, msg: Message, now: float) -> list[Action]:
        if isinstance(msg, Register):
            return self._on_register(peer, msg)
        if peer not in self.registered.values():
            drop = Drop("unknown_peer", f"{msg.op} from unregistered {peer!r}")
            return [drop, *self._rejoin(now)]
        if isinstance(msg, Ready):
            return self._on_ready(msg)
        if isinstance(msg, WorkerGradient):
            return self._on_gradient(peer, msg, now)
        if isinstance(msg, LateAnswer):
            return self._on_late_answer(peer, msg, now)
        return [Drop("unknown_op", f"edge does not take {msg.op} from a worker")]

    def _on_late_answer(self, peer: str, msg: LateAnswer, now: float) -> list[Action]:
        """Under a plan (hgc-adaptive): a worker's result for an iteration this edge has
        moved on from; forwarded with its arrival time (from the model's arrival here).
        Otherwise, or for an iteration no longer remembered, dropped as late."""
        if msg.edge != self.edge or self.registered.get(msg.worker) != peer:
            return [Drop("unknown_peer", f"{peer} sent a late answer as worker {msg.worker}")]
        key = (msg.epoch, msg.iteration)
        t0 = self.recent_t0.get(key)
        if t0 is None or not self.under_plan or msg.plan_epoch != self.plan_epoch:
            return [Drop("late", f"{peer}: late answer for iteration {msg.iteration}")]
        c = float(msg.compute_s)
        if not (np.isfinite(c) and 0.0 <= c <= now - t0):
            return [Drop("malformed", f"{peer}: late answer with compute_s {c!r}")]
        if (*key, msg.worker) in self.late_sent:
            return [Drop("late", f"{peer}: second late answer for iteration {msg.iteration}")]
        self.late_sent.add((*key, msg.worker))
        return [SendUp(dataclasses.replace(msg, arrival_s=now - t0))]

    # ------------------------------------------------------------ set-up
    def _on_register(self, peer: str, msg: Register) -> list[Action]:
        expected = f"worker-{self.edge}-{msg.worker}"
        if (
            msg.role != "worker"
            or msg.edge != self.edge
            or msg.worker < 0
            or peer != expected
            or msg.node != expected
        ):
            return [Drop("unknown_peer", f"register from {peer!r} as {msg.node!r}")]
        if self.code is not None and not 0 <= msg.worker < self.m:
            return [Drop("unknown_peer", f"{peer}: this edge has {self.m} workers")]
        again = self.registered.get(msg.worker) == peer and not self.setups_sent
        self.registered[msg.worker] = peer
        # a worker waiting for its set-up registers again every SETUP_RETRY_S: log it once
        acts: list[Action] = [] if again else [Log(f"{self.node}: {peer} registered")]
        if self.setups_sent:
            # a worker restarted or re-registered: send it its set-up again (if the plan uses it)
            if msg.worker in self.selected():
                acts += self._setup_for(msg.worker)
            return acts
        return acts + self._maybe_send_setups()

    def _on_setup(self, msg: EdgeSetup) -> list[Action]:
        if msg.edge != self.edge:
            return [Drop("unknown_peer", f"set-up for edge {msg.edge} sent to {self.node}")]
        if self.setup is not None and repr(msg) == repr(self.setup) and not self.master_rejoin:
            # the same set-up again (answer to a re-register that crossed the first): in use
            return [Drop("late", "a repeated set-up")]
        if self.setup is not None and repr(
            dataclasses.replace(msg, epoch=self.setup.epoch)
        ) == repr(self.setup):
            # a restarted master (new run epoch), same run: keep the code, the workers and
            # their data; pass its Ready barrier again if this subtree is ready
            # the old epoch's iteration in flight is abandoned: its answers are dropped
            self.setup, self.epoch, self.current = msg, msg.epoch, NO_ITERATION
            self.master_rejoin = False
            self.answered, self.vectors = True, []
            acts: list[Action] = [Log(f"{self.node}: master restarted (run epoch {msg.epoch})")]
            if self.ready_sent:
                acts.append(SendUp(Ready(NO_ITERATION, self.node, self.edge, -1)))
            return acts
        if self.setup is not None and msg.plan_epoch != self.setup.plan_epoch:
            return self._on_plan_switch(msg)
        try:
            code = self._build(msg)
        except ValueError as exc:
            return [Log(f"{self.node}: bad code_spec: {exc}"), Exit(1, str(exc))]
        self.code, self.setup = code, msg
        self.decoder = code if is_hierarchical_code(code) else None
        self.m = int(code.workers_per_edge[self.edge])
        extra = sorted(j for j in self.registered if j >= self.m)
        for j in extra:  # registered before the edge knew its size: not part of the code
            del self.registered[j]
        return [
            Log(f"{self.node}: code {code.scheme}, {self.m} workers"),
            *self._maybe_send_setups(),
        ]

    def _build(self, msg: EdgeSetup) -> ServiceCode:
        """The code of a set-up; lifted to the whole topology when it carries a plan."""
        code = self.build_code(msg.code_spec)
        if not msg.plan_spec:
            return code
        if not is_hierarchical_code(code):
            raise ValueError("plan_spec: a plan needs a hierarchical code")
        lifted = lift(code, msg.plan_spec)
        if lifted.n_edges <= self.edge:
            raise ValueError(f"plan_spec: {lifted.n_edges} edges, this is edge {self.edge}")
        return lifted

    @property
    def plan_epoch(self) -> int:
        """The plan epoch in force (0 before any set-up and for every scheme but a plan's)."""
        return self.setup.plan_epoch if self.setup is not None else 0

    @property
    def under_plan(self) -> bool:
        """Whether the set-up in force carries a plan (hgc-adaptive): only then do late
        answers and progress reports go up to the master."""
        return self.setup is not None and bool(self.setup.plan_spec)

    def selected(self) -> tuple[int, ...]:
        """The workers of this edge the plan in force uses (all of them but under a plan)."""
        if isinstance(self.code, LiftedCode):
            return self.code.selected_workers(self.edge)
        return tuple(range(self.m))

    def _on_plan_switch(self, msg: EdgeSetup) -> list[Action]:
        """A set-up of another plan epoch (hgc-adaptive), at an iteration boundary: the
        iteration in flight (the master has moved on) is abandoned, the new code is used from
        the next model on, and the selected workers get their new set-ups (ordered before
        that model on the same connection)."""
        assert self.setup is not None
        if msg.plan_epoch < self.setup.plan_epoch:
            return [
                Drop("late", f"set-up of plan epoch {msg.plan_epoch} < {self.setup.plan_epoch}")
            ]
        try:
            code = self._build(msg)
        except ValueError as exc:
            return [Drop("malformed", f"plan switch: {exc}")]
        if int(code.workers_per_edge[self.edge]) != self.m:
            return [Drop("malformed", f"plan switch: edge {self.edge} changes size")]
        self.code, self.setup = code, msg
        self.decoder = code if is_hierarchical_code(code) else None
        self.answered, self.vectors, self.needed_at = True, [], None
        acts: list[Action] = [
            Log(
                f"{self.node}: plan epoch {msg.plan_epoch}: workers {list(self.selected())}"
                f" of {self.m}"
            )
        ]
        for j in self.selected():
            if j in self.registered:
                acts += self._setup_for(j)
        return acts

    def _maybe_send_setups(self) -> list[Action]:
        if self.setup is None or self.setups_sent:
            return []
        selected = self.selected()
        if not all(j in self.registered for j in selected):
            return []
        self.setups_sent = True
        acts: list[Action] = []
        for j in selected:
            acts += self._setup_for(j)
        if not selected and not self.ready_sent:  # a plan that leaves this edge out
            self.ready_sent = True
            acts.append(SendUp(Ready(NO_ITERATION, self.node, self.edge, -1)))
        return acts

    def _setup_for(self, j: int) -> list[Action]:
        assert self.setup is not None and self.code is not None
        node = self.registered[j]
        emulation = (
            {node: self.setup.emulation_spec[node]} if node in self.setup.emulation_spec else {}
        )
        msg = WorkerSetup(
            NO_ITERATION,
            self.edge,
            j,
            tuple(int(k) for k in self.code.placement[self.edge][j]),
            np.asarray(self.code.worker_coefficients[self.edge][j], dtype=np.float64),
            int(self.code.K),
            self.setup.data_spec,
            self.setup.model_spec,
            emulation,
            name=str(self.setup.names.get(node, "")),  # its scenario name (naming)
            plan_epoch=self.setup.plan_epoch,
            coefficients_lo=_coefficients_lo(self.code, self.edge, j),
        )
        return [SendDown(node, msg)]

    def _on_ready(self, msg: Ready) -> list[Action]:
        self.ready.add(msg.worker)
        selected = self.selected()
        if self.ready_sent or not set(selected) <= self.ready or not selected:
            return []
        self.ready_sent = True
        return [SendUp(Ready(NO_ITERATION, self.node, self.edge, -1))]

    # ------------------------------------------------------------ iterations
    def _on_model(self, msg: ModelUpdate, now: float) -> list[Action]:
        if model_key(msg.epoch, msg.iteration) < model_key(self.epoch, self.current):
            return [Drop("late", f"model for iteration {msg.iteration} < {self.current}")]
        if msg.params.dtype != np.float64 or msg.params.ndim != 1:
            return [Drop("malformed", f"model {msg.params.dtype}{msg.params.shape}")]
        acts = self._progress_report(now)
        # a repeated iteration number is a retry: start it afresh
        self.current, self.t0, self.epoch = msg.iteration, now, msg.epoch
        self.recent_t0[(msg.epoch, msg.iteration)] = now
        for key in sorted(self.recent_t0)[:-RECENT_ITERATIONS]:
            del self.recent_t0[key]
        self.late_sent = {k for k in self.late_sent if k[:2] in self.recent_t0}
        self.n_params = int(msg.params.shape[0])
        self.arrivals, self.vectors, self.answered = {}, [], False
        self.los = {}
        self.computes = {}
        self.refused = set()
        self.needed_at = None
        return [
            *acts,
            *(SendDown(self.registered[j], msg) for j in self.selected() if j in self.registered),
        ]

    def _progress_report(self, now: float) -> list[Action]:
        """Under a plan (hgc-adaptive), an iteration abandoned unanswered (the master moved on
        without this edge): tell the master which workers had answered, and when, so that it
        measures the workers that made this edge late instead of blaming its uplink."""
        if (
            self.answered
            or self.current == NO_ITERATION
            or not self.under_plan
            or self.decoder is None
        ):
            return []
        workers = range(self.m)
        report = EdgeProgress(
            self.current,
            self.edge,
            now - self.t0,
            tuple(self.arrivals.get(j, -1.0) for j in workers),
            tuple(self.computes.get(j, -1.0) for j in workers),
            epoch=self.epoch,
            plan_epoch=self.plan_epoch,
        )
        return [SendUp(report)]

    def _on_gradient(self, peer: str, msg: WorkerGradient, now: float) -> list[Action]:
        if msg.iteration != self.current or msg.epoch != self.epoch or self.code is None:
            return [Drop("late", f"{peer}: gradient for {msg.iteration}, now {self.current}")]
        if msg.edge != self.edge or self.registered.get(msg.worker) != peer:
            return [Drop("unknown_peer", f"{peer} sent a vector as worker {msg.worker}")]
        if msg.worker not in self.selected():
            return [Drop("late", f"{peer}: not part of the plan in force")]
        if (epoch := self.plan_epoch) != msg.plan_epoch:
            return [Drop("late", f"{peer}: vector of plan epoch {msg.plan_epoch}, now {epoch}")]
        if msg.worker in self.arrivals or msg.worker in self.refused:
            return [Drop("late", f"{peer}: second vector for iteration {msg.iteration}")]
        v = msg.vector
        if v.dtype != np.float64 or v.shape != (self.n_params,):
            return [
                Drop("malformed", f"{peer}: vector {v.dtype}{v.shape}, want ({self.n_params},)")
            ]
        lo, wide = msg.lo, _edge_is_wide(self.decoder, self.edge)
        if wide and (lo.dtype != np.float32 or lo.shape != v.shape):
            # a wide tier's vector is hi + lo (docs/numerics.md): the lo part is required
            return [
                Drop("malformed", f"{peer}: lo part {lo.dtype}{lo.shape}, want float32{v.shape}")
            ]
        if not wide and lo.size:
            return [Drop("malformed", f"{peer}: a lo part {lo.shape}, but this tier is not wide")]
        if not np.isfinite(v).all() or (wide and not np.isfinite(lo).all()):
            # treated as that worker's missing answer: it never reaches a decode or the master
            self.refused.add(msg.worker)
            return [
                Drop("non_finite", f"{peer}: non-finite vector for iteration {msg.iteration}"),
                Log(f"{self.node}: dropped a non-finite vector from {peer} (a straggler now)"),
                *self._check_alive(),
            ]
        arrival = now - self.t0
        self.arrivals[msg.worker] = arrival
        c = float(msg.compute_s)
        self.computes[msg.worker] = c if np.isfinite(c) and 0.0 <= c <= arrival else -1.0
        acts: list[Action] = [
            Observe("worker_arrival", arrival, {"edge": str(self.edge), "worker": str(msg.worker)})
        ]
        if self.decoder is None:  # a flat code: the master decodes every worker vector
            return [*acts, SendUp(msg)]
        if self.answered:
            return acts  # a straggler's vector, after the edge decoded without it
        self.vectors.append((msg.worker, msg.vector))
        if wide:
            self.los[msg.worker] = lo
        needed = self.decoder.workers_needed(self.edge)
        if len(self.vectors) >= needed and self.needed_at is None:
            self.needed_at = now
        verify = self.setup is not None and self.setup.verify
        if len(self.vectors) >= (min(self.m, needed + 2) if verify else needed):
            acts += self._decode(self.decoder, now)
        return acts

    def _verify_timeout(self, now: float) -> list[Action]:
        """Verify mode: the extra answers did not all come within verify_wait_s; decode (and
        check) from those that did."""
        setup = self.setup
        if setup is None or not setup.verify or self.decoder is None or self.answered:
            return []
        if self.needed_at is None or now - self.needed_at < setup.verify_wait_s:
            return []
        return self._decode(self.decoder, now)

    def _decode(self, decoder: HierarchicalCodeLike, now: float) -> list[Action]:
        excluded: tuple[int, ...] = ()
        checks: list[Action] = []
        if self.setup is not None and self.setup.verify:
            keys = [j for j, _ in self.vectors]
            verdict = integrity.check(
                keys,
                [z for _, z in self.vectors],
                decoder.workers_needed(self.edge),
                lambda ks: np.asarray(decoder.edge_decode_weights(self.edge, ks)),
            )
            if verdict.detected:
                checks.append(Observe("integrity_failure", 1.0, {"edge": str(self.edge)}))
                if verdict.liar is None:
                    self.answered = True
                    self.failures_reported += 1
                    reason = (
                        f"{self.node}: integrity check failed: worker vectors disagree "
                        f"(relative difference {verdict.disagreement:.3g}); the liar cannot be "
                        f"located from {len(keys)} answers"
                    )
                    missing = tuple(range(self.m))
                    failed = IterationFailed(
                        self.current, self.edge, missing, reason, epoch=self.epoch
                    )
                    return [*checks, Log(reason), SendUp(failed)]
                excluded = (int(verdict.liar),)
                checks.append(
                    Log(
                        f"{self.node}: iteration {self.current}: worker-{self.edge}-"
                        f"{verdict.liar} sent an inconsistent vector (relative difference "
                        f"{verdict.disagreement:.3g}); left out"
                    )
                )
            self.vectors = [self.vectors[i] for i in verdict.use]
        responders = tuple(j for j, _ in self.vectors)
        wait_s = now - self.t0
        start = self.clock()
        if _edge_is_wide(decoder, self.edge):
            # a wide tier: sum_j a_j (hi_j + lo_j) in longdouble, rounded once to float64
            weights = decoder.edge_decode_weights_wide(self.edge, responders)  # type: ignore[attr-defined]
            y = combine_wide(
                [z for _, z in self.vectors], [self.los[j] for j in responders], weights
            )
        else:
            weights = decoder.edge_decode_weights(self.edge, responders)
            # the coding core's in-place combine: no temporary per vector, 0/1 weights: a sum
            y = combine([z for _, z in self.vectors], np.asarray(weights))
        decode_s = self.clock() - start
        self.answered, self.vectors = True, []
        arrivals = tuple(self.arrivals.get(j, -1.0) for j in range(self.m))
        computes = tuple(self.computes.get(j, -1.0) for j in range(self.m))
        msg = EdgeGradient(
            self.current,
            self.edge,
            y,
            responders,
            wait_s,
            decode_s,
            arrivals,
            excluded,
            epoch=self.epoch,
            worker_compute_s=computes,
            plan_epoch=self.plan_epoch,
        )
        edge = str(self.edge)
        acts: list[Action] = [
            *checks,
            Observe("worker_wait", wait_s, {"edge": edge}),
            Observe("edge_decode", decode_s, {"edge": edge}),
        ]
        for j in self.selected():
            if j not in self.arrivals:
                acts.append(Observe("worker_straggler", 1.0, {"edge": edge, "worker": str(j)}))
        return [*acts, SendUp(msg)]

    def _check_alive(self) -> list[Action]:
        """Tell the master early when too few live workers remain to decode this iteration."""
        acts: list[Action] = []
        # a flat code's edge only relays: the master judges what is missing
        if self.decoder is None or self.answered or self.current == NO_ITERATION:
            return acts
        needed = self.decoder.workers_needed(self.edge)
        selected = self.selected()
        dead = [
            j
            for j in selected
            if j not in self.arrivals and (not self._alive(j) or j in self.refused)
        ]
        live_possible = len(selected) - len(dead)
        if dead and live_possible < needed:
            self.answered = True
            self.failures_reported += 1
            missing = tuple(j for j in selected if j not in self.arrivals)
            names = ", ".join(
                f"worker-{self.edge}-{j}" + (" (refused answer)" if j in self.refused else "")
                for j in dead
            )
            reason = (
                f"{self.node}: needs {needed} of {self.m} workers, "
                f"{len(self.arrivals)} answered, not alive or refused: {names}"
            )
            failed = IterationFailed(self.current, self.edge, missing, reason, epoch=self.epoch)
            acts += [Log(reason), SendUp(failed)]
        return acts

    def _alive(self, j: int) -> bool:
        return self.registered.get(j) in self.alive


def _edge_is_wide(code: object, edge: int) -> bool:
    """True when ``code`` (a HierarchicalCode; fakes and lifted plans have no wide tiers) makes
    this edge's worker tier wide (common/coding: hi + lo vectors, longdouble combine)."""
    is_wide = getattr(code, "edge_is_wide", None)
    return bool(is_wide(edge)) if callable(is_wide) else False


def _coefficients_lo(code: object, edge: int, j: int) -> np.ndarray:
    """Worker j's coefficients_lo (a wide tier's longdouble remainder), else empty."""
    los = getattr(code, "worker_coefficients_lo", ())
    if not isinstance(los, tuple) or edge >= len(los) or los[edge] is None:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(los[edge][j], dtype=np.float64)
