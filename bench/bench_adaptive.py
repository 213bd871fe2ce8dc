"""hgc-adaptive (issue 14) on the shipped drifting scenario, in one ``hgc run`` with
``hgc-jncss`` (static, planned from the initial profiles) and ``hgc-adaptive`` side by side,
and on the same cluster without drift (stationary: no regression).

The drifting run is ``scenarios/drifting.yaml`` as shipped (270 iterations, faults at 90
and 135; ``--quick``: iterations and fault iterations / ``QUICK_SHRINK``). A drift costs
hgc-adaptive a fixed number of iterations (3 to see it, then the re-plan: about 1 s of
optimiser CPU on this 2-core machine, several seconds when the host is busy), the hindsight
baseline none, so the ratio depends on how long a drift lasts; drifts of real clusters (a
throttling Pi, a congested uplink) last minutes. Window and threshold as shipped (20, 0.05).

Figures:

- measured mean iteration time of each scheme, and adaptive / static jncss (same run);
- the per-phase hindsight-best static plan: for each phase between faults the optimisers
  (``hgc-jncss``, ``hgc-hetero``) on that phase's *true* profiles, its expected time
  (exact, simulated), weighted by the phase's iterations. The true profiles include the
  runtime's own cost per message hop on this host (issue 16's model term
  ``emulation.message_overhead_s``), measured in the same bench on the scenario's
  deterministic twin, once before and once after the drifting run (``hgc.testbed.overhead``):
  it is additive, about 4 x 3 ms per iteration on this 2-core machine, i.e. 13 % of a
  first-phase iteration and 4 % of a last-phase one, so no single factor stands for it.
  What the model still misses is put on the measured scale with the ratio measured /
  simulated of static ``hgc-jncss`` in the same run (same machine, same moment); static
  ``hgc-jncss``'s measured / simulated per phase shows how well the model fits. The pure
  model's figures (no overhead, as before issue 16) are reported beside, without a target.
  Target: adaptive <= 1.10 x the hindsight-best.
- stationary: adaptive / jncss on the undrifted scenario, target <= 1.05.

``BENCH_ADAPTIVE_OUT=<dir>`` keeps the run folders (the master's log says every re-plan's
predicted gain, window uncertainty and wall / CPU time).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import Result
from common.perf import expected_time, plan_scheme
from common.perf.system import SystemModel
from common.scenario import Scenario, load_scenario
from hgc.testbed.launcher import RunRequest, run_testbed
from hgc.testbed.overhead import measure_overhead, with_overhead
from hgc.testbed.records import read_records

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "drifting.yaml"
QUICK_SHRINK = 3
TWIN_ITERATIONS = 15  # each of the two twin runs around the drifting run (--quick: 5)
SCHEMES = ("hgc-jncss", "hgc-adaptive")
BEST_OF = ("hgc-jncss", "hgc-hetero")  # the optimisers the hindsight-best is the best of


def scenario_file(tmp: Path, quick: bool, drift: bool) -> Path:
    """The shipped drifting scenario with the two schemes (``drift`` False: without its
    faults), written to ``tmp``."""
    raw: dict[str, Any] = yaml.safe_load(SCENARIO.read_text())
    shrink = QUICK_SHRINK if quick else 1
    raw["training"]["iterations"] = raw["training"]["iterations"] // shrink
    raw["faults"] = [{**f, "iteration": f["iteration"] // shrink} for f in raw.get("faults", [])]
    if not drift:
        raw["faults"] = []
        raw["name"] = "stationary"
    raw["schemes"] = list(SCHEMES)
    path = tmp / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def phase_systems(scenario: Scenario) -> list[tuple[int, SystemModel]]:
    """(first iteration, true system) of each phase between the set-device / set-link faults."""
    topo = scenario.topology
    system = scenario.system_model()
    out = [(0, system)]
    for f in sorted(scenario.faults, key=lambda f: f.iteration):
        parts = f.node.split("-")
        kind, i = parts[0], int(parts[1])
        j = int(parts[2]) if len(parts) > 2 else -1
        workers = [list(ws) for ws in system.workers]
        edges = list(system.edges)
        if f.action == "set-device" and f.device is not None:
            dev = topo.devices[f.device]
            w = workers[i][j]
            workers[i][j] = dataclasses.replace(
                w, shift_s=dev.shift_s * topo.compute_scale, rate=dev.rate / topo.compute_scale
            )
        elif f.action == "set-link" and f.link is not None:
            link = topo.links[f.link]
            if kind == "edge":
                edges[i] = dataclasses.replace(edges[i], uplink=link)
            else:
                workers[i][j] = dataclasses.replace(workers[i][j], link=link)
        system = dataclasses.replace(
            system, workers=tuple(tuple(ws) for ws in workers), edges=tuple(edges)
        )
        out = [p for p in out if p[0] != f.iteration] + [(f.iteration, system)]
    return out


@dataclass(frozen=True)
class Phase:
    """One phase between faults: its iterations, the hindsight-best static plan's scheme and
    expected time on the phase's true profiles, and static hgc-jncss's (planned on phase 0)."""

    start: int
    end: int
    best_scheme: str
    best_s: float
    static_s: float

    @property
    def iterations(self) -> int:
        return self.end - self.start


def hindsight(scenario: Scenario, iterations: int) -> list[Phase]:
    """Every phase of ``scenario``'s first ``iterations`` with its hindsight-best and static
    hgc-jncss expected times (simulated, exact; ``scenario``'s model, overhead included)."""
    phases = phase_systems(scenario)
    static = plan_scheme(phases[0][1], "hgc-jncss")
    out = []
    for k, (start, system) in enumerate(phases):
        end = min(phases[k + 1][0] if k + 1 < len(phases) else iterations, iterations)
        if end <= start:
            continue
        scored = {s: expected_time(system, plan_scheme(system, s)) for s in BEST_OF}
        best = min(scored, key=lambda s: scored[s])
        out.append(Phase(start, end, best, scored[best], expected_time(system, static)))
    return out


def weighted(phases: list[Phase], value: str) -> float:
    """The iteration-weighted mean of ``value`` (``best_s`` or ``static_s``) over ``phases``."""
    total = sum(p.iterations for p in phases)
    return sum(getattr(p, value) * p.iterations for p in phases) / total


def phase_means(record: Path, phases: list[Phase]) -> list[float]:
    """The measured mean iteration time of each phase, from a run's ``record.jsonl``."""
    rows = [r for r in read_records(record) if r.get("ok") and "duration_s" in r]
    means = []
    for p in phases:
        xs = [r["duration_s"] for r in rows if p.start <= r["iteration"] < p.end]
        means.append(sum(xs) / len(xs) if xs else float("nan"))
    return means


def twin_hop(path: Path, scenario: Scenario, iterations: int, out: Path) -> float:
    """Seconds per message hop on ``scenario``'s deterministic twin, now."""
    return measure_overhead(path, scenario, iterations, out, stream=sys.stderr).per_hop_s


def run(quick: bool) -> list[Result]:
    results: list[Result] = []
    keep = os.environ.get("BENCH_ADAPTIVE_OUT")  # keep the run folders (logs) there
    twin_iterations = 5 if quick else TWIN_ITERATIONS
    with tempfile.TemporaryDirectory(prefix="bench-adaptive-") as scratch:
        tmp = Path(keep or scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for drift in (True, False):
            path = scenario_file(tmp, quick, drift)
            scenario = load_scenario(path)
            n = scenario.training.iterations
            out = tmp / ("drift" if drift else "stationary")

            hop_before = (
                twin_hop(path, scenario, twin_iterations, tmp / "twin-before") if drift else 0.0
            )
            outcome = run_testbed(
                RunRequest(path, scenario, SCHEMES, n, out=out, stream=sys.stderr)
            )
            stats = {s: outcome.results[s].stats for s in SCHEMES if s in outcome.results}
            if len(stats) < 2:
                continue
            section = f"adaptive ({scenario.name}, {n} iterations, one hgc run)"
            a, j = stats["hgc-adaptive"].mean_s, stats["hgc-jncss"].mean_s
            switches = sum(
                1
                for r in read_records(out / "hgc-adaptive" / "record.jsonl")
                if r.get("plan_switch")
            )
            results += [
                Result(section, "hgc-jncss measured mean", j, "s"),
                Result(section, "hgc-adaptive measured mean", a, "s"),
                Result(section, "hgc-adaptive plan switches", float(switches), "count"),
            ]
            if drift:
                hop = (
                    hop_before + twin_hop(path, scenario, twin_iterations, tmp / "twin-after")
                ) / 2
                results += hindsight_results(section, scenario, n, hop, a, j, out)
            else:
                results.append(
                    Result(
                        section,
                        "adaptive / hgc-jncss (stationary, measured)",
                        a / j,
                        "ratio",
                        "<= 1.05",
                        a / j <= 1.05,
                    )
                )
    return results


def hindsight_results(
    section: str, scenario: Scenario, n: int, hop_s: float, a: float, j: float, out: Path
) -> list[Result]:
    """The drifting run against the hindsight-best: ``a`` and ``j`` are hgc-adaptive's and
    static hgc-jncss's measured means, ``hop_s`` the twins' overhead per message hop."""
    phases = hindsight(with_overhead(scenario, hop_s), n)
    best, static = weighted(phases, "best_s"), weighted(phases, "static_s")
    scale = j / static  # what the model with the overhead still misses, same run
    results = [
        Result(section, "overhead per message hop (twins before and after)", hop_s * 1e3, "ms"),
        Result(section, "hindsight-best static (simulated, overhead in the model)", best, "s"),
        Result(section, "static hgc-jncss (simulated, overhead in the model)", static, "s"),
        Result(section, "measured / simulated (static hgc-jncss)", scale, "ratio"),
    ]
    measured = phase_means(out / "hgc-jncss" / "record.jsonl", phases)
    for p, m in zip(phases, measured, strict=True):
        results.append(
            Result(
                section,
                f"phase {p.start}-{p.end}: static hgc-jncss measured / simulated"
                f" (hindsight-best there: {p.best_scheme}, {p.best_s * 1e3:.1f} ms)",
                m / p.static_s,
                "ratio",
            )
        )
    pure = hindsight(with_overhead(scenario, 0.0), n)
    pure_scale = j / weighted(pure, "static_s")
    ratio = a / (best * scale)
    results += [
        Result(
            section,
            "adaptive / hindsight-best (on the measured scale)",
            ratio,
            "ratio",
            "<= 1.10",
            ratio <= 1.10,
        ),
        Result(
            section,
            "adaptive / hindsight-best, pure model (no overhead; scaled as a whole)",
            a / (weighted(pure, "best_s") * pure_scale),
            "ratio",
        ),
        Result(
            section,
            "adaptive / static hgc-jncss (measured)",
            a / j,
            "ratio",
            "<= 0.90",
            a / j <= 0.90,
        ),
    ]
    return results
