"""A whole cluster — master, edges, workers — on one machine, for tests and the launcher.

Two flavours with the same shape:

- :class:`LocalCluster`: every node a real subprocess (``python -m services.<role>``) in its
  own process group, on loopback (port 0) by default; hooks let the launcher run nodes in
  network namespaces or cgroups.
- :class:`InProcessCluster`: every node a thread of this process, on real zmq sockets; fast
  for integration tests. ``kill(node)`` stops a node's loop and closes its sockets without a
  goodbye, which its peers see as a crash.

Both take the master's run description (the JSON schema of ``services.master.config``).
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
from prometheus_client import CollectorRegistry

from common.coding import InfeasibleCodeError
from common.coding.bounds import check_topology
from common.runtime.security import load_auth, tree_parents, write_keys
from common.runtime.transport import TransportConfig
from hgc.testbed import guard
from hgc.testbed.records import parse_records, read_records
from services.master.config import parse_config

REPO_ROOT = Path(__file__).resolve().parent.parent


class ClusterError(RuntimeError):
    """The cluster could not start or did not reach a state in time; the message says which
    node and includes the tail of its log."""


def topology(config: Mapping[str, Any]) -> tuple[int, ...]:
    """Workers per edge of a run description (validated on the way, the code spec by the
    coding core's topology check; the code itself is built by the nodes, not here)."""
    training, _ = parse_config(dict(config))
    spec = training.code_spec
    adaptive = config.get("adaptive")
    if isinstance(adaptive, dict) and "workers_per_edge" in adaptive:
        spec = adaptive  # hgc-adaptive: every node of the topology runs; the plan picks
    if not isinstance(spec, dict) or "workers_per_edge" not in spec:
        raise ClusterError("code_spec: needs 'workers_per_edge'")
    try:
        return check_topology(spec["workers_per_edge"])
    except InfeasibleCodeError as exc:
        raise ClusterError(f"code_spec: {exc}") from None


def node_names(workers_per_edge: tuple[int, ...]) -> list[str]:
    """``["master", "edge-0", ..., "worker-0-0", ...]`` in start order."""
    edges = [f"edge-{i}" for i in range(len(workers_per_edge))]
    workers = [f"worker-{i}-{j}" for i, m in enumerate(workers_per_edge) for j in range(m)]
    return ["master", *edges, *workers]


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def reference_trace(config: Mapping[str, Any], iterations: int | None = None) -> np.ndarray:
    """Parameters after each iteration of plain (uncoded) full-batch gradient descent, the
    same run as ``config`` describes: shape (iterations, P). The exactness check of a coded
    run compares against this."""
    from common.learning import build_model, load_dataset

    training, seed = parse_config(dict(config))
    data = load_dataset(training.data_spec)
    model = build_model(training.model_spec, data.n_features, data.n_classes)
    params = model.init_params(seed)
    out = []
    for _ in range(iterations or training.iterations):
        g = model.gradient_sum(params, data.X_train, data.y_train)
        params = params - (training.learning_rate / data.n_train) * g
        out.append(params)
    return np.stack(out)


# ===================================================================== subprocesses
class _ClusterContext(abc.ABC):
    """``with`` support shared by the clusters: ``start()`` on entry (``close()`` and re-raise
    if starting fails, so nothing is left running), ``close()`` on exit."""

    @abc.abstractmethod
    def start(self, wait_ready: bool = True) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalCluster(_ClusterContext):
    """Master, edges and workers as real subprocesses; a context manager that always cleans up.

    Parameters
    ----------
    config : mapping
        The master's run description (``services.master.config``: code, data_spec,
        model_spec, emulation_spec, training, seed). The topology comes from its code.
    workdir : path, optional
        Where the config, ready files, logs (``logs/<node>.log``), the record
        (``record.jsonl``) and parameter files go. A temporary directory (removed on
        close) if omitted.
    params_trace : bool
        Ask the master for ``params_trace.npz`` (parameters after every iteration).
    heartbeat_s, liveness : float, int
        Transport heartbeat interval and missed beats before a peer counts as down.
    ready_timeout_s : float
        Deadline for every node to bind and for the Ready barrier.
    python : str
        Interpreter for the nodes (default: this one).
    command_prefix : callable ``node -> list[str]``, optional
        Prepended to the node's command, e.g. ``["ip", "netns", "exec", "hgc-ns-w01"]``.
    node_env : callable ``node -> dict[str, str]``, optional
        Extra environment for the node (added to this process's environment).
    on_started : callable ``(node, pid) -> None``, optional
        Called right after a node's process starts (e.g. to move it into a cgroup).
    bind_host : callable ``node -> str``, optional
        Address the node binds its ROUTER and ``/metrics`` on (default ``127.0.0.1``).
    connect_host : callable ``node -> str``, optional
        Address *other* nodes use to reach this node (default: its ``bind_host``), e.g. the
        node's veth address when it lives in a network namespace.
    ports : mapping node -> int, optional
        Fixed ROUTER ports for the master / edges (default 0: any free port, read back from
        the node's ready file).
    metrics_ports : mapping node -> int, optional
        Fixed ``/metrics`` ports (default 0).
    extra_args : callable ``node -> list[str]``, optional
        Extra flags for the node's command line.
    curve : bool
        Authenticate every connection with CurveZMQ (default): per-run keys are generated in
        ``workdir/keys`` and each node gets only its own folder (``--keys``). False: plain
        TCP, every node prints a WARNING.
    external : collection of node names
        Nodes this cluster does not start (a test plays them, e.g. with
        ``keys_of(node)``); ``start`` does not wait for them.
    log_names : mapping node -> str, optional
        The name of a node's log file (``logs/<name>.log``; default the node's own): the
        launcher names them by the scenario (``hgc.testbed.config.NodeMap``).

    Attributes (after ``start``)
    ----------
    pids, ports, metrics_ports : dict node -> int
    record_path, params_trace_path, workdir : Path
    nodes : list[str]
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        workdir: str | Path | None = None,
        params_trace: bool = False,
        heartbeat_s: float = 0.25,
        liveness: int = 4,
        ready_timeout_s: float = 60.0,
        python: str = sys.executable,
        command_prefix: Callable[[str], list[str]] | None = None,
        node_env: Callable[[str], dict[str, str]] | None = None,
        on_started: Callable[[str, int], None] | None = None,
        bind_host: Callable[[str], str] | None = None,
        connect_host: Callable[[str], str] | None = None,
        ports: Mapping[str, int] | None = None,
        metrics_ports: Mapping[str, int] | None = None,
        extra_args: Callable[[str], list[str]] | None = None,
        curve: bool = True,
        external: Collection[str] = (),
        log_names: Mapping[str, str] | None = None,
        checkpoint_every: int = 10,
    ) -> None:
        self.config = dict(config)
        # node -> name of its log file (default the node): the launcher's scenario names
        self.log_names = dict(log_names or {})
        self.workers_per_edge = topology(self.config)
        self.nodes = node_names(self.workers_per_edge)
        self._own_workdir = workdir is None
        # absolute: the nodes run in the repository root, not in the caller's directory
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="hgc-cluster-")).absolute()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        (self.workdir / "ready").mkdir(exist_ok=True)
        self.record_path = self.workdir / "record.jsonl"
        self.params_path = self.workdir / "params.npy"
        self.params_trace_path = self.workdir / "params_trace.npz" if params_trace else None
        # the master's checkpoint: a restarted master resumes from it (services.master.checkpoint)
        self.checkpoint_path = self.workdir / "checkpoint.npz"
        self.checkpoint_every = checkpoint_every
        self.heartbeat_s, self.liveness = heartbeat_s, liveness
        self.ready_timeout_s = ready_timeout_s
        self.python = python
        self.command_prefix = command_prefix or (lambda node: [])
        self.node_env = node_env or (lambda node: {})
        self.on_started = on_started or (lambda node, pid: None)
        self.bind_host = bind_host or (lambda node: "127.0.0.1")
        self.connect_host = connect_host or self.bind_host
        self._fixed_ports = dict(ports or {})
        self._fixed_metrics = dict(metrics_ports or {})
        self.extra_args = extra_args or (lambda node: [])
        self.curve = curve
        self.external = frozenset(external)
        unknown = sorted(self.external - set(self.nodes))
        if unknown or any(not n.startswith("worker-") for n in self.external):
            raise ClusterError(f"external: not a node this cluster could leave out: {unknown}")
        self.key_dirs: dict[str, Path] = {}
        if curve:
            keys = (self.workdir / "keys").resolve()  # nodes run from the repository root
            self.key_dirs = write_keys(keys, tree_parents(self.workers_per_edge))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pids: dict[str, int] = {}
        self.ports: dict[str, int] = {}
        self.metrics_ports: dict[str, int] = {}
        self._logs: dict[str, Any] = {}
        self._commands: dict[str, tuple[str, list[str]]] = {}
        self._closed = False
        _LIVE.add(self)

    # ------------------------------------------------------------ life cycle
    def start(self, wait_ready: bool = True) -> None:
        """Start master, then edges, then workers (each once its parent's port is known)."""
        config_path = self.workdir / "run.json"
        config_path.write_text(json.dumps(self.config, indent=1))
        self.checkpoint_path.unlink(missing_ok=True)  # a new run; only restart() resumes
        self._spawn("master", "services.master", self._master_args(config_path))
        self._await_bound("master")
        master_addr = f"tcp://{self.connect_host('master')}:{self.ports['master']}"
        for i in range(len(self.workers_per_edge)):
            node = f"edge-{i}"
            args = ["--edge", str(i), "--master-addr", master_addr, "--bind", self._bind(node)]
            self._spawn(node, "services.edge", args)
        for i, m in enumerate(self.workers_per_edge):
            edge = f"edge-{i}"
            self._await_bound(edge)
            edge_addr = f"tcp://{self.connect_host(edge)}:{self.ports[edge]}"
            for j in range(m):
                args = ["--edge", str(i), "--worker", str(j), "--edge-addr", edge_addr]
                self._spawn(f"worker-{i}-{j}", "services.worker", args)
        for node in self.nodes:
            if node not in self.external:
                self._await_bound(node)
        if wait_ready:
            self.wait_ready()

    def keys_of(self, node: str) -> Path:
        """The key folder of ``node`` (``--keys``); only with ``curve=True``."""
        return self.key_dirs[node]

    def _master_args(self, config_path: Path) -> list[str]:
        args = ["--config", str(config_path), "--bind", self._bind("master")]
        args += ["--record", str(self.record_path), "--save-params", str(self.params_path)]
        if self.params_trace_path is not None:
            args += ["--params-trace", str(self.params_trace_path)]
        args += ["--checkpoint", str(self.checkpoint_path)]
        args += ["--checkpoint-every", str(self.checkpoint_every)]
        return args

    def _bind(self, node: str) -> str:
        return f"tcp://{self.bind_host(node)}:{self._fixed_ports.get(node, 0)}"

    def _ready_file(self, node: str) -> Path:
        return self.workdir / "ready" / f"{node}.json"

    def _spawn(self, node: str, module: str, args: list[str]) -> None:
        if node in self.external:
            return
        if self.curve:
            args = [*args, "--keys", str(self.key_dirs[node])]
        # through the guard: the node dies with this launcher (see hgc.testbed.guard)
        cmd = [*self.command_prefix(node), self.python, "-m", "hgc.testbed.guard", module, *args]
        cmd += ["--ready-file", str(self._ready_file(node))]
        cmd += ["--metrics-host", self.bind_host(node)]
        cmd += ["--metrics-port", str(self._fixed_metrics.get(node, 0))]
        cmd += ["--heartbeat-s", str(self.heartbeat_s), "--liveness", str(self.liveness)]
        cmd += self.extra_args(node)
        env = {**os.environ, **self.node_env(node), guard.ENV: guard.launcher_token()}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        log = open(self._log_path(node), "ab")  # noqa: SIM115 (closed in close)
        self._logs[node] = log
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(REPO_ROOT),
            start_new_session=True,  # its own process group: kill/pause reach all its threads
            # the parent-death signal follows the thread that forks: only the main thread's
            # lifetime is the launcher's
            preexec_fn=guard.parent_death_preexec if _main_thread() else None,
        )
        self.procs[node], self.pids[node] = proc, proc.pid
        self._commands[node] = (module, args)
        self.on_started(node, proc.pid)

    def _announcement(self, node: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self._ready_file(node).read_text()))
        except (OSError, ValueError):
            return None

    def _await_bound(self, node: str) -> None:
        if node in self.external:
            raise ClusterError(f"{node} is external: its port is the test's to know")

        def bound() -> dict[str, Any] | None:
            self._check_alive(node)
            return self._announcement(node)

        info = self._wait(bound, f"{node} to start")
        self.metrics_ports[node] = int(info["metrics_port"])
        if "port" in info:
            self.ports[node] = int(info["port"])

    def _check_alive(self, node: str) -> None:
        proc = self.procs[node]
        if proc.poll() is not None:
            raise ClusterError(
                f"{node} exited with status {proc.returncode} during start-up:\n{self.log(node)}"
            )

    def _wait(self, condition: Callable[[], Any], what: str) -> Any:
        try:
            return _poll(condition, self.ready_timeout_s, what)
        except ClusterError as exc:
            tails = "\n".join(f"--- {n}\n{self.log(n, 10)}" for n in self.procs)
            raise ClusterError(f"{exc}\n{tails}") from None

    def wait_ready(self) -> None:
        """Block until the master passed the Ready barrier (all nodes set up)."""

        def training() -> bool:
            info = self._announcement("master") or {}
            if info.get("phase") == "training" or self.done():
                return True
            for node in self.procs:
                self._check_alive(node)
            return False

        self._wait(training, "the Ready barrier")

    # ------------------------------------------------------------ control
    def done(self) -> bool:
        return self.procs["master"].poll() is not None

    def wait(self, timeout: float = 120.0) -> int:
        """Wait for the master to exit, then for every other node; the master's status."""
        status = self.procs["master"].wait(timeout)
        deadline = time.monotonic() + max(3.0, 2 * self.heartbeat_s * self.liveness)
        for proc in self.procs.values():
            # close() kills what did not follow the Shutdown
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        return status

    def exit_codes(self) -> dict[str, int | None]:
        return {node: proc.poll() for node, proc in self.procs.items()}

    def _signal(self, node: str, sig: int) -> None:
        if node not in self.procs:
            raise KeyError(f"no node {node!r}; nodes: {', '.join(self.procs)}")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pids[node], sig)

    def kill(self, node: str) -> None:
        """SIGKILL the node's process group (a crash: no goodbye)."""
        self._signal(node, signal.SIGKILL)
        self.procs[node].wait(10)

    def restart(self, node: str, wait: bool = True) -> None:
        """Start a killed (or still running: killed first) node again with its original
        command line (its new pid in ``pids``), and by default wait until it is bound."""
        if self.procs[node].poll() is None:
            self.kill(node)
        module, args = self._commands[node]
        if node in self.ports and "--bind" in args:
            # a parent comes back where its children reconnect: the port it had (a restarted
            # master resumes from its checkpoint; a restarted edge asks its workers back)
            at = args.index("--bind") + 1
            args = [*args[:at], f"tcp://{self.bind_host(node)}:{self.ports[node]}", *args[at + 1 :]]
        if self.curve and "--keys" in args:  # _spawn adds it again
            k = args.index("--keys")
            args = args[:k] + args[k + 2 :]
        self._ready_file(node).unlink(missing_ok=True)
        self._logs.pop(node).close()
        self._spawn(node, module, args)
        if wait:
            self._await_bound(node)

    def pause(self, node: str) -> None:
        """SIGSTOP: the node stops computing and heartbeating until ``resume``."""
        self._signal(node, signal.SIGSTOP)

    def resume(self, node: str) -> None:
        self._signal(node, signal.SIGCONT)

    # ------------------------------------------------------------ results
    def records(self) -> list[dict[str, Any]]:
        return read_records(self.record_path)

    def params(self) -> np.ndarray:
        return np.asarray(np.load(self.params_path))

    def params_trace(self) -> dict[str, np.ndarray]:
        if self.params_trace_path is None:
            raise ValueError("start the cluster with params_trace=True")
        with np.load(self.params_trace_path) as f:
            return {"iterations": f["iterations"], "params": f["params"]}

    def _log_path(self, node: str) -> Path:
        return self.workdir / "logs" / f"{self.log_names.get(node, node)}.log"

    def log(self, node: str, lines: int = 40) -> str:
        path = self._log_path(node)
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Kill every node still running (process groups, resumed first if paused), wait
        for them, close logs; remove the workdir if it was a temporary one."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        for node, proc in self.procs.items():
            if proc.poll() is None:
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.pids[node], sig)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        for log in self._logs.values():
            log.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


