"""``hgc calibrate --stack compose|swarm``: the calibration probe as container stacks.

The probe of ``hgc.testbed.calibrate`` (``uncoded``, then ``worker-gc`` with ``s_w = 1``)
runs, scheme by scheme, as a stack of the compose generator (``hgc.compose.generate``, the
one ``hgc compose`` writes): one container per node of the topology, the scenario's CPU
limits and ``tc`` shaping, placement by node label on a swarm. Each probe stack is written
into ``<out>/stack/`` (``probe-<scheme>.yaml``, its master configuration and CurveZMQ keys),
brought up on the engine (``docker compose up`` or ``docker stack deploy``), waited for
until its master has finished, and removed; the master's record lands in
``<out>/<scheme>/record.jsonl`` (the master's bind-mounted run folder), the very layout of
the local probe, and the same ``observations`` / ``merge`` turn it into the estimator's
input. The fit and the fitted scenario are the local path's (``calibrate.fit``,
``calibrate.write_fitted``).

On a swarm the master's record is written on the engine that runs the master (the one
labelled ``hgc.master=true``): run ``hgc calibrate`` there. The probe stacks have no
Prometheus or Grafana (nothing to scrape; no ports taken) and the nodes do not linger.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from common.scenario import Scenario

ENGINES = ("compose", "swarm")
STACK_DIR = "stack"  # under the probe's run folder


class StackProbeError(RuntimeError):
    """A probe stack could not be written, started or finished; the message says which."""


@dataclass(frozen=True)
class StackProbe:
    """``engine``: compose (``docker compose`` on this engine) or swarm (``docker stack
    deploy`` on this manager); ``image``: the prebuilt node image (``make image``);
    ``network``: the generator's ``--network``; ``curve``: CurveZMQ keys per stack;
    ``timeout_s``: bound on one probe stack's run (start to the master's exit)."""

    engine: str = "compose"
    image: str = "hgc-edge:latest"
    network: str = "kernel"
    curve: bool = True
    timeout_s: float = 900.0


def check_probe(opts: StackProbe) -> None:
    """Refuse bad options with a message naming the flag."""
    from hgc.compose.generate import NETWORK_MODES

    if opts.engine not in ENGINES:
        raise StackProbeError(f"--stack {opts.engine!r}: must be one of {', '.join(ENGINES)}")
    if opts.network not in NETWORK_MODES:
        raise StackProbeError(f"--network {opts.network!r}: must be one of {NETWORK_MODES}")
    if not opts.image.strip():
        raise StackProbeError("--image: empty")


def write_probe_stack(
    probe: Scenario, scheme: str, iterations: int, out: Path, opts: StackProbe
) -> Path:
    """Write the probe stack of ``scheme`` into ``out/stack`` and return its compose file.

    The generator's stack, without its monitoring services (and their config files), the
    master's record in ``out/<scheme>/record.jsonl`` (``runs_dir`` = ``out``, absolute)."""
    from common.runtime.security import write_keys
    from hgc.compose.generate import (
        StackOptions,
        build_stack,
        key_nodes,
        master_config,
        monitoring_configs,
        monitoring_services,
        plan_stack,
    )

    folder = out / STACK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"probe-{scheme}"
    sopts = StackOptions(
        scheme=scheme,
        network=opts.network,
        image=opts.image,
        master_config_file=f"{stem}.master.json",
        build_context=None,  # a probe runs the prebuilt image: swarm cannot build
        iterations=iterations,
        offline=True,
        runs_dir=str(out.resolve()),
        metrics_linger_s=0.0,  # nothing scrapes a probe
        curve=opts.curve,
        keys_dir=f"{stem}.keys",
    )
    plan = plan_stack(probe, sopts)
    stack = build_stack(probe, sopts, plan)
    for name in monitoring_services(sopts):
        stack["services"].pop(name, None)
    for name in monitoring_configs(sopts):
        stack["configs"].pop(name, None)
    if opts.curve:
        write_keys(folder / sopts.keys_dir, key_nodes(plan, probe))
    (folder / sopts.master_config_file).write_text(
        json.dumps(master_config(probe, sopts, plan), indent=2) + "\n"
    )
    path = folder / f"{stem}.yaml"
    path.write_text(
        f"# Written by `hgc calibrate --stack` (probe scheme {scheme}); removed after the run.\n"
        + yaml.safe_dump(stack, sort_keys=False, width=100)
    )
    (out / scheme).mkdir(parents=True, exist_ok=True)
    (out / scheme).chmod(0o777)  # the master runs unprivileged in its container
    return path


Runner = Callable[[Sequence[str], float, Path], str]  # (command, timeout, cwd) -> stdout


