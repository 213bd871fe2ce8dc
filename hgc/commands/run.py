"""``hgc run``: the local testbed. Starts master, edges and workers as real processes on this
machine, emulates the scenario's heterogeneous hardware, runs each scheme back to back on the
same emulated hardware and seed, and writes a run folder with CSVs, a summary, plots and the
final table (docs/running.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hgc.cli import UsageError

HELP = "run the schemes of a scenario on a local emulated edge cluster and compare them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", type=Path, help="scenario YAML file")
    parser.add_argument(
        "--schemes",
        help="comma-separated schemes to run (default: the scenario's `schemes`), "
        "e.g. uncoded,flat-frc,hgc,hgc-jncss,hgc-hetero",
    )
    parser.add_argument("--iterations", type=int, help="iterations per scheme (default: scenario)")
    parser.add_argument(
        "--out",
        type=Path,
        help="run folder (default: runs/<scenario>-<UTC timestamp>/, made unique); "
        "refused when not empty unless --force",
    )
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    parser.add_argument(
        "--network",
        choices=("in-process", "kernel", "off"),
        help="override emulation.network (kernel: namespaces + tc, needs root)",
    )
    parser.add_argument(
        "--cpu-quota",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override emulation.cpu_quota (cgroup CPU quota per device profile, needs root)",
    )
    parser.add_argument(
        "--curve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override the scenario's security.curve (default on: CurveZMQ with per-run keys "
        "in the run folder)",
    )
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="remove cgroups and network namespaces left by runs that are no longer alive, "
        "then exit",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="log debug lines, and one progress line per iteration even on a terminal "
        "(default there: one updating line per scheme)",
    )


def parse_schemes(text: str | None) -> tuple[str, ...] | None:
    """``"a,b"`` -> ``("a", "b")``; unknown or repeated names are a UsageError naming them."""
    if text is None:
        return None
    from common.coding import SCHEME_NAMES

    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names:
        raise UsageError("--schemes: give at least one scheme")
    unknown = [s for s in names if s not in SCHEME_NAMES]
    if unknown:
        raise UsageError(
            f"--schemes: unknown {', '.join(unknown)}; choose from {', '.join(SCHEME_NAMES)}"
        )
    if len(set(names)) != len(names):
        raise UsageError("--schemes: a scheme is listed twice")
    return names


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="hgc run: %(message)s" if not args.verbose else "%(asctime)s %(name)s: %(message)s",
    )
    if args.cleanup:
        from hgc.testbed.launcher import sweep

        for line in sweep():
            print(line)
        return 0
    if args.scenario is None:
        raise UsageError("SCENARIO is required (or --cleanup)")
    if args.scenario.is_dir():
        raise UsageError(f"SCENARIO: is a directory, not a scenario file: {args.scenario}")
    if not args.scenario.is_file():
        raise UsageError(f"SCENARIO: no such file {args.scenario}")
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations: must be >= 1, got {args.iterations}")
    from common.scenario import ScenarioError, load_scenario
    from hgc.testbed.launcher import (
        PortInUseError,
        RunRequest,
        check_metrics_ports,
        default_out,
        run_testbed,
    )
    from hgc.testbed.runfolder import RunFolderError, claim_folder, release_folder, unique_folder

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise UsageError(f"{args.scenario}: {exc}") from exc
    from hgc.testbed.preflight import PreflightError, check_memory, check_message_size

    try:  # the model's messages fit the codec's cap; the cluster fits this machine
        check_message_size(scenario.model_spec, scenario.data_spec)
        check_memory(scenario.topology.workers_per_edge, scenario.model_spec, scenario.data_spec)
    except PreflightError as exc:
        raise UsageError(f"{args.scenario}: {exc}") from None
    try:
        check_metrics_ports(scenario, args.network)
    except PortInUseError as exc:
        raise UsageError(str(exc)) from None
    schemes = parse_schemes(args.schemes) or scenario.schemes
    # last check, before any work, so a bad --out loses nothing; every path absolute, so
    # nothing depends on the directory the nodes run in
    try:
        if args.out is not None:
            out = claim_folder(args.out, force=args.force)
        else:
            out = claim_folder(unique_folder(default_out(scenario)), label="run folder")
    except RunFolderError as exc:
        raise UsageError(str(exc)) from None

    request = RunRequest(
        scenario_path=args.scenario.absolute(),
        scenario=scenario,
        schemes=schemes,
        iterations=args.iterations or scenario.training.iterations,
        out=out,
        network=args.network,
        cpu_quota=args.cpu_quota,
        curve=args.curve,
        verbose=args.verbose,
    )
    try:
        outcome = run_testbed(request)
    except PermissionError as exc:  # e.g. --network kernel without root
        raise UsageError(str(exc)) from exc
    except RunFolderError as exc:
        raise UsageError(str(exc)) from None
    finally:
        release_folder(out)
    return 0 if outcome.ok else 1
