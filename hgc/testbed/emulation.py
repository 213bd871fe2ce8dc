"""The emulated hardware of one ``hgc run``, set up once and shared by every scheme.

Each mechanism is reported as active or unavailable with the reason, never skipped
silently: a log line each, ``emulation.json`` in the run folder, and the names handed to
every node (``HGC_EMULATION_EXTERNAL``) so its ``hgc_<role>_emulation_active{mechanism}``
gauge covers what the launcher does outside the process (cpu_quota, tbf, htb, netem).

- ``compute_delay``: in the worker (``common.runtime.emulation``), per the scenario's
  straggler model; active unless ``emulation.compute: off``.
- ``cpu_quota``: a cgroup per node whose device profile asks for ``cpu_fraction < 1``.
- ``inprocess_link``: link latency/jitter/bandwidth/loss at the transport (default).
- ``tbf`` / ``htb`` / ``netem``: kernel shaping in namespaces (``emulation.network: kernel``,
  root only). Without netem, latency/jitter/loss stay in-process while tbf/htb shape the rate.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

from common.perf.system import Link
from common.runtime.shaping import Shape
from common.scenario import Scenario
from hgc.testbed.cgroups import CpuQuotas, detect_cgroups
from hgc.testbed.cleanup import CleanupStack
from hgc.testbed.netns import NetworkLab, probe_netem

log = logging.getLogger(__name__)

MECHANISMS = ("compute_delay", "cpu_quota", "inprocess_link", "tbf", "htb", "netem")


@dataclass(frozen=True)
class Mechanism:
    name: str
    active: bool
    detail: str

    def line(self) -> str:
        return (
            f"emulation {self.name}: {'active' if self.active else 'unavailable'} ({self.detail})"
        )


def _fraction(scenario: Scenario, node: str) -> float:
    parts = node.split("-")
    if parts[0] == "worker":
        return scenario.worker_profile(int(parts[1]), int(parts[2])).cpu_fraction
    if parts[0] == "edge":
        return scenario.edge_profile(int(parts[1])).cpu_fraction
    return 1.0


def _finite(rate: float) -> float | None:
    return None if math.isinf(rate) else rate


def link_shape(link: Link, peer: str | None) -> Shape:
    """The kernel shaping of one link (``peer``: the master for an edge's uplink)."""
    return Shape(
        _finite(link.bandwidth_bytes_per_s), peer, link.latency_s, link.jitter_s, link.loss
    )


def kernel_shapes(scenario: Scenario) -> dict[str, Shape]:
    """Per node, the shaping of its veth: workers their link, edges their uplink to the master."""
    shapes: dict[str, Shape] = {}
    for i, m in enumerate(scenario.workers_per_edge):
        up = scenario.edge_profile(i).uplink
        shapes[f"edge-{i}"] = Shape(
            _finite(up.bandwidth_bytes_per_s), "master", up.latency_s, up.jitter_s, up.loss
        )
        for j in range(m):
            link = scenario.worker_profile(i, j).link
            shapes[f"worker-{i}-{j}"] = Shape(
                _finite(link.bandwidth_bytes_per_s), None, link.latency_s, link.jitter_s, link.loss
            )
    return shapes


class EmulatedHardware:
    """Build with ``EmulatedHardware.setup(scenario, cleanup)``; then the cluster hooks
    ``command_prefix``, ``on_started``, ``node_env``, ``address``."""

    def __init__(self, scenario: Scenario, network: str) -> None:
        self.scenario = scenario
        self.network = network
        self.mechanisms: dict[str, Mechanism] = {}
        self.quotas: CpuQuotas | None = None
        self.lab: NetworkLab | None = None
        self.netem = False

    @classmethod
    def setup(
        cls, scenario: Scenario, cleanup: CleanupStack, network: str | None = None
    ) -> EmulatedHardware:
        bed = cls(scenario, network or scenario.emulation.network)
        bed._setup_compute()
        bed._setup_quota(cleanup)
        bed._setup_network(cleanup)
        for mech in bed.mechanisms.values():
            log.info(mech.line())
        return bed

    def _report(self, name: str, active: bool, detail: str) -> None:
        self.mechanisms[name] = Mechanism(name, active, detail)

    def _setup_compute(self) -> None:
        mode = self.scenario.emulation.compute
        straggler = self.scenario.straggler.kind
        if mode == "real":
            detail = (
                "compute: real: no modelled time; each worker's time is its real computation "
                f"under its device's CPU quota; the straggler model ({straggler}) is only the "
                "simulator's prediction"
            )
            self._report("compute_delay", False, detail)
            return
        self._report("compute_delay", mode != "off", f"mode {mode}, straggler model {straggler}")

    def _setup_quota(self, cleanup: CleanupStack) -> None:
        if not self.scenario.emulation.cpu_quota:
            self._report("cpu_quota", False, "off in the scenario (emulation.cpu_quota)")
            return
        wanted = {n: _fraction(self.scenario, n) for n in self.scenario.node_names()}
        wanted = {n: f for n, f in wanted.items() if f < 1.0}
        support = detect_cgroups()
        if not support.available:
            self._report("cpu_quota", False, support.reason)
            return
        if not wanted:
            self._report("cpu_quota", False, "no device profile asks for cpu_fraction < 1")
            return
        quotas = CpuQuotas(support)
        cleanup.push("cgroups", quotas.cleanup)
        for node, fraction in wanted.items():
            quotas.create(node, fraction)
        self.quotas = quotas
        shares = ", ".join(f"{n}={f:g}" for n, f in wanted.items())
        self._report("cpu_quota", True, f"{support.reason}; {shares}")

    def _setup_network(self, cleanup: CleanupStack) -> None:
        for name in ("tbf", "htb", "netem"):
            self._report(name, False, f"network emulation is {self.network!r}, not 'kernel'")
        if self.network == "off":
            self._report("inprocess_link", False, "network emulation off in the scenario")
            return
        if self.network == "in-process":
            self._report("inprocess_link", True, "latency, jitter, bandwidth, loss at transport")
            return
        if os.geteuid() != 0:
            raise PermissionError("emulation.network 'kernel' needs root (ip netns, tc)")
        self.netem, netem_detail = probe_netem()
        lab = NetworkLab(self.scenario.node_names())
        cleanup.push("network namespaces", lab.cleanup)
        lab.setup(kernel_shapes(self.scenario), netem=self.netem)
        self.lab = lab
        self._report("tbf", True, "worker links' bandwidth, both directions")
        self._report("htb", True, "edge uplinks' bandwidth to/from the master")
        if self.netem:
            self._report("netem", True, "latency, jitter, loss in the kernel")
            self._report("inprocess_link", False, "netem does latency, jitter and loss")
        else:
            self._report("netem", False, f"{netem_detail}; latency/jitter/loss stay in-process")
            self._report("inprocess_link", True, "latency, jitter, loss (bandwidth: tbf/htb)")

    # ---- faults ---------------------------------------------------------------------------

    def slow(self, node: str, pid: int, factor: float, cleanup: CleanupStack) -> str:
        """Divide the node's CPU quota by ``factor`` (cgroups); the text says what was done."""
        support = detect_cgroups()
        if not support.available:
            return f"slow {node} x{factor:g}: not applied, {support.reason}"
        if self.quotas is None:
            self.quotas = CpuQuotas(support)
            cleanup.push("cgroups (faults)", self.quotas.cleanup)
        share = _fraction(self.scenario, node) / factor
        self.quotas.create(node, share)
        self.quotas.attach(node, pid)
        return f"slow {node} x{factor:g}: CPU quota {share:g} of a core"

    def set_device(self, node: str, device: str, pid: int | None, cleanup: CleanupStack) -> str:
        """``set-device``: the node's CPU quota becomes the new device's ``cpu_fraction``
        (cgroups, when the scenario enforces quotas); its delay model switches by itself."""
        head = f"set-device {node} -> {device}: delay model from this iteration"
        if not self.scenario.emulation.cpu_quota:
            return f"{head}; CPU quota off in the scenario (emulation.cpu_quota)"
        support = detect_cgroups()
        if not support.available:
            return f"{head}; CPU quota not changed: {support.reason}"
        fraction = self.scenario.topology.devices[device].cpu_fraction
        if self.quotas is None:
            self.quotas = CpuQuotas(support)
            cleanup.push("cgroups (set-device)", self.quotas.cleanup)
        new = node not in self.quotas.groups
        self.quotas.create(node, min(fraction, 64.0))
        if new and pid is not None:
            self.quotas.attach(node, pid)
        return f"{head}; CPU quota {self.quotas.quota_of(node):g} of a core"

    def set_link(self, node: str, link: str) -> str:
        """``set-link``: the node's link (an edge's uplink) in tc (network namespaces) as
        well; latency and jitter stay in-process unless netem does them."""
        head = f"set-link {node} -> {link}: in-process link emulation from this iteration"
        if self.lab is None:
            return f"{head}; tc shaping: none ({self.network!r} network emulation)"
        profile = self.scenario.topology.links[link]
        peer = "master" if node.startswith("edge-") else None
        shape = link_shape(profile, peer)
        self.lab.reshape(node, shape, netem=self.netem)
        rate = "unlimited" if not shape.has_rate else f"{shape.rate_bytes_per_s:g} B/s"
        return f"{head}; tc rate {rate}" + (" with netem" if self.netem else "")

    def unslow(self, node: str) -> str:
        if self.quotas is None or node not in self.quotas.groups:
            return f"unslow {node}: nothing to undo"
        share = _fraction(self.scenario, node)
        self.quotas.create(node, share)
        return f"unslow {node}: CPU quota back to {share:g} of a core"

    # ---- the cluster's hooks -------------------------------------------------------------

    def command_prefix(self, node: str) -> list[str]:
        return self.lab.command_prefix(node) if self.lab else []

    def address(self, node: str) -> str:
        return self.lab.addresses[node] if self.lab else "127.0.0.1"

    def on_started(self, node: str, pid: int) -> None:
        if self.quotas is not None and node in self.quotas.groups:
            self.quotas.attach(node, pid)

    def node_env(self, node: str) -> dict[str, str]:
        external = [
            m.name
            for m in self.mechanisms.values()
            if m.active
            and m.name in ("cpu_quota", "tbf", "htb", "netem")
            and (m.name != "cpu_quota" or (self.quotas is not None and node in self.quotas.groups))
        ]
        return {"HGC_EMULATION_EXTERNAL": ",".join(external)}

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "mechanisms": {
                m.name: {"active": m.active, "detail": m.detail} for m in self.mechanisms.values()
            },
            "cgroups": {n: str(p) for n, p in (self.quotas.groups if self.quotas else {}).items()},
            "netns": {n: self.lab.netns(n) for n in self.lab.nodes} if self.lab else {},
        }
