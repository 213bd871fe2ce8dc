"""``hgc calibrate``: learn a cluster's profiles from its own measurements.

A short probe runs the scenario's topology on a real local cluster (``hgc run``'s launcher,
the same services and emulation) with two schemes back to back: ``uncoded`` (load 1/M, every
node answers every iteration) and ``worker-gc`` with ``s_w = 1`` (load 2/M; the edge stops
waiting at its (m_i - 1)-th worker, so the last one is right-censored). From the master's
per-iteration records the estimator (``common.perf.estimate``) fits:

- per worker, its arrivals at its edge, measured from the edge's model arrival: in the
  runtime model (``common.perf.model``) ``Y + C + Z``, i.e. a fixed offset (the link round
  trip and the system's per-message overhead, independent of the load) plus the compute
  ``shift_s * l + Exp(l / rate)``. The two loads separate them: the offset is the
  intercept of the per-load minimum (the shift estimate) against the load, written as the
  worker's link latency (half each way); the compute profile is then the censored
  maximum-likelihood fit of ``arrival - offset`` per unit load, pooled over both probes. A
  worker that had not answered is right-censored at its edge's last recorded arrival (or at
  the iteration's duration when its edge reported none). With one load only (a scenario
  where ``s_w = 1`` is infeasible) the offset stays inside the compute fit (link ``ideal``):
  exact at the probed load, an approximation at others.
- per edge, its uplink from ``edge arrival - latest worker arrival of that edge`` in the
  iterations where every worker of the edge answered (the two uplink hops ``X + U`` plus
  combining, halved: one hop). One message size (``gradient_bytes``): all latency
  (bandwidth unlimited), combining inside it (``combine_s_per_byte: 0``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml

from common.perf.estimate import ComputeFit, LinkFit, fit_link, fit_shifted_exponential
from common.perf.plan import plan_loads
from common.scenario import Scenario
from hgc.testbed.records import read_records

PROBE_SCHEME = "uncoded"  # waits for every node: every node observed every iteration
SECOND_PROBE = "worker-gc"  # s_w = 1: twice the load, one worker per edge censored
# a worker mostly censored at a load (the edge's slowest) has too few answers there for its
# own line: a heavily censored fit of a small sample is too noisy to extrapolate from
MIN_ANSWERS_PER_LOAD = 10


@dataclass(frozen=True)
class Observations:
    """What the records say, per node name: worker ``(time_s, censored, load)`` rows and
    the edge's one-hop uplink times (seconds, messages of ``gradient_bytes``)."""

    workers: dict[str, list[tuple[float, bool, float]]]
    uplink_hops: dict[str, list[float]]
    iteration_s: list[float]


@dataclass(frozen=True)
class Calibration:
    """The fits of one probe; ``measured_mean_s`` is the probe's mean iteration time."""

    workers: dict[str, ComputeFit]
    uplinks: dict[str, LinkFit]
    offsets: dict[str, float]  # worker -> load-independent minimum of its arrival (s)
    noise: dict[str, float]  # worker -> load-independent mean random excess (s)
    gradient_bytes: int
    iterations: int
    measured_mean_s: float
    # worker -> the load its compute fit is exact at, for workers whose offset could not be
    # separated (offset 0: the load-independent part is inside the compute fit)
    base_loads: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def message_overhead_s(self) -> float:
        """The per-hop time common to every node (``common_overhead_s``)."""
        return common_overhead_s(self)

    def to_json(self) -> dict[str, Any]:
        def num(x: float) -> float | str | None:
            if math.isnan(x):
                return None
            return x if math.isfinite(x) else "inf"

        return {
            "probe_schemes": [PROBE_SCHEME, SECOND_PROBE],
            "iterations": self.iterations,
            "measured_mean_s": self.measured_mean_s,
            "gradient_bytes": self.gradient_bytes,
            "message_overhead_s": self.message_overhead_s,
            "workers": {
                n: {
                    "shift_s": num(f.shift_s),
                    "shift_se": num(f.shift_se),
                    "rate": num(f.rate),
                    "rate_se": num(f.rate_se),
                    "n": f.n,
                    "censored": f.censored,
                    "link_round_trip_s": self.offsets.get(n, 0.0),
                    "link_random_excess_s": self.noise.get(n, 0.0),
                }
                for n, f in self.workers.items()
            },
            "uplinks": {
                n: {
                    "latency_s": num(f.latency_s),
                    "latency_se": num(f.latency_se),
                    "bandwidth_bytes_per_s": num(f.bandwidth_bytes_per_s),
                    "bandwidth_se": num(f.bandwidth_se),
                    "jitter_s": num(f.jitter_s),
                    "identified": f.identified,
                    "n": f.n,
                }
                for n, f in self.uplinks.items()
            },
        }


