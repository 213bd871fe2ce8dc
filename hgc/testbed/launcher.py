"""``hgc run``: every scheme of a scenario, back to back, on the same emulated hardware and
seed; real processes (``hgc.cluster.LocalCluster``); a run folder and a table at the end.

Shutdown is guaranteed on success, failure and Ctrl-C: the cluster of the running scheme,
the cgroups and the namespaces are pushed on a ``CleanupStack`` that runs in ``finally``,
at exit and on SIGTERM/SIGHUP; ``hgc run --cleanup`` sweeps leftovers of launchers that died
without running it (SIGKILL).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from common.perf import Plan
from common.scenario import Scenario
from hgc.testbed.cgroups import detect_cgroups, sweep_cgroups
from hgc.testbed.cleanup import CleanupStack
from hgc.testbed.config import NodeMap, master_config, run_map, scenario_plan
from hgc.testbed.cpumeter import CpuMeter
from hgc.testbed.emulation import EmulatedHardware
from hgc.testbed.faults import FaultAction, FaultSchedule
from hgc.testbed.netns import sweep_netns
from hgc.testbed.predict import predict
from hgc.testbed.progress import Progress
from hgc.testbed.records import read_records, scheme_stats
from hgc.testbed.runfolder import RunFolder, SchemeResult, fill_speedups, unique_folder

log = logging.getLogger(__name__)

POLL_S = 0.05
INTERRUPTED = "interrupted (Ctrl-C)"
INTERRUPTED_PREFIX = "interrupted ("


def _interrupted(exc: KeyboardInterrupt) -> str:
    """``interrupted (Ctrl-C)``, or ``interrupted (SIGTERM)`` for a signal turned into one."""
    name = str(exc)
    return f"{INTERRUPTED_PREFIX}{name})" if name.startswith("SIG") else INTERRUPTED


def _signal_name(error: str) -> str:
    name = error[len(INTERRUPTED_PREFIX) : -1]
    return name if name.startswith("SIG") else ""


SETUP_ALLOWANCE_S = 120.0  # start-up, data loading and the Ready barrier, per scheme


@dataclass(frozen=True)
class RunRequest:
    scenario_path: Path
    scenario: Scenario
    schemes: tuple[str, ...]
    iterations: int
    out: Path | None = None
    network: str | None = None  # override of scenario.emulation.network
    cpu_quota: bool | None = None  # override of scenario.emulation.cpu_quota
    curve: bool | None = None  # override of scenario security.curve (CurveZMQ between nodes)
    stream: TextIO | None = None  # progress and table (default stdout)
    verbose: bool = False  # one progress line per iteration even on a terminal
    # scheme -> the plan to run instead of planning it on this scenario (the deterministic
    # twin of another scenario's plan: hgc.testbed.overhead)
    plans: dict[str, Plan] = field(default_factory=dict)


@dataclass
class RunOutcome:
    folder: Path
    results: dict[str, SchemeResult]
    table: str
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def default_out(scenario: Scenario, now: datetime | None = None) -> Path:
    """``runs/<scenario>-<UTC stamp>`` under the current directory, absolute (the folder
    itself is made unique by ``runfolder.unique_folder``)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return (Path("runs") / f"{scenario.name}-{stamp}").absolute()


def sweep() -> list[str]:
    """Kill nodes whose launcher is gone, then remove cgroups and namespaces of launchers no
    longer alive; one line per item."""
    from hgc.testbed.guard import kill_orphans

    lines = kill_orphans()
    lines += [f"removed cgroup {g}" for g in sweep_cgroups(detect_cgroups())]
    lines += [f"removed network namespace {n}" for n in sweep_netns()]
    return lines or ["nothing to clean up"]


def _effective(req: RunRequest) -> Scenario:
    emu = req.scenario.emulation
    emu = dataclasses.replace(
        emu,
        network=req.network or emu.network,
        cpu_quota=emu.cpu_quota if req.cpu_quota is None else req.cpu_quota,
    )
    return dataclasses.replace(req.scenario, emulation=emu)


