"""The master process: ``python -m services.master --config RUN.json [--record PATH]``.

Binds a ROUTER for the edges (``--bind``, port 0 = any free port, announced on stdout and in
``--ready-file``), owns the model and the code, writes one JSON line per iteration attempt to
``--record``, and exits 0 after a clean finish, non-zero when the run failed (see
docs/operations.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import numpy as np
from prometheus_client import CollectorRegistry

from common.coding import code_from_spec
from common.learning import build_model, dataset_shape, load_test_set
from common.learning.minibatch import rows_per_iteration
from common.runtime.emulation import link_of_entry, link_seed
from common.runtime.metrics import MasterMetrics
from common.runtime.offload import Offload, TaskDone
from common.runtime.transport import ParentEndpoint, TransportConfig
from services.common import node
from services.common.actions import Action, Event, Observe, ParamsUpdated, Record, Refit, RefitDone
from services.common.runner import NodeRunner
from services.master.adaptive import PlanMetrics, Replanner
from services.master.checkpoint import DEFAULT_EVERY, Checkpointer, run_id
from services.master.config import ConfigError, load_config
from services.master.naming import NodeNames
from services.master.progress import iteration_line
from services.master.state import MasterState, TrainingConfig


class MasterRunner(NodeRunner):
    """Master I/O: the record file, the parameter trace, and the phase in the ready file."""

    def __init__(
        self,
        state: MasterState,
        metrics: MasterMetrics,
        *,
        record: IO[str] | None = None,
        on_phase: Any = None,
        **kw: Any,
    ) -> None:
        super().__init__("master", state, metrics, **kw)
        self.mstate = state
        self.mmetrics = metrics
        self.record = record
        self.on_phase = on_phase
        self.names = NodeNames(state.config.names, state.config.left_out)
        self.trace: list[tuple[int, np.ndarray]] = []
        self.keep_trace = True  # main() keeps it only for --params-trace: no growth otherwise
        self.training = False
        self.checkpointer: Checkpointer | None = None  # --checkpoint (services.master.checkpoint)
        self.plan_metrics = None
        self.replanner: Replanner | None = None
        if state.adaptive is not None:
            self.plan_metrics = PlanMetrics(metrics.registry, metrics.node_selected)
            self.replanner = Replanner()  # started now: its imports overlap the set-up
            self.replanner.warm(state.adaptive.warm_job())  # and so does its first call
            self.plan_metrics.epoch.set(0)

    def perform_extra(self, action: Action) -> None:
        if isinstance(action, Refit):  # hgc-adaptive: the optimisers, off the I/O loop
            assert self.offload is not None
            if self.replanner is None:
                self.replanner = Replanner()
            self.offload.submit(("refit",), self.replanner.run, action.job)
        elif isinstance(action, Record):
            row = strict_row(self.names.row(action.row))
            if self.record is not None:
                self.record.write(json.dumps(row, allow_nan=False) + "\n")
                self.record.flush()
            self._log(iteration_line(row))
        elif isinstance(action, ParamsUpdated):
            if self.keep_trace:
                self.trace.append((action.iteration, action.params))
        else:
            super().perform_extra(action)

    def _log(self, text: str) -> None:
        super()._log(self.names.text(text))  # positions -> scenario names

    def close(self) -> None:
        super().close()
        if self.replanner is not None:
            self.replanner.close()

    def task_event(self, done: TaskDone) -> Event | None:
        if done.error is not None:
            return RefitDone(None, f"{type(done.error).__name__}: {done.error}")
        return RefitDone(done.result)

    def _dispatch(self, event: Event) -> None:
        super()._dispatch(event)
        if self.checkpointer is not None:
            trace = self.trace if self.keep_trace else None
            self.checkpointer.after_event(self.mstate, self.record, trace)
        if not self.training and self.mstate.attempt is not None:
            self.training = True
            if self.on_phase is not None:
                self.on_phase("training")

    def observe(self, obs: Observe) -> None:
        m = self.mmetrics
        simple: dict[str, Callable[[float], None]] = {
            "iteration_duration": m.iteration_duration.observe,
            "edge_wait": m.edge_wait.observe,
            "master_decode": m.decode_duration.observe,
            "loss": m.loss.set,
            "accuracy": m.accuracy.set,
            "iteration": m.iteration.set,
        }
        if obs.name in simple:
            simple[obs.name](obs.value)
        elif obs.name == "iterations":
            m.iteration_done(obs.labels["outcome"])
        elif obs.name == "edge_arrival":
            m.edge_arrival(self.names.edge_label(int(obs.labels["edge"])), obs.value)
        elif obs.name == "edge_straggler":
            m.edge_straggler(self.names.edge_label(int(obs.labels["edge"])))
        elif obs.name == "integrity_failure":
            m.integrity_failure()
        elif self.plan_metrics and self.plan_metrics.observe(obs.name, obs.value, obs.labels):
            pass  # hgc-adaptive: plan switches, epoch, selected nodes
        else:
            super().observe(obs)


def _finite_or_none(value: Any, path: str, bad: list[str]) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        bad.append(path)
        return None
    if isinstance(value, dict):
        return {
            k: _finite_or_none(v, f"{path}.{k}" if path else str(k), bad) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_finite_or_none(v, f"{path}[{i}]", bad) for i, v in enumerate(value)]
    return value


def strict_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as strict JSON can hold it: every non-finite float (a NaN loss, an infinite
    time) becomes null and its field is named in ``non_finite`` (the file never holds a bare
    ``NaN``, which strict JSON parsers refuse)."""
    bad: list[str] = []
    clean = _finite_or_none(row, "", bad)
    if bad:
        clean["non_finite"] = bad
    return dict(clean)


