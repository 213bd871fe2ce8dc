"""``hgc report``: one self-contained HTML page of a run folder (what ``hgc run`` or a compose
stack wrote): the per-scheme table with the simulator's prediction beside the measurement,
the iteration-time CDF, time per iteration, loss and accuracy against wall-clock time, per-edge
wait and a node x iteration straggler heat-map per scheme, with the scenario's node names.

The page has no script and no external resource: it opens offline, from a file, anywhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from hgc.report.svg import Series, grouped_bars, heat_map, line_chart
from hgc.testbed.records import (
    RecordError,
    edge_name,
    read_header,
    read_records,
    wall_clock,
    worker_name,
)

REPORT_NAME = "report.html"


class ReportError(ValueError):
    """The folder is not a run folder the report can read; the message says what is missing."""


@dataclass
class SchemeRun:
    name: str
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    # record node name (position in the plan's selection) -> scenario node name
    names: dict[str, str] = field(default_factory=dict)
    # scenario nodes the plan used (empty: unknown, e.g. an old fixed-scheme run)
    selected: set[str] = field(default_factory=set)

    @property
    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("ok")]

    def true(self, node: str) -> str:
        return self.names.get(node, node)


def node_names(plan: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, str]:
    """Record names -> scenario names from the plan's selection (``edges``/``workers`` hold
    scenario indices by position). Records that already carry scenario names (the master sets
    ``"names": "scenario"``) map to themselves."""
    if any(r.get("names") == "scenario" for r in records[:1]):
        return {}
    edges, workers = plan.get("edges"), plan.get("workers")
    if not isinstance(edges, list) or not isinstance(workers, list):
        return {}
    names: dict[str, str] = {}
    for p, (edge, members) in enumerate(zip(edges, workers, strict=False)):
        names[f"edge-{p}"] = f"edge-{edge}"
        for q, worker in enumerate(members if isinstance(members, list) else []):
            names[f"worker-{p}-{q}"] = f"worker-{edge}-{worker}"
    return names


def scheme_run(
    name: str, records: list[dict[str, Any]], info: dict[str, Any], header: dict[str, Any] | None
) -> SchemeRun:
    """A scheme's records with their names: a record with a run header (the master named
    every node by the scenario and listed the nodes used) needs no translation; an older
    one is translated from the plan in the summary."""
    if header is not None and isinstance(header.get("selected"), list):
        return SchemeRun(name, records, info, {}, {str(n) for n in header["selected"]})
    names = node_names(info.get("plan") or {}, records)
    return SchemeRun(name, records, info, names, set(names.values()) - {"master"})


def topology(folder: Path) -> tuple[list[str], list[str]]:
    """Every edge and worker of the scenario (scenario names), from the run's scenario copy;
    empty when the folder has none (e.g. a compose stack's folder)."""
    path = folder / "scenario.yaml"
    if not path.is_file():
        return [], []
    from common.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(path)
    except (ScenarioError, OSError):
        return [], []
    sizes = scenario.system_model().workers_per_edge
    edges = [f"edge-{i}" for i in range(len(sizes))]
    workers = [f"worker-{i}-{j}" for i, m in enumerate(sizes) for j in range(m)]
    return edges, workers


def load_run(folder: Path) -> list[SchemeRun]:
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise ReportError(f"{folder}: not a run folder (no summary.json)")
    try:
        summary = json.loads(summary_path.read_text())
    except (ValueError, OSError) as exc:
        raise ReportError(f"{summary_path}: not a run summary ({exc})") from None
    schemes = summary.get("schemes") if isinstance(summary, dict) else None
    if not isinstance(schemes, dict) or not all(isinstance(v, dict) for v in schemes.values()):
        raise ReportError(f"{summary_path}: not a run summary (no 'schemes' table)")
    runs = []
    for name, info in schemes.items():
        path = folder / name / "record.jsonl"
        try:
            records = read_records(path) if path.is_file() else []
        except RecordError as exc:
            raise ReportError(str(exc)) from None
        runs.append(scheme_run(name, records, info, read_header(path)))
    if not runs:
        raise ReportError(f"{summary_path}: no scheme was run")
    from common.coding import SCHEME_NAMES

    order = {name: i for i, name in enumerate(SCHEME_NAMES)}  # the registry's table order
    return sorted(runs, key=lambda r: order.get(r.name, len(order)))


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else math.nan


def cdf_figure(runs: list[SchemeRun]) -> str:
    series = []
    for run in runs:
        times = sorted(_num(r["duration_s"]) for r in run.ok)
        n = len(times)
        series.append(Series(run.name, times, [(i + 1) / n for i in range(n)]))
    return line_chart(
        "fig-cdf",
        "Iteration-time CDF",
        series,
        "iteration time (s)",
        "fraction of iterations",
        step=True,
        markers=False,
    )


def time_figure(runs: list[SchemeRun]) -> str:
    series = [
        Series(run.name, [r["iteration"] for r in run.ok], [_num(r["duration_s"]) for r in run.ok])
        for run in runs
    ]
    return line_chart("fig-time", "Time per iteration", series, "iteration", "time (s)")


def _against_wall(runs: list[SchemeRun], key: str) -> list[Series]:
    series = []
    for run in runs:
        walls = list(wall_clock(run.records)) if run.records else []
        pts = [
            (float(w), _num(r.get(key)))
            for w, r in zip(walls, run.records, strict=True)
            if r.get("ok") and r.get(key) is not None
        ]
        series.append(Series(run.name, [p[0] for p in pts], [p[1] for p in pts]))
    return series


def edge_wait_figure(runs: list[SchemeRun], edges: list[str]) -> str:
    """Mean arrival time at the master per edge (scenario names) and scheme."""
    seen = set(edges)
    per_scheme: dict[str, dict[str, float]] = {}
    for run in runs:
        sums: dict[str, list[float]] = {}
        for r in run.ok:
            for edge, t in (r.get("edge_arrivals_s") or {}).items():
                if t is not None:
                    sums.setdefault(run.true(edge_name(edge)), []).append(float(t))
        per_scheme[run.name] = {e: sum(ts) / len(ts) for e, ts in sums.items()}
        seen |= set(per_scheme[run.name])
    groups = sorted(seen, key=lambda e: int(e.split("-")[1]))
    series = [(name, [per_scheme[name].get(e) for e in groups]) for name in per_scheme]
    return grouped_bars(
        "fig-edge-wait", "Per-edge wait: mean arrival at the master", groups, series, "seconds"
    )


def prediction_figure(runs: list[SchemeRun]) -> str:
    groups = [run.name for run in runs]
    measured = [run.summary.get("mean_s") for run in runs]
    predicted = [run.summary.get("predicted_mean_s") for run in runs]
    return grouped_bars(
        "fig-prediction",
        "Mean iteration time: measured and the simulator's prediction",
        groups,
        [("measured", measured), ("simulated", predicted)],
        "seconds",
    )


def heat_map_figure(run: SchemeRun, index: int, edges: list[str], workers: list[str]) -> str:
    """One row per scenario node: its arrival time per iteration, stragglers in red, nodes
    the plan left out in grey (they never appear as used)."""
    iterations = [r for r in run.records if r.get("ok")]
    used = run.selected
    rows_seen: set[str] = set()
    for r in iterations:
        rows_seen |= {run.true(edge_name(e)) for e in r.get("edge_arrivals_s") or {}}
        rows_seen |= {run.true(edge_name(e)) for e in r.get("edge_stragglers") or []}
        rows_seen |= {run.true(worker_name(w)) for w in r.get("worker_arrivals_s") or {}}
        rows_seen |= {run.true(worker_name(w)) for w in r.get("worker_stragglers") or []}
    rows = list(edges) + list(workers)
    rows += sorted(rows_seen - set(rows))
    idle = [n for n in rows if used and n not in used]
    cells: list[list[float | None]] = []
    straggled: list[list[bool]] = []
    for node in rows:
        row: list[float | None] = []
        flags: list[bool] = []
        for r in iterations:
            if node.startswith("edge-"):
                arrivals = {
                    run.true(edge_name(e)): t for e, t in (r.get("edge_arrivals_s") or {}).items()
                }
                late = {run.true(edge_name(e)) for e in r.get("edge_stragglers") or []}
            else:
                arrivals = {
                    run.true(worker_name(w)): t
                    for w, t in (r.get("worker_arrivals_s") or {}).items()
                }
                late = {run.true(worker_name(w)) for w in r.get("worker_stragglers") or []}
            t = arrivals.get(node)
            row.append(None if t is None else _num(t))
            flags.append(node in late)
        cells.append(row)
        straggled.append(flags)
    return heat_map(
        f"fig-heatmap-{index}",
        f"Stragglers per node and iteration: {run.name}",
        rows,
        len(iterations),
        cells,
        straggled=straggled,
        idle_rows=idle,
    )


def summary_table(runs: list[SchemeRun]) -> str:
    cols = [
        ("scheme", None),
        ("iterations", "iterations"),
        ("failed", "failed"),
        ("mean s", "mean_s"),
        ("p95 s", "p95_s"),
        ("simulated s", "predicted_mean_s"),
        ("measured / simulated", "measured_over_predicted"),
        ("speed-up", "speedup_vs_uncoded"),
        ("simulated speed-up", "predicted_speedup_vs_uncoded"),
        ("final loss", "final_loss"),
        ("final accuracy", "final_accuracy"),
        ("stragglers edge / worker", None),
    ]
    head = "".join(f"<th>{escape(c)}</th>" for c, _ in cols)
    body = []
    for run in runs:
        s = run.summary
        cells = [escape(run.name)]
        for _, key in cols[1:-1]:
            v = s.get(key or "")
            cells.append(
                "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else escape(str(v)))
            )
        cells.append(f"{s.get('edge_stragglers', '-')} / {s.get('worker_stragglers', '-')}")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table id="summary"><tr>{head}</tr>{"".join(body)}</table>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.figure{display:block;margin:8px 0 18px 0;max-width:100%;height:auto}
.note{color:#555;font-size:13px}
"""


def render(folder: Path) -> str:
    runs = load_run(folder)
    edges, workers = topology(folder)
    title = f"HGC run report: {folder.resolve().name}"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} from '
        f"{escape(str(folder.resolve()))}. Times are the master's; node names are the "
        "scenario's.</p>",
        "<h2>Schemes</h2>",
        summary_table(runs),
        "<h2>Measured against the simulator</h2>",
        prediction_figure(runs),
        "<h2>Iteration time</h2>",
        cdf_figure(runs),
        time_figure(runs),
        "<h2>Training against wall-clock time</h2>",
        line_chart(
            "fig-loss",
            "Loss against wall-clock time",
            _against_wall(runs, "loss"),
            "wall-clock time (s)",
            "training loss",
        ),
        line_chart(
            "fig-accuracy",
            "Accuracy against wall-clock time",
            _against_wall(runs, "accuracy"),
            "wall-clock time (s)",
            "accuracy",
        ),
        "<h2>Per-edge wait</h2>",
        edge_wait_figure(runs, edges),
        "<h2>Stragglers</h2>",
    ]
    for i, run in enumerate(runs):
        parts.append(f"<h3>{escape(run.name)}</h3>")
        parts.append(heat_map_figure(run, i, edges, workers))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(folder: Path, out: Path | None = None) -> Path:
    """Write the page (default ``<folder>/report.html``) and return its path."""
    target = out or folder / REPORT_NAME
    target.write_text(render(folder), encoding="utf-8")
    return target
