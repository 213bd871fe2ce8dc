"""The worker process: ``python -m services.worker --edge I --worker J --edge-addr ADDR``."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from common.runtime.emulation import link_seed
from common.runtime.messages import WorkerSetup
from common.runtime.metrics import WorkerMetrics
from common.runtime.offload import Offload, TaskDone
from common.runtime.transport import ChildEndpoint, TransportConfig
from services.common import names, node
from services.common.actions import (
    Action,
    Compute,
    ComputeFailed,
    DataLoaded,
    Event,
    GradientDone,
    LoadData,
    Observe,
    Received,
)
from services.common.runner import NodeRunner
from services.worker.compute import Emulation, WorkerData, compute_step, load_partitions
from services.worker.state import WorkerState


class WorkerRunner(NodeRunner):
    """Worker I/O: loading and computing run on the offload thread, one task at a time."""

    def __init__(self, state: WorkerState, metrics: WorkerMetrics, **kw: Any) -> None:
        super().__init__(state.node, state, metrics, offload=Offload(max_workers=1), **kw)
        self.wstate = state
        self.wmetrics = metrics
        self.data: WorkerData | None = None
        self.emulation = Emulation({})
        self.names: dict[str, str] = {}  # own position -> scenario name (set-up), for logs

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Received) and isinstance(event.msg, WorkerSetup):
            self._set_name(event.msg)
        super()._dispatch(event)

    def _set_name(self, setup: WorkerSetup) -> None:
        """Label metrics and logs by the scenario name the set-up gives (naming)."""
        idx = names.worker_indices(setup.name)
        if idx is not None and names.worker_indices(self.name) is not None:
            self.wmetrics.rename(*idx)
            self.names = {self.name: setup.name}

    def _log(self, text: str) -> None:
        super()._log(names.rename_text(text, self.names))

    def perform_extra(self, action: Action) -> None:
        assert self.offload is not None
        if isinstance(action, LoadData):
            try:
                self.emulation = Emulation(action.emulation, f"emulation_spec[{self.name!r}]")
            except ValueError as exc:
                self._dispatch(ComputeFailed(f"bad emulation entry: {exc}"))
                return
            self.wmetrics.emulation_active("compute_delay", self.emulation.active)
            if self.up is not None and node.inprocess_links_enabled():
                parent = self.up.parent
                self.up.set_link(parent, self.emulation.link, seed=link_seed(self.name, parent))
            self.offload.submit(
                ("load",),
                load_partitions,
                action.partitions,
                action.coefficients,
                action.n_partitions,
                action.data_spec,
                action.model_spec,
            )
        elif isinstance(action, Compute):
            self.offload.submit(("gradient", action.iteration), self._compute, action)
        else:
            super().perform_extra(action)

    def _compute(self, action: Compute) -> tuple[Any, float, float] | None:
        # on the offload thread: skip work a newer model has already made stale
        if action.iteration < self.wstate.latest or self.data is None:
            return None
        return compute_step(self.data, action.params, action.iteration, self.emulation)

    def task_event(self, done: TaskDone) -> Event | None:
        if done.error is not None:
            return ComputeFailed(f"{type(done.error).__name__}: {done.error}")
        if done.key == ("load",):
            self.data = done.result
            assert self.data is not None
            return DataLoaded(self.data.n_rows, self.data.model.n_params)
        if done.result is None:
            self.wmetrics.dropped("late")  # a newer model arrived before we started on this one
            return None
        vector, total_s, delayed_s = done.result
        self.wmetrics.emulated_delay.observe(delayed_s)
        assert isinstance(done.key, tuple)
        return GradientDone(int(done.key[1]), vector, total_s)

    def observe(self, obs: Observe) -> None:
        if obs.name == "compute":
            self.wmetrics.compute_duration.observe(obs.value)
        else:
            super().observe(obs)


def build_parser() -> argparse.ArgumentParser:
    p = node.parser("python -m services.worker", __doc__)
    node.add_flag(p, "--edge", type=int, required=True, help="index of this worker's edge")
    node.add_flag(p, "--worker", type=int, required=True, help="index of this worker in its edge")
    node.add_flag(
        p,
        "--edge-addr",
        type=node.zmq_address,
        required=True,
        help="the edge's address, tcp://host:port",
    )
    node.add_common_flags(p)
    return p


def start_worker(
    edge: int,
    worker: int,
    edge_addr: str,
    *,
    config: TransportConfig | None = None,
    stop: threading.Event | None = None,
    registry: CollectorRegistry | None = None,
    orphan_timeout_s: float = 0.0,
) -> WorkerRunner:
    """Build and connect one worker; returns its runner (call ``run()``)."""
    state = WorkerState(edge, worker)
    metrics = WorkerMetrics(registry or CollectorRegistry(), edge, worker)
    node.mark_external_emulation(metrics)
    up = ChildEndpoint(state.node, metrics, edge_addr, parent=f"edge-{edge}", config=config)
    return WorkerRunner(state, metrics, up=up, stop=stop, orphan_timeout_s=orphan_timeout_s)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.edge < 0 or args.worker < 0:
        return node.fail(f"--edge/--worker: must be >= 0, got {args.edge}/{args.worker}")
    registry = CollectorRegistry()

    def start(stop: threading.Event, info: dict[str, Any]) -> tuple[WorkerRunner, dict[str, Any]]:
        runner = start_worker(
            args.edge,
            args.worker,
            args.edge_addr,
            config=node.transport_config(args, f"worker-{args.edge}-{args.worker}"),
            stop=stop,
            registry=registry,
            orphan_timeout_s=args.orphan_timeout_s,
        )
        return runner, {}  # a worker binds nothing: no port to announce

    return node.run_node(f"worker-{args.edge}-{args.worker}", args, registry, start)