def observations(
    records: Sequence[dict[str, Any]],
    loads: dict[str, float],
    edges: dict[str, list[str]],
    uplinks: bool = True,
) -> Observations:
    """Collect the estimator's input from translated master records (topology names).

    ``loads``: worker name -> load fraction in the probed plan; ``edges``: edge name -> its
    worker names. Only edges the master used in an attempt say anything about their
    workers in it (the master keeps the arrivals its decode used)."""
    workers: dict[str, list[tuple[float, bool, float]]] = {w: [] for w in loads}
    hops: dict[str, list[float]] = {e: [] for e in edges}
    iteration_s: list[float] = []
    for r in records:
        arrivals: dict[str, float] = r.get("worker_arrivals_s") or {}
        edge_arrivals: dict[str, float] = r.get("edge_arrivals_s") or {}
        used = set(r.get("edges_used") or [])
        if r.get("ok"):
            iteration_s.append(float(r["duration_s"]))
        for edge, names in edges.items():
            if not (used and edge in used) and r.get("ok"):
                continue  # a straggling edge's workers were not reported
            seen = [float(arrivals[w]) for w in names if w in arrivals]
            if not seen and r.get("ok"):
                continue
            cut = max(seen) if seen else float(r["duration_s"])
            for w in names:
                if w in arrivals:
                    workers[w].append((float(arrivals[w]), False, loads[w]))
                else:
                    workers[w].append((cut, True, loads[w]))
            if uplinks and edge in edge_arrivals and len(seen) == len(names):
                hop = (float(edge_arrivals[edge]) - max(seen)) / 2.0
                hops[edge].append(max(hop, 0.0))
    return Observations(workers, hops, iteration_s)


def fit(obs: Observations, gradient_bytes: int) -> Calibration:
    """Fit every worker and uplink; ``ValueError`` naming the node that cannot be fitted."""
    workers: dict[str, ComputeFit] = {}
    offsets: dict[str, float] = {}
    noise: dict[str, float] = {}
    base_loads: dict[str, float] = {}
    for name, rows in obs.workers.items():
        if not rows:
            raise ValueError(f"{name}: no observation in the probe's records")
        t, c, ell = (np.array(col) for col in zip(*rows, strict=True))
        try:
            workers[name], offsets[name], noise[name] = _split(t, c.astype(bool), ell)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        if offsets[name] == 0.0:
            base_loads[name] = float(ell.min())
    uplinks: dict[str, LinkFit] = {}
    for name, hop_list in obs.uplink_hops.items():
        if len(hop_list) < 2:
            raise ValueError(f"{name}: fewer than 2 complete iterations to fit its uplink")
        uplinks[name] = fit_link([float(gradient_bytes)] * len(hop_list), hop_list)
    mean = float(np.mean(obs.iteration_s)) if obs.iteration_s else math.nan
    n = len(obs.iteration_s)
    return Calibration(workers, uplinks, offsets, noise, gradient_bytes, n, mean, base_loads)


def _uplink_floor(up: LinkFit) -> float:
    """The smallest one-hop time the fitted uplink gives (latency - jitter, as written)."""
    return max(0.0, up.latency_s - min(up.jitter_s, up.latency_s))


