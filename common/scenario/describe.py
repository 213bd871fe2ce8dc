"""A human-readable summary of a scenario: what the file resolves to, node by node."""

from __future__ import annotations

import math

from common.perf.system import Link
from common.scenario.schema import Scenario


def _rate(link: Link) -> str:
    bw = link.bandwidth_bytes_per_s
    return "unlimited" if math.isinf(bw) else f"{bw * 8 / 1e6:g} Mbit/s"


def _link(link: Link) -> str:
    text = f"{link.latency_s * 1e3:g} ms ± {link.jitter_s * 1e3:g} ms, {_rate(link)}"
    return text + (f", loss {link.loss:g}" if link.loss else "")


def describe(sc: Scenario) -> str:
    """Lines: topology, per-node device and links, code, model/data, training, emulation."""
    st = sc.straggler
    lines = [
        f"scenario {sc.name!r} (seed {sc.seed}): {sc.n_edges} edges, {sc.n_workers} workers "
        f"{list(sc.workers_per_edge)}",
        f"  model {sc.model_spec} on data {sc.data_spec}",
        f"  n_train {sc.n_train}, n_features {sc.n_features}, n_classes {sc.n_classes}, "
        f"n_params {sc.n_params}, gradient {sc.gradient_bytes} bytes",
        f"  stragglers: {st.kind}"
        + (
            f" (p_slow {st.p_slow}, p_recover {st.p_recover}, slowdown {st.slowdown})"
            if st.kind == "markov"
            else ""
        )
        + (
            f" ({st.trace.shape[0]} iterations at load {st.trace_load:.4g})"
            if st.kind == "trace" and st.trace is not None
            else ""
        ),
        f"  code: s_e {sc.code.s_e}, s_w {sc.code.s_w}, flat s {sc.code.s}, "
        f"K {sc.code.K or 'minimal'}",
        f"  schemes: {', '.join(sc.schemes)}",
        f"  training: {sc.training}",
        f"  emulation: {sc.emulation}; faults: {len(sc.faults)}",
    ]
    for i, edge in enumerate(sc.topology.edges):
        lines.append(
            f"  edge-{i}: {edge.device} (cpu {edge.cpu_fraction:g}), uplink {_link(edge.uplink)}, "
            f"combine {edge.combine_s_per_byte:g} s/byte"
        )
        for j, w in enumerate(sc.topology.workers[i]):
            lines.append(
                f"    worker-{i}-{j}: {w.device} shift {w.shift_s:g} s/dataset, rate {w.rate:g}, "
                f"cpu {w.cpu_fraction:g}, link {_link(w.link)}"
            )
    return "\n".join(lines)