def docker(cmd: Sequence[str], timeout: float, cwd: Path) -> str:
    """Run a docker CLI command in ``cwd`` (the stack's folder: its relative paths);
    ``StackProbeError`` with its output when it fails."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except FileNotFoundError:
        raise StackProbeError(f"{cmd[0]}: not found on PATH (the Docker CLI)") from None
    except subprocess.TimeoutExpired:
        raise StackProbeError(f"{' '.join(cmd)}: no answer within {timeout:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-1500:]
        raise StackProbeError(f"{' '.join(cmd)} exited {proc.returncode}: {tail}")
    return proc.stdout


def run_compose(file: Path, project: str, opts: StackProbe, run: Runner = docker) -> int:
    """Bring the stack up, wait for its master's container to exit, remove the stack;
    returns the master's exit code."""
    base = ["docker", "compose", "-p", project, "-f", str(file)]
    try:
        run([*base, "up", "-d", "--no-build"], 600, file.parent)
        ids = run([*base, "ps", "-aq", "master"], 60, file.parent).split()
        if not ids:
            raise StackProbeError(f"{project}: no master container after up")
        code = run(["docker", "wait", ids[0]], opts.timeout_s, file.parent).strip()
        if code != "0":
            logs = run([*base, "logs", "--no-color", "--tail", "30", "master"], 60, file.parent)
            raise StackProbeError(f"{project}: the master exited {code}:\n{logs}")
        return int(code)
    finally:
        try:
            run([*base, "down", "-v", "--remove-orphans", "--timeout", "5"], 300, file.parent)
        except StackProbeError as exc:
            print(f"hgc calibrate: warning: {exc}", file=sys.stderr)


def run_swarm(
    file: Path, project: str, opts: StackProbe, run: Runner = docker, poll_s: float = 1.0
) -> int:
    """Deploy the stack on the swarm, wait until the master's task is complete, remove it."""
    try:
        deploy = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(file)]
        run([*deploy, project], 600, file.parent)
        service = f"{project}_master"
        deadline = time.monotonic() + opts.timeout_s
        while True:
            states = run(
                ["docker", "service", "ps", service, "--no-trunc", "--format",
                 "{{.CurrentState}}|{{.Error}}"],
                60, file.parent,
            ).split("\n")  # fmt: skip
            state = next((s for s in states if s.strip()), "")
            if state.startswith("Complete"):
                return 0
            if state.split(" ")[0] in ("Failed", "Rejected", "Shutdown", "Orphaned"):
                raise StackProbeError(f"{service}: {state.strip()}")
            if time.monotonic() > deadline:
                raise StackProbeError(f"{service}: not finished after {opts.timeout_s:g} s")
            time.sleep(poll_s)
    finally:
        try:
            run(["docker", "stack", "rm", project], 300, file.parent)
        except StackProbeError as exc:
            print(f"hgc calibrate: warning: {exc}", file=sys.stderr)


def run_stack_probe(
    scenario: Scenario,
    iterations: int,
    out: Path,
    opts: StackProbe,
    stream: TextIO | None = None,
    run: Runner = docker,
    poll_s: float = 1.0,
) -> Any:
    """Run the probe schemes as stacks, one after the other, and collect the estimator's
    input from their records (``calibrate.Observations``), as ``calibrate.run_probe`` does
    for a local cluster."""
    from hgc.testbed import calibrate as cal
    from hgc.testbed.config import NodeMap, scenario_plan
    from hgc.testbed.launcher import translate
    from hgc.testbed.records import read_records

    check_probe(opts)
    if run is docker and shutil.which("docker") is None:
        raise StackProbeError("--stack: no docker CLI on PATH")
    stream = stream or sys.stdout
    probe = cal.probe_scenario(scenario)
    stamp = uuid.uuid4().hex[:6]
    total = None
    for scheme in probe.schemes:
        file = write_probe_stack(probe, scheme, iterations, out, opts)
        project = f"hgc-cal-{stamp}-{scheme}"
        print(f"[calibrate] {opts.engine} stack {project}: {scheme}, {iterations} it", file=stream)
        started = time.monotonic()
        if opts.engine == "compose":
            run_compose(file, project, opts, run)
        else:
            run_swarm(file, project, opts, run, poll_s)
        print(f"[calibrate] {project}: done in {time.monotonic() - started:.1f} s", file=stream)
        record = out / scheme / "record.jsonl"
        if not record.is_file():
            raise StackProbeError(
                f"{record}: the master wrote no record (on a swarm: run "
                "hgc calibrate on the engine labelled hgc.master=true)"
            )
        names = NodeMap.of(scenario_plan(probe, scheme))
        records = [translate(r, names, scheme) for r in read_records(record)]
        if not any(r.get("ok") for r in records):
            raise StackProbeError(f"{record}: no successful iteration")
        loads, edges = cal.probe_layout(probe, scheme)
        obs = cal.observations(records, loads, edges, uplinks=scheme == cal.PROBE_SCHEME)
        total = obs if total is None else cal.merge(total, obs, timing=False)
    return total
