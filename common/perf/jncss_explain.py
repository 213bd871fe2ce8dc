"""Why JNCSS chose what it chose: per edge, the workers left out, and the best plan's expected
time at every tolerance pair the search scored (``hgc optimize`` prints it; ``--json`` has it)."""

from __future__ import annotations

from typing import Any

from common.perf.jncss import OptimizeResult
from common.perf.system import SystemModel


def explain(system: SystemModel, result: OptimizeResult) -> dict[str, Any]:
    """A JSON-able explanation of ``result`` on ``system``.

    - ``edges``: one row per topology edge: ``selected``, ``left_out`` (worker indices the
      plan does not use; all of them when the edge is out), ``kept`` (worker indices used);
    - ``tolerances``: ``[{s_e, s_w, expected_time_s, workers_per_edge, chosen}]`` ascending
      (s_e, s_w): the best plan found at each pair, so a reader sees what each tolerance buys.
    """
    plan = result.best.plan
    used = dict(zip(plan.edges, plan.workers, strict=True))
    edges = []
    for e, m in enumerate(system.workers_per_edge):
        kept = list(used.get(e, ()))
        edges.append(
            {
                "edge": e,
                "selected": e in used,
                "kept": kept,
                "left_out": [j for j in range(m) if j not in kept],
            }
        )
    rows = result.by_pair or (result.best, *result.alternatives)
    table = [
        {
            "s_e": c.plan.s_e,
            "s_w": c.plan.s_w,
            "expected_time_s": c.mean_s,
            "workers_per_edge": list(c.plan.workers_per_edge),
            "chosen": (c.plan.s_e, c.plan.s_w) == (plan.s_e, plan.s_w),
        }
        for c in sorted(rows, key=lambda c: (c.plan.s_e, c.plan.s_w))
    ]
    return {"edges": edges, "tolerances": table}


def explain_lines(doc: dict[str, Any], max_rows: int = 24) -> list[str]:
    """The explanation as text: left-out workers per edge, then the tolerance table (at most
    ``max_rows`` rows, best first when truncated)."""
    lines = ["why: workers left out per edge"]
    for row in doc["edges"]:
        e = row["edge"]
        if not row["selected"]:
            lines.append(f"  edge-{e}: left out entirely")
        elif row["left_out"]:
            names = ", ".join(f"worker-{e}-{j}" for j in row["left_out"])
            lines.append(f"  edge-{e}: leaves out {names}")
        else:
            lines.append(f"  edge-{e}: all {len(row['kept'])} workers")
    rows = doc["tolerances"]
    if len(rows) > max_rows:
        best = sorted(rows, key=lambda r: r["expected_time_s"])[:max_rows]
        rows = sorted(best, key=lambda r: (r["s_e"], r["s_w"]))
    lines.append("what each tolerance buys: best plan found at each (s_e, s_w)")
    lines.append("   s_e  s_w   E[T] (s)  workers per selected edge")
    for r in rows:
        mark = "  <- chosen" if r["chosen"] else ""
        lines.append(
            f"  {r['s_e']:4d} {r['s_w']:4d}  {r['expected_time_s']:9.4f}  "
            f"{r['workers_per_edge']}{mark}"
        )
    return lines
