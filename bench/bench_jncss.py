"""JNCSS optimiser: search time on 20 x 50 and 32 x 32 mixed clusters, worst and mean gap to
the exhaustive search on the randomised suite (``common.perf.jncss_instances``), and the
heterogeneous scenario's HGC-JNCSS expected time and speed-up before and after.

"Before" on the heterogeneous scenario is the optimiser of commit c69e7d4, loaded at run time
from ``git show c69e7d4:common/perf/jncss.py`` (skipped when git or the commit is
unavailable); "before" on the 20 x 50 and 32 x 32 clusters (full runs only: it takes seconds)
is that of commit 5c98ceb (``common/perf/jncss.py`` + ``jncss_search.py``), the frontier
search before the lattice / threshold-start rework. Optimiser times are CPU seconds
(``time.process_time``: the machine is shared; the 1-minute load average is printed beside
them). The chosen plan's exact expected time is reported with a Monte-Carlo check beside it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from bench import Result
from common.perf import exhaustive_jncss, expected_time, greedy_jncss, plan_scheme, simulate_plan
from common.perf.fit import optimisation_model
from common.perf.jncss_instances import random_search_instance
from common.perf.system import EdgeProfile, Link, SystemModel, WorkerProfile

SECTION = "jncss"
ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "c69e7d4"
SCALE_COMMIT = "5c98ceb"  # the frontier search before the lattice / threshold-start rework
DEVICES = ((0.1, 10.0), (0.3, 10.0 / 3.0), (0.6, 10.0 / 6.0))  # laptop, rpi4, rpi3


def cluster(n: int, m: int, seed: int = 0) -> SystemModel:
    """n edges x m workers: laptop / Pi 4 / Pi 3 (50/30/20 %) on Wi-Fi (with jitter); edge-1
    behind a 1 Mbit/s, 120 ms lossy cellular uplink."""
    rng = np.random.default_rng(seed)
    wifi = Link(0.002, 0.001, 2.5e6)
    workers = tuple(
        tuple(
            WorkerProfile(*DEVICES[int(rng.choice(3, p=[0.5, 0.3, 0.2]))], link=wifi)
            for _ in range(m)
        )
        for _ in range(n)
    )
    cell = Link(0.12, 0.01, 1.25e5, 0.01)
    edges = tuple(
        EdgeProfile(uplink=cell if i == 1 else Link(0.0005, 0.0, 1.25e7), combine_s_per_byte=2e-9)
        for i in range(n)
    )
    return SystemModel(workers, edges, 5200)


def _git_show(commit: str, path: str) -> str | None:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None


def _load(name: str, src: str) -> ModuleType:
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def old_module() -> ModuleType | None:
    """The optimiser module of OLD_COMMIT, or None."""
    src = _git_show(OLD_COMMIT, "common/perf/jncss.py")
    return None if src is None else _load("jncss_c69e7d4", src)


def scale_module() -> ModuleType | None:
    """The optimiser of SCALE_COMMIT (its search engine loaded beside it), or None."""
    engine = _git_show(SCALE_COMMIT, "common/perf/jncss_search.py")
    src = _git_show(SCALE_COMMIT, "common/perf/jncss.py")
    if engine is None or src is None:
        return None
    _load("jncss_search_5c98ceb", engine)
    src = src.replace(
        "from common.perf import jncss_search as search", "import jncss_search_5c98ceb as search"
    )
    return _load("jncss_5c98ceb", src)


def bench_scale(quick: bool) -> list[Result]:
    out = [Result(SECTION, "load average (1 min) at start", os.getloadavg()[0], "")]
    before = None if quick else scale_module()
    for n, m in ((20, 50), (32, 32)):
        sys_ = cluster(n, m)
        for hetero in (False, True):
            tag = f"{n}x{m} {'hgc-hetero' if hetero else 'hgc-jncss'}"
            c0, w0 = time.process_time(), time.perf_counter()
            res = greedy_jncss(sys_, hetero=hetero)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            out.append(Result(SECTION, f"optimiser {tag} (CPU)", cpu, "s", "< 1", cpu < 1.0))
            out.append(Result(SECTION, f"optimiser {tag} (wall)", wall, "s"))
            mc = simulate_plan(sys_, res.best.plan, 20_000 if quick else 100_000,
                               np.random.default_rng(0))  # fmt: skip
            exact = expected_time(sys_, res.best.plan)
            out.append(Result(SECTION, f"{tag} chosen E[T] exact", exact, "s"))
            out.append(Result(SECTION, f"{tag} chosen E[T] Monte Carlo", mc.mean_s, "s"))
            if before is not None:
                c0 = time.process_time()
                old = before.greedy_jncss(sys_, hetero=hetero)
                old_cpu = time.process_time() - c0
                old_exact = expected_time(sys_, old.best.plan)
                out += [
                    Result(SECTION, f"before ({SCALE_COMMIT}) {tag} (CPU)", old_cpu, "s"),
                    Result(SECTION, f"before ({SCALE_COMMIT}) {tag} chosen E[T] exact",
                           old_exact, "s"),
                    Result(SECTION, f"{tag} E[T] now <= before", exact / old_exact, "x",
                           "<= 1", exact <= old_exact * (1 + 1e-9)),
                ]  # fmt: skip
    out.append(Result(SECTION, "load average (1 min) at end", os.getloadavg()[0], ""))
    return out


def bench_gap(quick: bool) -> list[Result]:
    gaps = []
    for seed in range(100 if quick else 500):
        sys_ = random_search_instance(seed)
        gaps.append(greedy_jncss(sys_).best.mean_s / exhaustive_jncss(sys_).best.mean_s - 1)
    worst = max(gaps)
    return [
        Result(SECTION, f"gap to exhaustive, worst of {len(gaps)}", 100 * worst, "%", "<= 1",
               worst <= 0.01),
        Result(SECTION, "gap to exhaustive, mean", 100 * float(np.mean(gaps)), "%"),
    ]  # fmt: skip


def bench_scenario(quick: bool) -> list[Result]:
    from common.scenario import load_scenario

    sys_ = optimisation_model(
        load_scenario(ROOT / "scenarios" / "heterogeneous.yaml").system_model()
    )
    uncoded = expected_time(sys_, plan_scheme(sys_, "uncoded"))
    out = []
    old = old_module()
    runs = [("after", greedy_jncss)] + ([("before", old.greedy_jncss)] if old else [])
    for label, fn in runs:
        for hetero in (False, True):
            res = fn(sys_, hetero=hetero)
            name = "hgc-hetero" if hetero else "hgc-jncss"
            mc = simulate_plan(sys_, res.best.plan, 20_000 if quick else 100_000,
                               np.random.default_rng(0))  # fmt: skip
            out += [
                Result(SECTION, f"heterogeneous {name} {label}: E[T] exact", res.best.mean_s, "s"),
                Result(SECTION, f"heterogeneous {name} {label}: E[T] Monte Carlo", mc.mean_s, "s"),
                Result(SECTION, f"heterogeneous {name} {label}: speed-up vs uncoded",
                       uncoded / res.best.mean_s, "x"),
            ]  # fmt: skip
    return out


def run(quick: bool) -> list[Result]:
    return bench_scale(quick) + bench_scenario(quick) + bench_gap(quick)