def run_testbed(req: RunRequest) -> RunOutcome:
    scenario = _effective(req)
    progress = Progress(req.stream, verbose=req.verbose)
    folder = RunFolder(req.out or unique_folder(default_out(scenario)))
    folder.write_inputs(req.scenario_path, scenario.seed)
    cleanup = CleanupStack()
    cleanup.install()
    results: dict[str, SchemeResult] = {}
    failures: dict[str, str] = {}
    records_by_scheme: dict[str, list[dict[str, Any]]] = {}
    ports: dict[str, dict[str, Any]] = {}
    notes: dict[str, list[str]] = {}
    table = ""
    try:
        hw = EmulatedHardware.setup(scenario, cleanup)
        folder.write_json("emulation.json", hw.to_json())
        progress.message(f"run folder: {folder.path}")
        for scheme in req.schemes:
            plan, records, info, error = _run_scheme(
                scheme, scenario, req, hw, folder, cleanup, progress
            )
            interrupted = error is not None and error.startswith(INTERRUPTED_PREFIX)
            ports[scheme] = info.get("metrics_ports", {})
            notes[scheme] = info.get("fault_notes", [])
            folder.write_json("metrics_ports.json", ports)
            if error:
                failures[scheme] = error
                progress.message(f"[{scheme}] FAILED: {error}")
            records_by_scheme[scheme] = records
            folder.write_scheme(scheme, records)
            results[scheme] = _result(scheme, scenario, records, plan)
            s = results[scheme].stats
            progress.message(
                f"[{scheme}] {s.iterations} iterations, mean {s.mean_s:.3f} s, "
                f"stragglers ignored: {s.edge_stragglers} edge, {s.worker_stragglers} worker"
            )
            if interrupted:  # after this scheme's partial results are written
                raise KeyboardInterrupt(_signal_name(error or ""))
    finally:
        problems = cleanup.run()
        cleanup.uninstall()
        if problems:
            print("hgc run: cleanup problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        if results:  # whatever was measured is written, also after Ctrl-C
            extra = {"failures": failures, "faults_applied": notes}
            table = _finish(folder, scenario, req, results, records_by_scheme, extra)
    progress.message(table)
    return RunOutcome(folder.path, results, table, failures)


def _finish(
    folder: RunFolder,
    scenario: Scenario,
    req: RunRequest,
    results: dict[str, SchemeResult],
    records_by_scheme: dict[str, list[dict[str, Any]]],
    extra: dict[str, Any],
) -> str:
    from hgc.report import write_report
    from hgc.testbed.plots import write_plots

    fill_speedups(results)
    extra = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "schemes_requested": list(req.schemes),
        "iterations_requested": req.iterations,
        **extra,
    }
    table = folder.write_summary(results, extra)
    write_plots(folder.path / "plots", records_by_scheme)
    write_report(folder.path)  # report.html: the same run as one offline page
    return table


def _result(
    scheme: str, scenario: Scenario, records: list[dict[str, Any]], plan: Plan | None
) -> SchemeResult:
    """Measured statistics beside the simulator's prediction for the plan the cluster ran
    (no prediction when the scheme could not be planned)."""
    if plan is None:
        return SchemeResult(scheme_stats(scheme, records))
    predicted, info = predict(scenario, plan)
    return SchemeResult(scheme_stats(scheme, records), predicted, None, info)


def translate(record: dict[str, Any], names: NodeMap, scheme: str) -> dict[str, Any]:
    """A master record with selection positions replaced by topology node names (records of
    a master given the names, ``"names": "scenario"``, already have them), labelled
    with the scheme the user asked for (the master knows only the code's, e.g. ``hgc`` for
    ``hgc-jncss``; that one is kept as ``code_scheme``)."""
    out = dict(record)
    out["code_scheme"] = record.get("scheme")
    out["scheme"] = scheme
    if record.get("names") == "scenario":  # the master already named nodes by the scenario
        return out
    for key in ("edges_used", "edge_stragglers"):
        out[key] = [names.edge(e) for e in record.get(key) or []]
    out["edge_arrivals_s"] = {
        names.edge(e): t for e, t in (record.get("edge_arrivals_s") or {}).items()
    }
    out["worker_stragglers"] = [names.worker(w) for w in record.get("worker_stragglers") or []]
    out["worker_arrivals_s"] = {
        names.worker(w): t for w, t in (record.get("worker_arrivals_s") or {}).items()
    }
    return out


def _link_mode(scenario: Scenario, hw: EmulatedHardware) -> str:
    if scenario.emulation.network == "off":
        return "none"
    if scenario.emulation.network == "kernel":
        return "none" if hw.netem else "no-rate"
    return "full"


