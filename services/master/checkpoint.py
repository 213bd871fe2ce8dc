"""The master's checkpoint: what a restarted master resumes from (issue 11).

One ``.npz`` file (``--checkpoint PATH``), rewritten atomically (a temporary file in the same
folder, flushed and fsynced, then renamed over the old one) every ``--checkpoint-every``
completed iterations and once at start-up. It holds:

- ``params``: the parameters after the last completed iteration (float64, exact);
- the optimiser's state (step count, momentum / Adam moments);
- ``next_iteration``: the iteration to run next. The minibatch of an iteration is a pure
  function of ``(seed, iteration, partition)`` (``common.learning.minibatch``): there is no
  RNG position to save;
- ``epoch``: the run epoch of the master that wrote it. A master starts with its start time in
  seconds as its epoch; one that resumes runs ``max(epoch + 1, that)`` and writes it at once,
  so every start, checkpoint or not yet, has a later epoch;
- ``record_bytes``: the length of the record file when the checkpoint was taken. A resumed
  master truncates the record there: the iterations after the checkpoint are recomputed and
  recorded once, never twice;
- ``run_id``: a hash of what defines the run (code, data, model, optimiser, learning rate,
  seed). A checkpoint of another run is refused with a one-line error naming the file.

Iterations between the last checkpoint and the crash are recomputed from the same parameters,
so a resumed run's final parameters equal an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from services.master.state import MasterState, TrainingConfig

FORMAT = 1
DEFAULT_EVERY = 10
MAX_CHECKPOINT_BYTES = 1 << 34  # 16 GiB: far above any model the codec can carry


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Checkpoint:
    epoch: int
    next_iteration: int
    params: np.ndarray
    optimiser: tuple[int, np.ndarray | None, np.ndarray | None]
    record_bytes: int
    run_id: str
    # the parameter trace, only when the master keeps one (--params-trace): a resumed run's
    # trace is then complete (iterations, params)
    trace: tuple[np.ndarray, np.ndarray] | None = None


def run_id(config: TrainingConfig, seed: int) -> str:
    """What makes two runs the same run (emulation and deadlines may change on a restart)."""
    ident = {
        "code_spec": config.code_spec,
        "data_spec": config.data_spec,
        "model_spec": config.model_spec,
        "optimiser": config.optimiser,
        "learning_rate": config.learning_rate,
        "seed": seed,
    }
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save(path: str | Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically (a reader sees the old or the new file)."""
    path = Path(path)
    meta = {
        "format": FORMAT,
        "epoch": ckpt.epoch,
        "next_iteration": ckpt.next_iteration,
        "record_bytes": ckpt.record_bytes,
        "run_id": ckpt.run_id,
        "optimiser_t": ckpt.optimiser[0],
    }
    arrays: dict[str, np.ndarray] = {
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "params": np.asarray(ckpt.params, dtype=np.float64),
    }
    _, m, v = ckpt.optimiser
    if m is not None:
        arrays["optimiser_m"] = np.asarray(m, dtype=np.float64)
    if v is not None:
        arrays["optimiser_v"] = np.asarray(v, dtype=np.float64)
    if ckpt.trace is not None:
        arrays["trace_iterations"], arrays["trace_params"] = ckpt.trace
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str | Path) -> Checkpoint | None:
    """The checkpoint at ``path``; None if there is none; ``CheckpointError`` if unusable."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"--checkpoint {path}: {exc.strerror}") from None
    if not path.is_file():
        raise CheckpointError(f"--checkpoint {path}: not a regular file")
    if st.st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"--checkpoint {path}: {st.st_size} bytes, over the cap")
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(bytes(f["meta"]).decode())
            params = np.array(f["params"], dtype=np.float64)
            m = np.array(f["optimiser_m"]) if "optimiser_m" in f.files else None
            v = np.array(f["optimiser_v"]) if "optimiser_v" in f.files else None
            trace = None
            if "trace_iterations" in f.files:
                trace = (np.array(f["trace_iterations"]), np.array(f["trace_params"]))
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"--checkpoint {path}: format {meta.get('format')!r}")
        return Checkpoint(
            epoch=int(meta["epoch"]),
            next_iteration=int(meta["next_iteration"]),
            params=params,
            optimiser=(int(meta["optimiser_t"]), m, v),
            record_bytes=int(meta["record_bytes"]),
            run_id=str(meta["run_id"]),
            trace=trace,
        )
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file: one line naming it
        raise CheckpointError(f"--checkpoint {path}: unreadable ({type(exc).__name__})") from None


class Checkpointer:
    """Resume ``state`` from ``path`` if a checkpoint is there, then keep it up to date."""

    def __init__(self, path: str | Path, every: int, run: str) -> None:
        if every < 1:
            raise ValueError(f"--checkpoint-every: must be >= 1, got {every}")
        self.path = Path(path)
        self.every = every
        self.run = run
        self.saved_at = -1  # next_iteration of the last checkpoint written
        self.writes = 0

    def resume(
        self,
        state: MasterState,
        record_path: str | None,
        trace: list[tuple[int, np.ndarray]] | None = None,
    ) -> str | None:
        """Restore ``state`` (new epoch), ``trace`` (if kept) and truncate the record; a log
        line, or None when there was nothing to resume."""
        ckpt = load(self.path)
        if ckpt is None:
            return None
        if ckpt.run_id != self.run:
            raise CheckpointError(
                f"--checkpoint {self.path}: written by another run (run id {ckpt.run_id}, "
                f"this run {self.run}); remove it or use another run folder"
            )
        if ckpt.params.shape != state.params.shape:
            raise CheckpointError(
                f"--checkpoint {self.path}: {ckpt.params.shape[0]} parameters, the model has "
                f"{state.params.shape[0]}"
            )
        state.params = ckpt.params
        state.optimiser.restore(ckpt.optimiser)
        state.next_iteration = ckpt.next_iteration
        state.epoch = max(ckpt.epoch + 1, state.epoch)  # later than any epoch it ran
        if trace is not None and ckpt.trace is not None:
            its, ps = ckpt.trace
            trace[:] = [(int(t), p) for t, p in zip(its, ps, strict=True)]
        if record_path and os.path.exists(record_path):
            with open(record_path, "r+b") as f:
                f.truncate(min(ckpt.record_bytes, os.fstat(f.fileno()).st_size))
        return (
            f"master: resuming from checkpoint {self.path} at iteration {ckpt.next_iteration} "
            f"(run epoch {state.epoch})"
        )

    def save_now(
        self,
        state: MasterState,
        record: IO[str] | None,
        trace: list[tuple[int, np.ndarray]] | None = None,
    ) -> None:
        record_bytes = record.tell() if record is not None else 0
        t, m, v = state.optimiser.state()
        kept = None
        if trace is not None:
            its = np.array([i for i, _ in trace], dtype=np.int64)
            size = state.params.shape[0]
            ps = np.stack([p for _, p in trace]) if trace else np.zeros((0, size))
            kept = (its, ps)
        save(
            self.path,
            Checkpoint(
                state.epoch,
                state.next_iteration,
                state.params,
                (t, m, v),
                record_bytes,
                self.run,
                kept,
            ),
        )
        self.saved_at = state.next_iteration
        self.writes += 1

    def after_event(
        self,
        state: MasterState,
        record: IO[str] | None,
        trace: list[tuple[int, np.ndarray]] | None = None,
    ) -> None:
        """Called after every event: a checkpoint each ``every`` completed iterations."""
        t = state.next_iteration
        if t != self.saved_at and t % self.every == 0 and not state.done:
            self.save_now(state, record, trace)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "every": self.every, "writes": self.writes}
