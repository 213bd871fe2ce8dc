"""The master's pure state machine: owns the model and the code, runs the iterations.

Iteration t: send ``ModelUpdate(t)`` to every edge; decode from the first ``n - s_e`` edge
vectors (``code.master_decode_weights``) or, for flat schemes, the first ``M - s`` relayed
worker vectors (``code.decode_weights``); step ``params -= lr * g / n_train`` (the mean
full-batch gradient); evaluate every ``eval_every`` iterations; stop after ``iterations`` or
once the evaluated loss reaches ``target_loss``. If the needed answers have not arrived
``deadline_s`` after the model was sent, the attempt fails (see docs/operations.md for
``on_failure``). The family-specific part (which answers count, how they decode, what a
failure misses) is the aggregation strategy of ``services.master.aggregation``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.coding import combine
from common.coding.protocol import ServiceCode
from common.runtime.messages import (
    NO_EPOCH,
    NO_ITERATION,
    EdgeGradient,
    EdgeProgress,
    EdgeSetup,
    IterationFailed,
    LateAnswer,
    Message,
    ModelUpdate,
    Ready,
    Register,
    Shutdown,
    WorkerGradient,
)
from services.common import integrity
from services.common.actions import (
    Action,
    Drop,
    Event,
    Exit,
    Log,
    Observe,
    ParamsUpdated,
    PeerChanged,
    Received,
    Record,
    Refit,
    RefitDone,
    SendDown,
    Started,
    Tick,
)
from services.common.lifecycle import Rejoiner
from services.master.adaptive import Adaptive, validate_adaptive
from services.master.aggregation import Attempt, aggregation_for
from services.master.naming import NodeNames
from services.master.optimiser import Optimiser, validate_optimiser

ON_FAILURE = ("retry", "skip", "stop")


def _worker(msg: Message) -> str:
    return f"worker-{getattr(msg, 'edge', '?')}-{getattr(msg, 'worker', '?')}"


def _non_finite_reason(g: np.ndarray, params: np.ndarray) -> str | None:
    """Why an update must not be applied (None: it may)."""
    if not np.isfinite(g).all():
        return "the decoded gradient is not finite (NaN or Inf); update not applied"
    if not np.isfinite(params).all():
        return (
            "the updated parameters are not finite (NaN or Inf: the learning rate diverges?); "
            "update not applied"
        )
    return None


@dataclass(frozen=True)
class TrainingConfig:
    """What the master runs. Times in seconds."""

    code_spec: dict[str, Any]
    data_spec: dict[str, Any]
    model_spec: dict[str, Any]
    emulation_spec: dict[str, Any] = field(default_factory=dict)
    iterations: int = 10
    learning_rate: float = 0.1
    eval_every: int = 1
    target_loss: float | None = None
    deadline_s: float = 10.0
    on_failure: str = "stop"
    max_retries: int = 2
    # verify mode (services.common.integrity; docs/operations.md): after the needed answers,
    # wait up to verify_wait_s for two more at each tier, and decode only from answers that
    # agree with each other; a located liar is left out, named and counted
    verify: bool = False
    verify_wait_s: float = 1.0
    optimiser: dict[str, Any] | None = None  # services.master.optimiser (None: plain SGD)
    # true names (services.master.naming): plan position -> scenario name; nodes left out
    names: dict[str, str] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()
    # hgc-adaptive (services.master.adaptive): refit, re-plan and switch plans while training
    adaptive: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        validate_optimiser(self.optimiser)
        if self.adaptive is not None:
            validate_adaptive(self.adaptive)
        checks = [
            (self.iterations >= 1, f"iterations: must be >= 1, got {self.iterations}"),
            (self.learning_rate > 0, f"learning_rate: must be > 0, got {self.learning_rate}"),
            (self.eval_every >= 1, f"eval_every: must be >= 1, got {self.eval_every}"),
            (self.deadline_s > 0, f"deadline_s: must be > 0, got {self.deadline_s}"),
            (
                self.on_failure in ON_FAILURE,
                f"on_failure: must be one of {', '.join(ON_FAILURE)}, got {self.on_failure!r}",
            ),
            (self.max_retries >= 0, f"max_retries: must be >= 0, got {self.max_retries}"),
            (isinstance(self.verify, bool), f"verify: must be true or false, got {self.verify!r}"),
            (
                isinstance(self.verify_wait_s, int | float) and 0 <= self.verify_wait_s < 3600,
                f"verify_wait_s: must be in [0, 3600) s, got {self.verify_wait_s!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class MasterState:
    """State of the master.

    Parameters
    ----------
    config : TrainingConfig
    code : ServiceCode
        Built from ``config.code_spec`` (a fake in unit tests); its family (``is_flat``)
        picks the aggregation strategy once.
    params : np.ndarray, shape (P,)
        Initial model parameters (float64); updated in place of a copy each iteration.
    n_train : int
        Training rows; the step uses the mean gradient ``g / n_train``.
    evaluate : callable
        ``params -> (loss, accuracy)`` on held-out data.
    """

    def __init__(
        self,
        config: TrainingConfig,
        code: ServiceCode,
        params: np.ndarray,
        n_train: int,
        evaluate: Callable[[np.ndarray], tuple[float, float]],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if n_train < 1:
            raise ValueError(f"n_train: must be >= 1, got {n_train}")
        self.config = config
        self.adaptive: Adaptive | None = None
        if config.adaptive is not None:
            self.adaptive = Adaptive(config.adaptive, code, config.code_spec, config.emulation_spec)
            code = self.adaptive.code  # the plan's code, over the whole topology
        self.code = code
        self.aggregation = aggregation_for(code)
        self.n_edges = int(code.n_edges)
        self.params = np.array(params, dtype=np.float64)
        self.n_train = n_train
        self.evaluate = evaluate
        self.clock = clock
        self.registered: dict[int, str] = {}
        self.alive: set[str] = set()  # edges the transport hears from
        self.setup_sent = False
        self.ready: set[int] = set()
        self.attempt: Attempt | None = None
        self.next_iteration = 0
        self.start = 0.0
        self.done = False
        self.optimiser = Optimiser(config.optimiser, config.learning_rate)
        # restarts (services.master.checkpoint, services.common.lifecycle): the run epoch this
        # master runs (set when it resumes), whether training began, and Rejoin requests to
        # edges heard from but not registered (this master restarted)
        self.epoch = NO_EPOCH
        self.training_started = False
        self.rejoiner = Rejoiner("master")
        self.refit_result: tuple[Any, str | None] | None = None  # hgc-adaptive, not yet applied

    # ------------------------------------------------------------ dispatch
    def handle(self, event: Event, now: float) -> list[Action]:
        if self.done:
            return []
        if isinstance(event, Started):
            self.start = now
            return [Log(f"master: waiting for {self.n_edges} edges ({self.code.scheme})")]
        if isinstance(event, Tick):
            return self._on_tick(now)
        if isinstance(event, RefitDone):  # applied at the next iteration boundary
            self.refit_result = (event.result, event.error)
            return []
        if isinstance(event, PeerChanged):
            (self.alive.add if event.alive else self.alive.discard)(event.peer)
            return [] if event.alive else [Log(f"master: {event.peer} not heard from")]
        if isinstance(event, Received):
            self.alive.add(event.peer)
            return self._on_message(event.peer, event.msg, now)
        raise TypeError(f"master: unknown event {event!r}")

    def _on_message(self, peer: str, msg: Message, now: float) -> list[Action]:
        if isinstance(msg, Register):
            return self._on_register(peer, msg)
        edge = self._edge_of(peer)
        if edge is None:
            return [Drop("unknown_peer", f"{msg.op} from unregistered {peer!r}")]
        if isinstance(msg, Ready):
            return self._on_ready(edge, now)
        if isinstance(msg, EdgeGradient | WorkerGradient | IterationFailed):
            return self._on_answer(edge, msg, now)
        if isinstance(msg, EdgeProgress) and self.adaptive is not None:
            if msg.edge != edge or msg.epoch != self.epoch:
                return [Drop("unknown_peer", f"progress of edge {msg.edge} from edge-{edge}")]
            problem = self.adaptive.progress(msg)
            return [] if problem is None else [Drop(*problem)]
        if isinstance(msg, LateAnswer) and self.adaptive is not None:
            if msg.edge != edge or msg.epoch != self.epoch:
                return [Drop("unknown_peer", f"late answer of edge {msg.edge} from edge-{edge}")]
            problem = self.adaptive.late_answer(msg)
            return [] if problem is None else [Drop(*problem)]
        return [Drop("unknown_op", f"master does not take {msg.op}")]

    def _edge_of(self, peer: str) -> int | None:
        for i, name in self.registered.items():
            if name == peer:
                return i
        return None

    # ------------------------------------------------------------ set-up
    def _on_register(self, peer: str, msg: Register) -> list[Action]:
        if msg.role != "edge" or not 0 <= msg.edge < self.n_edges:
            return [Drop("unknown_peer", f"register {msg.role} {msg.edge} from {peer!r}")]
        if peer != f"edge-{msg.edge}" or msg.node != peer:
            return [Drop("unknown_peer", f"register as {msg.node!r} from identity {peer!r}")]
        again = self.registered.get(msg.edge) == peer and not self.setup_sent
        self.registered[msg.edge] = peer
        # an edge waiting for its set-up registers again every SETUP_RETRY_S: log it once
        acts: list[Action] = [] if again else [Log(f"master: {peer} registered")]
        if self.setup_sent:
            return [*acts, self._setup_for(msg.edge)]
        if len(self.registered) == self.n_edges:
            self.setup_sent = True
            acts += [self._setup_for(i) for i in range(self.n_edges)]
        return acts

    def _setup_for(self, i: int) -> SendDown:
        c = self.config
        prefix = f"worker-{i}-"
        emulation = {
            k: v for k, v in c.emulation_spec.items() if k == f"edge-{i}" or k.startswith(prefix)
        }
        msg = EdgeSetup(
            NO_ITERATION,
            i,
            c.code_spec,
            c.data_spec,
            c.model_spec,
            emulation,
            verify=c.verify,
            verify_wait_s=float(c.verify_wait_s),
            names=NodeNames(c.names).edge_table(i),
            epoch=self.epoch,
        )
        if self.adaptive is not None:
            msg = self.adaptive_setup(msg)
        return SendDown(self.registered[i], msg)

    def _on_ready(self, edge: int, now: float) -> list[Action]:
        self.ready.add(edge)
        if len(self.ready) < self.n_edges or self.attempt is not None or self.training_started:
            return []
        self.start = now
        self.training_started = True
        t = self.next_iteration  # 0, or the checkpoint's iteration when resumed
        return [Log("master: all edges ready"), *self._send_iteration(t, 0, now)]

    # ------------------------------------------------------------ iterations
    def _send_iteration(self, t: int, attempt: int, now: float) -> list[Action]:
        self.attempt = Attempt(t, attempt, now)
        msg = ModelUpdate(t, self.params.copy(), epoch=self.epoch)
        edges: Any = range(self.n_edges)
        if self.adaptive is not None:
            self.adaptive.started(t, now)
            edges = self.adaptive.code.edges  # the plan's edges only
        return [SendDown(self.registered[i], msg) for i in edges]

    def _on_answer(self, edge: int, msg: Message, now: float) -> list[Action]:
        a = self.attempt
        stale = (
            self.adaptive is not None
            and isinstance(msg, EdgeGradient | IterationFailed)
            and getattr(msg, "plan_epoch", self.adaptive.epoch) != self.adaptive.epoch
        )
        old_epoch = getattr(msg, "epoch", 0) != self.epoch
        if a is None or msg.iteration != a.iteration or stale or old_epoch:
            if self.adaptive is not None and isinstance(msg, EdgeGradient) and not old_epoch:
                self.adaptive.late(msg, now)  # a measurement all the same
            return [Drop("late", f"{msg.op} for iteration {msg.iteration} from edge-{edge}")]
        vector = getattr(msg, "vector", None)
        if vector is not None and (vector.dtype != np.float64 or vector.shape != self.params.shape):
            return [Drop("malformed", f"edge-{edge}: vector {vector.dtype}{vector.shape}")]
        if vector is not None and not np.isfinite(vector).all():
            # a missing answer, as a straggler's: it never reaches the decode
            a.refused.append(f"edge-{edge}" if isinstance(msg, EdgeGradient) else _worker(msg))
            return [
                Drop("non_finite", f"{msg.op} from edge-{edge}: non-finite vector"),
                Log(
                    f"master: iteration {a.iteration}: dropped a non-finite vector via edge-{edge}"
                ),
            ]
        if isinstance(msg, IterationFailed):
            a.failures[edge] = msg
            return [Log(f"master: iteration {a.iteration}: {msg.reason}")]
        assert isinstance(msg, EdgeGradient | WorkerGradient)
        acts = self.aggregation.take(a, edge, msg, now - a.t0)
        if acts is None:
            what = "edge vector from" if isinstance(msg, EdgeGradient) else "worker vector via"
            return [Drop("unknown_peer", f"unexpected {what} edge-{edge}")]
        if isinstance(msg, EdgeGradient) and msg.excluded:
            m = self.code.workers_per_edge[edge] if edge < self.n_edges else 0
            a.liars += [f"worker-{edge}-{j}" for j in msg.excluded if 0 <= j < m]
        count, needed = self.aggregation.count(a), self.aggregation.needed
        if count >= needed and a.needed_at is None:
            a.needed_at = now
        if not self.config.verify and count == needed:
            return [*acts, *self._finish(now)]
        if self.config.verify and count >= min(self.aggregation.total, needed + 2):
            return [*acts, *self._finish(now)]
        return acts

    def _decode(self, a: Attempt) -> tuple[np.ndarray, dict[str, Any]]:
        """The full gradient g (P,) from the first needed answers, and the record's detail."""
        vectors, weights, detail = self.aggregation.decode(a)
        # the coding core's in-place combine: no temporary per vector, 0/1 weights cost a sum
        return combine(vectors, np.asarray(weights)), detail

    def _finish(self, now: float) -> list[Action]:
        a = self.attempt
        assert a is not None
        start = self.clock()
        acts_verify: list[Action] = []
        if self.config.verify:
            problem, acts_verify = self._verify(a)
            if problem is not None:
                return [*acts_verify, *self._fail(a, now, problem)]
        g, detail = self._decode(a)
        moments = self.optimiser.state()  # restored if the step is not applied
        with np.errstate(all="ignore"):  # overflow is what the check below is for
            params = self.optimiser.step(self.params, g, self.n_train)
        decode_s = self.clock() - start
        bad = _non_finite_reason(g, params)
        if bad is not None:
            # never applied: the model keeps its last finite parameters (and the optimiser its
            # moments), on_failure decides
            self.optimiser.restore(moments)
            return self._fail(a, now, f"iteration {a.iteration} (attempt {a.attempt}): {bad}")
        self.params = params
        t = a.iteration
        self.next_iteration = t + 1  # what a checkpoint taken now resumes from
        acts: list[Action] = [
            *acts_verify,
            ParamsUpdated(t, self.params.copy()),
            Observe("edge_wait", now - a.t0),
            Observe("master_decode", decode_s),
            Observe("iteration_duration", now - a.t0),
            Observe("iterations", 1.0, {"outcome": "ok"}),
            Observe("iteration", float(t)),
        ]
        acts += [Observe("edge_straggler", 1.0, {"edge": e[5:]}) for e in detail["edge_stragglers"]]
        last = t + 1 >= self.config.iterations
        loss: float | None = None
        accuracy: float | None = None
        if last or (t + 1) % self.config.eval_every == 0:
            loss, accuracy = self.evaluate(self.params)
            acts += [Observe("loss", loss), Observe("accuracy", accuracy)]
        row = self._row(a, True, now, detail, decode_s, loss, accuracy, None)
        switch: list[Action] = []
        if self.adaptive is not None:
            row = self.adaptive.annotate(row)
            if not last:
                switch, row["plan_switch"] = self.adapt(a, now)
        acts.append(Record(row))
        target = self.config.target_loss
        if target is not None and loss is not None and loss <= target:
            return acts + self._shutdown(0, f"target loss {target} reached at iteration {t}")
        if last:
            return acts + self._shutdown(0, f"finished {self.config.iterations} iterations")
        return acts + switch + self._send_iteration(t + 1, 0, now)

    def _row(
        self,
        a: Attempt,
        ok: bool,
        now: float,
        detail: dict[str, Any],
        decode_s: float | None,
        loss: float | None,
        accuracy: float | None,
        error: str | None,
    ) -> dict[str, Any]:
        needed = self.aggregation.needed
        arrived = sorted(self.aggregation.arrivals(a))
        return {
            "scheme": self.code.scheme,
            "K": self.code.K,  # partitions of the code this master built (and shipped)
            "iteration": a.iteration,
            "attempt": a.attempt,
            "ok": ok,
            "duration_s": now - a.t0,
            "edge_wait_s": arrived[needed - 1] if len(arrived) >= needed else None,
            **detail,
            "decode_s": decode_s,
            "loss": loss,
            "accuracy": accuracy,
            "wall_s": now - self.start,
            "refused": list(a.refused),
            "liars": list(a.liars),
            "error": error,
        }

    # ------------------------------------------------------------ hgc-adaptive
    def adaptive_setup(self, msg: EdgeSetup) -> EdgeSetup:
        """The set-up of the plan in force: its code, epoch, selection and loads."""
        ad = self.adaptive
        assert ad is not None
        inner = ad.code.inner
        spec = inner.spec() if hasattr(inner, "spec") else self.config.code_spec
        return dataclasses.replace(
            msg,
            code_spec=dict(spec),
            emulation_spec=ad.emulation_for(msg.edge),
            plan_epoch=ad.epoch,
            plan_spec=ad.plan_spec_now(),
        )

    def adapt(
        self, a: Attempt, now: float, failed: bool = False
    ) -> tuple[list[Action], dict[str, Any] | None]:
        """After a successful iteration: observe it; every window, refit and maybe switch
        (new set-ups to every edge, ahead of the next model on the same connections).
        The actions, and the switch for the iteration's record (None: no switch)."""
        ad = self.adaptive
        assert ad is not None
        ad.finished(a, now - a.t0, failed)
        acts: list[Action] = []
        if ad.due():  # re-planned off the I/O loop; the result comes as RefitDone
            acts.append(Refit(ad.begin_refit()))
        switch = ad.verify_switch()  # the measured test of the last switch
        if switch is None and self.refit_result is None:
            return acts, None
        if switch is None:
            assert self.refit_result is not None
            result, self.refit_result = self.refit_result, None
            switch = ad.finish_refit(result[0])
            if switch is None:
                took = f" ({result[0].describe()})" if result[0] is not None else ""
                why = result[1] or f"the plan in force stays{took}"
                return [*acts, Log(f"master: iteration {a.iteration}: re-plan: {why}")], None
        self.code = ad.code
        self.aggregation = aggregation_for(self.code)
        why = f" on a drift of {', '.join(switch.drift)}" if switch.drift else ""
        acts += [
            Log(
                f"master: iteration {a.iteration}: plan switch to epoch {switch.epoch} "
                f"({switch.plan.scheme}: edges {list(switch.plan.edges)}, workers "
                f"{[list(w) for w in switch.plan.workers]}, s_e={switch.plan.s_e} "
                f"s_w={switch.plan.s_w}){why}; "
                f"predicted gain {switch.gain:.1%} "
                f"(E[T] {switch.current_s:.4f} s -> {switch.best_s:.4f} s; re-plan took "
                f"{switch.replan_s:.1f} s)"
                if not switch.reverted
                else f"master: iteration {a.iteration}: plan switch to epoch {switch.epoch}: "
                f"back to the plan before ({switch.plan.scheme}): the new plan measured "
                f"{switch.current_s:.4f} s per iteration against {switch.best_s:.4f} s before"
            ),
            Observe("plan_switch", switch.gain),
            Observe("plan_epoch", float(switch.epoch)),
            *[Observe("plan_selected", v, {"node": n}) for n, v in ad.selected_nodes().items()],
        ]
        acts += [self._setup_for(i) for i in sorted(self.registered)]
        info = {
            "plan_epoch": switch.epoch,
            "plan_scheme": switch.plan.scheme,
            "edges": [f"edge-{i}" for i in switch.plan.edges],
            "workers": [
                f"worker-{i}-{j}"
                for i, ws in zip(switch.plan.edges, switch.plan.workers, strict=True)
                for j in ws
            ],
            "s_e": switch.plan.s_e,
            "s_w": switch.plan.s_w,
            "predicted_gain": switch.gain,
            "predicted_before_s": switch.current_s,
            "predicted_after_s": switch.best_s,
            "replan_s": switch.replan_s,
            "reverted": switch.reverted,
            "drift": list(switch.drift),
        }
        return acts, info

    def _verify(self, a: Attempt) -> tuple[str | None, list[Action]]:
        """Check the answers against each other; leave a located liar out. (why the
        iteration must fail, or None; the actions to take either way)."""
        agg = self.aggregation
        keys, vectors = agg.answers(a)
        verdict = integrity.check(keys, vectors, agg.needed, agg.weights)
        if not verdict.detected:
            return None, []
        acts: list[Action] = [Observe("integrity_failure", 1.0)]
        if verdict.liar is None:
            return (
                f"iteration {a.iteration} (attempt {a.attempt}): integrity check failed: "
                f"answers disagree (relative difference {verdict.disagreement:.3g}) and the "
                f"liar cannot be located from {len(keys)} answers (needs {agg.needed + 2}); "
                "update not applied"
            ), acts
        name = agg.exclude(a, verdict.liar)
        a.liars.append(name)
        acts.append(
            Log(
                f"master: iteration {a.iteration}: {name} sent an inconsistent vector "
                f"(relative difference {verdict.disagreement:.3g}); left out of the update"
            )
        )
        return None, acts

    # ------------------------------------------------------------ failure and shutdown
    def _on_tick(self, now: float) -> list[Action]:
        known = set(self.registered.values())
        rejoin = self.rejoiner.ask(self.alive, known.__contains__, now)
        return rejoin + self._check_deadline(now)

    def _check_deadline(self, now: float) -> list[Action]:
        a = self.attempt
        if a is None:
            return []
        enough = self.aggregation.count(a) >= self.aggregation.needed
        # verify mode waited for extra answers as long as it may: decode what is here
        waited = a.needed_at is not None and now - a.needed_at >= self.config.verify_wait_s
        if self.config.verify and enough and (waited or now - a.t0 > self.config.deadline_s):
            return self._finish(now)
        if now - a.t0 <= self.config.deadline_s:
            return []
        return self._fail(a, now)

    def failure_message(self, a: Attempt, now: float) -> str:
        """Which edges (and, as far as known, which workers) the iteration waited for."""
        waited = now - a.t0
        return (
            f"iteration {a.iteration} (attempt {a.attempt}) failed after {waited:.2f} s: "
            f"{self.aggregation.shortfall(a, self.alive)}"
        )

    def _fail(self, a: Attempt, now: float, message: str | None = None) -> list[Action]:
        message = message or self.failure_message(a, now)
        detail: dict[str, Any] = {
            "edge_arrivals_s": {f"edge-{i}": s for i, s in a.edge_arrivals.items()},
            "edges_used": [],
            "edge_stragglers": [
                f"edge-{i}" for i in range(self.n_edges) if i not in a.edge_arrivals
            ],
            "worker_arrivals_s": {f"worker-{i}-{j}": s for (i, j), s in a.worker_arrivals.items()},
            "worker_stragglers": [
                f"worker-{i}-{j}" for i, r in sorted(a.failures.items()) for j in r.missing_workers
            ],
        }
        row = self._row(a, False, now, detail, None, None, None, message)
        policy = self.config.on_failure
        switch: list[Action] = []
        if self.adaptive is not None:
            row = self.adaptive.annotate(row)
            if policy == "retry" and a.attempt < self.config.max_retries:
                # a failed attempt is a measurement too; the retry may run on a new plan
                switch, row["plan_switch"] = self.adapt(a, now, failed=True)
        acts: list[Action] = [
            Log(f"master: {message}"),
            Record(row),
            Observe("iterations", 1.0, {"outcome": "failed"}),
        ]
        t = a.iteration
        if policy == "retry":
            if a.attempt < self.config.max_retries:
                acts.append(Observe("iterations", 1.0, {"outcome": "retried"}))
                return acts + switch + self._send_iteration(t, a.attempt + 1, now)
            reason = f"{message}; gave up after {self.config.max_retries} retries"
            return acts + self._shutdown(1, reason)
        if policy == "skip":
            self.next_iteration = t + 1
            acts.append(ParamsUpdated(t, self.params.copy()))
            if t + 1 >= self.config.iterations:
                return acts + self._shutdown(0, f"finished {self.config.iterations} iterations")
            return acts + self._send_iteration(t + 1, 0, now)
        return acts + self._shutdown(1, message)

    def _shutdown(self, status: int, reason: str) -> list[Action]:
        self.done = True
        self.attempt = None
        msg = Shutdown(NO_ITERATION, reason)
        downs: list[Action] = [SendDown(peer, msg) for _, peer in sorted(self.registered.items())]
        return [*downs, Log(f"master: {reason}"), Exit(status, reason)]