def _scheme_budget_s(scenario: Scenario, iterations: int) -> float:
    t = scenario.training
    per = t.deadline_s if t.deadline_s is not None else 60.0
    return SETUP_ALLOWANCE_S + iterations * per * (t.max_retries + 1)


def _run_scheme(
    scheme: str,
    scenario: Scenario,
    req: RunRequest,
    hw: EmulatedHardware,
    folder: RunFolder,
    cleanup: CleanupStack,
    progress: Progress,
) -> tuple[Plan | None, list[dict[str, Any]], dict[str, Any], str | None]:
    """Run one scheme to the end; (its plan, translated records, info, error or None)."""
    from hgc.cluster import ClusterError, LocalCluster

    info: dict[str, Any] = {}
    try:
        plan = req.plans.get(scheme) or scenario_plan(scenario, scheme)
    except ValueError as exc:
        return None, [], info, f"cannot plan {scheme}: {exc}"
    names = run_map(scenario, plan)
    config = master_config(scenario, plan, req.iterations, _link_mode(scenario, hw))
    progress.message(f"[{scheme}] {plan.describe()}")
    cluster = LocalCluster(
        config,
        workdir=folder.path / scheme,
        command_prefix=lambda n: hw.command_prefix(names(n)),
        node_env=lambda n: {**hw.node_env(names(n)), "HGC_NODE_NAME": names(n)},
        on_started=lambda n, pid: hw.on_started(names(n), pid),
        bind_host=lambda n: hw.address(names(n)),
        metrics_ports=_fixed_metrics_ports(scenario, names),
        curve=_curve(scenario, req, progress),
        log_names=names.to_topology,  # logs/<scenario name>.log
    )
    cleanup.push(f"cluster ({scheme})", cluster.close)
    error = None
    try:
        cluster.start()
        info["metrics_ports"] = {
            names(n): {"host": hw.address(names(n)), "port": p, "netns": _netns(hw, names(n))}
            for n, p in cluster.metrics_ports.items()
        }
        info["pids"] = {names(n): pid for n, pid in cluster.pids.items()}
        folder.write_json(f"{scheme}/nodes.json", info)
        faults = FaultSchedule(scenario.faults, {*names.to_topology.values(), "master"})
        follower = _Follower(cluster, scheme, names, hw, cleanup, progress, faults)
        error = follower.follow(req.iterations, _scheme_budget_s(scenario, req.iterations))
        info["fault_notes"] = follower.notes
        cpu = follower.cpu.report()
        if cpu is not None:
            cpu["per_node_s"] = {names(n): s for n, s in cpu["per_node_s"].items()}
            folder.write_json(f"{scheme}/cpu.json", cpu)
    except ClusterError as exc:
        error = one_line(str(exc))
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP (hgc.cli.interruptible)
        error = _interrupted(exc)  # the caller writes what was measured, then re-raises
    finally:
        cluster.close()
    records = [translate(r, names, scheme) for r in read_records(cluster.record_path)]
    return plan, records, info, error


def _curve(scenario: Scenario, req: RunRequest, progress: Progress) -> bool:
    """CurveZMQ on unless the scenario (``security: {curve: false}``) or ``--no-curve`` says
    otherwise; off is announced, never silent. With it on, per-run keys are written to
    ``<run folder>/<scheme>/keys`` and each node gets only its own key folder."""
    curve = scenario.security_curve if req.curve is None else req.curve
    if not curve:
        progress.message(
            "WARNING: CURVE is off: any process that reaches the nodes' ports can join, "
            "read the model and inject gradients"
        )
    return curve


def _fixed_metrics_ports(scenario: Scenario, names: NodeMap) -> dict[str, int]:
    """``ports.metrics_base_port``: node k of ``scenario.node_names()`` serves base + k (the
    topology's numbering, so a node keeps its port whichever scheme selects it)."""
    base = scenario.ports.metrics_base_port
    if base is None:
        return {}
    index = {node: k for k, node in enumerate(scenario.node_names())}
    return {pos: base + index[topo] for pos, topo in names.to_topology.items()}


class PortInUseError(ValueError):
    """A fixed port the scenario asks for is already taken; the message names it."""


