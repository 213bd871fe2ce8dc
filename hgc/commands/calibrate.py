"""``hgc calibrate SCENARIO``: run a short probe of the scenario's topology on a real local
cluster (the same services and emulation as ``hgc run``), fit every worker's compute profile
and every edge's uplink from the master's records (``common.perf.estimate``, censored
maximum likelihood and least squares, with standard errors), and write a scenario whose
device and link profiles are the fitted ones, per node (``hgc.testbed.calibrate``)."""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hgc.cli import UsageError

HELP = (
    "probe a local cluster (or a compose / swarm stack: --stack) and write a scenario with "
    "the fitted per-node profiles"
)
MIN_ITERATIONS = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario YAML file")
    parser.add_argument(
        "--iterations",
        type=int,
        default=40,
        help="iterations of each probe scheme (uncoded, worker-gc s_w=1), default 40",
    )
    parser.add_argument(
        "--out", type=Path, help="run folder of the probe (default runs/<name>-calibrate-<stamp>)"
    )
    parser.add_argument(
        "--fitted", type=Path, help="fitted scenario to write (default <out>/fitted.yaml)"
    )
    parser.add_argument(
        "--stack",
        choices=("compose", "swarm"),
        help="probe as container stacks instead of local processes: each probe scheme runs as "
        "the stack `hgc compose` generates (compose: docker compose on this engine; swarm: "
        "docker stack deploy on this manager, which must hold the hgc.master label)",
    )
    parser.add_argument(
        "--image", help="with --stack: the prebuilt node image (default hgc-edge:latest)"
    )
    parser.add_argument(
        "--network",
        help="with --stack: the stack's --network (kernel: tc in each container, default; "
        "in-process; off)",
    )


def run(args: argparse.Namespace) -> int:
    if args.scenario.is_dir():
        raise UsageError(f"SCENARIO: is a directory, not a scenario file: {args.scenario}")
    if not args.scenario.is_file():
        raise UsageError(f"SCENARIO: no such file {args.scenario}")
    if args.iterations < MIN_ITERATIONS:
        raise UsageError(f"--iterations: must be >= {MIN_ITERATIONS}, got {args.iterations}")
    if args.stack is None:
        for flag in ("image", "network"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag}: only with --stack compose|swarm")
    from common.scenario import ScenarioError, load_scenario
    from hgc.testbed import calibrate as cal
    from hgc.testbed.runfolder import RunFolderError, prepare_folder

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise UsageError(f"{args.scenario}: {exc}") from exc
    if scenario.straggler.kind != "shifted-exponential":
        print(
            f"hgc calibrate: note: {scenario.name} draws '{scenario.straggler.kind}' stragglers; "
            "the fit is a shifted exponential per node"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path("runs") / f"{scenario.name}-calibrate-{stamp}"
    try:
        prepare_folder(out)
    except RunFolderError as exc:
        raise UsageError(f"--out: {exc}") from None
    fitted = args.fitted or out / "fitted.yaml"
    if fitted.is_dir() or not fitted.parent.is_dir():
        raise UsageError(f"--fitted: cannot write a file at {fitted}")
    try:
        if args.stack is None:
            obs = cal.run_probe(args.scenario, scenario, args.iterations, out)
        else:
            obs = _stack_probe(args, scenario, out)
    except RuntimeError as exc:
        print(f"hgc calibrate: {exc}")
        return 1
    try:
        result = cal.fit(obs, scenario.gradient_bytes)
    except ValueError as exc:
        print(f"hgc calibrate: cannot fit: {exc}")
        return 1
    json_path = fitted.with_suffix(".json")
    json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    cal.write_fitted(fitted, scenario, result, json_path.name, source=str(args.scenario))
    print(cal.describe(result))
    predicted = cal.predicted_mean_s(fitted)
    print(
        f"probe: {result.iterations} iterations, measured mean {result.measured_mean_s:.4f} s; "
        f"fitted scenario predicts {predicted:.4f} s for {cal.PROBE_SCHEME}"
        if math.isfinite(predicted)
        else "fitted scenario: no prediction"
    )
    print(f"wrote {fitted} and {json_path}")
    return 0


def _stack_probe(args: argparse.Namespace, scenario: Any, out: Path) -> Any:
    """The probe as container stacks (``hgc.testbed.calibrate_stack``)."""
    from hgc.testbed import calibrate_stack as cs

    opts = cs.StackProbe(
        engine=args.stack,
        image=args.image or cs.StackProbe.image,
        network=args.network or cs.StackProbe.network,
        curve=scenario.security_curve,
    )
    try:
        cs.check_probe(opts)
    except cs.StackProbeError as exc:
        raise UsageError(str(exc)) from None
    return cs.run_stack_probe(scenario, args.iterations, out.resolve(), opts)
