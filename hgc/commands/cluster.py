"""``hgc cluster``: run one training job on a cluster of real processes on this machine
(master, edges, workers on loopback, port 0), from a run description, a scenario, or flags.

No hardware emulation beyond what the run description's ``emulation_spec`` asks for
in-process (``hgc run`` is the full testbed). Prints one line per iteration and exits with
the master's status (0: finished; 1: failed beyond tolerance, see docs/operations.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hgc.cli import UsageError

HELP = "train on a local cluster of real master/edge/worker processes (loopback)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--config", type=Path, help="run description JSON (docs/operations.md)")
    src.add_argument("--scenario", type=Path, help="scenario YAML (docs/scenario.md)")
    parser.add_argument("--scheme", default="hgc", help="code scheme (default hgc)")
    parser.add_argument(
        "--workers-per-edge", default="3,3,3", help="e.g. 3,3,3 (without --config/--scenario)"
    )
    parser.add_argument("--s-e", type=int, default=1, help="edge stragglers tolerated")
    parser.add_argument("--s-w", type=int, default=1, help="worker stragglers tolerated per edge")
    parser.add_argument("--s", type=int, help="stragglers among all workers (flat schemes)")
    parser.add_argument("--data", default="digits", help="data kind: digits | synthetic")
    parser.add_argument("--model", default="logreg", help="model kind: logreg | mlp")
    parser.add_argument("--iterations", type=int, help="override the number of iterations")
    parser.add_argument("--learning-rate", type=float, help="override the learning rate")
    parser.add_argument("--deadline-s", type=float, help="override the per-iteration deadline")
    parser.add_argument("--on-failure", choices=("retry", "skip", "stop"), help="override")
    parser.add_argument("--workdir", type=Path, help="keep logs, record and params here")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this, s")
    parser.add_argument("--json", action="store_true", help="print records as JSON lines")
    parser.add_argument(
        "--no-curve",
        action="store_true",
        help="plain TCP, no CurveZMQ authentication (default: per-run keys in the workdir)",
    )


def _from_flags(args: argparse.Namespace) -> dict[str, Any]:
    try:
        wpe = [int(x) for x in args.workers_per_edge.split(",") if x.strip()]
    except ValueError:
        raise UsageError(
            f"--workers-per-edge: expected e.g. 3,3,3, got {args.workers_per_edge!r}"
        ) from None
    code: dict[str, Any] = {"scheme": args.scheme, "workers_per_edge": wpe}
    if args.scheme.startswith("flat-"):
        code["s"] = args.s if args.s is not None else 1
    elif args.scheme not in ("uncoded",):
        code.update({"s_e": args.s_e, "s_w": args.s_w})
    return {
        "code": code,
        "data_spec": {"kind": args.data},
        "model_spec": {"kind": args.model},
        "training": {"iterations": 10, "learning_rate": 0.5},
    }


def _from_scenario(path: Path, scheme: str) -> dict[str, Any]:
    from common.scenario import ScenarioError, load_scenario
    from hgc.testbed.config import master_config, scenario_plan

    try:
        scenario = load_scenario(path)
    except (OSError, ScenarioError) as exc:
        raise UsageError(f"--scenario {path}: {exc}") from None
    try:
        plan = scenario_plan(scenario, scheme)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"--scheme {scheme}: {exc}") from None
    return master_config(scenario, plan, scenario.training.iterations, "full")


def _check_config(config: dict[str, Any], source: str) -> None:
    """The run description as given, before flags override parts of it: parse_config's
    message names the field (e.g. ``training`` holding a number)."""
    from services.master.config import ConfigError, parse_config

    for key in ("training", "code", "emulation_spec"):
        # parse_config would call dict() on these and fail with "'int' object is not iterable"
        if key in config and not isinstance(config[key], dict):
            raise UsageError(
                f"--config {source}: {key}: must be a JSON object, got {type(config[key]).__name__}"
            )
    from hgc.testbed.preflight import PreflightError, check_training_types

    try:
        check_training_types(config.get("training") or {})  # names the field and the type
        parse_config(dict(config))
    except (ConfigError, PreflightError, ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"--config {source}: {exc}") from None


def _check_learning_specs(config: dict[str, Any], source: str | None = None) -> None:
    """data_spec / model_spec (from ``source``, or the --data/--model flags) checked before
    any process starts: the master would otherwise fail during start-up with the same
    message buried in its log."""
    from common.learning import LearningSpecError, validate_data_spec, validate_model_spec

    for key, check in (("data_spec", validate_data_spec), ("model_spec", validate_model_spec)):
        try:
            check(config.get(key))
        except (LearningSpecError, ValueError, TypeError) as exc:
            where = source or {"data_spec": "--data", "model_spec": "--model"}[key]
            raise UsageError(f"{key} ({where}): {exc}") from None


def absolute_paths(args: argparse.Namespace) -> None:
    """Every path flag made absolute before any node starts (the nodes run in the
    repository root, not in the caller's directory); ``--workdir`` checked writable and
    ``--timeout`` positive here, one line each."""
    for key in ("config", "scenario", "workdir"):
        if getattr(args, key) is not None:
            setattr(args, key, getattr(args, key).absolute())
    if not args.timeout > 0:  # also NaN
        raise UsageError(f"--timeout: must be > 0 seconds, got {args.timeout}")
    if args.workdir is not None:
        from hgc.testbed.runfolder import RunFolderError, prepare_folder

        try:
            prepare_folder(args.workdir, "--workdir")
        except RunFolderError as exc:
            raise UsageError(str(exc)) from None


def _absolute_data_path(config: dict[str, Any], base: Path) -> None:
    """A relative ``data_spec.path`` in a run description resolves against its file's folder
    (as in a scenario), not against the directory the nodes run in."""
    spec = config.get("data_spec")
    path = spec.get("path") if isinstance(spec, dict) else None
    if isinstance(spec, dict) and isinstance(path, str) and not Path(path).is_absolute():
        config["data_spec"] = {**spec, "path": str(base / path)}


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    if args.config is not None:
        from common.scenario.reader import InputError, read_json

        try:
            config = read_json(args.config, "--config")
        except InputError as exc:
            raise UsageError(str(exc)) from None
        if not isinstance(config, dict):
            raise UsageError(
                f"--config {args.config}: must hold a JSON object (the run description), "
                f"got {type(config).__name__}"
            )
        _absolute_data_path(config, args.config.parent)
        _check_config(config, str(args.config))
    elif args.scenario is not None:
        config = _from_scenario(args.scenario, args.scheme)
    else:
        config = _from_flags(args)
    training = dict(config.get("training", {}))
    for key in ("iterations", "learning_rate", "deadline_s", "on_failure"):
        if getattr(args, key) is not None:
            training[key] = getattr(args, key)
    config["training"] = training
    return config


def _line(r: dict[str, Any]) -> str:
    loss = "" if r.get("loss") is None else f" loss {r['loss']:.4f} acc {r['accuracy']:.3f}"
    state = "ok" if r["ok"] else f"FAILED: {r['error']}"
    return (
        f"iteration {r['iteration']:4d} attempt {r['attempt']} {r['duration_s'] * 1e3:8.1f} ms "
        f"edges {','.join(r['edges_used']) or '-'}{loss} {state}"
    )


def run(args: argparse.Namespace) -> int:
    from common.coding import code_from_spec
    from hgc.cluster import ClusterError, LocalCluster
    from services.master.config import ConfigError, parse_config

    absolute_paths(args)
    config = build_config(args)
    source = None if args.config is None else f"--config {args.config}"
    source = source or (None if args.scenario is None else f"--scenario {args.scenario}")
    _check_learning_specs(config, source)
    from hgc.testbed.preflight import PreflightError, preflight

    try:  # before building the code: a huge topology is refused with its memory estimate
        preflight(config, f"{source}: training" if source else "training")
    except PreflightError as exc:
        raise UsageError(str(exc)) from None
    try:
        training, _ = parse_config(dict(config))
        code_from_spec(training.code_spec)  # a bad code spec: one line here, not a node crash
    except (ConfigError, ValueError, TypeError, AttributeError) as exc:
        raise UsageError(str(exc)) from None
    curve = not args.no_curve and _scenario_curve(args)
    if not curve:
        print(
            "WARNING: CURVE is off: any process that reaches the cluster's ports can join, "
            "read the model and inject gradients",
            file=sys.stderr,
            flush=True,
        )
    try:
        with LocalCluster(config, workdir=args.workdir, curve=curve) as cluster:
            return _follow(cluster, args)
    except ClusterError as exc:
        print(f"hgc cluster: {exc}", file=sys.stderr)
        return 1


def _scenario_curve(args: argparse.Namespace) -> bool:
    """The scenario's ``security.curve`` (True without a scenario)."""
    if args.scenario is None:
        return True
    from common.scenario import load_scenario

    return bool(load_scenario(args.scenario).security_curve)


def _follow(cluster: Any, args: argparse.Namespace) -> int:
    """Print each record as it lands until the master exits; the master's status."""
    print(f"cluster up: pids {cluster.pids}; metrics ports {cluster.metrics_ports}")
    seen, deadline = 0, time.monotonic() + args.timeout
    while True:
        finished = cluster.done()
        records = cluster.records()
        for r in records[seen:]:
            print(json.dumps(r) if args.json else _line(r), flush=True)
        seen = len(records)
        if finished:
            break
        if time.monotonic() > deadline:
            print(
                f"hgc cluster: no end after {args.timeout} s; stopping the cluster",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.1)
    status = int(cluster.wait())
    if status != 0:
        print(
            f"hgc cluster: master exited with status {status}:\n{cluster.log('master', 5)}",
            file=sys.stderr,
        )
    if args.workdir:
        print(f"logs, record and params in {args.workdir}")
    return status
