"""A real CPU quota per node through Linux cgroups, v1 (``cpu.cfs_quota_us``) and v2 (``cpu.max``).

A node's device profile asks for a CPU share ``cpu_fraction`` in (0, 1] of one core (the same
meaning as docker ``--cpus``); the quota is ``cpu_fraction * period`` microseconds of CPU
per ``period``. Every group this module makes lives under ``<cpu root>/hgcrun-<owner pid>/``
so that ``sweep_cgroups`` can find leftovers of dead launchers and never touches the groups
of a launcher that is still running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = "hgcrun-"
PERIOD_US = 100_000
_NODE_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class CgroupSupport:
    """What this machine offers. ``version`` is 1, 2 or None (unavailable, see ``reason``)."""

    version: int | None
    cpu_root: Path | None  # the directory under which groups with a cpu controller are made
    reason: str

    @property
    def available(self) -> bool:
        return self.version is not None


def detect_cgroups(root: Path = CGROUP_ROOT) -> CgroupSupport:
    """Find a writable cpu controller: the v1 ``cpu`` hierarchy first, then the v2 unified one."""
    v1 = root / "cpu"
    if (v1 / "cpu.cfs_quota_us").exists():
        if os.access(v1, os.W_OK):
            return CgroupSupport(1, v1, f"cgroup v1 cpu controller at {v1}")
        return CgroupSupport(None, None, f"cgroup v1 cpu controller at {v1} is not writable")
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        if "cpu" not in controllers.read_text().split():
            return CgroupSupport(None, None, f"cgroup v2 at {root} has no cpu controller")
        if not os.access(root, os.W_OK):
            return CgroupSupport(None, None, f"cgroup v2 at {root} is not writable")
        return CgroupSupport(2, root, f"cgroup v2 at {root}")
    return CgroupSupport(None, None, f"no cgroup cpu controller under {root}")


def quota_us(cpu_fraction: float, period_us: int = PERIOD_US) -> int:
    """CPU time per period for a share of one core; the kernel minimum is 1000 us."""
    if not 0.0 < cpu_fraction <= 64.0:
        raise ValueError(f"cpu_fraction must be in (0, 64], got {cpu_fraction}")
    return max(1000, round(cpu_fraction * period_us))


class CpuQuotas:
    """The groups of one launcher: ``create(node, fraction)``, ``attach(node, pid)``, ``cleanup()``.

    Raises ``RuntimeError`` from ``create`` when cgroups are unavailable: callers check
    ``support.available`` first and report the mechanism as unavailable instead.
    """

    def __init__(self, support: CgroupSupport, owner_pid: int | None = None) -> None:
        self.support = support
        self.owner_pid = os.getpid() if owner_pid is None else owner_pid
        self.groups: dict[str, Path] = {}

    @property
    def base(self) -> Path:
        if self.support.cpu_root is None:
            raise RuntimeError(f"cgroups unavailable: {self.support.reason}")
        return self.support.cpu_root / f"{PREFIX}{self.owner_pid}"

    def create(self, node: str, cpu_fraction: float) -> Path:
        if not _NODE_RE.match(node):
            raise ValueError(f"node name {node!r} is not a valid cgroup name")
        quota = quota_us(cpu_fraction)
        base = self.base
        if self.support.version == 2:
            _enable_cpu_controller(base.parent)
            base.mkdir(exist_ok=True)
            _enable_cpu_controller(base)
        else:
            base.mkdir(exist_ok=True)
        group = base / node
        group.mkdir(exist_ok=True)
        if self.support.version == 2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}\n")
        else:
            (group / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        self.groups[node] = group
        return group

    def attach(self, node: str, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the node's group."""
        if node not in self.groups:
            raise KeyError(f"no cgroup created for node {node!r}")
        (self.groups[node] / "cgroup.procs").write_text(f"{pid}\n")

    def quota_of(self, node: str) -> float:
        """The enforced CPU share of one core, read back from the kernel's files."""
        group = self.groups[node]
        if self.support.version == 2:
            quota, period = (group / "cpu.max").read_text().split()[:2]
        else:
            quota = (group / "cpu.cfs_quota_us").read_text().strip()
            period = (group / "cpu.cfs_period_us").read_text().strip()
        return int(quota) / int(period)

    def cleanup(self) -> list[str]:
        """Remove this launcher's groups; returns the problems (empty when all went)."""
        if self.support.cpu_root is None:
            return []
        problems = remove_tree(self.base, kill=True)
        self.groups.clear()
        return problems


def _enable_cpu_controller(group: Path) -> None:
    """cgroup v2: children of ``group`` only get cpu.max if ``+cpu`` is in its subtree_control."""
    control = group / "cgroup.subtree_control"
    if control.exists() and "cpu" not in control.read_text().split():
        control.write_text("+cpu\n")


def remove_tree(group: Path, kill: bool) -> list[str]:
    """Remove a group and its children, deepest first. ``kill`` sends SIGKILL to processes
    still inside (they belong to the launcher that made the group and is gone or stopping)."""
    if not group.exists():
        return []
    problems: list[str] = []
    for child in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        problems += _remove_one(child, kill)
    problems += _remove_one(group, kill)
    return problems


def _remove_one(group: Path, kill: bool) -> list[str]:
    procs = group / "cgroup.procs"
    pids = [int(x) for x in procs.read_text().split()] if procs.exists() else []
    if pids and kill:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_empty(procs)
    try:
        group.rmdir()
    except OSError as exc:
        # On cgroupfs rmdir works with the control files present; a plain directory (the
        # unit tests' v2 layout in a temp dir) needs its files unlinked first. Unlinking a
        # real control file fails, so the original error is reported then.
        if _remove_plain(group):
            return [f"cannot remove cgroup {group}: {exc}"]
    return []


def _remove_plain(group: Path) -> list[str]:
    try:
        for f in group.iterdir():
            if f.is_file():
                f.unlink()
        group.rmdir()
    except OSError as exc:
        return [f"cannot remove {group}: {exc}"]
    return []


def _wait_empty(procs: Path, tries: int = 200) -> None:
    """SIGKILL is asynchronous: poll until the kernel has emptied the group (bounded)."""
    for _ in range(tries):
        if not procs.read_text().split():
            return
        time.sleep(0.01)


def sweep_cgroups(
    support: CgroupSupport, is_alive: Callable[[int], bool] | None = None
) -> list[str]:
    """Remove groups left by launchers that are no longer running; returns what was removed."""
    if support.cpu_root is None or not support.cpu_root.exists():
        return []
    from hgc.testbed.cleanup import pid_alive

    alive = pid_alive if is_alive is None else is_alive
    removed = []
    for group in sorted(support.cpu_root.glob(f"{PREFIX}*")):
        owner = group.name[len(PREFIX) :]
        if owner.isdigit() and alive(int(owner)):
            continue
        if not remove_tree(group, kill=True):
            removed.append(str(group))
    return removed