def build_state(config: TrainingConfig, seed: int) -> MasterState:
    """The code, the held-out data and the initial parameters the master owns."""
    code = code_from_spec(config.code_spec)
    # Only the held-out rows: the master never needs the training set in memory.
    n_train, n_features, n_classes = dataset_shape(config.data_spec)
    X_test, y_test, _ = load_test_set(config.data_spec)
    model = build_model(config.model_spec, n_features, n_classes)

    def evaluate(params: np.ndarray) -> tuple[float, float]:
        return model.loss(params, X_test, y_test), model.accuracy(params, X_test, y_test)

    # minibatch (data_spec): the step is on the mean over the rows one iteration sums
    n_rows = rows_per_iteration(n_train, int(code.K), config.data_spec.get("minibatch"))
    return MasterState(config, code, model.init_params(seed), n_rows, evaluate)


def start_master(
    config: TrainingConfig,
    seed: int = 0,
    bind: str = "tcp://127.0.0.1:0",
    *,
    transport: TransportConfig | None = None,
    stop: threading.Event | None = None,
    registry: CollectorRegistry | None = None,
    record: IO[str] | None = None,
    on_phase: Any = None,
) -> tuple[MasterRunner, int]:
    """Build and bind the master; returns the runner (call ``run()``) and the bound port."""
    state = build_state(config, seed)
    metrics = MasterMetrics(registry or CollectorRegistry())
    node.mark_external_emulation(metrics)
    code = state.code
    metrics.set_code(
        {
            "scheme": code.scheme,
            "n_edges": code.n_edges,
            "workers_per_edge": ",".join(str(m) for m in code.workers_per_edge),
            "s_e": getattr(code, "s_e", ""),
            "s_w": getattr(code, "s_w", getattr(code, "s", "")),
            "K": code.K,
            "D": getattr(code, "D", ""),
        }
    )
    edges = {f"edge-{i}" for i in range(state.n_edges)}
    down = ParentEndpoint("master", metrics, bind, allowed_peers=edges, config=transport)
    links = node.inprocess_links_enabled()
    for edge in sorted(edges) if links else []:  # delay messages to an edge by its uplink
        link = link_of_entry(config.emulation_spec.get(edge, {}), f"emulation_spec[{edge!r}]")
        down.set_link(edge, link, seed=link_seed("master", edge))  # own draws per direction
    offload = Offload(max_workers=1) if state.adaptive is not None else None
    runner = MasterRunner(
        state, metrics, down=down, stop=stop, record=record, on_phase=on_phase, offload=offload
    )
    mark_selection(runner.names, metrics, code.workers_per_edge)
    if state.adaptive is not None:  # the plan in force, not every node of the lifted code
        for n, v in state.adaptive.selected_nodes().items():
            metrics.node_selected(n, bool(v))
    if record is not None:
        write_header(runner, record)
    return runner, down.port


def write_header(runner: MasterRunner, record: IO[str]) -> None:
    """The run header (scenario names, nodes left out) as the record's first line, once: a
    master resumed from a checkpoint finds it already there."""
    if runner.names.scenario and record.tell() == 0:
        record.write(json.dumps(runner.names.header(runner.mstate.code.scheme)) + "\n")
        record.flush()


