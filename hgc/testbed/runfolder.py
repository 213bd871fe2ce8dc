"""The run folder: scenario and seed, per-iteration CSV per scheme, summary JSON, plots and
the final table. Layout::

    <out>/scenario.yaml          copy of the scenario file as run
    <out>/seed.txt
    <out>/metrics_ports.json     node -> {"host", "port", "netns"} of every process's /metrics
    <out>/emulation.json         each mechanism: active / unavailable and why
    <out>/<scheme>/records.jsonl the master's raw per-iteration records
    <out>/<scheme>.csv           one row per iteration attempt
    <out>/summary.json           per-scheme statistics, speed-up, predictions
    <out>/table.txt              the table printed at the end
    <out>/plots/*.png            iteration-time CDF, time per iteration, loss vs wall-clock
    <out>/report.html            every figure and the table on one offline page (hgc report)
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hgc.format import cell, finite, ratio_or_none
from hgc.testbed.records import SchemeStats, worker_tier_s

CSV_COLUMNS = (
    "scheme",
    "iteration",
    "attempt",
    "ok",
    "duration_s",
    "edge_wait_s",
    "worker_wait_s",
    "decode_s",
    "edge_stragglers",
    "worker_stragglers",
    "loss",
    "accuracy",
    "wall_s",
    "error",
)


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    """One CSV row; straggler lists are joined with ';' (empty when nobody straggled)."""
    return {
        "scheme": record["scheme"],
        "iteration": record["iteration"],
        "attempt": record.get("attempt", 0),
        "ok": int(bool(record["ok"])),
        "duration_s": record["duration_s"],
        "edge_wait_s": record.get("edge_wait_s"),
        "worker_wait_s": worker_tier_s(record),
        "decode_s": record.get("decode_s"),
        "edge_stragglers": ";".join(str(e) for e in record.get("edge_stragglers") or []),
        "worker_stragglers": ";".join(str(w) for w in record.get("worker_stragglers") or []),
        "loss": record.get("loss"),
        "accuracy": record.get("accuracy"),
        "wall_s": record.get("wall_s"),
        "error": record.get("error") or "",
    }


def write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in records:
            writer.writerow({k: ("" if v is None else v) for k, v in csv_row(r).items()})


@dataclass
class SchemeResult:
    stats: SchemeStats
    predicted_mean_s: float | None = None  # the simulator's expected iteration time
    predicted_speedup: float | None = None  # simulator: uncoded / this scheme
    plan: dict[str, Any] = field(default_factory=dict)
    speedup: float | None = None  # measured: uncoded mean / this scheme's mean

    @property
    def measured_over_predicted(self) -> float | None:
        """Measured mean / predicted mean; None (``-``, JSON null) when the prediction is
        missing or ~0 (a scenario with no modelled compute predicts 0 s)."""
        return ratio_or_none(self.stats.mean_s, self.predicted_mean_s)


def fill_speedups(results: dict[str, SchemeResult], baseline: str = "uncoded") -> None:
    """Measured and predicted speed-up over the baseline scheme (when it was run)."""
    base = results.get(baseline)
    if base is None:
        return
    for r in results.values():
        r.speedup = ratio_or_none(base.stats.mean_s, r.stats.mean_s)
        r.predicted_speedup = ratio_or_none(base.predicted_mean_s, r.predicted_mean_s)


def format_table(results: dict[str, SchemeResult]) -> str:
    """The table printed at the end of ``hgc run`` (times in seconds)."""
    head = (
        f"{'scheme':<12} {'iters':>5} {'mean s':>8} {'p50 s':>8} {'p95 s':>8} {'p99 s':>8} "
        f"{'speedup':>7} {'sim s':>8} {'meas/sim':>8} {'sim spd':>7} {'loss':>8} {'acc':>6} "
        f"{'strag e/w':>9} {'switches':>8}"
    )
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        s = r.stats
        lines.append(
            f"{name:<12} {s.iterations:>5} {cell(s.mean_s, '8.4f')} {cell(s.p50_s, '8.4f')} "
            f"{cell(s.p95_s, '8.4f')} {cell(s.p99_s, '8.4f')} {cell(r.speedup, '7.2f')} "
            f"{cell(r.predicted_mean_s, '8.4f')} {cell(r.measured_over_predicted, '8.2f')} "
            f"{cell(r.predicted_speedup, '7.2f')} {cell(s.final_loss, '8.4f')} "
            f"{cell(s.final_accuracy, '6.3f')} {f'{s.edge_stragglers}/{s.worker_stragglers}':>9} "
            f"{s.plan_switches if name == 'hgc-adaptive' else '-':>8}"
        )
    return "\n".join(lines)


class RunFolderError(ValueError):
    """The run folder cannot be created or written; the message names the path and why."""


def prepare_folder(path: Path, label: str = "run folder") -> None:
    """Create ``path`` and check a file can be written in it, before any work starts; the
    error names ``label`` (e.g. the flag that gave the path) and the path."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".hgc-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        why = "exists and is not a directory" if isinstance(exc, FileExistsError) else exc
        raise RunFolderError(f"{label} {path}: cannot write there: {why}") from None


