"""Write compose/grafana/dashboards/hgc.json, the stack's Grafana dashboard.

    .venv/bin/python scripts/grafana_dashboard.py [OUT]

Every panel's PromQL uses only the metric contract (docs/architecture.md, "Metrics") and the
recording rules of compose/prometheus/rules.yml, with fixed windows (no Grafana variables),
so tests/system/test_prometheus_stack.py can run each expression against a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "hgc-prometheus"}
OUT = Path(__file__).resolve().parent.parent / "compose/grafana/dashboards/hgc.json"
EMULATION = '{__name__=~"hgc_(master|edge|worker)_emulation_active"}'

# (title, kind, unit, [(expr, legend)], description)
PANELS: list[tuple[str, str, str, list[tuple[str, str]], str]] = [
    (
        "Iteration time percentiles",
        "timeseries",
        "s",
        [
            ("hgc:iteration_duration_seconds:p50_1m", "p50"),
            ("hgc:iteration_duration_seconds:p95_1m", "p95"),
            ("hgc:iteration_duration_seconds:p99_1m", "p99"),
        ],
        "Master: model sent to gradient decoded, quantiles over 1 min.",
    ),
    (
        "Iteration time heatmap",
        "heatmap",
        "s",
        [("sum by (le) (increase(hgc_master_iteration_duration_seconds_bucket[1m]))", "{{le}}")],
        "Iterations per duration bucket, per minute.",
    ),
    (
        "Time to the k-th answer, per tier (p95)",
        "timeseries",
        "s",
        [
            ("hgc:edge_wait_seconds:p95_1m", "master: (n - s_e)-th edge"),
            ("hgc:worker_wait_seconds:p95_1m", "edge {{edge}}: (m_i - s_w)-th worker"),
        ],
        "Model sent to the answer that completes decoding, at each tier.",
    ),
    (
        "Edge arrival at the master (p50)",
        "timeseries",
        "s",
        [
            (
                "histogram_quantile(0.5, sum by (edge, le) "
                "(rate(hgc_master_edge_arrival_seconds_bucket[1m])))",
                "edge {{edge}}",
            )
        ],
        "Model sent to this edge's answer.",
    ),
    (
        "Worker arrival at its edge (p50)",
        "timeseries",
        "s",
        [
            (
                "histogram_quantile(0.5, sum by (edge, worker, le) "
                "(rate(hgc_edge_worker_arrival_seconds_bucket[1m])))",
                "worker {{edge}}-{{worker}}",
            )
        ],
        "Model received at the edge to this worker's answer.",
    ),
    (
        "Stragglers ignored per node (last 5 min)",
        "bargauge",
        "short",
        [
            ("sum by (edge) (increase(hgc_master_edge_stragglers_total[5m]))", "edge {{edge}}"),
            (
                "sum by (edge, worker) (increase(hgc_edge_worker_stragglers_total[5m]))",
                "worker {{edge}}-{{worker}}",
            ),
        ],
        "Iterations in which the node's answer was not used.",
    ),
    (
        "Nodes the plan uses (1) and leaves out (0)",
        "table",
        "short",
        [("max by (node) (hgc_master_node_selected)", "{{node}}")],
        "Every scenario node by its scenario name: 1 if the scheme's plan uses it, 0 if it "
        "leaves it out (hgc-jncss, hgc-hetero select nodes). Straggler panels name nodes by "
        "scenario indices too.",
    ),
    (
        "Straggler rate per node",
        "timeseries",
        "percentunit",
        [
            ("hgc:edge_straggler:ratio_1m", "edge {{edge}}"),
            ("hgc:worker_straggler:ratio_1m", "worker {{edge}}-{{worker}}"),
        ],
        "Fraction of iterations in which the node was a straggler.",
    ),
    (
        "Bytes into the master",
        "timeseries",
        "Bps",
        [("hgc:master_received_bytes:rate1m", "received")],
        "What coding saves at the top tier: one coded vector per edge.",
    ),
    (
        "Decode time (p95)",
        "timeseries",
        "s",
        [
            ("hgc:decode_duration_seconds:p95_1m", "master"),
            ("hgc:edge_decode_duration_seconds:p95_1m", "edge {{edge}}"),
        ],
        "",
    ),
    (
        "Loss against time",
        "timeseries",
        "short",
        [("hgc_master_loss", "training loss")],
        "",
    ),
    (
        "Accuracy",
        "timeseries",
        "percentunit",
        [("hgc_master_accuracy_ratio", "test accuracy")],
        "",
    ),
    (
        "Iterations per second by outcome",
        "timeseries",
        "short",
        [("hgc:iterations:rate1m", "{{outcome}}")],
        "",
    ),
    (
        "Speed-up against uncoded",
        "stat",
        "none",
        [("hgc:speedup_vs_uncoded:ratio", "{{scheme}}")],
        "Mean uncoded iteration time (last uncoded run, 6 h) over the current mean; "
        "NaN until an uncoded run was scraped.",
    ),
    (
        "Emulation mechanisms active",
        "table",
        "short",
        [(f"max by (node, mechanism) ({EMULATION})", "{{node}} {{mechanism}}")],
        "1 = the mechanism is emulating the scenario's hardware on that node "
        "(compute_delay, cpu_quota, inprocess_link, tbf, htb, netem).",
    ),
    (
        "Peers alive",
        "timeseries",
        "short",
        [('{__name__=~"hgc_(master|edge)_peers_alive"}', "{{node}}")],
        "Children each parent currently hears from.",
    ),
    (
        "Plan switches (hgc-adaptive)",
        "timeseries",
        "short",
        [
            ("max(hgc_master_plan_switches_total)", "switches"),
            ("max(hgc_master_plan_epoch)", "plan epoch in force"),
        ],
        "hgc-adaptive only: plan switches so far and the epoch of the plan in force (the "
        "nodes it uses: the table above). Static schemes export neither.",
    ),
    (
        "Predicted gain of the last switch (hgc-adaptive)",
        "stat",
        "percentunit",
        [("max(hgc_master_plan_predicted_gain_ratio)", "gain")],
        "1 - new E[T] / old E[T] of the last switch, as the optimiser predicted it on the "
        "master's estimates (docs/adaptive.md).",
    ),
]


def panel(pid: int, spec: tuple[str, str, str, list[tuple[str, str]], str]) -> dict[str, Any]:
    title, kind, unit, targets, description = spec
    width = 12
    p: dict[str, Any] = {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": (pid - 1) % 2 * width, "y": (pid - 1) // 2 * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {
                "refId": chr(ord("A") + k),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                **({"format": "heatmap"} if kind == "heatmap" else {}),
                **({"instant": True, "format": "table"} if kind == "table" else {}),
            }
            for k, (expr, legend) in enumerate(targets)
        ],
    }
    if kind == "heatmap":
        p["options"] = {"calculate": False, "yAxis": {"unit": unit}}
    return p


def dashboard() -> dict[str, Any]:
    return {
        "uid": "hgc-edge",
        "title": "hgc-edge: stragglers and iteration time",
        "tags": ["hgc"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "editable": False,
        "panels": [panel(k + 1, spec) for k, spec in enumerate(PANELS)],
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out} ({len(PANELS)} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
