"""A compose stack's run folder on the host: after the master has written its record into
``runs/<stack>/<scheme>/record.jsonl`` (bind mount), write what ``hgc run`` writes beside it
(``summary.json``, ``table.txt``, ``scenario.yaml``, ``report.html``), so ``hgc report`` and a
user see the same files whichever way the run was made.

    python -m hgc.compose.results RUN_FOLDER STACK.run.json

``STACK.run.json`` is written by ``hgc compose`` beside the compose file (scenario, scheme)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class ResultsError(ValueError):
    """The run folder or the run description cannot be read; the message names the file."""


def read_run_info(path: Path) -> dict[str, Any]:
    """``{"scenario": path relative to the file or absolute, "scheme", "iterations"}``."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read the stack's run description: {exc}") from None
    if not isinstance(info, dict) or not {"scenario", "scheme"} <= set(info):
        raise ResultsError(f"{path}: not a run description (needs 'scenario' and 'scheme')")
    info["scenario"] = str((path.parent / str(info["scenario"])).resolve())
    return info


def write_results(folder: Path, run_info: Path) -> str:
    """Summary, table and report of the stack's run in ``folder``; returns the table."""
    from common.scenario import ScenarioError, load_scenario
    from hgc.report import write_report
    from hgc.testbed.config import scenario_plan
    from hgc.testbed.predict import predict
    from hgc.testbed.records import RecordError, read_records, scheme_stats
    from hgc.testbed.runfolder import RunFolder, SchemeResult

    info = read_run_info(run_info)
    scheme = str(info["scheme"])
    record = folder / scheme / "record.jsonl"
    try:
        records = read_records(record)
    except (RecordError, OSError) as exc:
        raise ResultsError(f"{record}: {exc}") from None
    try:
        scenario = load_scenario(info["scenario"])
        plan = scenario_plan(scenario, scheme)
    except (ScenarioError, OSError, ValueError) as exc:
        raise ResultsError(f"{info['scenario']}: {exc}") from None
    predicted, plan_info = predict(scenario, plan)
    results = {scheme: SchemeResult(scheme_stats(scheme, records), predicted, None, plan_info)}
    run = RunFolder(folder)
    shutil.copyfile(info["scenario"], folder / "scenario.yaml")
    extra = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "schemes_requested": [scheme],
        "iterations_requested": info.get("iterations"),
        "made_by": "compose stack",
    }
    table = run.write_summary(results, extra)
    write_report(folder)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hgc.compose.results", description=__doc__)
    p.add_argument("folder", type=Path, help="the stack's run folder (runs/<stack>)")
    p.add_argument("run_info", type=Path, help="<stack>.run.json beside the compose file")
    args = p.parse_args(argv)
    try:
        table = write_results(args.folder, args.run_info)
    except ResultsError as exc:
        print(f"hgc.compose.results: {exc}", file=sys.stderr)
        return 2
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