def check_metrics_ports(scenario: Scenario, network: str | None = None) -> None:
    """Pre-flight for ``ports.metrics_base_port``: every node's fixed /metrics port must be
    free on 127.0.0.1 before any scheme starts (a node that cannot bind exits with status 2
    mid-run). Kernel networking binds inside namespaces, so there is nothing to check here.
    """
    base = scenario.ports.metrics_base_port
    if base is None or (network or scenario.emulation.network) == "kernel":
        return
    for k, node in enumerate(scenario.node_names()):
        with socket.socket() as probe:
            # as the metrics server does (socketserver allow_reuse_address): TIME_WAIT is fine
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", base + k))
            except OSError as exc:
                raise PortInUseError(
                    f"ports.metrics_base_port: port {base + k} (= {base} + {k}, for {node}) "
                    f"on 127.0.0.1 is not free: {exc.strerror or exc}"
                ) from None


def one_line(error: str) -> str:
    """A node that refused to start (exit status 2) printed one line saying why, the last
    line of its log: show the headline and that line, not the whole log tail."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if len(lines) > 1 and "status 2" in lines[0]:
        return f"{lines[0].rstrip(':')}: {lines[-1]}"
    return error


def _netns(hw: EmulatedHardware, node: str) -> str | None:
    return hw.lab.netns(node) if hw.lab else None


class _Follower:
    """Shows each record as it lands and applies the fault schedule, until the master exits."""

    def __init__(
        self,
        cluster: Any,
        scheme: str,
        names: NodeMap,
        hw: EmulatedHardware,
        cleanup: CleanupStack,
        progress: Progress,
        faults: FaultSchedule,
    ) -> None:
        self.cluster, self.scheme, self.names, self.hw = cluster, scheme, names, hw
        self.cleanup, self.progress, self.faults = cleanup, progress, faults
        self.position = {topo: pos for pos, topo in names.to_topology.items()}
        self.position["master"] = "master"
        self.notes: list[str] = []
        self.restarting: set[str] = set()  # killed by a restart fault, not started again yet
        self.cpu = CpuMeter()  # the nodes' CPU seconds per iteration (cpu.json)

    def follow(self, iterations: int, budget_s: float) -> str | None:
        """The error that ended the scheme, or None."""
        seen = 0
        deadline = time.monotonic() + budget_s
        while True:
            # a master killed by a restart fault is not the end of the run
            finished = self.cluster.done() and "master" not in self.restarting
            records = read_records(self.cluster.record_path)
            seen = min(seen, len(records))  # a resumed master truncates to its checkpoint
            for r in records[seen:]:
                self.progress.iteration(translate(r, self.names, self.scheme), iterations)
            landed = len(records) > seen
            seen = len(records)
            if finished:
                break
            if landed:  # one CPU sample per poll that saw new records, not every poll
                self.cpu.sample(sum(1 for r in records if r.get("ok")), self.cluster.pids)
            last = max((int(r["iteration"]) for r in records), default=-1)
            for action in self.faults.due(last, time.monotonic()):
                self._apply(action)
            if time.monotonic() > deadline:
                return f"no end after {budget_s:.0f} s"
            time.sleep(POLL_S)
        status = self.cluster.wait(timeout=30)
        if status != 0:
            return one_line(
                f"master exited with status {status}:\n{self.cluster.log('master', 15)}"
            )
        ok = sum(1 for r in read_records(self.cluster.record_path) if r.get("ok"))
        return None if ok else "no successful iteration"

    def _apply(self, action: FaultAction) -> None:
        node, pos = action.node, self.position.get(action.node, "")
        if action.kind == "note":
            text = action.text
        elif action.kind == "kill":
            self.cluster.kill(pos)
            text = f"fault: killed {node}"
            if action.text == "restart":
                self.restarting.add(pos)
        elif action.kind == "start":
            self.cluster.restart(pos, wait=False)
            self.restarting.discard(pos)
            text = f"fault: restarted {node}"
        elif action.kind == "pause":
            self.cluster.pause(pos)
            text = f"fault: paused {node}"
        elif action.kind == "resume":
            self.cluster.resume(pos)
            text = f"fault: resumed {node}"
        elif action.kind == "set-device":
            pid = self.cluster.pids.get(pos)
            text = "fault: " + self.hw.set_device(node, action.text, pid, self.cleanup)
        elif action.kind == "set-link":
            text = "fault: " + self.hw.set_link(node, action.text)
        elif action.kind == "slow":
            pid = self.cluster.pids[pos]
            text = "fault: " + self.hw.slow(node, pid, action.factor, self.cleanup)
        else:
            text = "fault: " + self.hw.unslow(node)
        self.notes.append(text)
        self.progress.message(f"[{self.scheme}] {text}")
