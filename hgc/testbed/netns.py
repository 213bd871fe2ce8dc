"""Real kernel network shaping: each node in its own network namespace, all joined to one
bridge by veth pairs, with tbf/htb rate limits and, where the kernel has it, netem delay,
jitter and loss.

Layout of one lab (everything lives in namespaces this module creates; the host's own
namespace gets no interface, route or address)::

    hgcrun-<pid>-hub      bridge br0 + one veth end per node (v<k>)
    hgcrun-<pid>-<node>   lo + eth0 (the other veth end), address 10.213.x.y/16

Shaping, per node, both directions (egress on the node's eth0 and on its hub end):

- worker-i-j: tbf at the worker's link bandwidth (everything it sends or receives goes to
  or comes from its edge);
- edge-i: htb with one class at the uplink bandwidth for traffic to/from the master's
  address; its worker traffic takes the unshaped default class (the workers' own veths
  shape those links).

netem (delay, jitter, loss) is attached under the same qdiscs when ``probe_netem()`` says the
kernel has it; otherwise latency, jitter and loss stay with the in-process emulation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from common.runtime.shaping import Shape, reshape_commands, tc_commands

log = logging.getLogger(__name__)

PREFIX = "hgcrun-"
NETNS_DIR = Path("/run/netns")
SUBNET = "10.213"  # private range, used only inside our namespaces


def address_of(index: int) -> str:
    """The lab address of the node with this index (0-based): 10.213.0.1, 10.213.0.2, ..."""
    if not 0 <= index < 250 * 250:
        raise ValueError(f"node index {index} outside the lab's address range")
    return f"{SUBNET}.{index // 250}.{index % 250 + 1}"


def _run(cmd: Sequence[str]) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.returncode}")


def _netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def probe_qdisc(kind_args: Sequence[str], owner_pid: int | None = None) -> tuple[bool, str]:
    """Try to add a qdisc to a dummy device in a throwaway namespace: (available, detail)."""
    ns = f"{PREFIX}{os.getpid() if owner_pid is None else owner_pid}-probe"
    try:
        _run(["ip", "netns", "add", ns])
    except (RuntimeError, OSError) as exc:
        return False, f"cannot create a network namespace: {exc}"
    try:
        _run(["ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
        _run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "d0", "root", *kind_args])
        return True, f"{kind_args[0]} available"
    except (RuntimeError, OSError) as exc:
        return False, str(exc)
    finally:
        with contextlib.suppress(RuntimeError, OSError):
            _run(["ip", "netns", "del", ns])


def probe_netem() -> tuple[bool, str]:
    return probe_qdisc(["netem", "delay", "1ms"])


class NetworkLab:
    """The namespaces, bridge and veths of one launcher. ``setup`` then ``command_prefix``,
    ``address``; ``cleanup`` removes everything (processes inside must be stopped first,
    or are killed)."""

    def __init__(self, nodes: Sequence[str], owner_pid: int | None = None) -> None:
        if len(set(nodes)) != len(nodes):
            raise ValueError("node names must be unique")
        self.owner_pid = os.getpid() if owner_pid is None else owner_pid
        self.nodes = list(nodes)
        self.addresses = {node: address_of(k) for k, node in enumerate(self.nodes)}
        self.hub = f"{PREFIX}{self.owner_pid}-hub"
        self.created: list[str] = []

    def netns(self, node: str) -> str:
        return f"{PREFIX}{self.owner_pid}-{node}"

    def command_prefix(self, node: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns(node)]

    def setup(self, shapes: dict[str, Shape], netem: bool) -> None:
        """Create the lab and apply ``shapes`` (node -> Shape). Raises RuntimeError naming
        the command that failed; whatever was made so far is left for ``cleanup``."""
        unknown = set(shapes) - set(self.nodes)
        if unknown:
            raise ValueError(f"shapes for unknown nodes: {sorted(unknown)}")
        self._add_netns(self.hub)
        _run(["ip", "-n", self.hub, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", self.hub, "link", "set", "br0", "up"])
        for k, node in enumerate(self.nodes):
            ns, hub_end = self.netns(node), f"v{k}"
            self._add_netns(ns)
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(
                [
                    "ip",
                    "-n",
                    self.hub,
                    "link",
                    "add",
                    hub_end,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    ns,
                ]
            )
            _run(["ip", "-n", self.hub, "link", "set", hub_end, "master", "br0", "up"])
            _run(["ip", "-n", ns, "addr", "add", f"{self.addresses[node]}/16", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            shape = shapes.get(node)
            if shape is None:
                continue
            peer_addr = self.addresses.get(shape.peer) if shape.peer else None
            if shape.peer is not None and peer_addr is None:
                raise ValueError(f"{node}: shaping peer {shape.peer!r} is not in the lab")
            for args in tc_commands("eth0", shape, peer_addr, netem, match="dst"):
                _run(["ip", "netns", "exec", ns, "tc", *args])
            for args in tc_commands(hub_end, shape, peer_addr, netem, match="src"):
                _run(["ip", "netns", "exec", self.hub, "tc", *args])

    def reshape(self, node: str, shape: Shape, netem: bool) -> None:
        """``set-link`` mid-run: replace the shaping of ``node``'s veth (both ends) by
        ``shape``. Raises RuntimeError naming the command that failed."""
        k = self.nodes.index(node)
        ns, hub_end = self.netns(node), f"v{k}"
        peer_addr = self.addresses.get(shape.peer) if shape.peer else None
        if shape.peer is not None and peer_addr is None:
            raise ValueError(f"{node}: shaping peer {shape.peer!r} is not in the lab")
        for where, dev, match in ((ns, "eth0", "dst"), (self.hub, hub_end, "src")):
            delete, adds = reshape_commands(dev, shape, peer_addr, netem, match=match)
            subprocess.run(
                ["ip", "netns", "exec", where, "tc", *delete], capture_output=True, timeout=30
            )  # no root qdisc before (an unshaped link): nothing to delete
            for args in adds:
                _run(["ip", "netns", "exec", where, "tc", *args])

    def _add_netns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self.created.append(name)

    def cleanup(self) -> list[str]:
        """Kill anything still inside our namespaces, then delete them (hub last)."""
        problems = []
        for name in reversed(self.created):
            problems += delete_netns(name)
        self.created.clear()
        return problems


def netns_pids(name: str) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=30)
    return [int(p) for p in proc.stdout.split()]


def delete_netns(name: str) -> list[str]:
    if not _netns_exists(name):
        return []
    for pid in netns_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        _run(["ip", "netns", "del", name])
    except (RuntimeError, OSError) as exc:
        return [str(exc)]
    return []


def list_lab_netns() -> list[str]:
    if not NETNS_DIR.exists():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(PREFIX))


def sweep_netns(is_alive: Callable[[int], bool] | None = None) -> list[str]:
    """Delete namespaces left by launchers that are no longer running; returns their names."""
    from hgc.testbed.cleanup import pid_alive

    alive = pid_alive if is_alive is None else is_alive
    removed = []
    for name in list_lab_netns():
        owner = name[len(PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and alive(int(owner)):
            continue
        if not delete_netns(name):
            removed.append(name)
    return removed