def common_overhead_s(cal: Calibration) -> float:
    """Seconds per message hop common to every node: the smallest *floor* of a hop any
    node's fit shows, i.e. the minimum over the workers' load-independent offsets (half of
    each: two hops) and the uplinks' ``latency - jitter``. It is what the runtime costs per
    message (encode, zmq, decode, the event loops: ``hgc.testbed.overhead``) plus whatever
    link delay every node shares, and the fitted scenario writes it as
    ``emulation.message_overhead_s`` with every link net of it -- so every prediction of the
    fitted scenario is unchanged (the model adds it back to every hop, and no link's jitter
    clip moves), while the emulated links of the fitted scenario no longer carry the
    overhead twice when it is run.

    A worker whose offset could not be separated from its compute (one usable load: offset
    0, its whole floor is inside ``shift_s * load``) does not pull the minimum to 0: its
    compute shift gives up the two hops at its base load instead (exact there), provided
    that leaves at least half of its shift; otherwise the common term is capped so it does.
    No separated worker offset at all (a one-load probe): 0 (nothing tells the common part
    from the compute)."""
    separated = [o / 2 for w, o in cal.offsets.items() if w not in cal.base_loads]
    if not separated:
        return 0.0
    floors = separated + [_uplink_floor(u) for u in cal.uplinks.values()]
    common = max(0.0, min(floors))
    for w, load in cal.base_loads.items():
        f = cal.workers.get(w)
        if f is not None and math.isfinite(f.shift_s):
            common = min(common, max(0.0, f.shift_s) * load / 4)  # 2 hops <= half the shift
    return common


def _split(
    t: np.ndarray, censored: np.ndarray, loads: np.ndarray
) -> tuple[ComputeFit, float, float]:
    """(compute fit per unit load, load-independent offset s, its mean random excess s).

    Each probed load ``l`` gives a censored fit of the raw arrivals, ``(shift_l, rate_l)``;
    the model is ``shift_l = offset + shift_s * l`` and ``1 / rate_l = noise + l / rate``
    (the link round trip and the system's overhead do not grow with the load, the compute
    does). Two loads with ``MIN_ANSWERS_PER_LOAD`` answers each solve both lines;
    otherwise (one load, a worker mostly censored at the second load, or lines that do
    not grow with the load) everything is compute, fitted per unit load at the smallest load
    (the probe where every worker answers), offset 0: exact at that load."""
    levels = sorted(
        v
        for v in set(loads.tolist())
        if np.count_nonzero(~censored & (loads == v)) >= MIN_ANSWERS_PER_LOAD
    )
    low = loads == loads.min()
    pooled = fit_shifted_exponential(t[low], censored[low], loads[low])
    pooled = dataclasses.replace(pooled, n=t.size, censored=int(censored.sum()))
    if len(levels) != 2:
        return pooled, 0.0, 0.0
    (la, lb) = levels
    fa, fb = (fit_shifted_exponential(t[loads == v], censored[loads == v]) for v in levels)
    if math.isinf(fa.rate) or math.isinf(fb.rate):
        return pooled, 0.0, 0.0
    shift = (fb.shift_s - fa.shift_s) / (lb - la)
    inv_rate = (1 / fb.rate - 1 / fa.rate) / (lb - la)
    if shift <= 0 or inv_rate <= 0:
        return pooled, 0.0, 0.0
    offset = max(0.0, fa.shift_s - shift * la)
    excess = max(0.0, 1 / fa.rate - inv_rate * la)
    d = lb - la
    rate = 1.0 / inv_rate
    # delta method: se(1/rate_l) = rate_se / rate**2 per level, independent levels
    se_inv = math.hypot(fa.rate_se / fa.rate**2, fb.rate_se / fb.rate**2) / d
    fit = ComputeFit(
        shift_s=shift,
        rate=rate,
        shift_se=math.hypot(fa.shift_se, fb.shift_se) / d,
        rate_se=se_inv * rate**2,
        n=pooled.n,
        censored=pooled.censored,
    )
    return fit, offset, excess


