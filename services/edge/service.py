"""The edge process: ``python -m services.edge --edge I --master-addr ADDR [--bind ADDR]``.

The edge binds a ROUTER for its workers (``--bind``, port 0 = any free port; the bound port
is announced on stdout / in ``--ready-file``) and connects a DEALER to the master.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from common.coding import code_from_spec
from common.runtime.emulation import link_of_entry, link_seed
from common.runtime.messages import EdgeSetup
from common.runtime.metrics import EdgeMetrics
from common.runtime.transport import ChildEndpoint, ParentEndpoint, TransportConfig
from services.common import names, node
from services.common.actions import Event, Observe, Received
from services.common.runner import NodeRunner
from services.edge.state import EdgeState


class EdgeRunner(NodeRunner):
    def __init__(self, state: EdgeState, metrics: EdgeMetrics, **kw: Any) -> None:
        super().__init__(state.node, state, metrics, **kw)
        self.emetrics = metrics
        self.estate = state
        self.names: dict[str, str] = {}  # position -> scenario name (set-up), for logs
        self.worker_labels: dict[int, str] = {}  # position j -> scenario worker index

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Received) and isinstance(event.msg, EdgeSetup):
            self._set_links(event.msg)
            self._set_names(event.msg)
        super()._dispatch(event)

    def _set_names(self, setup: EdgeSetup) -> None:
        """Label metrics and logs by scenario names (the set-up's ``names``, see
        ``services.master.naming``); a name that does not parse keeps its position."""
        table = names.valid_table(setup.names)
        own = names.edge_index(table.get(self.name))
        if own is None:
            return
        self.names = table
        self.emetrics.rename(own)
        prefix = f"worker-{self.estate.edge}-"
        for pos, name in table.items():
            idx = names.worker_indices(name)
            if pos.startswith(prefix) and idx is not None and idx[0] == own:
                self.worker_labels[int(pos[len(prefix) :])] = str(idx[1])

    def _log(self, text: str) -> None:
        super()._log(names.rename_text(text, self.names))

    def _worker_label(self, j: str) -> str:
        return self.worker_labels.get(int(j), j)

    def _set_links(self, setup: EdgeSetup) -> None:
        """In-process link emulation: the edge's uplink entry delays what it sends to the
        master; each worker's link entry delays what the edge sends to that worker."""
        assert self.up is not None and self.down is not None
        if not node.inprocess_links_enabled():
            return
        for peer, entry in setup.emulation_spec.items():
            # the master's config is not trusted here: a bad entry is dropped and counted,
            # and the edge keeps running without emulating that link
            try:
                link = link_of_entry(entry, f"emulation_spec[{peer!r}]")
                if peer == self.name:
                    self.up.set_link("master", link, seed=link_seed(self.name, "master"))
                elif peer.startswith(f"worker-{self.estate.edge}-"):
                    self.down.set_link(peer, link, seed=link_seed(self.name, peer))
            except ValueError as exc:
                self._log(f"{self.name}: ignoring bad emulation entry {peer}: {exc}")
                self.metrics.dropped("malformed")

    def observe(self, obs: Observe) -> None:
        m = self.emetrics
        if obs.name == "worker_arrival":
            m.worker_arrival(self._worker_label(obs.labels["worker"]), obs.value)
        elif obs.name == "worker_straggler":
            m.worker_straggler(self._worker_label(obs.labels["worker"]))
        elif obs.name == "worker_wait":
            m.worker_wait.observe(obs.value)
        elif obs.name == "edge_decode":
            m.decode_duration.observe(obs.value)
        elif obs.name == "integrity_failure":
            m.integrity_failure()
        else:
            super().observe(obs)


def start_edge(
    edge: int,
    master_addr: str,
    bind: str = "tcp://127.0.0.1:0",
    *,
    config: TransportConfig | None = None,
    stop: threading.Event | None = None,
    registry: CollectorRegistry | None = None,
    orphan_timeout_s: float = 0.0,
) -> tuple[EdgeRunner, int]:
    """Bind and connect an edge; returns the runner (call ``run()``) and the bound port."""
    state = EdgeState(edge, code_from_spec)
    metrics = EdgeMetrics(registry or CollectorRegistry(), edge)
    node.mark_external_emulation(metrics)
    # only this edge's workers: worker-<edge>-<j>, j < m_i once the set-up says m_i
    down = ParentEndpoint(
        state.node, metrics, bind, allowed_peers=state.accepts_peer, config=config
    )
    up = ChildEndpoint(state.node, metrics, master_addr, parent="master", config=config)
    runner = EdgeRunner(
        state, metrics, up=up, down=down, stop=stop, orphan_timeout_s=orphan_timeout_s
    )
    return runner, down.port


def build_parser() -> argparse.ArgumentParser:
    p = node.parser("python -m services.edge", __doc__)
    node.add_flag(p, "--edge", type=int, required=True, help="index of this edge")
    node.add_flag(
        p,
        "--master-addr",
        type=node.zmq_address,
        required=True,
        help="the master's address, tcp://host:port",
    )
    node.add_flag(
        p,
        "--bind",
        type=node.bind_address,
        default="tcp://127.0.0.1:0",
        help="where workers connect",
    )
    node.add_common_flags(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.edge < 0:
        return node.fail(f"--edge: must be >= 0, got {args.edge}")
    registry = CollectorRegistry()

    def start(stop: threading.Event, info: dict[str, Any]) -> tuple[EdgeRunner, dict[str, Any]]:
        runner, port = start_edge(
            args.edge,
            args.master_addr,
            args.bind,
            config=node.transport_config(args, f"edge-{args.edge}"),
            stop=stop,
            registry=registry,
            orphan_timeout_s=args.orphan_timeout_s,
        )
        return runner, {"port": port}

    return node.run_node(f"edge-{args.edge}", args, registry, start)
