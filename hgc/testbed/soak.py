"""``make soak``: a long run on a real local cluster with random faults, checked for exactness
and for leaks.

A hierarchical code tolerating one edge and one worker per edge (``s_e = s_w = 1``) trains
for ``--iterations`` on real processes (``hgc.cluster.LocalCluster``) while faults are
injected at random, always within that tolerance: worker kills followed by a restart of the
same node, worker pauses (SIGSTOP/SIGCONT), edge pauses, edge kills followed by a restart (the
edge asks its workers back) and master kills followed by a restart (it resumes from its
checkpoint; the iterations after the checkpoint are recomputed). At the end it prints

- faults injected (by kind), iterations lost (requested minus iterations that succeeded);
- wrong gradients: each iteration's decoded gradient, recovered from consecutive parameter
  vectors of the master's trace (``(p[t-1] - p[t]) * n / lr``), against an uncoded
  recomputation of the full gradient at ``p[t-1]`` (relative error above ``--rtol``);
- RSS slope per role (KB per 100 iterations, least squares over the samples after a
  warm-up, per process, then the mean over the role's processes that lived long enough);
- open file descriptors per role at the start and at the end.

Exit status 0 when nothing was lost, no gradient was wrong and no role's RSS grew by more
than ``--max-slope-kb`` KB per 100 iterations; 1 otherwise.

The master keeps the parameter trace the exactness check needs (asked for with
``--params-trace``): with the default model (P = 10 parameters) that is about 0.2 KB per
iteration, i.e. ~20 KB per 100 iterations of the master's slope, by design.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_EVERY = 10  # iterations between RSS samples
TRACE_KB_PER_100 = 20.0  # the master's own trace, asked for by the soak (see above)


def soak_config(iterations: int, seed: int) -> dict[str, Any]:
    return {
        "code": {"scheme": "hgc", "workers_per_edge": [2, 2, 2], "s_e": 1, "s_w": 1},
        "data_spec": {"kind": "synthetic", "n_samples": 240, "n_features": 4, "n_classes": 2},
        "model_spec": {"kind": "logreg"},
        "training": {
            "iterations": iterations,
            "learning_rate": 0.5,
            "eval_every": 50,
            "deadline_s": 20.0,
            "on_failure": "retry",
            "max_retries": 5,
        },
        "seed": seed,
    }


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return None


def role(node: str) -> str:
    return node.split("-", 1)[0]


def slope_kb_per_100(samples: list[tuple[int, int]]) -> float | None:
    """Least-squares slope of RSS (KB) against iteration, times 100; None for < 3 samples."""
    if len(samples) < 3 or len({t for t, _ in samples}) < 2:
        return None
    t = np.array([s[0] for s in samples], dtype=float)
    r = np.array([s[1] for s in samples], dtype=float)
    return float(np.polyfit(t, r, 1)[0] * 100.0)


@dataclass
class Fault:
    kind: str  # kill-restart-worker | pause-worker | pause-edge | restart-edge | restart-master
    node: str
    until: float  # monotonic time of the restart / resume


@dataclass
class SoakReport:
    iterations: int
    ok_iterations: int
    faults: Counter[str]
    wrong: int
    checked: int
    max_rel_error: float
    slopes: dict[str, float | None]
    fds_start: dict[str, list[int]]
    fds_end: dict[str, list[int]]
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.iterations - self.ok_iterations

    def lines(self) -> list[str]:
        out = [
            f"iterations: {self.ok_iterations}/{self.iterations} in {self.elapsed_s:.0f} s",
            "faults injected: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none")
            + f" (total {sum(self.faults.values())})",
            f"iterations lost: {self.lost}",
            f"wrong gradients: {self.wrong} of {self.checked} checked "
            f"(max relative error {self.max_rel_error:.2e})",
        ]
        for r in ("master", "edge", "worker"):
            s = self.slopes.get(r)
            shown = "-" if s is None else f"{s:+.1f}"
            fs, fe = self.fds_start.get(r, []), self.fds_end.get(r, [])
            out.append(
                f"{r:<7} RSS slope {shown} KB/100 iterations; fds start {_span(fs)} end {_span(fe)}"
            )
        return out + self.notes


def _span(values: list[int]) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}..{hi}"


class Soak:
    def __init__(
        self,
        iterations: int,
        seed: int,
        workdir: Path,
        fault_every: tuple[int, int] = (4, 12),
        pause_s: tuple[float, float] = (0.3, 1.5),
        restart_after_s: tuple[float, float] = (0.5, 2.0),
    ) -> None:
        self.iterations = iterations
        self.rng = random.Random(seed)
        self.config = soak_config(iterations, seed)
        self.workdir = workdir
        self.fault_every, self.pause_s, self.restart_after_s = (
            fault_every,
            pause_s,
            restart_after_s,
        )
        self.active: list[Fault] = []
        # master restarts at a third and two thirds of the run (the other faults are healed
        # first: the run waits for its master, and the edges then pass its Ready barrier)
        self.master_at = [iterations // 3, 2 * iterations // 3]
        self.faults: Counter[str] = Counter()
        self.rss: dict[int, list[tuple[int, int]]] = defaultdict(list)  # pid -> samples
        self.pid_role: dict[int, str] = {}

    # -------------------------------------------------------------- faults
    def _down_edges(self) -> set[str]:
        return {f.node for f in self.active if f.kind in ("pause-edge", "restart-edge")}

    def _down_workers(self) -> set[str]:
        return {f.node for f in self.active if f.node.startswith("worker-")}

    def master_down(self) -> bool:
        return any(f.kind == "restart-master" for f in self.active)

    def _candidates(self, cluster: Any) -> list[tuple[str, str]]:
        """(kind, node) faults that keep the run within tolerance: at most one edge and at
        most one worker per edge down at any time."""
        out: list[tuple[str, str]] = []
        if self.master_down():
            return out  # the run waits for its master: nothing else meanwhile
        if not self._down_edges():
            edges = [n for n in cluster.nodes if n.startswith("edge-")]
            out += [("pause-edge", n) for n in edges] + [("restart-edge", n) for n in edges]
        busy_edges = {w.split("-")[1] for w in self._down_workers()}
        for n in cluster.nodes:
            if n.startswith("worker-") and n.split("-")[1] not in busy_edges:
                out += [("kill-restart-worker", n), ("pause-worker", n)]
        return out

    def _inject_master(self, cluster: Any, last: int) -> None:
        if self.master_at and last >= self.master_at[0] and not self.master_down():
            self._heal(cluster, force=True)  # everyone else back first: within tolerance
            self.master_at.pop(0)
            cluster.kill("master")
            until = time.monotonic() + self.rng.uniform(*self.restart_after_s)
            self.active.append(Fault("restart-master", "master", until))
            self.faults["restart-master"] += 1

    def _inject(self, cluster: Any) -> None:
        options = self._candidates(cluster)
        if not options:
            return
        kind, node = self.rng.choice(options)
        if kind in ("kill-restart-worker", "restart-edge", "restart-master"):
            cluster.kill(node)
            until = time.monotonic() + self.rng.uniform(*self.restart_after_s)
        else:
            cluster.pause(node)
            until = time.monotonic() + self.rng.uniform(*self.pause_s)
        self.active.append(Fault(kind, node, until))
        self.faults[kind] += 1

    def _heal(self, cluster: Any, force: bool = False) -> None:
        now = time.monotonic()
        for f in list(self.active):
            if force or now >= f.until:
                if f.kind in ("kill-restart-worker", "restart-edge", "restart-master"):
                    cluster.restart(f.node, wait=False)  # the run goes on meanwhile
                    self.pid_role[cluster.pids[f.node]] = role(f.node)
                else:
                    cluster.resume(f.node)
                self.active.remove(f)

    # -------------------------------------------------------------- sampling
    def _sample(self, cluster: Any, iteration: int) -> None:
        for node, pid in cluster.pids.items():
            if any(f.node == node for f in self.active):
                continue
            if not (cluster.workdir / "ready" / f"{node}.json").exists():
                continue  # a restarted node still starting (imports): not its steady state
            kb = rss_kb(pid)
            if kb is not None:
                self.pid_role[pid] = role(node)
                self.rss[pid].append((iteration, kb))

    def _fds(self, cluster: Any) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(list)
        for node, pid in cluster.pids.items():
            n = fd_count(pid)
            if n is not None:
                out[role(node)].append(n)
        return dict(out)

    def _slopes(self) -> dict[str, float | None]:
        """Per process, the slope after its own warm-up (start-up, first allocations: a
        fifth of the run, at least 100 iterations after its first sample), for processes
        that then lived at least a quarter of the run; the mean per role."""
        warm = max(100, self.iterations // 5)
        per_role: dict[str, list[float]] = defaultdict(list)
        for pid, samples in self.rss.items():
            start = samples[0][0] + warm
            kept = [x for x in samples if x[0] >= start]
            s = slope_kb_per_100(kept)
            if s is not None and kept[-1][0] - kept[0][0] >= self.iterations // 4:
                per_role[self.pid_role[pid]].append(s)
        return {r: (float(np.mean(v)) if v else None) for r, v in per_role.items()}

    # -------------------------------------------------------------- run
    def run(self, timeout_s: float) -> SoakReport:
        from hgc.cluster import LocalCluster

        t0 = time.monotonic()
        with LocalCluster(
            self.config,
            workdir=self.workdir,
            params_trace=True,
            heartbeat_s=0.25,
            liveness=20,  # pauses (< 1.5 s) are stragglers, not deaths
            ready_timeout_s=120,
        ) as cluster:
            fds_start = self._fds(cluster)
            next_fault = self.rng.randint(*self.fault_every)
            next_sample, last = 0, -1
            fds_end: dict[str, list[int]] | None = None
            tail = min(150, self.iterations // 5)  # fault-free: everyone back for the end
            deadline = time.monotonic() + timeout_s
            while not cluster.done() or self.master_down():
                last = _last_ok(cluster.record_path, last)
                if last >= next_sample:
                    self._sample(cluster, last)
                    next_sample = last + SAMPLE_EVERY
                self._heal(cluster)
                # leave the last iterations fault-free so the end is not a restart race
                if last < self.iterations - tail:
                    self._inject_master(cluster, last)
                # a master restart that is due waits for the other faults to heal: no new ones
                master_due = bool(self.master_at) and last >= self.master_at[0]
                if last >= next_fault and last < self.iterations - tail and not master_due:
                    self._inject(cluster)
                    next_fault = last + self.rng.randint(*self.fault_every)
                if last >= self.iterations - tail:
                    self._heal(cluster, force=True)  # everyone back before the end's count
                if last >= self.iterations - tail // 5 and fds_end is None and _all_bound(cluster):
                    fds_end = self._fds(cluster)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"soak: no end after {timeout_s:.0f} s")
                time.sleep(0.05)
            status = cluster.wait(60)
            if fds_end is None:
                fds_end = self._fds(cluster)
            records = cluster.records()
            trace = cluster.params_trace()
        rss = {f"{self.pid_role[p]}:{p}": v for p, v in self.rss.items()}
        (self.workdir / "rss.json").write_text(json.dumps(rss))
        ok = {int(r["iteration"]) for r in records if r.get("ok")}
        wrong, checked, max_rel = self._check_gradients(trace)
        notes = [] if status == 0 else [f"master exited with status {status}"]
        return SoakReport(
            iterations=self.iterations,
            ok_iterations=len(ok),
            faults=self.faults,
            wrong=wrong,
            checked=checked,
            max_rel_error=max_rel,
            slopes=self._slopes(),
            fds_start=fds_start,
            fds_end=fds_end,
            elapsed_s=time.monotonic() - t0,
            notes=notes,
        )

    def _check_gradients(
        self, trace: dict[str, np.ndarray], rtol: float = 1e-9
    ) -> tuple[int, int, float]:
        """Each iteration's decoded gradient against an uncoded recomputation."""
        from common.learning import build_model, load_dataset
        from services.master.config import parse_config

        training, seed = parse_config(dict(self.config))
        data = load_dataset(training.data_spec)
        model = build_model(training.model_spec, data.n_features, data.n_classes)
        params = model.init_params(seed)
        its, ps = trace["iterations"], trace["params"]
        wrong, max_rel = 0, 0.0
        scale = data.n_train / training.learning_rate
        for k, t in enumerate(its):
            before = params if k == 0 else ps[k - 1]
            if k > 0 and int(its[k - 1]) != int(t) - 1:
                wrong += 1  # a gap in the trace: an iteration's update is missing
                continue
            decoded = (before - ps[k]) * scale
            exact = model.gradient_sum(before, data.X_train, data.y_train)
            norm = max(float(np.linalg.norm(exact)), 1e-300)
            rel = float(np.linalg.norm(decoded - exact)) / norm
            max_rel = max(max_rel, rel)
            # the recovered gradient carries the rounding of p[t-1] - p[t] (relative ~1e-16
            # of |p| / |lr g / n|); compare at that precision
            tol = rtol + 1e-12 * float(np.linalg.norm(before)) * scale / norm
            if rel > tol:
                wrong += 1
        return wrong, len(its), max_rel