def fitted_scenario(
    scenario: Scenario, cal: Calibration, source: str = "", *, split_overhead: bool = True
) -> dict[str, Any]:
    """The scenario's own document with its topology replaced by the fitted profiles: one
    custom device and link per node (``fit-<node>``), set through ``topology.overrides``.
    Everything else (model, data, training, code, schemes, emulation) is kept; faults are
    dropped and the straggler model is the fitted shifted exponential.

    ``split_overhead``: the hop floor common to every node as ``emulation.
    message_overhead_s``, links net of it (``common_overhead_s``); False keeps it inside
    every link (the term 0; same predictions -- a control)."""
    doc = copy.deepcopy(scenario.raw)
    common = common_overhead_s(cal) if split_overhead else 0.0
    old = doc.get("topology", {})
    devices: dict[str, Any] = dict(old.get("devices") or {})
    links: dict[str, Any] = dict(old.get("links") or {})
    overrides: dict[str, Any] = {}
    for i, m in enumerate(scenario.workers_per_edge):
        edge = f"edge-{i}"
        up = cal.uplinks[edge]
        links[f"fit-{edge}"] = {
            "latency_s": _round(up.latency_s - common),
            "jitter_s": _round(min(up.jitter_s, up.latency_s)),
            "bandwidth": (
                "unlimited" if math.isinf(up.bandwidth_bytes_per_s) else up.bandwidth_bytes_per_s
            ),
        }
        overrides[edge] = {
            "device": scenario.edge_profile(i).device,  # only its cpu_fraction is used
            "uplink": f"fit-{edge}",
            "combine_s_per_byte": 0.0,
        }
        for j in range(m):
            w = f"worker-{i}-{j}"
            f = cal.workers[w]
            shift = f.shift_s
            if w in cal.base_loads:  # its two hops' common part left its compute
                shift -= 2 * common / cal.base_loads[w]
            devices[f"fit-{w}"] = {
                "shift_s": _round(shift),
                "rate": f.rate if math.isinf(f.rate) else _round(f.rate),
                "cpu_fraction": scenario.worker_profile(i, j).cpu_fraction,
            }
            # two hops of max(0, latency + U(-j, j)): minimum offset, mean offset + noise
            jitter = cal.noise.get(w, 0.0) / 2.0
            hop = cal.offsets.get(w, 0.0) / 2.0 + jitter
            if w not in cal.base_loads:
                hop -= common
            if hop > 0:
                links[f"fit-{w}"] = {"latency_s": _round(hop), "jitter_s": _round(jitter)}
            overrides[w] = {"device": f"fit-{w}", "link": f"fit-{w}" if hop > 0 else "ideal"}
    doc["topology"] = {
        "workers_per_edge": list(scenario.workers_per_edge),
        "compute_scale": 1.0,
        "devices": devices,
        "links": links,
        "overrides": overrides,
    }
    doc["name"] = f"{scenario.name}-fitted"
    doc["description"] = (
        f"{scenario.name} as measured by hgc calibrate ({cal.iterations} probe "
        f"iterations{', ' + source if source else ''}; probe mean {cal.measured_mean_s:.4f} s)"
    )
    doc["stragglers"] = {"kind": "shifted-exponential"}
    emulation = dict(doc.get("emulation") or {})
    emulation["message_overhead_s"] = _round(common)
    doc["emulation"] = emulation
    if "path" in scenario.data_spec:  # resolved against the original file's folder
        doc["data"] = dict(scenario.data_spec)
    doc.pop("faults", None)
    return doc


def _round(x: float) -> float:
    return float(f"{x:.6g}")


HEADER = """\
# Fitted by `hgc calibrate` from {iterations} probe iterations ({scheme}) of {name}.
# Per worker: link fit-<worker> = half the load-independent part of its arrivals at its edge
# (link round trip + per-message overhead: its minimum and its random excess, as latency and
# jitter; 'ideal' when only one load was usable), device fit-<worker> = the part that grows
# with the load, per unit load (censored maximum-likelihood fits at each probed load).
# Per edge: link fit-edge-<i> = its uplink, one hop, from (edge arrival - its latest worker
# arrival) / 2 at {gradient_bytes} bytes (one size: all latency, bandwidth unlimited;
# combining is inside it).
# Per-message overhead: emulation.message_overhead_s = {overhead_ms:.3f} ms per hop, the floor
# of a hop common to every node (the smallest worker offset / 2 or uplink latency - jitter);
# every link above is net of it (a worker whose offset stayed inside its compute gave it up
# from its shift at its probed load), so the model adds it back on every hop and every
# prediction is the one of the gross links. A separate loopback measurement was not used: it
# would need its own run and would miss what the real nodes' hops have in common.
# Standard errors of every fit: {json_name}.
"""


