"""``hgc optimize SCENARIO``: JNCSS — which edges, which workers and which (s_e, s_w) make the
expected iteration time smallest, with the runner-up alternatives (docs/simulator.md)."""

from __future__ import annotations

import argparse
import json

from common.perf.fit import optimisation_model
from common.perf.jncss import greedy_jncss
from common.perf.jncss_explain import explain, explain_lines
from common.perf.plan import InfeasiblePlanError
from common.perf.simulator import optimizer_report
from hgc.cli import UsageError
from hgc.commands.simulate import load_scenario_model, speedup_text

HELP = "choose nodes and tolerances (JNCSS) minimising the expected iteration time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    scenario, system, _ = load_scenario_model(args.scenario)
    try:
        report = optimizer_report(system)
        # the search is deterministic: the same choice as the report's, with its per-pair table
        report["explain"] = explain(system, greedy_jncss(optimisation_model(system)))
    except InfeasiblePlanError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"scenario {scenario.name}: {system.n_edges} edges, workers {system.workers_per_edge}")
    print(
        f"JNCSS choice: {report['plan']}\n"
        f"  expected iteration time {report['expected_time_s']:.4f} s "
        f"(uncoded {report['uncoded_expected_time_s']:.4f} s, "
        f"speed-up {speedup_text(report['speedup_vs_uncoded'])})\n"
        f"  greedy search: {report['evaluations']} evaluations in {report['search_s']:.2f} s"
        f" (model: {report['model']})"
    )
    if "exhaustive" in report:
        ex = report["exhaustive"]
        print(
            f"  exhaustive search: {ex['expected_time_s']:.4f} s over {ex['evaluations']} "
            f"selections; greedy gap "
            f"{'-' if ex['greedy_gap'] is None else format(100 * ex['greedy_gap'], '.2f')} %"
        )
    print(f"hgc-hetero (unequal loads): {report['hetero']['plan']}")
    print(f"  expected iteration time {report['hetero']['expected_time_s']:.4f} s")
    print("runner-up alternatives:")
    for alt in report["alternatives"]:
        print(f"  {alt['expected_time_s']:.4f} s  {alt['plan']}")
    print("\n".join(explain_lines(report["explain"])))
    return 0