class RunFolder:
    """Writes one run's folder; every ``write_*`` may be called as soon as its data exists,
    so an interrupted run still leaves what it measured so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        prepare_folder(path)

    def write_inputs(self, scenario_file: Path, seed: int) -> None:
        shutil.copyfile(scenario_file, self.path / "scenario.yaml")
        (self.path / "seed.txt").write_text(f"{seed}\n")

    def write_json(self, name: str, data: Any) -> Path:
        target = self.path / name
        target.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return target

    def records_path(self, scheme: str) -> Path:
        folder = self.path / scheme
        folder.mkdir(exist_ok=True)
        return folder / "records.jsonl"

    def write_scheme(self, scheme: str, records: Sequence[dict[str, Any]]) -> Path:
        target = self.path / f"{scheme}.csv"
        write_csv(target, records)
        return target

    def write_summary(
        self, results: dict[str, SchemeResult], extra: dict[str, Any] | None = None
    ) -> str:
        table = format_table(results)
        (self.path / "table.txt").write_text(table + "\n")
        summary: dict[str, Any] = dict(extra or {})
        summary["schemes"] = {
            name: {
                **r.stats.to_json(),
                "K": r.plan.get("K"),  # partitions of the code the nodes built
                "D": r.plan.get("D"),  # partitions of the most loaded worker
                "speedup_vs_uncoded": r.speedup,
                "predicted_mean_s": finite(r.predicted_mean_s),
                "predicted_speedup_vs_uncoded": r.predicted_speedup,
                "measured_over_predicted": r.measured_over_predicted,
                "plan": r.plan,
            }
            for name, r in results.items()
        }
        self.write_json("summary.json", summary)
        return table


LOCK = ".hgc-run.lock"


def unique_folder(base: Path, label: str = "run folder") -> Path:
    """Create and return a new, empty folder named ``base`` (absolute), or ``base-2``,
    ``base-3``... when that exists: ``mkdir`` is atomic, so two runs started in the same
    second never share a folder."""
    base = base.absolute()
    for k in range(1, 1000):
        candidate = base if k == 1 else base.with_name(f"{base.name}-{k}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunFolderError(
                f"{label} {candidate}: cannot create: {exc.strerror or exc}"
            ) from None
        prepare_folder(candidate, label)
        return candidate
    raise RunFolderError(f"{label} {base}: 999 folders of that name exist already")


def claim_folder(path: Path, force: bool = False, label: str = "--out") -> Path:
    """Make ``path`` absolute, create it, and claim it for this process with a lock file
    (created atomically). Refused with a one-line ``RunFolderError`` when another live
    ``hgc`` holds it, or when it is not empty and ``force`` is false."""
    from hgc.testbed.guard import launcher_token, token_alive

    path = path.absolute()
    prepare_folder(path, label)
    lock = path / LOCK
    try:
        holder = lock.read_text().strip()
    except OSError:
        holder = ""
    if holder and token_alive(holder):
        raise RunFolderError(
            f"{label} {path}: in use by a running hgc (pid {holder.partition(':')[0]})"
        )
    others = sorted(p.name for p in path.iterdir() if p.name != LOCK)
    if others and not force:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise RunFolderError(
            f"{label} {path}: not empty ({len(others)} entries: {shown}); "
            "use --force to write into it, or another folder"
        )
    lock.unlink(missing_ok=True)  # stale: its holder is gone
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise RunFolderError(f"{label} {path}: claimed by another hgc just now") from None
    with os.fdopen(fd, "w") as f:
        f.write(launcher_token() + "\n")
    return path


def release_folder(path: Path) -> None:
    """Remove this process's lock from a claimed folder (other holders' locks are kept)."""
    from hgc.testbed.guard import launcher_token

    lock = path / LOCK
    try:
        if lock.read_text().strip() == launcher_token():
            lock.unlink()
    except OSError:
        pass
