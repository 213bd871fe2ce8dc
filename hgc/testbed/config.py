"""From a scenario and a scheme's plan to the master's run description and the node names.

The one path from a scenario to node configuration: ``hgc run`` (the launcher), its
predictions, ``hgc cluster --scenario`` and ``hgc compose`` (the compose generator) all call
``scenario_plan`` (the planner, ``common.perf.plan_scheme``, on the scenario's model and
tolerances), ``master_config`` and ``NodeMap`` here, so they cannot drift apart.

A plan may select a subset of the topology (``hgc-jncss``, ``hgc-hetero``); the cluster
names its nodes by position in the selection (``edge-<p>``, ``worker-<p>-<q>``), while the
emulated hardware, the CSV and the user think in topology names. ``NodeMap`` translates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.perf import Plan, plan_scheme
from common.perf.system import Link
from common.scenario import Scenario
from hgc.testbed.records import edge_name, worker_name

# How much of a link the nodes emulate in-process: all of it, all but the rate (tc shapes
# the rate), or nothing (netem does it all, or emulation is off).
LINK_MODES = ("full", "no-rate", "none")


def scenario_plan(scenario: Scenario, scheme: str) -> Plan:
    """The plan ``scheme`` runs under ``scenario``: the planner on the scenario's system model
    with the scenario's ``code`` tolerances and K (an optimised scheme picks its own nodes).
    The plan's code is built once and its spec is complete (``plan.code``, ``plan.code_spec``).

    Raises ``ValueError`` (unknown scheme, infeasible tolerances) with the planner's message.
    """
    return plan_scheme(scenario.system_model(), scheme, scenario.code)


@dataclass(frozen=True)
class NodeMap:
    """Cluster node name (position in the plan's selection) -> topology node name."""

    to_topology: dict[str, str]

    @classmethod
    def of(cls, plan: Plan, topology: tuple[int, ...] | None = None) -> NodeMap:
        """``topology`` given (``hgc-adaptive``): every node of it runs, under its own name."""
        if topology is not None:
            names = {"master": "master"}
            for i, m in enumerate(topology):
                names[f"edge-{i}"] = f"edge-{i}"
                names.update({f"worker-{i}-{j}": f"worker-{i}-{j}" for j in range(m)})
            return cls(names)
        names = {"master": "master"}
        for p, (edge, workers) in enumerate(zip(plan.edges, plan.workers, strict=True)):
            names[f"edge-{p}"] = f"edge-{edge}"
            for q, worker in enumerate(workers):
                names[f"worker-{p}-{q}"] = f"worker-{edge}-{worker}"
        return cls(names)

    def __call__(self, node: str) -> str:
        return self.to_topology[node]

    def edge(self, p: int | str) -> str:
        """Record edge (``p``, ``"p"`` or ``"edge-p"``) -> topology name ``"edge-<i>"``."""
        return self.to_topology[edge_name(p)]

    def worker(self, key: str) -> str:
        """Record worker (``"p-q"`` or ``"worker-p-q"``) -> topology ``"worker-<i>-<j>"``."""
        return self.to_topology[worker_name(key)]


def is_adaptive(plan: Plan) -> bool:
    """``hgc-adaptive``: every node of the scenario runs; the plan in force picks."""
    return plan.scheme == "hgc-adaptive"


def run_map(scenario: Scenario, plan: Plan) -> NodeMap:
    """The nodes a plan's cluster runs: its selection, or every node for ``hgc-adaptive``."""
    return NodeMap.of(plan, scenario.workers_per_edge if is_adaptive(plan) else None)


def adaptive_section(scenario: Scenario, plan: Plan) -> dict[str, Any]:
    """The master config's ``adaptive`` section (``services.master.adaptive``): the
    scenario's window and threshold, the prior system model and the initial plan."""
    from services.master.adaptive import plan_json, system_to_json

    return {
        **scenario.adaptive.to_json(),
        "system": system_to_json(scenario.system_model()),
        "plan": plan_json(plan),
        "workers_per_edge": list(scenario.workers_per_edge),
    }


def link_json(link: Link, with_rate: bool) -> dict[str, float]:
    """A link profile for ``emulation_spec`` (seconds, bytes/s); rate omitted when tc does it."""
    out = {
        "latency_s": link.latency_s,
        "jitter_s": link.jitter_s,
        "loss": link.loss,
        "retransmit_s": link.retransmit_s,
    }
    if with_rate and math.isfinite(link.bandwidth_bytes_per_s):
        out["bandwidth_bytes_per_s"] = link.bandwidth_bytes_per_s
    return out


def emulation_spec(scenario: Scenario, plan: Plan, link_mode: str) -> dict[str, dict[str, Any]]:
    """Per cluster node, what it emulates in-process. ``link_mode``: ``full`` (latency,
    jitter, loss and rate in-process), ``no-rate`` (tc shapes the rate), ``none``."""
    if link_mode not in LINK_MODES:
        raise ValueError(f"link_mode must be full, no-rate or none, got {link_mode!r}")
    code = plan.code
    straggler = scenario.straggler
    flat_index = {
        (i, j): k
        for k, (i, j) in enumerate(
            (i, j) for i, m in enumerate(scenario.workers_per_edge) for j in range(m)
        )
    }
    spec: dict[str, dict[str, Any]] = {}
    for p, (edge, workers) in enumerate(zip(plan.edges, plan.workers, strict=True)):
        if link_mode != "none":
            uplink = scenario.edge_profile(edge).uplink
            spec[f"edge-{p}"] = {"link": link_json(uplink, link_mode == "full")}
            spec[f"edge-{p}"].update(link_changes(scenario, f"edge-{edge}", link_mode))
        for q, worker in enumerate(workers):
            prof = scenario.worker_profile(edge, worker)
            entry: dict[str, Any] = {
                "compute": scenario.emulation.compute,
                "shift_s": prof.shift_s,
                "rate": prof.rate,
                "load": len(code.placement[p][q]) / code.K,
                "worker_index": flat_index[(edge, worker)],
                "seed": scenario.seed,
            }
            if straggler.kind != "trace":
                entry["straggler"] = {
                    "kind": straggler.kind,
                    "p_slow": straggler.p_slow,
                    "p_recover": straggler.p_recover,
                    "slowdown": straggler.slowdown,
                }
            else:  # the worker replays its own column of the trace
                assert straggler.trace is not None
                entry["straggler"] = {
                    "kind": "trace",
                    "trace": straggler.trace[:, [flat_index[(edge, worker)]]].tolist(),
                    "trace_load": straggler.trace_load,
                }
                entry["worker_index"] = 0
            if link_mode != "none":
                entry["link"] = link_json(prof.link, link_mode == "full")
                entry.update(link_changes(scenario, f"worker-{edge}-{worker}", link_mode))
            changes = device_changes(scenario, f"worker-{edge}-{worker}")
            if changes:
                entry["changes"] = changes
            spec[f"worker-{p}-{q}"] = entry
    return spec


def device_changes(scenario: Scenario, node: str) -> list[dict[str, Any]]:
    """The ``set-device`` faults of a worker as its emulation's profile changes: from
    ``iteration`` on, the new device's ``shift_s`` and ``rate`` (``compute_scale`` applied).
    The worker's delay model switches at that iteration exactly (no launcher action)."""
    topo = scenario.topology
    out = []
    for f in scenario.faults:
        if f.action == "set-device" and f.node == node and f.device is not None:
            dev = topo.devices[f.device]
            scale = topo.compute_scale
            out.append(
                {"iteration": f.iteration, "shift_s": dev.shift_s * scale, "rate": dev.rate / scale}
            )
    return out


def link_changes(scenario: Scenario, node: str, link_mode: str) -> dict[str, Any]:
    """``{"link_changes": [{iteration, link}, ...]}`` for a node's ``set-link`` faults (its
    link, or an edge's uplink) in the in-process emulation, or ``{}``. Both ends of the link
    read the same entry, and every message of iteration t uses the link in force at t."""
    links = scenario.topology.links
    out = [
        {"iteration": f.iteration, "link": link_json(links[f.link], link_mode == "full")}
        for f in scenario.faults
        if f.action == "set-link" and f.node == node and f.link is not None
    ]
    return {"link_changes": out} if out else {}


def master_config(
    scenario: Scenario, plan: Plan, iterations: int, link_mode: str
) -> dict[str, Any]:
    """The master's ``--config`` JSON (schema: ``services/master/config.py``)."""
    t = scenario.training
    extra: dict[str, Any] = {}
    emulated = plan
    if is_adaptive(plan):  # every node runs: emulate each under its topology name
        extra["adaptive"] = adaptive_section(scenario, plan)
        emulated = plan_scheme(scenario.system_model(), "uncoded")
    return {
        **extra,
        "code_spec": dict(plan.code.spec()),  # complete: every node builds this very code
        "data_spec": dict(scenario.data_spec),
        "model_spec": dict(scenario.model_spec),
        "emulation_spec": emulation_spec(scenario, emulated, link_mode),
        "training": {
            "iterations": iterations,
            "learning_rate": t.learning_rate,
            "eval_every": t.eval_every,
            "target_loss": t.target_loss,
            "deadline_s": t.deadline_s if t.deadline_s is not None else 60.0,
            "on_failure": t.on_failure,
            "max_retries": t.max_retries,
            "optimiser": t.optimiser,
        },
        "seed": scenario.seed,
        # true names (services.master.naming): records, logs and metric labels use them
        **node_names(scenario, plan),
    }


def node_names(scenario: Scenario, plan: Plan) -> dict[str, Any]:
    """``{"names": position -> scenario name, "left_out": [scenario nodes not in the plan]}``
    for the master's configuration: the one mapping every node labels by."""
    if is_adaptive(plan):
        # every node runs under its topology name; the plan in force is the master's gauge
        return {"names": {}, "left_out": []}
    table = {k: v for k, v in NodeMap.of(plan).to_topology.items() if k != "master"}
    used = set(table.values())
    left_out = [n for n in scenario.node_names() if n != "master" and n not in used]
    return {"names": table, "left_out": left_out}