def mark_selection(names: NodeNames, metrics: MasterMetrics, workers_per_edge: Any) -> None:
    """``hgc_master_node_selected{node}``: 1 for every node the plan uses (by scenario
    name), 0 for every scenario node it leaves out."""
    metrics.node_selected("master", True)
    for i, m in enumerate(workers_per_edge):
        metrics.node_selected(names.name(f"edge-{i}"), True)
        for j in range(int(m)):
            metrics.node_selected(names.name(f"worker-{i}-{j}"), True)
    for left_out in names.left_out:
        metrics.node_selected(left_out, False)


def save_outputs(runner: MasterRunner, save_params: str | None, params_trace: str | None) -> None:
    if save_params:
        np.save(save_params, runner.mstate.params)
    if params_trace:
        its = np.array([t for t, _ in runner.trace], dtype=np.int64)
        stack = np.stack([p for _, p in runner.trace]) if runner.trace else np.zeros((0, 0))
        np.savez(params_trace, iterations=its, params=stack)


def build_parser() -> argparse.ArgumentParser:
    p = node.parser("python -m services.master", __doc__)
    node.add_flag(p, "--config", required=True, help="run description (JSON, see docs)")
    node.add_flag(
        p, "--bind", type=node.bind_address, default="tcp://127.0.0.1:0", help="where edges connect"
    )
    node.add_flag(p, "--record", help="write one JSON line per iteration attempt here")
    node.add_flag(p, "--save-params", help="save the final parameters (.npy)")
    node.add_flag(p, "--params-trace", help="save parameters after every iteration (.npz)")
    node.add_flag(p, "--iterations", type=int, help="override training.iterations")
    node.add_flag(p, "--deadline-s", type=float, help="override training.deadline_s")
    node.add_flag(p, "--on-failure", help="override training.on_failure (retry|skip|stop)")
    node.add_flag(
        p,
        "--checkpoint",
        help="checkpoint file (.npz): resumed from if present, rewritten atomically",
    )
    node.add_flag(
        p,
        "--checkpoint-every",
        type=int,
        default=DEFAULT_EVERY,
        help="write the checkpoint every this many completed iterations",
    )
    node.add_common_flags(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {
        "iterations": args.iterations,
        "deadline_s": args.deadline_s,
        "on_failure": args.on_failure,
    }
    try:
        config, seed = load_config(args.config, overrides)
    except (ConfigError, ValueError) as exc:
        return node.fail(f"master: {exc}")
    registry = CollectorRegistry()
    with contextlib.ExitStack() as files:  # the record file lives as long as the node

        def start(
            stop: threading.Event, info: dict[str, Any]
        ) -> tuple[MasterRunner, dict[str, Any]]:
            def on_phase(phase: str) -> None:  # "bound" (below), then "training"
                node.announce(args.ready_file, {**info, "phase": phase})

            runner, port = start_master(
                config,
                seed,
                args.bind,
                transport=node.transport_config(args, "master"),
                stop=stop,
                registry=registry,
                on_phase=on_phase,
            )
            resumed = None
            # a new run epoch at every start (seconds since 1970: larger than the last one
            # after a restart); a resumed master takes its checkpoint's epoch + 1 instead
            runner.mstate.epoch = int(time.time())
            if args.checkpoint:
                if args.checkpoint_every < 1:
                    raise ValueError(
                        f"--checkpoint-every: must be >= 1, got {args.checkpoint_every}"
                    )
                ckpt = Checkpointer(args.checkpoint, args.checkpoint_every, run_id(config, seed))
                # truncates the record; restores the trace if one is kept
                trace = runner.trace if args.params_trace else None
                resumed = ckpt.resume(runner.mstate, args.record, trace)
                runner.checkpointer = ckpt
            # after a resume's truncation: the rows of recomputed iterations are written once
            record = files.enter_context(open(args.record, "a")) if args.record else None  # noqa: SIM115
            runner.record = record
            if record is not None:
                write_header(runner, record)  # before the first checkpoint counts its bytes
            if runner.checkpointer is not None:
                # the new epoch, at once
                kept = runner.trace if args.params_trace else None
                runner.checkpointer.save_now(runner.mstate, record, kept)
            if resumed:
                print(resumed, flush=True)
            runner.keep_trace = bool(args.params_trace)
            info["port"] = port
            return runner, {"port": port, "phase": "bound"}

        def finish(runner: MasterRunner) -> None:
            save_outputs(runner, args.save_params, args.params_trace)
            ckpt, ended = runner.checkpointer, runner.exit
            if ckpt is not None and ended is not None and ended.status == 0:
                # a finished run is not resumed: a later start in the same run folder
                # (e.g. `docker compose up` again) trains afresh instead of redoing its end
                ckpt.path.unlink(missing_ok=True)

        return node.run_node("master", args, registry, start, finish)
