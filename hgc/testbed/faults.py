"""The scenario's fault schedule applied to a running cluster: at the start of iteration t
(once the master has recorded iteration t - 1), kill, pause or slow a node.

``FaultSchedule`` is pure (which actions are due, given the last recorded iteration and the
clock); the launcher performs them. Nothing is skipped silently: a fault on a node the
scheme's plan did not select, or a ``slow`` that cannot be enforced, is returned as a
``note`` the launcher prints and keeps in the run folder.

``slow`` by ``factor`` divides the node's CPU quota (cgroups) by ``factor``: it slows the
node's real computation. The modelled delay of ``emulation.compute: delay`` is a sleep and
is not slowed by a quota; use ``compute: work`` for the whole compute time to scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.scenario import Fault


@dataclass(frozen=True)
class FaultAction:
    """``kind``: kill, start (after a restart's kill), pause, resume, slow, unslow, set-device,
    set-link (``text``: the new device / link profile) or note; ``node`` is the topology name."""

    kind: str
    node: str
    factor: float = 1.0
    text: str = ""


class FaultSchedule:
    def __init__(self, faults: Sequence[Fault], selected: set[str]) -> None:
        self.pending = sorted(faults, key=lambda f: f.iteration)
        self.selected = selected
        self.undo: list[tuple[float, FaultAction]] = []  # (at monotonic time, action)

    def due(self, last_recorded: int, now: float) -> list[FaultAction]:
        """Actions to take now; ``last_recorded`` = highest iteration the master recorded
        (-1 before the first), so iteration ``last_recorded + 1`` is starting."""
        actions: list[FaultAction] = []
        while self.pending and self.pending[0].iteration <= last_recorded + 1:
            actions += self._start(self.pending.pop(0), now)
        still = []
        for at, action in self.undo:
            if at <= now:
                actions.append(action)
            else:
                still.append((at, action))
        self.undo = still
        return actions

    def _start(self, fault: Fault, now: float) -> list[FaultAction]:
        if fault.node not in self.selected:
            text = (
                f"fault {fault.action} {fault.node} at iteration {fault.iteration}: "
                "not applied, the node is not in this scheme's plan"
            )
            return [FaultAction("note", fault.node, text=text)]
        if fault.action == "kill":
            return [FaultAction("kill", fault.node)]
        if fault.action == "restart":
            # kill -9, then the same node (name, key, address) again after duration_s (0: at
            # once); a master resumes from its checkpoint, an edge asks its workers back
            self.undo.append((now + (fault.duration_s or 0.0), FaultAction("start", fault.node)))
            return [FaultAction("kill", fault.node, text="restart")]
        if fault.action == "set-device":  # the delay model switches by itself; the quota here
            return [FaultAction("set-device", fault.node, text=str(fault.device))]
        if fault.action == "set-link":  # the in-process link switches by itself; tc here
            return [FaultAction("set-link", fault.node, text=str(fault.link))]
        start, stop = ("pause", "resume") if fault.action == "pause" else ("slow", "unslow")
        if fault.duration_s is not None:
            self.undo.append((now + fault.duration_s, FaultAction(stop, fault.node, fault.factor)))
        return [FaultAction(start, fault.node, fault.factor)]
