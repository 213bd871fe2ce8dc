"""``hgc compose SCENARIO -o compose/<name>.yaml``: a compose stack from a scenario.

Writes the compose file, the master's run configuration next to it (``<name>.master.json``),
what the run is (``<name>.run.json``: scenario and scheme, for the run folder's summary),
Prometheus' scrape configuration (``prometheus/<name>.yml``; ``prometheus.yml`` for the
default stack) and, outside the project's ``compose/`` folder, copies of the recording rules
and Grafana's provisioning, so the stack runs from anywhere: ``docker compose -f FILE up -d
--build`` (an absolute build context when the file is outside the project) or ``docker stack
deploy -c FILE NAME`` (docs/containers.md). A relative ``-o`` is relative to the current
directory."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import yaml

from hgc.cli import UsageError

# The project's root: the Dockerfile (build context) and compose/ (rules, Grafana files).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ASSETS = PROJECT_ROOT / "compose"

HELP = "generate a docker compose / swarm stack (one container per node) from a scenario"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="scenario YAML file (docs/scenario.md)")
    parser.add_argument("-o", "--output", required=True, help="compose file to write")
    parser.add_argument(
        "--scheme",
        default="hgc",
        help="the scheme the master runs, any `hgc run` runs (hgc-jncss/hgc-hetero: only the "
        "nodes the planner selects get a service)",
    )
    parser.add_argument(
        "--network",
        default="kernel",
        help="kernel: tc in each container (default); in-process: at the transport; off",
    )
    parser.add_argument("--iterations", type=int, help="override training.iterations")
    parser.add_argument("--image", default="hgc-edge:latest", help="image of the nodes")
    parser.add_argument(
        "--no-build",
        action="store_true",
        help="no build section: the stack runs the prebuilt --image (default: build it once "
        "from this project, by absolute path when the file is outside the project)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="for an engine without a registry: Prometheus from the local image "
        "hgc-prometheus:local (scripts/prometheus-image.sh) and no Grafana",
    )
    parser.add_argument(
        "--metrics-linger-s",
        type=float,
        default=10.0,
        help="after training each node keeps /metrics up until scraped once more, at most "
        "this long (default 10; 0 = exit at once)",
    )
    parser.add_argument(
        "--runs-dir",
        help="host folder for the master's record (default: runs/<name> in the project when "
        "the file is inside it, else runs/<name> beside the file; HGC_RUNS_DIR overrides it)",
    )
    parser.add_argument(
        "--no-curve",
        action="store_true",
        help="plain TCP between the nodes (default: CurveZMQ; keys in <name>.keys/ beside the "
        "compose file, written unless present; each container gets only its own secret)",
    )
    parser.add_argument(
        "--arm64",
        default="",
        metavar="NODE,...",
        help="these nodes run the arm64 image (IMAGE tagged -arm64, `make image "
        "PLATFORM=linux/arm64`); also the scenario's `platforms:` section",
    )
    parser.add_argument(
        "--prometheus-config",
        help="scrape config to write (default: prometheus/<name>.yml beside the compose file; "
        "prometheus/prometheus.yml when the file is named default.yaml)",
    )


def run(args: argparse.Namespace) -> int:
    from common.scenario import ScenarioError, load_scenario
    from hgc.compose.generate import (
        GenerateError,
        StackOptions,
        build_stack,
        key_nodes,
        master_config,
        plan_stack,
        prometheus_config,
        stack_nodes,
    )

    out = Path(os.path.abspath(args.output))  # relative to the caller's directory
    if out.suffix not in (".yaml", ".yml"):
        raise UsageError(f"-o {out}: the compose file must end in .yaml or .yml")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: directory {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"-o {out}: is a directory; give the compose file's name")
    try:
        scenario = load_scenario(args.scenario)
    except (ScenarioError, OSError) as exc:
        raise UsageError(f"{args.scenario}: {exc}") from exc

    stem = out.stem
    if args.prometheus_config:
        prom = Path(os.path.abspath(args.prometheus_config))
    else:
        prom = (
            out.parent / "prometheus" / ("prometheus.yml" if stem == "default" else f"{stem}.yml")
        )
    try:
        prom_rel = prom.resolve().relative_to(out.parent.resolve())
    except ValueError:
        raise UsageError(f"--prometheus-config {prom}: must be under {out.parent}") from None
    opts = StackOptions(
        scheme=args.scheme,
        network=args.network,
        image=args.image,
        master_config_file=f"{stem}.master.json",
        prometheus_config_file=prom_rel.as_posix(),
        iterations=args.iterations,
        curve=not args.no_curve and scenario.security_curve,
        keys_dir=f"{stem}.keys",
        build_context=None if args.no_build else build_context(out.parent),
        offline=args.offline,
        runs_dir=runs_dir(out.parent, stem, args.runs_dir),
        metrics_linger_s=args.metrics_linger_s,
        arm64=tuple(n.strip() for n in args.arm64.split(",") if n.strip()),
    )
    try:
        plan = plan_stack(scenario, opts)  # once: build_stack and master_config share it
        stack = build_stack(scenario, opts, plan)
        config = master_config(scenario, opts, plan)
        prom_config = prometheus_config(
            scenario, nodes=list(stack_nodes(plan, scenario).to_topology.values())
        )
    except GenerateError as exc:
        raise UsageError(str(exc)) from exc

    header = (
        f"# Generated by `hgc compose {args.scenario} -o {args.output}"
        f"{'' if args.scheme == 'hgc' else ' --scheme ' + args.scheme}"
        f"{' --offline' if args.offline else ''}`; edit the scenario and\n"
        "# regenerate rather than editing by hand. Run: docker compose -f THIS up -d --build\n"
        "# (docs/containers.md), or docker stack deploy -c THIS NAME for a swarm.\n"
    )
    if opts.offline:
        header += f"# {GRAFANA_NOTE}\n"
    if not opts.curve:
        print("WARNING: CURVE is off: the stack's nodes accept any client", file=sys.stderr)
    try:
        if opts.curve:
            _write_keys(out.parent / opts.keys_dir, key_nodes(plan, scenario))
        out.write_text(header + yaml.safe_dump(stack, sort_keys=False, width=100))
        (out.parent / opts.master_config_file).write_text(json.dumps(config, indent=2) + "\n")
        prom.parent.mkdir(parents=True, exist_ok=True)
        prom.write_text(
            "# Generated by `hgc compose` with the stack beside it: one target per node.\n"
            + yaml.safe_dump(prom_config, sort_keys=False)
        )
        copy_monitoring_files(out.parent, with_grafana=not opts.offline)
        run_info = {
            "scenario": _relative(Path(args.scenario).resolve(), out.parent),
            "scheme": args.scheme,
            "iterations": config["training"]["iterations"],
        }
        (out.parent / f"{stem}.run.json").write_text(json.dumps(run_info, indent=2) + "\n")
    except OSError as exc:  # e.g. not writable; the message names the file
        raise UsageError(f"-o {out}: cannot write: {exc}") from None
    print(f"wrote {out}, {out.parent / opts.master_config_file}, {prom}")
    if opts.curve:
        print(f"CURVE keys in {out.parent / opts.keys_dir} (keep nodes/*/secret.key private)")
    return 0


GRAFANA_NOTE = (
    "grafana: left out (no registry: its image cannot be pulled); to add it, load the image "
    "(docker load -i grafana.tar) and regenerate without --offline, or run make up where a "
    "registry is reachable"
)


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when ``start`` is in the project with it, else absolute:
    a checked-in stack stays portable, one written elsewhere works from any directory."""
    try:
        start.resolve().relative_to(PROJECT_ROOT)
        path.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        return str(path.resolve())
    return os.path.relpath(path.resolve(), start.resolve())