_LIVE: weakref.WeakSet[LocalCluster] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Last resort against orphans: close clusters nobody closed."""
    for cluster in list(_LIVE):
        cluster.close()


# ===================================================================== threads
class InProcessCluster(_ClusterContext):
    """Master, edges and workers as threads of this process, on real zmq sockets (loopback).

    Same run description as :class:`LocalCluster`. ``kill(node)`` ends a node's loop and
    closes its sockets with no Shutdown or goodbye (its peers notice by missing heartbeats).
    Each node has its own ``CollectorRegistry`` (``registries[node]``) for metric checks;
    ``runners`` holds the master's and edges' runners (their ``state`` can be inspected).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        heartbeat_s: float = 0.1,
        liveness: int = 10,  # a 1 s window: a loaded machine must not fake a dead peer
        ready_timeout_s: float = 30.0,
        curve: bool = True,
    ) -> None:
        from services.edge.service import start_edge
        from services.master.service import start_master
        from services.worker.service import start_worker

        self.training, self.seed = parse_config(dict(config))
        self.workers_per_edge = topology(config)
        self.nodes = node_names(self.workers_per_edge)
        self.transport = TransportConfig(heartbeat_interval_s=heartbeat_s, liveness=liveness)
        # CURVE as LocalCluster: per-cluster keys; each node's transport gets only its own
        self._keydir = tempfile.mkdtemp(prefix="hgc-keys-") if curve else None
        self.key_dirs: dict[str, Path] = {}
        if self._keydir is not None:
            self.key_dirs = write_keys(self._keydir, tree_parents(self.workers_per_edge))
        self.ready_timeout_s = ready_timeout_s
        self.stops = {node: threading.Event() for node in self.nodes}
        self.registries = {node: CollectorRegistry() for node in self.nodes}
        self.status: dict[str, int | BaseException] = {}
        self.threads: dict[str, threading.Thread] = {}
        self.ports: dict[str, int] = {}
        self._record = io.StringIO()
        self._started = threading.Event()
        self._start_master = start_master
        self._start_edge = start_edge
        self._start_worker = start_worker

    def transport_of(self, node: str) -> TransportConfig:
        """The node's transport settings: the cluster's, plus its own keys with CURVE."""
        if not self.key_dirs:
            return self.transport
        return dataclasses.replace(self.transport, auth=load_auth(self.key_dirs[node]))

    def _thread(self, node: str, fn: Callable[[], int]) -> None:
        def body() -> None:
            try:
                self.status[node] = fn()
            except BaseException as exc:  # surfaced by wait()/check(), never swallowed
                self.status[node] = exc

        t = threading.Thread(target=body, name=node, daemon=True)
        self.threads[node] = t
        t.start()

    def start(self, wait_ready: bool = True) -> None:
        master, port = self._start_master(
            self.training,
            self.seed,
            transport=self.transport_of("master"),
            stop=self.stops["master"],
            registry=self.registries["master"],
            record=self._record,
            on_phase=lambda phase: self._started.set() if phase == "training" else None,
        )
        self.master = master
        self.runners: dict[str, Any] = {"master": master}
        self.ports["master"] = port
        self._thread("master", master.run)
        for i, m in enumerate(self.workers_per_edge):
            node = f"edge-{i}"
            edge, eport = self._start_edge(
                i,
                f"tcp://127.0.0.1:{port}",
                config=self.transport_of(node),
                stop=self.stops[node],
                registry=self.registries[node],
            )
            self.ports[node] = eport
            self.runners[node] = edge
            self._thread(node, edge.run)
            for j in range(m):
                wnode = f"worker-{i}-{j}"
                self._thread(wnode, self._worker(i, j, eport))
        if wait_ready:
            _poll(self._ready_or_failed, self.ready_timeout_s, "the Ready barrier")
            self.check()

    def _worker(self, i: int, j: int, eport: int) -> Callable[[], int]:
        node = f"worker-{i}-{j}"
        return lambda: self._start_worker(
            i,
            j,
            f"tcp://127.0.0.1:{eport}",
            config=self.transport_of(node),
            stop=self.stops[node],
            registry=self.registries[node],
        ).run()

    def _ready_or_failed(self) -> bool:
        return self._started.is_set() or any(
            isinstance(s, BaseException) for s in self.status.values()
        )

    def check(self) -> None:
        """Raise the first exception any node thread died of."""
        for node, s in self.status.items():
            if isinstance(s, BaseException):
                raise ClusterError(f"{node} raised {type(s).__name__}: {s}") from s

    def kill(self, node: str) -> None:
        self.stops[node].set()
        self.threads[node].join(10)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the master to finish and every node to follow; the master's status."""
        self.threads["master"].join(timeout)
        if self.threads["master"].is_alive():
            raise ClusterError(f"master still running after {timeout} s")
        # the rest follow the Shutdown; nodes cut off from it (their parent was killed) are
        # stopped after a short grace period, as LocalCluster.close() would kill them
        deadline = time.monotonic() + 2.0 + 10 * self.transport.heartbeat_interval_s
        for node, t in self.threads.items():
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                self.stops[node].set()
                t.join(10)
        self.check()
        status = self.status["master"]
        assert isinstance(status, int)
        return status

    def records(self) -> list[dict[str, Any]]:
        return parse_records(self._record.getvalue(), "in-process master record")

    def params(self) -> np.ndarray:
        return self.master.mstate.params

    def params_trace(self) -> Iterator[tuple[int, np.ndarray]]:
        return iter(self.master.trace)

    def sample(self, node: str, name: str, labels: dict[str, str] | None = None) -> float:
        """A metric value of ``node`` (0.0 when the series does not exist yet)."""
        value = self.registries[node].get_sample_value(name, labels or {})
        return 0.0 if value is None else float(value)

    def close(self) -> None:
        for stop in self.stops.values():
            stop.set()
        for t in self.threads.values():
            t.join(10)
        if self._keydir is not None:
            shutil.rmtree(self._keydir, ignore_errors=True)