def _all_bound(cluster: Any) -> bool:
    """Every node (restarted ones included) has announced it is bound: past start-up."""
    return all((cluster.workdir / "ready" / f"{n}.json").exists() for n in cluster.nodes)


def _last_ok(record: Path, last: int) -> int:
    try:
        lines = record.read_text().splitlines()
    except OSError:
        return last
    for line in reversed(lines):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("ok"):
            return max(last, int(r["iteration"]))
    return last


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hgc.testbed.soak", description=__doc__)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=None, help="logs etc. (default: temp)")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--max-slope-kb", type=float, default=50.0, help="KB per 100 iterations")
    args = p.parse_args(argv)
    import tempfile

    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="hgc-soak-"))).absolute()
    soak = Soak(args.iterations, args.seed, workdir)
    report = soak.run(args.timeout)
    for line in report.lines():
        print(line, flush=True)
    print(f"logs in {workdir}")
    grew = [
        r
        for r, s in report.slopes.items()
        if s is not None and s > args.max_slope_kb + (TRACE_KB_PER_100 if r == "master" else 0)
    ]
    ok = report.lost == 0 and report.wrong == 0 and not grew and not report.notes
    if grew:
        print(f"RSS grew beyond {args.max_slope_kb} KB/100 iterations: {', '.join(grew)}")
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
