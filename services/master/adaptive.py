"""``hgc-adaptive``: the master re-plans the code from what the run measures.

Every ``window`` successful iterations the master refits every node's profile from the
arrivals it and the edges measured in that window, re-runs the optimiser (``hgc-jncss`` and
the unequal-load ``hgc-hetero``, through the planner ``common.perf.plan_scheme``) on the
estimates, and switches plan at the next iteration boundary when the predicted gain,
``1 - E[T](best) / E[T](current)`` on the same estimated system (never-measured nodes
calibrated by :func:`calibrate_unmeasured`), exceeds ``threshold`` beyond the window's
noise or in two windows in a row (:func:`should_switch`).

What is measured (no extra traffic):

- a selected worker: its arrival at its edge, from the model's arrival there (the edge's
  ``EdgeGradient.worker_arrivals_s``), minus the prior round trip of its link, divided by its
  load: a per-unit-load compute time. A worker the edge did not wait for is right-censored
  at the edge's decode time (``wait_s``): it took longer, by how much is unknown.
- a selected edge: half of (its arrival at the master - its ``wait_s`` - its ``decode_s``),
  the one-way time of its uplink. Answers that come after the master finished the
  iteration (late) are observations too; an edge that never answered is right-censored at
  half the iteration's duration.

Both are fitted with the censored shifted-exponential MLE of ``common.perf.estimate``
(``fit_shifted_exponential``); a node with fewer than two answered observations in the window
keeps its prior profile, raised to the censoring bound when every observation was censored.
Unselected nodes are not observed and keep their last estimate.

A switch sends every edge a new ``EdgeSetup`` with ``plan_epoch`` + 1 and the new
``plan_spec`` (``services.common.lifted``) before the next ``ModelUpdate``; edges forward new
``WorkerSetup`` s and workers load their new partitions first. The model and the optimiser
state stay the master's: training stays exactly gradient descent across switches.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from common.coding import code_from_spec
from common.coding.protocol import HierarchicalCodeLike, is_hierarchical_code
from common.perf import Plan, expected_time, plan_scheme
from common.perf.estimate import fit_shifted_exponential
from common.perf.system import EdgeProfile, Link, StragglerModel, SystemModel, WorkerProfile
from common.runtime.messages import EdgeGradient, EdgeProgress, LateAnswer
from services.common.lifted import LiftedCode, plan_spec
from services.master.aggregation import Attempt

ADAPTIVE_KEYS = {"window", "threshold", "schemes", "recheck", "system", "plan", "workers_per_edge"}
PLANNERS = ("hgc-jncss", "hgc-hetero")
SQRT3 = math.sqrt(3.0)


# ---------------------------------------------------------------- the decision (pure)
def predicted_gain(current_s: float, best_s: float) -> float:
    """``1 - best / current``: the fraction of the expected iteration time a switch saves
    (0 when either is not a finite positive time)."""
    if not (math.isfinite(current_s) and math.isfinite(best_s)) or current_s <= 0:
        return 0.0
    return 1.0 - best_s / current_s


Z_SCORE = 2.0  # how many standard errors a one-window gain must clear to switch at once


def should_switch(
    current_s: float,
    best_s: float,
    threshold: float,
    same_plan: bool,
    uncertainty: float = 0.0,
    persisted: bool = False,
) -> bool:
    """Switch when the best plan is another plan and saves more than ``threshold`` of the
    expected iteration time of the plan in force (both scored on the same fitted model), and
    the gain is not noise: it clears ``threshold + uncertainty`` (``uncertainty``: the
    relative standard error of the window's estimates, times :data:`Z_SCORE`), or the same
    plan in force was predicted to lose more than ``threshold`` at the previous refit too
    (``persisted``: two independent windows agree)."""
    gain = predicted_gain(current_s, best_s)
    if same_plan or gain <= threshold:
        return False
    return gain > threshold + max(0.0, uncertainty) or persisted


def keep_switch(before: Sequence[float], after: Sequence[float]) -> bool:
    """After a switch, the measured test of the predicted gain: keep the new plan unless its
    mean iteration time over a window (``after``) is above the old plan's over the window
    before the switch (``before``). The model predicts the gain; only the cluster can say
    what the runtime adds per node and message (a plan over more nodes costs more on a busy
    host than the model knows). Too few measurements on either side: keep."""
    b = [x for x in before if math.isfinite(x) and x > 0]
    a = [x for x in after if math.isfinite(x) and x > 0]
    if len(b) < 2 or len(a) < 2:
        return True
    return float(np.mean(a)) <= float(np.mean(b))


def needs_full_replan(
    now_s: float, last_s: float | None, uncertainty: float, light_in_a_row: int, max_light: int = 3
) -> bool:
    """Run the optimisers (``True``) or only re-score the last re-plan's best plan against the
    plan in force (cheap)? The optimisers are rerun when there was no re-plan on this plan
    yet (``last_s`` None), when the plan in force's expected time on the new estimates
    (``now_s``) moved beyond the window's ``uncertainty`` from the last re-plan's
    (``last_s``: the cluster changed), or after ``max_light`` cheap ones in a row. On a
    stationary cluster most re-plans are cheap: the optimisers' CPU is not taken from the
    cluster sharing the host."""
    if last_s is None or light_in_a_row >= max_light:
        return True
    if not (math.isfinite(now_s) and math.isfinite(last_s)) or last_s <= 0:
        return True
    return abs(now_s / last_s - 1.0) > max(0.0, uncertainty)


def window_uncertainty(durations: Sequence[float], z: float = Z_SCORE) -> float:
    """``z`` relative standard errors of the mean of a window's iteration durations: how far
    a gain predicted from that window can be from the truth by noise alone (a window of
    fewer than two iterations is all noise: 1)."""
    d = np.asarray([x for x in durations if math.isfinite(x) and x > 0], dtype=float)
    if len(d) < 2:
        return 1.0
    return float(z * d.std(ddof=1) / (d.mean() * math.sqrt(len(d))))


# ---------------------------------------------------------------- the spec
@dataclass(frozen=True)
class AdaptiveSpec:
    """``window``: successful iterations between refits (>= 2); ``threshold``: the smallest
    predicted gain (fraction, in [0, 1)) that makes a switch; ``schemes``: the optimisers
    whose plans compete (``hgc-jncss``, ``hgc-hetero``)."""

    window: int = 20
    threshold: float = 0.05
    schemes: tuple[str, ...] = PLANNERS
    recheck: bool = False  # the measured test of a switch (verify_switch); off by default


def validate_adaptive(raw: Any, where: str = "adaptive") -> AdaptiveSpec:
    """The scenario's / master config's ``adaptive`` section; ``ValueError`` naming the field."""
    if raw is None:
        return AdaptiveSpec()
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - ADAPTIVE_KEYS)
    if unknown:
        raise ValueError(
            f"{where}.{unknown[0]}: unknown key; allowed: window, threshold, schemes, recheck"
        )
    window = raw.get("window", AdaptiveSpec.window)
    if isinstance(window, bool) or not isinstance(window, int) or not 2 <= window <= 100_000:
        raise ValueError(f"{where}.window: must be an integer in [2, 100000], got {window!r}")
    threshold = raw.get("threshold", AdaptiveSpec.threshold)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not (math.isfinite(threshold) and 0.0 <= threshold < 1.0)
    ):
        raise ValueError(f"{where}.threshold: must be a number in [0, 1), got {threshold!r}")
    schemes = raw.get("schemes", list(PLANNERS))
    if (
        not isinstance(schemes, list | tuple)
        or not schemes
        or any(s not in PLANNERS for s in schemes)
    ):
        raise ValueError(
            f"{where}.schemes: a non-empty list of {', '.join(PLANNERS)}, got {schemes!r}"
        )
    recheck = raw.get("recheck", False)
    if not isinstance(recheck, bool):
        raise ValueError(f"{where}.recheck: must be true or false, got {recheck!r}")
    return AdaptiveSpec(int(window), float(threshold), tuple(dict.fromkeys(schemes)), recheck)


# ---------------------------------------------------------------- system model <-> JSON
def _link_json(link: Link) -> dict[str, Any]:
    bw = link.bandwidth_bytes_per_s
    return {
        "latency_s": link.latency_s,
        "jitter_s": link.jitter_s,
        "bandwidth_bytes_per_s": bw if math.isfinite(bw) else None,
        "loss": link.loss,
        "retransmit_s": link.retransmit_s,
    }


def _link(raw: dict[str, Any]) -> Link:
    bw = raw.get("bandwidth_bytes_per_s")
    return Link(
        latency_s=float(raw["latency_s"]),
        jitter_s=float(raw["jitter_s"]),
        bandwidth_bytes_per_s=math.inf if bw is None else float(bw),
        loss=float(raw["loss"]),
        retransmit_s=float(raw["retransmit_s"]),
    )


def system_to_json(system: SystemModel) -> dict[str, Any]:
    """The prior the master starts from (``adaptive.system`` of its config); JSON-able."""
    st = system.straggler
    if st.kind == "trace":
        raise ValueError("adaptive: a trace straggler model cannot be re-estimated online")
    return {
        "gradient_bytes": int(system.gradient_bytes),
        "straggler": {
            "kind": st.kind,
            "p_slow": st.p_slow,
            "p_recover": st.p_recover,
            "slowdown": st.slowdown,
        },
        "workers": [
            [{"shift_s": w.shift_s, "rate": w.rate, "link": _link_json(w.link)} for w in ws]
            for ws in system.workers
        ],
        "edges": [
            {"uplink": _link_json(e.uplink), "combine_s_per_byte": e.combine_s_per_byte}
            for e in system.edges
        ],
    }


def system_from_json(raw: dict[str, Any]) -> SystemModel:
    """Inverse of :func:`system_to_json`; ``ValueError`` if malformed."""
    try:
        st = raw["straggler"]
        return SystemModel(
            workers=tuple(
                tuple(
                    WorkerProfile(float(w["shift_s"]), float(w["rate"]), _link(w["link"]))
                    for w in ws
                )
                for ws in raw["workers"]
            ),
            edges=tuple(
                EdgeProfile(_link(e["uplink"]), float(e["combine_s_per_byte"]))
                for e in raw["edges"]
            ),
            gradient_bytes=int(raw["gradient_bytes"]),
            straggler=StragglerModel(
                st["kind"], float(st["p_slow"]), float(st["p_recover"]), float(st["slowdown"])
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"adaptive.system: malformed ({type(exc).__name__}: {exc})") from None


def plan_json(plan: Plan) -> dict[str, Any]:
    """A plan on topology indices as the master's config carries it (``adaptive.plan``)."""
    return {
        "scheme": plan.scheme,
        "edges": [int(e) for e in plan.edges],
        "workers": [[int(j) for j in ws] for ws in plan.workers],
    }


# ---------------------------------------------------------------- observations (pure)
@dataclass
class Window:
    """Observations of one refit window, by topology node."""

    # per worker: (arrival at the edge or -1, its compute time or -1, the edge's wait, load)
    workers: dict[tuple[int, int], list[tuple[float, float, float, float]]] = field(
        default_factory=dict
    )
    edges: dict[int, list[tuple[float, bool]]] = field(default_factory=dict)
    iterations: int = 0
    durations: list[float] = field(default_factory=list)  # of its successful iterations


def observe_edge_answer(
    window: Window, system: SystemModel, code: LiftedCode, msg: EdgeGradient, arrival_s: float
) -> None:
    """One edge's answer (on time or late): its uplink and its selected workers."""
    i = msg.edge
    if i not in code.position:
        return
    one_way = max(0.0, (arrival_s - msg.wait_s - msg.decode_s) / 2.0)
    window.edges.setdefault(i, []).append((one_way, False))
    computes = msg.worker_compute_s
    for j in code.selected_workers(i):
        load = code.load(i, j)
        if load <= 0 or j >= len(msg.worker_arrivals_s):
            continue
        arrival = float(msg.worker_arrivals_s[j])
        compute = float(computes[j]) if j < len(computes) else -1.0
        window.workers.setdefault((i, j), []).append((arrival, compute, msg.wait_s, load))


def observe_attempt(
    window: Window, system: SystemModel, code: LiftedCode, a: Attempt, duration_s: float
) -> list[int]:
    """A finished iteration: every answer it got; the selected edges that had not answered
    are returned (they may answer late; :func:`censor_edges` if they never do)."""
    window.iterations += 1
    window.durations.append(duration_s)
    for i, msg in a.edge_vectors:
        observe_edge_answer(window, system, code, msg, a.edge_arrivals[i])
    return [i for i in code.edges if i not in a.edge_arrivals]


def censor_edges(window: Window, edges: Sequence[int], duration_s: float) -> None:
    """Edges that never answered an iteration of ``duration_s``: right-censored."""
    for i in edges:
        window.edges.setdefault(i, []).append((duration_s / 2.0, True))


def _fit(
    times: Sequence[float], censored: Sequence[bool], loads: Sequence[float]
) -> tuple[float, float] | None:
    """(shift per unit load, rate) by the censored MLE, or None with < 2 answered times."""
    if sum(1 for c in censored if not c) < 2:
        return None
    fit = fit_shifted_exponential(list(times), list(censored), list(loads))
    return fit.shift_s, fit.rate


def estimate_system(current: SystemModel, window: Window) -> SystemModel:
    """``current`` with every node observed in ``window`` refitted (see the module doc)."""
    workers = [list(ws) for ws in current.workers]
    for (i, j), seen in window.workers.items():
        prior = workers[i][j]
        # the link (and per-message overhead) round trip: arrival minus own compute time
        rtts = [a - c for a, c, _, _ in seen if a >= 0 and c >= 0]
        link = prior.link
        if len(rtts) >= 2:
            one_way = np.asarray(rtts) / 2.0
            link = Link(latency_s=float(one_way.mean()), jitter_s=float(SQRT3 * one_way.std()))
        rtt = 2.0 * link.mean_transfer_s(0 if rtts else current.gradient_bytes)
        times: list[float] = []
        cens: list[bool] = []
        loads: list[float] = []
        for a, c, wait, load in seen:
            if a >= 0:  # answered: its own compute time (or arrival minus the round trip)
                times.append(c if c >= 0 else max(a - rtt, 0.0))
                cens.append(False)
            else:  # not waited for: its compute took longer than the wait minus the trip
                times.append(max(wait - rtt, 0.0))
                cens.append(True)
            loads.append(load)
        fit = _fit(times, cens, loads)
        if fit is not None:
            shift, rate = fit
            rate = rate if math.isfinite(rate) else 1e6
            workers[i][j] = dataclasses.replace(prior, shift_s=shift, rate=rate, link=link)
        else:  # every draw (but one) was cut off: at least as slow as the cut-offs say
            bound = max(t / ell for t, ell in zip(times, loads, strict=True))
            mean = prior.shift_s + 1.0 / prior.rate
            shift = max(prior.shift_s, bound - 1.0 / prior.rate) if bound > mean else prior.shift_s
            workers[i][j] = dataclasses.replace(prior, shift_s=shift, link=link)
    edges = list(current.edges)
    for i, seen_e in window.edges.items():
        times_e, cens_e = zip(*seen_e, strict=True)
        fit_e = _fit(times_e, cens_e, [1.0] * len(times_e))
        if fit_e is not None:
            shift, rate = fit_e
            spread = 0.0 if not math.isfinite(rate) else 1.0 / rate
            mean = shift + spread
            link = Link(latency_s=mean, jitter_s=min(SQRT3 * spread, mean))
        else:  # every answer (but one) cut off: at least the cut-off
            bound = max(times_e)
            if bound <= edges[i].uplink.mean_transfer_s(current.gradient_bytes):
                continue
            link = Link(latency_s=bound, jitter_s=0.0)
        edges[i] = dataclasses.replace(edges[i], uplink=link)
    return dataclasses.replace(
        current, workers=tuple(tuple(ws) for ws in workers), edges=tuple(edges)
    )


# ---------------------------------------------------------------- drift (pure)
DRIFT_RUN = 3  # observations in a row beyond everything the node did before: a drift
DRIFT_HISTORY = 30  # observations per node kept to judge the next ones by
DRIFT_MIN_HISTORY = 8  # fewer than this: too little known to call anything a drift

Series = dict[str, list[tuple[float, bool]]]  # "worker-i-j", "worker-i-j/link", "edge-i"


def node_series(window: Window) -> Series:
    """Per node, its observations of one window as (value, censored), in arrival order:
    a worker's compute time per unit load (a cut-off one: the edge's wait per unit load, a
    lower bound), its link's round trip, an edge's one-way uplink time."""
    out: Series = {}
    for (i, j), seen in window.workers.items():
        name = f"worker-{i}-{j}"
        for arrival, compute, wait, load in seen:
            if load <= 0:
                continue
            if arrival < 0:
                out.setdefault(name, []).append((wait / load, True))
            elif compute >= 0:
                out.setdefault(name, []).append((compute / load, False))
                out.setdefault(name + "/link", []).append((arrival - compute, False))
    for i, seen_e in window.edges.items():
        out[f"edge-{i}"] = list(seen_e)
    return out


DRIFT_FACTOR = 2.0  # a drift moves a node at least this many times its median ...
DRIFT_MARGIN_S = 0.010  # ... and this far: a busy host's hiccups (1.5x, a few ms) do not


def _surprise(value: float, censored: bool, before: tuple[float, float, float]) -> bool:
    """Outside everything ``before`` (its maximum, minimum and median) says: above its
    maximum and DRIFT_FACTOR x its median plus DRIFT_MARGIN_S, or (a value, not a cut-off)
    below its minimum and its median / DRIFT_FACTOR less DRIFT_MARGIN_S. The drifts worth an
    immediate re-plan are large (a throttled Pi 2-6x, a LAN uplink turned cellular 100x);
    smaller changes wait for the next window's refit. On a 2-core host shared by 13 nodes,
    with 1.5x and 5 ms, scheduling hiccups of 3 iterations on one worker's link called a
    re-plan about once per 270-iteration stationary run (bench adaptive)."""
    top, bottom, mid = before
    if value > top and value > DRIFT_FACTOR * mid + DRIFT_MARGIN_S:
        return True
    return not censored and value < bottom and value < mid / DRIFT_FACTOR - DRIFT_MARGIN_S


class DriftTracker:
    """Per node, a run of observations beyond everything the node did before the run.

    Fed each window's observations as they come (:meth:`observe`, only the new ones). An
    observation outside the stats (maximum, minimum, median) of the node's last
    :data:`DRIFT_HISTORY` observations before it starts a run; the run goes on while every
    next one is outside those same stats. Judged against the node's own past, not its fitted
    profile, so a busy host that inflates every estimate does not hide a drift. For a node
    that does not change, ``run`` in a row beyond the maximum of h earlier draws has
    probability run! h! / (h + run)! (~6e-3 at h = 10, ~2e-4 at h = 30, per node and
    iteration); a node that throttles several-fold or a link that degrades to cellular does
    it every time. O(1) per observation: the master calls it every iteration."""

    def __init__(self) -> None:
        self.series: Series = {}
        self.run: dict[str, int] = {}  # series -> length of its current run
        self.stats: dict[str, tuple[float, float, float]] = {}  # the run's reference
        self.fed: dict[str, int] = {}  # series -> observations of this window fed

    def _feed(self, name: str, value: float, censored: bool) -> None:
        seq = self.series.setdefault(name, [])
        ref = self.stats.get(name)
        if ref is not None and _surprise(value, censored, ref):
            self.run[name] += 1
        elif ref is not None and censored:
            # a lower bound under the surprise line neither extends nor ends the run: a node
            # too slow to answer in time is bounded at each iteration (EdgeProgress) and
            # measured only when its late answers come (LateAnswer), between those bounds
            pass
        else:
            self.stats.pop(name, None)
            before = sorted([v for v, c in seq if not c][-DRIFT_HISTORY:])
            self.run[name] = 0
            if len(before) >= DRIFT_MIN_HISTORY:
                ref = (before[-1], before[0], before[len(before) // 2])
                if _surprise(value, censored, ref):
                    self.run[name], self.stats[name] = 1, ref
        seq.append((value, censored))
        del seq[: -2 * DRIFT_HISTORY]

    def observe(self, window: Window) -> None:
        """Feed ``window``'s observations not fed yet (windows only grow until
        :meth:`new_window`)."""
        for name, seq in node_series(window).items():
            for value, censored in seq[self.fed.get(name, 0) :]:
                self._feed(name, value, censored)
            self.fed[name] = len(seq)

    def new_window(self) -> None:
        self.fed = {}

    def drifted(self, run: int = DRIFT_RUN) -> dict[str, int]:
        """Node name -> its run, for the nodes with a run of ``run`` or more."""
        out: dict[str, int] = {}
        for name, n in self.run.items():
            node = name.split("/")[0]
            if n >= run and n > out.get(node, 0):
                out[node] = n
        return out

    def restart(self, nodes: dict[str, int]) -> None:
        """Drifted nodes: their history is their run from now on (what they did before no
        longer says what is normal for them)."""
        for name in list(self.series):
            node = name.split("/")[0]
            if node in nodes:
                n = self.run.get(name, 0)
                self.series[name] = self.series[name][-n:] if n else []
                self.run[name] = 0
                self.stats.pop(name, None)


LATE_ITERATIONS = 64  # a late answer older than this many iterations is dropped
MEMORY = 30  # observations per node the estimates are fitted on (across windows)


def accumulate(memory: Window, window: Window, drift: dict[str, int], keep: int = MEMORY) -> Window:
    """Each node's last ``keep`` observations, over windows: ``memory`` then ``window``. A
    drifted node keeps only ``window``'s (already cut to its run by :func:`since_drift`).
    Fitting on up to 30 observations instead of one window's 5 makes the optimiser chase
    less noise: with 5, some plan always looks 5-10 % better by chance (the winner's curse).
    Measured on the stationary bench (270 iterations): 3 switches with it, 8 without."""
    workers = {k: list(v) for k, v in memory.workers.items()}
    edges = {k: list(v) for k, v in memory.edges.items()}
    for (i, j), seen in window.workers.items():
        old = [] if f"worker-{i}-{j}" in drift else workers.get((i, j), [])
        workers[(i, j)] = (old + list(seen))[-keep:]
    for i, seen_e in window.edges.items():
        old_e = [] if f"edge-{i}" in drift else edges.get(i, [])
        edges[i] = (old_e + list(seen_e))[-keep:]
    return Window(workers=workers, edges=edges, iterations=window.iterations)


def since_drift(window: Window, nodes: dict[str, int]) -> Window:
    """``window`` with each drifted node's observations cut to its run (what it is now; the
    ones before the drift describe what it was)."""
    workers = dict(window.workers)
    edges = dict(window.edges)
    for name, n in nodes.items():
        parts = name.split("-")
        if parts[0] == "worker":
            key = (int(parts[1]), int(parts[2]))
            workers[key] = workers[key][-n:]
        else:
            edges[int(parts[1])] = edges[int(parts[1])][-n:]
    return dataclasses.replace(window, workers=workers, edges=edges)


def _median(xs: Sequence[float], floor: float) -> float:
    return max(floor, float(np.median(xs))) if xs else floor


def calibrate_unmeasured(
    system: SystemModel,
    prior: SystemModel,
    measured_workers: set[tuple[int, int]],
    measured_edges: set[int],
) -> SystemModel:
    """Nodes never measured still have their prior profile, which lacks what the runtime adds
    to every node (per-message overhead, scheduling on a busy host); the measured ones have
    it. Scored as they are, every plan that uses an unmeasured node looks better than it is
    (a switch on a bias, not on a gain). So each unmeasured node's links are moved by the
    median additive overhead measured on the others' (never below the prior: an unknown node
    is not assumed faster). Compute is not moved: a prior off on some nodes' compute says
    nothing about the others' (the measured ones may be exactly the nodes it got wrong)."""
    g = system.gradient_bytes
    link_d = [
        system.workers[i][j].link.mean_transfer_s(g) - prior.workers[i][j].link.mean_transfer_s(g)
        for i, j in measured_workers
    ]
    edge_d = [
        system.edges[i].uplink.mean_transfer_s(g) - prior.edges[i].uplink.mean_transfer_s(g)
        for i in measured_edges
    ]
    dl, de = _median(link_d, 0.0), _median(edge_d, 0.0)
    workers = [list(ws) for ws in system.workers]
    for i, ws in enumerate(workers):
        for j, w in enumerate(ws):
            if (i, j) not in measured_workers:
                link = dataclasses.replace(w.link, latency_s=w.link.latency_s + dl)
                ws[j] = dataclasses.replace(w, link=link)
    edges = list(system.edges)
    for i, e in enumerate(edges):
        if i not in measured_edges:
            up = dataclasses.replace(e.uplink, latency_s=e.uplink.latency_s + de)
            edges[i] = dataclasses.replace(e, uplink=up)
    return dataclasses.replace(
        system, workers=tuple(tuple(ws) for ws in workers), edges=tuple(edges)
    )


def best_plan(
    system: SystemModel, schemes: Sequence[str], candidates: Sequence[Plan] = ()
) -> tuple[Plan, float]:
    """The best of the optimisers' plans on ``system`` and ``candidates`` (plans already
    found, re-scored), and its expected iteration time (s)."""
    best: tuple[Plan, float] | None = None
    plans = [*(plan_scheme(system, name) for name in schemes), *candidates]
    for plan in plans:
        t = expected_time(system, plan)
        if best is None or t < best[1]:
            best = (plan, t)
    assert best is not None
    return best


def same_plan(a: Plan, b: Plan) -> bool:
    return (a.edges, a.workers, a.code_spec) == (b.edges, b.workers, b.code_spec)


# ---------------------------------------------------------------- the re-plan (pure)
@dataclass(frozen=True)
class RefitJob:
    """What a re-plan needs: the estimated system, the plan in force, the optimisers."""

    system: SystemModel
    current: Plan
    schemes: tuple[str, ...]
    epoch: int  # the plan epoch it was started in (a result for an older one is stale)
    uncertainty: float = 0.0  # window_uncertainty of the window it was fitted on
    candidates: tuple[Plan, ...] = ()  # plans re-scored besides the optimisers' (if any)
    drift: tuple[str, ...] = ()  # nodes whose drift called this re-plan before its window
    # needs_full_replan's inputs: the plan in force's E[T] at the last re-plan that ran the
    # optimisers (None: none on this plan yet) and the cheap re-plans since
    last_full_s: float | None = None
    light_in_a_row: int = 0


@dataclass(frozen=True)
class RefitResult:
    job: RefitJob
    best: Plan
    best_s: float  # E[T] of the best plan on the estimated system
    current_s: float  # E[T] of the plan in force on the estimated system
    seconds: float = 0.0  # wall time the re-plan took
    cpu_s: float = 0.0  # CPU time the optimisers took (the rest: waiting for a busy host)
    full: bool = True  # the optimisers ran (else only the plan in force and candidates)

    def describe(self) -> str:
        """For the log: the best plan's predicted gain against what a switch needs."""
        gain = predicted_gain(self.current_s, self.best_s)
        drift = f"drift of {', '.join(self.job.drift)}; " if self.job.drift else ""
        return (
            f"{drift}best predicted gain {gain:.1%} ({self.best.scheme}), window uncertainty "
            f"{self.job.uncertainty:.1%}; re-plan took {self.seconds:.1f} s "
            f"({self.cpu_s:.2f} s CPU)"
        )


def replan(job: RefitJob) -> tuple[Plan, float, float, bool]:
    """(best plan, its E[T], the plan in force's E[T], whether the optimisers ran) on the
    job's estimates (pure). The optimisers run on a drift or when :func:`needs_full_replan`
    says so; otherwise only the plan in force and the candidates are scored. Both decisions
    and every E[T] are made here, in the re-plan child: none of it holds the master's I/O
    loop (an exact E[T] of a 3 x 3 plan is tens of ms on a busy host, per window)."""
    current_s = expected_time(job.system, job.current)
    full = bool(job.drift) or needs_full_replan(
        current_s, job.last_full_s, job.uncertainty, job.light_in_a_row
    )
    best, best_s = best_plan(
        job.system, job.schemes if full else (), (job.current, *job.candidates)
    )
    return best, best_s, current_s, full


def run_refit(job: RefitJob) -> RefitResult:
    """:func:`replan` in this process (tests; the master runs it in :class:`Replanner`)."""
    best, best_s, current_s, full = replan(job)
    return RefitResult(job, best, best_s, current_s, full=full)


def _plan_full_json(plan: Plan) -> dict[str, Any]:
    return {
        **plan_json(plan),
        "code_spec": plan.code_spec,
        "s_e": plan.s_e,
        "s_w": plan.s_w,
        "loads": [list(x) for x in plan.loads],
    }


def _plan_from_json(raw: dict[str, Any]) -> Plan:
    return Plan(
        raw["scheme"],
        tuple(raw["edges"]),
        tuple(tuple(w) for w in raw["workers"]),
        raw["code_spec"],
        s_e=raw["s_e"],
        s_w=raw["s_w"],
        loads=tuple(tuple(x) for x in raw["loads"]),
    )


def refit_json(job: dict[str, Any]) -> dict[str, Any]:
    """:func:`replan` on plain data (the master runs it in a child process, so the
    optimisers never hold the I/O loop's interpreter lock)."""
    cpu0 = time.process_time()
    best, best_s, current_s, full = replan(
        RefitJob(
            system_from_json(job["system"]),
            _plan_from_json(job["current"]),
            tuple(job["schemes"]),
            0,
            float(job.get("uncertainty", 0.0)),
            tuple(_plan_from_json(c) for c in job.get("candidates", [])),
            tuple(job.get("drift", ())),
            job.get("last_full_s"),
            int(job.get("light_in_a_row", 0)),
        )
    )
    return {
        "best": _plan_full_json(best),
        "best_s": best_s,
        "current_s": current_s,
        "full": full,
        "cpu_s": time.process_time() - cpu0,
    }


_CHILD = (
    "import json, os, sys\n"
    "os.nice(10)\n"
    "from services.master.adaptive import refit_json\n"
    "for line in sys.stdin:\n"
    "    if line.startswith('warm'):\n"
    "        refit_json(json.loads(line[4:]))\n"
    "        continue\n"
    "    print(json.dumps(refit_json(json.loads(line))), flush=True)\n"
)


class Replanner:
    """The optimisers in a child Python that lives as long as the master (JSON lines in and
    out, no pickle): a re-plan never holds the master's interpreter lock, and the child's
    imports are paid once, while the cluster sets up. ``run`` is called on the master's
    offload thread, one job at a time. The child runs at a lower CPU priority (nice 10): on a
    host it shares with nodes (every local or single-machine cluster) a re-plan takes idle
    cycles instead of stalling the iterations it is meant to speed up."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def _raw(job: RefitJob) -> dict[str, Any]:
        return {
            "system": system_to_json(job.system),
            "current": _plan_full_json(job.current),
            "schemes": list(job.schemes),
            "candidates": [_plan_full_json(c) for c in job.candidates],
            "uncertainty": job.uncertainty,
            "drift": list(job.drift),
            "last_full_s": job.last_full_s,
            "light_in_a_row": job.light_in_a_row,
        }

    def warm(self, job: RefitJob) -> None:
        """Run ``job`` once in the child, no answer (while the cluster sets up): the
        optimisers' first call costs several times a later one (lazy imports, caches), and
        the first re-plan must land within a few windows, not tens of iterations later."""
        assert self.child.stdin is not None
        try:
            self.child.stdin.write("warm" + json.dumps(self._raw(job)) + "\n")
            self.child.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the first run() reports a dead child

    def run(self, job: RefitJob) -> RefitResult:
        raw = self._raw(job)
        assert self.child.stdin is not None and self.child.stdout is not None
        start = time.monotonic()
        try:
            self.child.stdin.write(json.dumps(raw) + "\n")
            self.child.stdin.flush()
            line = self.child.stdout.readline()
        except (BrokenPipeError, OSError) as exc:
            raise RuntimeError(f"re-plan child gone: {exc}") from None
        if not line:
            status = self.child.poll()
            tail = ""
            if status is not None and self.child.stderr is not None:
                tail = (self.child.stderr.read().strip().splitlines() or [""])[-1]
            raise RuntimeError(f"re-plan child exited (status {status}): {tail}")
        out = json.loads(line)
        best = _plan_from_json(out["best"])
        took = time.monotonic() - start
        return RefitResult(
            job,
            best,
            out["best_s"],
            out["current_s"],
            took,
            float(out.get("cpu_s", 0.0)),
            bool(out.get("full", True)),
        )

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait(timeout=10)
        for f in (self.child.stdin, self.child.stdout, self.child.stderr):
            if f is not None:
                f.close()


# ---------------------------------------------------------------- the controller
@dataclass(frozen=True)
class Switch:
    """A decided plan switch (what the master sends and logs)."""

    epoch: int
    plan: Plan
    current_s: float
    best_s: float
    replan_s: float = 0.0
    reverted: bool = False  # back to the plan before: the measured test refuted the gain
    drift: tuple[str, ...] = ()  # the drifted nodes that called the re-plan, if any

    @property
    def gain(self) -> float:
        return predicted_gain(self.current_s, self.best_s)


class Adaptive:
    """The master's adaptive planner: observations in, plan switches out. No I/O.

    Parameters
    ----------
    raw : dict
        The config's ``adaptive`` section: ``window``, ``threshold``, ``schemes``, ``system``
        (:func:`system_to_json` of the prior) and ``plan`` (:func:`plan_json` of the initial
        plan, whose code is the config's ``code_spec``).
    inner : HierarchicalCodeLike
        The initial plan's code (over its selection), built from ``code_spec``.
    emulation_spec : dict
        The per-node emulation entries, by topology name (loads are rewritten per plan).
    """

    def __init__(
        self,
        raw: dict[str, Any],
        inner: Any,
        code_spec: dict[str, Any],
        emulation_spec: dict[str, Any] | None = None,
    ) -> None:
        self.spec = validate_adaptive(raw)
        if "system" not in raw or "plan" not in raw:
            raise ValueError("adaptive: 'system' and 'plan' are required in the master config")
        self.system = system_from_json(raw["system"])
        self.prior = self.system
        if not is_hierarchical_code(inner):
            raise ValueError("adaptive: the plan's code must be hierarchical")
        p = raw["plan"]
        if not isinstance(p, dict) or "edges" not in p or "workers" not in p:
            raise ValueError("adaptive.plan: needs 'edges' and 'workers'")
        self.epoch = 0
        self.initial_scheme = str(p.get("scheme", "hgc-jncss"))
        self.initial_code_spec = dict(code_spec)
        self.topology = self.system.workers_per_edge
        self.code = LiftedCode(inner, self.topology, p["edges"], p["workers"])
        self.emulation_spec = dict(emulation_spec or {})
        self.window = Window()
        self.t0: dict[int, float] = {}  # iteration -> when its model was sent (late answers)
        # (iteration, edge, worker) of the late answers taken: one each (LateAnswer)
        self.late_taken: set[tuple[int, int, int]] = set()
        self.pending: dict[int, tuple[list[int], float]] = {}  # unanswered edges, duration
        self.switches: list[Switch] = []
        self.busy = False  # a re-plan is running off the I/O loop
        self.current_plan: Plan | None = None  # the planner's object, once one was chosen
        # nodes measured at least once (the others are calibrated: calibrate_unmeasured)
        self.measured_workers: set[tuple[int, int]] = set()
        self.measured_edges: set[int] = set()
        self.behind = False  # the last refit predicted a gain above the threshold
        # the last full re-plan on the plan in force: its E[T] and best plan (needs_full_replan)
        self.last_full_s: float | None = None
        self.last_best: Plan | None = None
        self.light_in_a_row = 0
        # the measured test of the last switch: (plan before, its code, durations before,
        # durations since); None when no switch is on trial
        self.trial: tuple[Plan, LiftedCode, list[float], list[float]] | None = None
        self.rejected: list[Plan] = []  # plans a measured test refuted: never switched to
        self.recent: list[float] = []  # the last window's durations (the plan in force)
        self.drift = DriftTracker()  # per node, runs beyond its own past
        self.memory = Window()  # per node, the observations its estimate is fitted on

    # -------------------------------------------------------- what the master sends
    def plan_spec_now(self) -> dict[str, Any]:
        return plan_spec(self.epoch, self.topology, self.code.edges, self.code.workers)

    def emulation_for(self, i: int) -> dict[str, Any]:
        """Edge ``i``'s subtree of the emulation spec with the plan's loads."""
        prefix = f"worker-{i}-"
        out: dict[str, Any] = {}
        for name, entry in self.emulation_spec.items():
            if name == f"edge-{i}":
                out[name] = entry
            elif name.startswith(prefix) and isinstance(entry, dict):
                j = int(name[len(prefix) :])
                placed = self.code.placement[i][j] if j < len(self.code.placement[i]) else ()
                load = len(placed) / self.code.K if placed else entry.get("load", 1.0)
                out[name] = {**entry, "load": load}
        return out

    def selected_nodes(self) -> dict[str, float]:
        """1/0 per topology node: the ``hgc_master_node_selected`` gauge."""
        out: dict[str, float] = {}
        for i, m in enumerate(self.topology):
            out[f"edge-{i}"] = float(i in self.code.position)
            for j in range(m):
                out[f"worker-{i}-{j}"] = float(bool(self.code.placement[i][j]))
        return out

    # -------------------------------------------------------- observations
    def started(self, iteration: int, t0: float) -> None:
        self.t0[iteration] = t0
        for old in [t for t in self.t0 if t < iteration - 4]:
            del self.t0[old]
        self.late_taken = {k for k in self.late_taken if k[0] >= iteration - LATE_ITERATIONS}

    def finished(self, a: Attempt, duration_s: float, failed: bool = False) -> None:
        """An attempt ended (``failed``: at its deadline, or an edge gave up): its answers
        are observations; the workers a failing edge names are censored at the duration."""
        missing = observe_attempt(self.window, self.system, self.code, a, duration_s)
        self._flush_pending()
        if not failed:
            self.recent = [*self.recent, duration_s][-self.spec.window :]
            if self.trial is not None:
                self.trial[3].append(duration_s)
        for i, report in a.failures.items():
            for j in report.missing_workers:
                if (i, j) in self.code.worker_position:
                    load = self.code.load(i, j)
                    obs = (-1.0, -1.0, duration_s, load)
                    self.window.workers.setdefault((i, j), []).append(obs)
        if missing and not failed:
            self.pending[a.iteration] = (missing, duration_s)
        elif missing:
            censor_edges(self.window, [i for i in missing if i not in a.failures], duration_s)

    def late(self, msg: EdgeGradient, now: float) -> None:
        """An edge's answer after the master finished its iteration: an observation."""
        t0 = self.t0.get(msg.iteration)
        missing = self.pending.get(msg.iteration)
        if t0 is None or missing is None or msg.edge not in missing[0]:
            return
        missing[0].remove(msg.edge)
        observe_edge_answer(self.window, self.system, self.code, msg, now - t0)

    def progress(self, msg: EdgeProgress) -> tuple[str, str] | None:
        """An edge's report on an iteration it never answered (``EdgeProgress``): its workers
        are observations -- those that had answered with their times, the others censored at
        the edge's elapsed time -- and its uplink is *not* censored (the edge was still
        waiting for its workers: they made it late, not its link). Returns None when used,
        else the (counter, reason) of the drop: another plan epoch, an iteration no longer
        pending, or malformed figures."""
        i = msg.edge
        missing = self.pending.get(msg.iteration)
        if msg.plan_epoch != self.epoch or missing is None or i not in missing[0]:
            return ("late", f"progress of edge-{i} for iteration {msg.iteration}")
        selected = self.code.selected_workers(i)
        m = len(self.code.placement[i])
        elapsed = msg.elapsed_s
        times = (*msg.worker_arrivals_s, *msg.worker_compute_s)
        if (
            not (math.isfinite(elapsed) and 0.0 <= elapsed <= 86_400.0)
            or len(msg.worker_arrivals_s) != m
            or len(msg.worker_compute_s) != m
            or any(not (t == -1.0 or (math.isfinite(t) and 0.0 <= t <= elapsed)) for t in times)
            or all(msg.worker_arrivals_s[j] >= 0 for j in selected)
        ):
            return ("malformed", f"progress of edge-{i}: figures out of range")
        missing[0].remove(i)
        for j in selected:
            load = self.code.load(i, j)
            arrival, compute = msg.worker_arrivals_s[j], msg.worker_compute_s[j]
            obs = (arrival, compute, elapsed, load) if arrival >= 0 else (-1.0, -1.0, elapsed, load)
            self.window.workers.setdefault((i, j), []).append(obs)
        return None

    def late_answer(self, msg: LateAnswer) -> tuple[str, str] | None:
        """A worker's result that came after a newer model (``LateAnswer``, forwarded by its
        edge with ``arrival_s``): its compute time is an observation like any other, of the
        very draws that make it too slow to answer in time. Its link is not measured by it
        (the model may have waited for the worker's previous compute): the observation's
        arrival is its compute plus the link's current estimate. Returns None when used, else
        the (counter, reason) of the drop."""
        i, j = msg.edge, msg.worker
        c, a = msg.compute_s, msg.arrival_s
        if not (math.isfinite(c) and math.isfinite(a) and 0.0 <= c <= a <= 86_400.0):
            return ("malformed", f"late answer of worker-{i}-{j}: figures out of range")
        newest = max(self.t0, default=msg.iteration)
        if (
            msg.plan_epoch != self.epoch
            or (i, j) not in self.code.worker_position
            or (msg.iteration, i, j) in self.late_taken  # one per worker and iteration
            or not newest - LATE_ITERATIONS <= msg.iteration <= newest
        ):
            return ("late", f"late answer of worker-{i}-{j} for iteration {msg.iteration}")
        self.late_taken.add((msg.iteration, i, j))
        load = self.code.load(i, j)
        rtt = 2.0 * self.system.workers[i][j].link.mean_transfer_s(0)
        self.window.workers.setdefault((i, j), []).append((c + rtt, c, a, load))
        return None

    def _flush_pending(self) -> None:
        for t in list(self.pending):
            edges, duration = self.pending.pop(t)
            censor_edges(self.window, edges, duration)

    # -------------------------------------------------------- the decision
    def due(self) -> bool:
        """A window is complete, or a node drifted (:func:`drifted`), and no re-plan is
        running: a drift is acted on within :data:`DRIFT_RUN` iterations, not a window."""
        if self.busy:
            return False
        if self.window.iterations >= self.spec.window:
            return True
        self.drift.observe(self.window)
        return self.window.iterations >= DRIFT_RUN and bool(self.drift.drifted())

    def begin_refit(self) -> RefitJob:
        """Refit on the window (cheap, here) and hand the re-plan (the optimisers, ~1 s on a
        3x3 topology) to the caller, which runs :func:`run_refit` off the I/O loop."""
        self._flush_pending()
        w = self.window
        self.drift.observe(w)
        drift = self.drift.drifted()
        self.drift.restart(drift)
        self.drift.new_window()
        if drift:  # each drifted node: only what it is now
            w = since_drift(w, drift)
        self.memory = accumulate(self.memory, w, drift)
        self.system = estimate_system(self.system, self.memory)
        self.measured_workers |= {k for k, v in w.workers.items() if sum(a >= 0 for a, *_ in v) > 1}
        self.measured_edges |= {i for i, v in w.edges.items() if sum(not c for _, c in v) > 1}
        scored = calibrate_unmeasured(
            self.system, self.prior, self.measured_workers, self.measured_edges
        )
        self.window = Window()
        self.busy = True
        last = () if self.last_best is None else (self.last_best,)
        return RefitJob(
            scored,
            self._current(),
            self.spec.schemes,
            self.epoch,
            window_uncertainty(w.durations),
            last,
            tuple(drift),
            self.last_full_s,
            self.light_in_a_row,
        )

    def finish_refit(self, result: RefitResult | None) -> Switch | None:
        """At an iteration boundary: switch to the re-plan's best plan if it pays (then
        ``self.code`` is the new plan's and ``self.epoch`` one higher). A result computed for
        an older epoch, or None (the re-plan failed), changes nothing."""
        self.busy = False
        if result is None or result.job.epoch != self.epoch:
            return None
        if result.full:  # the optimisers ran: what the next cheap re-plans compare to
            self.last_full_s, self.last_best = result.current_s, result.best
            self.light_in_a_row = 0
        else:
            self.light_in_a_row += 1
        current = self._current()
        same = same_plan(result.best, current) or any(
            same_plan(result.best, r) for r in self.rejected
        )
        # the previous refit (another window) also found the plan in force worse than some
        # plan by more than the threshold: two independent windows agree
        persisted, self.behind = self.behind, False
        # a drift is evidence of its own (a node outside its estimate's tail several times
        # in a row): the window's noise need not be waited out
        persisted = persisted or bool(result.job.drift)
        threshold = self.spec.threshold
        if not same and predicted_gain(result.current_s, result.best_s) > threshold:
            self.behind = True
        if not should_switch(
            result.current_s, result.best_s, threshold, same, result.job.uncertainty, persisted
        ):
            return None
        self.behind = False
        best = result.best
        if self.spec.recheck:
            self.trial = (current, self.code, list(self.recent), [])
        self.epoch += 1
        self.last_full_s, self.last_best = None, None  # a new plan: the optimisers next
        self.current_plan = best
        inner = code_from_spec(best.code_spec)
        assert is_hierarchical_code(inner)
        self.code = LiftedCode(inner, self.topology, best.edges, best.workers)
        switch = Switch(
            self.epoch,
            best,
            result.current_s,
            result.best_s,
            result.seconds,
            drift=result.job.drift,
        )
        self.switches.append(switch)
        return switch

    def verify_switch(self) -> Switch | None:
        """Once a window ran on a new plan: :func:`keep_switch`, else back to the plan
        before (a switch too, ``reverted``), and the refuted plan is never chosen again."""
        if self.trial is None or len(self.trial[3]) <= self.spec.window:
            return None
        old, old_code, before, after = self.trial
        self.trial = None
        # the first iteration on the new plan pays the switch (partitions load): not steady
        if keep_switch(before, after[1:]):
            return None
        assert self.current_plan is not None
        self.rejected.append(self.current_plan)
        self.epoch += 1
        self.last_full_s, self.last_best = None, None  # a new plan: the optimisers next
        self.current_plan, self.code = old, old_code
        self.behind = False
        self.recent = []
        mean_after, mean_before = float(np.mean(after)), float(np.mean(before))
        switch = Switch(self.epoch, old, mean_after, mean_before, reverted=True)
        self.switches.append(switch)
        return switch

    def warm_job(self) -> RefitJob:
        """A re-plan of the prior, for :meth:`Replanner.warm` (changes nothing here)."""
        return RefitJob(self.prior, self._current(), self.spec.schemes, self.epoch)

    def refit(self) -> Switch | None:
        """:meth:`begin_refit`, :func:`run_refit` and :meth:`finish_refit` in one call."""
        return self.finish_refit(run_refit(self.begin_refit()))

    def _current(self) -> Plan:
        """The plan in force as the planner's object (the initial one from the config)."""
        if self.current_plan is None:
            inner: HierarchicalCodeLike = self.code.inner
            self.current_plan = Plan(
                self.initial_scheme,
                self.code.edges,
                self.code.workers,
                dict(self.initial_code_spec),
                s_e=int(inner.s_e),
                s_w=int(inner.s_w),
            )
        return self.current_plan

    def annotate(self, row: dict[str, Any]) -> dict[str, Any]:
        """A record row in the plan's terms: its epoch, stragglers among selected nodes only."""
        sel = self.selected_nodes()
        row = dict(row)
        row["plan_epoch"] = self.epoch
        for key in ("edge_stragglers", "worker_stragglers"):
            if isinstance(row.get(key), list):
                row[key] = [n for n in row[key] if sel.get(n, 0.0)]
        return row


class PlanMetrics:
    """``hgc_master_plan_switches_total``, ``hgc_master_plan_epoch``,
    and the plan in force through ``set_selected(node, used)``: the master's one
    ``hgc_master_node_selected{node}`` gauge, which every scheme sets."""

    def __init__(
        self, registry: CollectorRegistry, set_selected: Callable[[str, bool], None]
    ) -> None:
        self.set_selected = set_selected
        self.switches = Counter(
            "hgc_master_plan_switches", "Plan switches of hgc-adaptive", registry=registry
        )
        self.epoch = Gauge("hgc_master_plan_epoch", "Plan epoch in force", registry=registry)
        self.gain = Gauge(
            "hgc_master_plan_predicted_gain_ratio",
            "Predicted gain of the last plan switch (1 - new E[T] / old E[T])",
            registry=registry,
        )

    def observe(self, name: str, value: float, labels: dict[str, str]) -> bool:
        if name == "plan_switch":
            self.switches.inc()
            self.gain.set(value)
        elif name == "plan_epoch":
            self.epoch.set(value)
        elif name == "plan_selected":
            self.set_selected(labels["node"], bool(value))
        else:
            return False
        return True
