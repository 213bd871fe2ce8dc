"""``hgc calibrate``: learn a cluster's profiles from its own measurements.

A short probe runs the scenario's topology on a real local cluster (``hgc run``'s launcher,
the same services and emulation) with the ``uncoded`` scheme, so every node answers every
iteration. From the master's per-iteration records the estimator (``common.perf.estimate``)
fits:

- per worker, a shifted-exponential profile (``shift_s``, ``rate`` per unit load) from its
  arrivals at its edge, measured from the edge's model arrival: ``Y + C + Z`` in the runtime
  model (``common.perf.model``). A worker that had not answered (a failed or cut-off
  iteration) is right-censored at its edge's last recorded arrival, or at the iteration's
  duration when its edge reported none;
- per edge, its uplink from ``edge arrival - latest worker arrival of that edge`` (the two
  uplink hops ``X + U`` plus combining, halved: one hop).

What one probe cannot separate, and where it goes (said in the fitted file's comments):
the worker's own link round trip and the system's per-message overhead are in the worker's
fitted compute (its link is written ``ideal``), scaled as compute by the load -- exact at the
probed load (``1/M``), an approximation for schemes with other loads; the uplink is fitted
at one message size (``gradient_bytes``), so its time is all latency (bandwidth unlimited)
and the edge's combining time is in it (``combine_s_per_byte: 0``).
"""

from __future__ import annotations