def build_context(directory: Path) -> str | None:
    """The project root as seen from the compose file's directory (None when this install
    has no Dockerfile, e.g. from a wheel: the stack then runs the prebuilt image)."""
    if not (PROJECT_ROOT / "Dockerfile").is_file():
        return None
    return _relative(PROJECT_ROOT, directory)


def runs_dir(directory: Path, stem: str, given: str | None) -> str:
    """Host folder of the run (the master's record; the summary is written beside it)."""
    if given:
        return str(Path(os.path.abspath(given)))
    try:
        directory.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        return f"./runs/{stem}"
    return _relative(PROJECT_ROOT / "runs" / stem, directory)


def copy_monitoring_files(directory: Path, with_grafana: bool) -> None:
    """The recording rules (and Grafana's provisioning) beside a stack written outside the
    project's compose/ folder, where its configs point (relative to the compose file)."""
    from hgc.compose.generate import GRAFANA_FILES, RULES_FILE

    if directory.resolve() == ASSETS.resolve():
        return
    files = [RULES_FILE, *(GRAFANA_FILES.values() if with_grafana else ())]
    for rel in files:
        source = ASSETS / rel
        if not source.is_file():
            raise UsageError(f"-o: {source} is missing (needed beside the stack)")
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _write_keys(directory: Path, parents: dict[str, str | None]) -> None:
    """Keys for every node of the stack; kept when the folder already has them all (a
    regenerated stack keeps its keys), written afresh otherwise."""
    from common.runtime.security import write_keys

    have = all((directory / "nodes" / n / "secret.key").is_file() for n in parents)
    if not have:
        write_keys(directory, parents)