def write_fitted(
    path: Path, scenario: Scenario, cal: Calibration, json_name: str, source: str = ""
) -> dict[str, Any]:
    doc = fitted_scenario(scenario, cal, source)
    header = HEADER.format(
        iterations=cal.iterations,
        scheme=f"{PROBE_SCHEME} + {SECOND_PROBE} s_w=1",
        name=scenario.name,
        gradient_bytes=cal.gradient_bytes,
        json_name=json_name,
        overhead_ms=common_overhead_s(cal) * 1e3,
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return doc


def probe_scenario(scenario: Scenario) -> Scenario:
    """The scenario the probe runs: no faults; the probe schemes; ``s_w = 1`` for the
    second probe (skipped where some edge has a single worker)."""
    from common.coding import Tolerances

    schemes: tuple[str, ...] = (PROBE_SCHEME,)
    if min(scenario.workers_per_edge) >= 2:
        schemes += (SECOND_PROBE,)
    code = Tolerances(s_e=0, s_w=1)
    return dataclasses.replace(scenario, faults=(), schemes=schemes, code=code)


def probe_layout(probe: Scenario, scheme: str) -> tuple[dict[str, float], dict[str, list[str]]]:
    """(worker -> load fraction, edge -> workers) of a probe plan (every node selected)."""
    from hgc.testbed.config import scenario_plan

    plan = scenario_plan(probe, scheme)
    rows = plan_loads(plan)
    loads: dict[str, float] = {}
    edges: dict[str, list[str]] = {}
    for p, e in enumerate(plan.edges):
        names = [f"worker-{e}-{q}" for q in plan.workers[p]]
        edges[f"edge-{e}"] = names
        for q, w in enumerate(names):
            loads[w] = float(rows[p][q])
    return loads, edges


def run_probe(
    scenario_path: Path,
    scenario: Scenario,
    iterations: int,
    out: Path,
    stream: TextIO | None = None,
) -> Observations:
    """Run the probe schemes for ``iterations`` each on a local cluster (``hgc run``'s
    launcher) and collect the estimator's input from their records."""
    from hgc.testbed.config import NodeMap, scenario_plan
    from hgc.testbed.launcher import RunRequest, run_testbed, translate

    probe = probe_scenario(scenario)
    req = RunRequest(scenario_path, probe, probe.schemes, iterations, out=out, stream=stream)
    outcome = run_testbed(req)
    if not outcome.ok:
        raise RuntimeError(f"probe run failed: {outcome.failures}")
    total: Observations | None = None
    for scheme in probe.schemes:
        names = NodeMap.of(scenario_plan(probe, scheme))
        raw = read_records(outcome.folder / scheme / "record.jsonl")
        records = [translate(r, names, scheme) for r in raw]
        loads, edges = probe_layout(probe, scheme)
        obs = observations(records, loads, edges, uplinks=scheme == PROBE_SCHEME)
        total = obs if total is None else merge(total, obs, timing=False)
    assert total is not None
    return total


def merge(a: Observations, b: Observations, timing: bool = True) -> Observations:
    """``a`` and ``b`` together (``timing=False``: iteration times of ``a`` only)."""
    workers = {w: a.workers.get(w, []) + b.workers.get(w, []) for w in a.workers | b.workers}
    hops = {
        e: a.uplink_hops.get(e, []) + b.uplink_hops.get(e, [])
        for e in a.uplink_hops | b.uplink_hops
    }
    return Observations(workers, hops, a.iteration_s + (b.iteration_s if timing else []))


def describe(cal: Calibration) -> str:
    """One line per node: the fitted values with their standard errors."""
    lines = ["node            shift_s (se)          rate /s (se)        censored"]
    for name, f in cal.workers.items():
        lines.append(
            f"{name:<15} {f.shift_s:.4g} ({f.shift_se:.2g})".ljust(38)
            + f"{f.rate:.4g} ({f.rate_se:.2g})".ljust(20)
            + f"{f.censored}/{f.n}"
        )
    lines.append("uplink          latency_s (se)        jitter_s")
    for name, u in cal.uplinks.items():
        lines.append(
            f"{name:<15} {u.latency_s:.4g} ({u.latency_se:.2g})".ljust(38) + f"{u.jitter_s:.3g}"
        )
    lines.append(
        f"message overhead per hop (common to every node): {cal.message_overhead_s * 1e3:.3g} ms"
        " -> emulation.message_overhead_s; the fitted links are net of it"
    )
    return "\n".join(lines)


def predicted_mean_s(path: Path, scheme: str = PROBE_SCHEME) -> float:
    """The simulator's mean iteration time of ``scheme`` on the scenario at ``path``
    (exact where it applies, else Monte Carlo); NaN when it cannot be evaluated."""
    from common.scenario import load_scenario
    from hgc.testbed.config import scenario_plan
    from hgc.testbed.predict import predict

    scenario = load_scenario(path)
    seconds, _ = predict(scenario, scenario_plan(scenario, scheme))
    return math.nan if seconds is None else seconds