import copy
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
    gradient_bytes: int
    iterations: int
    measured_mean_s: float

    def to_json(self) -> dict[str, Any]:
        def num(x: float) -> float | str | None:
            if math.isnan(x):
                return None
            return x if math.isfinite(x) else "inf"

        return {
            "probe_scheme": PROBE_SCHEME,
            "iterations": self.iterations,
            "measured_mean_s": self.measured_mean_s,
            "gradient_bytes": self.gradient_bytes,
            "workers": {
                n: {
                    "shift_s": num(f.shift_s),
                    "shift_se": num(f.shift_se),
                    "rate": num(f.rate),
                    "rate_se": num(f.rate_se),
                    "n": f.n,
                    "censored": f.censored,
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
    records: Sequence[dict[str, Any]], loads: dict[str, float], edges: dict[str, list[str]]
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
            if edge in edge_arrivals and len(seen) == len(names):
                hop = (float(edge_arrivals[edge]) - max(seen)) / 2.0
                hops[edge].append(max(hop, 0.0))
    return Observations(workers, hops, iteration_s)


def fit(obs: Observations, gradient_bytes: int) -> Calibration:
    """Fit every worker and uplink; ``ValueError`` naming the node that cannot be fitted."""
    workers: dict[str, ComputeFit] = {}
    for name, rows in obs.workers.items():
        if not rows:
            raise ValueError(f"{name}: no observation in the probe's records")
        t, c, ell = (np.array(col) for col in zip(*rows, strict=True))
        try:
            workers[name] = fit_shifted_exponential(t, c.astype(bool), ell)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    uplinks: dict[str, LinkFit] = {}
    for name, hop_list in obs.uplink_hops.items():
        if len(hop_list) < 2:
            raise ValueError(f"{name}: fewer than 2 complete iterations to fit its uplink")
        uplinks[name] = fit_link([float(gradient_bytes)] * len(hop_list), hop_list)
    mean = float(np.mean(obs.iteration_s)) if obs.iteration_s else math.nan
    return Calibration(workers, uplinks, gradient_bytes, len(obs.iteration_s), mean)


def fitted_scenario(scenario: Scenario, cal: Calibration, source: str = "") -> dict[str, Any]:
    """The scenario's own document with its topology replaced by the fitted profiles: one
    custom device and link per node (``fit-<node>``), set through ``topology.overrides``.
    Everything else (model, data, training, code, schemes, emulation) is kept; faults are
    dropped and the straggler model is the fitted shifted exponential."""
    doc = copy.deepcopy(scenario.raw)
    old = doc.get("topology", {})
    devices: dict[str, Any] = dict(old.get("devices") or {})
    links: dict[str, Any] = dict(old.get("links") or {})
    overrides: dict[str, Any] = {}
    for i, m in enumerate(scenario.workers_per_edge):
        edge = f"edge-{i}"
        up = cal.uplinks[edge]
        links[f"fit-{edge}"] = {
            "latency_s": _round(up.latency_s),
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
            devices[f"fit-{w}"] = {
                "shift_s": _round(f.shift_s),
                "rate": f.rate if math.isinf(f.rate) else _round(f.rate),
                "cpu_fraction": scenario.worker_profile(i, j).cpu_fraction,
            }
            overrides[w] = {"device": f"fit-{w}", "link": "ideal"}
    doc["topology"] = {
        "workers_per_edge": list(scenario.workers_per_edge),
        "compute_scale": 1.0,
        "devices": devices,
        "links": links,
        "overrides": overrides,
    }
    doc["name"] = f"{scenario.name}-fitted"
    doc["description"] = (
        f"{scenario.name} as measured by hgc calibrate ({cal.iterations} {PROBE_SCHEME} "
        f"iterations{', ' + source if source else ''}; probe mean {cal.measured_mean_s:.4f} s)"
    )
    doc["stragglers"] = {"kind": "shifted-exponential"}
    if "path" in scenario.data_spec:  # resolved against the original file's folder
        doc["data"] = dict(scenario.data_spec)
    doc.pop("faults", None)
    return doc


def _round(x: float) -> float:
    return float(f"{x:.6g}")


HEADER = """\
# Fitted by `hgc calibrate` from {iterations} probe iterations ({scheme}) of {name}.
# Per node: device fit-<node> = the censored maximum-likelihood shifted exponential of the
# worker's arrivals at its edge, per unit load (its own link round trip and the per-message
# overhead are inside it: worker links are 'ideal'); link fit-edge-<i> = the edge's uplink,
# one hop, from (edge arrival - its latest worker arrival) / 2 at {gradient_bytes} bytes
# (one size: all latency, bandwidth unlimited; combining is inside it).
# Per-message overhead: not a separate term -- it is inside the fitted times above, so a
# model term for it (emulation.message_overhead_s, where the scenario format has it) is 0.
# Standard errors of every fit: {json_name}.
"""


def write_fitted(
    path: Path, scenario: Scenario, cal: Calibration, json_name: str, source: str = ""
) -> dict[str, Any]:
    doc = fitted_scenario(scenario, cal, source)
    header = HEADER.format(
        iterations=cal.iterations,
        scheme=PROBE_SCHEME,
        name=scenario.name,
        gradient_bytes=cal.gradient_bytes,
        json_name=json_name,
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return doc


def probe_layout(scenario: Scenario) -> tuple[dict[str, float], dict[str, list[str]]]:
    """(worker -> load fraction, edge -> workers) of the probe plan (every node selected)."""
    from hgc.testbed.config import scenario_plan

    plan = scenario_plan(scenario, PROBE_SCHEME)
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
) -> list[dict[str, Any]]:
    """Run ``PROBE_SCHEME`` for ``iterations`` on a local cluster (``hgc run``'s launcher),
    without the scenario's faults; the translated master records."""
    import dataclasses

    from hgc.testbed.config import NodeMap, scenario_plan
    from hgc.testbed.launcher import RunRequest, run_testbed, translate

    probe = dataclasses.replace(scenario, faults=(), schemes=(PROBE_SCHEME,))
    req = RunRequest(scenario_path, probe, (PROBE_SCHEME,), iterations, out=out, stream=stream)
    outcome = run_testbed(req)
    if not outcome.ok:
        raise RuntimeError(f"probe run failed: {outcome.failures}")
    names = NodeMap.of(scenario_plan(probe, PROBE_SCHEME))
    raw = read_records(outcome.folder / PROBE_SCHEME / "record.jsonl")
    return [translate(r, names, PROBE_SCHEME) for r in raw]


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
