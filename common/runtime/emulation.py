"""Emulate the heterogeneity of the scenario on hardware that does not have it.

Two mechanisms, both driven by the same profiles as the maths (``common.perf.system``):

- ``LinkEmulator``: in-process delay of outgoing messages on one link (used by
  ``transport`` when a link profile is set; where the kernel has netem, shaping happens
  there instead). A message of b bytes is released at::

      start    = max(now, end of the previous message's transmission)   # serialised per link
      tx_end   = start + b / bandwidth_bytes_per_s
      release  = tx_end + max(0, latency_s + U(-jitter_s, jitter_s)) + (retransmit_s w.p. loss)
      release  = max(release, previous release)                        # TCP keeps order

  The loop never sleeps for it: releases go into a heap drained by ``transport.Loop``.

- ``ComputeEmulator``: the extra seconds a worker adds on top of its real compute time so
  its total follows the straggler model (shifted exponential ``shift_s*l + Exp(mean l/rate)``,
  times ``slowdown`` in the Markov slow state, or trace replay scaled by load);
  ``emulate_compute`` spends them (sleep, or real busy work) in the offload thread.

Everything is deterministic for a given seed, and independent across nodes and links, as the
model assumes: each worker's draws are keyed by its ``worker_index`` (a shared seed alone gave
every worker the same exponential draw, perfectly correlated stragglers), and each link
direction seeds its emulator with ``link_seed(sender, receiver)`` (one seed for every link gave
the master->edge and edge->master messages of an iteration the same loss draws).
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.perf.system import Link, StragglerModel, WorkerProfile

# real: no modelled time; the worker's time is its real computation (under its CPU quota)
COMPUTE_MODES = ("delay", "work", "off", "real")


# What every field of a ``Link`` must satisfy (the ``Link`` dataclass itself checks nothing):
# each rule is (holds for the value, what the error says it must be).
_LINK_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "latency_s": (lambda v: v >= 0, "must be >= 0"),
    "jitter_s": (lambda v: v >= 0, "must be >= 0"),
    "bandwidth_bytes_per_s": (lambda v: v > 0, "must be > 0"),
    "loss": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "retransmit_s": (lambda v: v >= 0, "must be >= 0"),
}
LINK_SPEC_KEYS = tuple(_LINK_RULES)


def _validate_link(link: Link, where: str = "Link") -> None:
    """ValueError naming the first bad field as ``<where>.<field>: must be ..., got ...``.
    NaN fails every rule; an infinite bandwidth is the ``Link`` default (no rate limit)."""
    for key, (ok, rule) in _LINK_RULES.items():
        value = getattr(link, key)
        if not ok(value):
            raise ValueError(f"{where}.{key}: {rule}, got {value:g}")


def link_from_spec(spec: Mapping[str, Any], where: str = "link") -> Link:
    """A ``Link`` from its ``emulation_spec`` form (``hgc.testbed.config.link_json``):
    a map of some of ``LINK_SPEC_KEYS`` to finite numbers (seconds, bytes/s); missing keys
    keep the ``Link`` defaults (no rate limit when ``bandwidth_bytes_per_s`` is absent).

    Strict, because a node's peers send it: raises ``ValueError`` naming ``where.<key>``
    (e.g. ``emulation_spec['edge-0'].link.latency_s: must be >= 0, got -1``) for a non-map,
    unknown keys, booleans or other non-numbers, NaN or infinite values, and values out of
    range (negative times, bandwidth <= 0, loss outside [0, 1)).
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: must be a map of {LINK_SPEC_KEYS}, got {type(spec).__name__}")
    unknown = sorted(set(map(str, spec)) - set(LINK_SPEC_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (allowed: {LINK_SPEC_KEYS})")
    values: dict[str, float] = {}
    for key, value in spec.items():
        # bool is an int to Python, but ``loss: true`` is a mistake, not a 100 % loss
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}.{key}: must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where}.{key}: must be a finite number, got {value!r}")
        values[key] = float(value)
    link = Link(**values)
    _validate_link(link, where)
    return link


@dataclass(frozen=True)
class ScheduledLink(Link):
    """A link that changes at iteration boundaries (a scenario's ``set-link`` fault):
    ``changes[k] = (first iteration, link in force from then on)``, sorted."""

    changes: tuple[tuple[int, Link], ...] = ()

    def at(self, iteration: int) -> Link:
        link: Link = self
        for first, changed in self.changes:
            if first <= iteration:
                link = changed
        return link


def link_of_entry(entry: Any, where: str) -> Link | None:
    """The ``link`` of one node's ``emulation_spec`` entry (``where`` names the entry), or
    None when it has none; ``ValueError`` (naming ``where.link...``) for a non-map entry or a
    bad link (see ``link_from_spec``). With ``link_changes`` (``[{iteration, link}, ...]``)
    a ``ScheduledLink``."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: must be a map, got {type(entry).__name__}")
    raw = entry.get("link")
    base = None if raw is None else link_from_spec(raw, f"{where}.link")
    changes = entry.get("link_changes")
    if changes is None:
        return base
    if not isinstance(changes, list):
        raise ValueError(f"{where}.link_changes: must be a list, got {type(changes).__name__}")
    parsed = []
    for k, c in enumerate(changes):
        at = f"{where}.link_changes[{k}]"
        if not isinstance(c, Mapping) or set(c) != {"iteration", "link"}:
            raise ValueError(f"{at}: must be a map of iteration and link")
        it = c["iteration"]
        if isinstance(it, bool) or not isinstance(it, int) or it < 0:
            raise ValueError(f"{at}.iteration: must be an integer >= 0, got {it!r}")
        parsed.append((it, link_from_spec(c["link"], f"{at}.link")))
    start = base or Link()
    fields = {f.name: getattr(start, f.name) for f in dataclasses.fields(Link)}
    return ScheduledLink(**fields, changes=tuple(sorted(parsed, key=lambda c: c[0])))


def link_is_trivial(link: Link) -> bool:
    """True when the link adds no delay at all (then no emulation is needed), now or after
    any of its scheduled changes."""
    if isinstance(link, ScheduledLink) and link.changes:
        plain = Link(link.latency_s, link.jitter_s, link.bandwidth_bytes_per_s, link.loss)
        return link_is_trivial(plain) and all(link_is_trivial(c) for _, c in link.changes)
    return (
        link.latency_s == 0
        and link.jitter_s == 0
        and math.isinf(link.bandwidth_bytes_per_s)
        and link.loss == 0
    )


def link_seed(sender: str, receiver: str, seed: int = 0) -> int:
    """Seed of the ``LinkEmulator`` of one link direction (``sender`` -> ``receiver``, node
    names): stable across runs and platforms (CRC-32, not ``hash``), distinct per direction
    and per link so jitter and loss are drawn independently everywhere, as the model assumes."""
    return zlib.crc32(f"{seed}:{sender}->{receiver}".encode())


class LinkEmulator:
    """Release times of the messages sent on one link, one direction (see module docstring)."""

    def __init__(self, link: Link, seed: int | Sequence[int] = 0) -> None:
        _validate_link(link)
        for _, changed in getattr(link, "changes", ()):
            _validate_link(changed)
        self.link = link
        self._rng = np.random.default_rng(seed)
        self._tx_free_at = -math.inf  # when the link finishes transmitting what it has
        self._last_release = -math.inf

    def schedule(self, nbytes: int, now: float, iteration: int = -1) -> float:
        """Time (same clock as ``now``, seconds) at which a message of ``nbytes`` arrives;
        ``iteration``: the message's, for a ``ScheduledLink`` (-1: outside training)."""
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        link = self.link.at(iteration) if isinstance(self.link, ScheduledLink) else self.link
        start = max(now, self._tx_free_at)
        self._tx_free_at = start + nbytes / link.bandwidth_bytes_per_s
        delay = link.latency_s
        if link.jitter_s:
            delay += self._rng.uniform(-link.jitter_s, link.jitter_s)
        if link.loss and self._rng.random() < link.loss:
            delay += link.retransmit_s
        release = max(self._tx_free_at + max(0.0, delay), self._last_release)
        self._last_release = release
        return release


class ComputeEmulator:
    """Per-iteration compute time of one worker under the straggler model.

    Parameters
    ----------
    profile : WorkerProfile
        ``shift_s`` (s per whole dataset) and ``rate`` (1/s per unit load).
    straggler : StragglerModel
        ``shifted-exponential``, ``markov`` or ``trace``.
    load : float
        The worker's load fraction l = |partitions| / K, in (0, 1].
    worker_index : int
        Edge-major index of the worker among all M workers (column of a trace).
    seed : int
        Same seed, same draws: iteration t always gets the same time. Draws are keyed by
        ``(seed, worker_index, iteration)``, so workers sharing the run seed still straggle
        independently (a trace replay ignores the seed).
    """

    def __init__(
        self,
        profile: WorkerProfile,
        straggler: StragglerModel,
        load: float,
        worker_index: int = 0,
        seed: int = 0,
        changes: Sequence[tuple[int, WorkerProfile]] = (),
    ) -> None:
        if not 0 < load <= 1:
            raise ValueError(f"load must be in (0, 1], got {load}")
        if profile.shift_s < 0 or profile.rate <= 0:
            raise ValueError(f"WorkerProfile needs shift_s >= 0 and rate > 0, got {profile}")
        if worker_index < 0:
            raise ValueError(f"worker_index must be >= 0, got {worker_index}")
        if straggler.kind not in ("shifted-exponential", "markov", "trace"):
            raise ValueError(f"StragglerModel.kind {straggler.kind!r} is not supported")
        if straggler.kind == "trace":
            trace = straggler.trace
            if trace is None or trace.ndim != 2 or trace.shape[0] < 1:
                raise ValueError("StragglerModel.trace must be a (iterations, M) array")
            if not 0 <= worker_index < trace.shape[1]:
                raise ValueError(
                    f"worker_index {worker_index} outside trace columns {trace.shape[1]}"
                )
        for _, p in changes:
            if p.shift_s < 0 or p.rate <= 0:
                raise ValueError(f"WorkerProfile needs shift_s >= 0 and rate > 0, got {p}")
        self.profile, self.straggler, self.load = profile, straggler, load
        self.worker_index, self.seed = worker_index, seed
        # (first iteration, profile) in force from then on: a ``set-device`` fault (drift)
        self.changes = tuple(sorted(changes, key=lambda c: c[0]))
        self._state_iteration = -1
        self._slow = False

    def _slow_at(self, iteration: int) -> bool:
        """Markov state at ``iteration`` (advanced deterministically from iteration 0)."""
        if iteration < self._state_iteration:
            self._state_iteration, self._slow = -1, False
        m = self.straggler
        while self._state_iteration < iteration:
            self._state_iteration += 1
            key = [self.seed, self.worker_index, self._state_iteration, 1]
            u = np.random.default_rng(key).random()
            self._slow = (u >= m.p_recover) if self._slow else (u < m.p_slow)
        return self._slow

    def profile_at(self, iteration: int) -> WorkerProfile:
        """The profile in force in ``iteration``: the last change at or before it."""
        profile = self.profile
        for first, changed in self.changes:
            if first <= iteration:
                profile = changed
        return profile

    def target_s(self, iteration: int) -> float:
        """Model compute time (seconds) of this worker in ``iteration`` (>= 0)."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        m, load = self.straggler, self.load
        if m.kind == "trace":
            assert m.trace is not None
            return (
                float(m.trace[iteration % m.trace.shape[0], self.worker_index])
                * load
                / m.trace_load
            )
        rng = np.random.default_rng([self.seed, self.worker_index, iteration, 0])
        profile = self.profile_at(iteration)
        t = profile.shift_s * load
        if math.isfinite(profile.rate):
            t += rng.exponential(load / profile.rate)
        if m.kind == "markov" and self._slow_at(iteration):
            t *= m.slowdown
        return float(t)

    def extra_delay_s(self, iteration: int, measured_s: float) -> float:
        """Seconds to add after a real computation of ``measured_s`` so the total is the
        model time (0 if the real computation was already slower)."""
        return max(0.0, self.target_s(iteration) - measured_s)


def emulate_compute(extra_s: float, mode: str = "delay") -> float:
    """Spend ``extra_s`` seconds; call it from the offload thread, never the I/O loop.

    ``delay`` sleeps; ``work`` does real floating-point work until the time is spent (so CPU
    quotas and contention act on it); ``off`` returns at once. Returns the seconds spent.
    """
    if mode not in COMPUTE_MODES:
        raise ValueError(f"compute emulation mode must be one of {COMPUTE_MODES}, got {mode!r}")
    if extra_s < 0:
        raise ValueError(f"extra_s must be >= 0, got {extra_s}")
    started = time.perf_counter()
    if mode in ("off", "real") or extra_s == 0:
        return 0.0
    deadline = started + extra_s
    if mode == "delay":
        time.sleep(extra_s)
    else:
        block = np.random.default_rng(0).random((64, 64))
        while time.perf_counter() < deadline:
            block = np.tanh(block @ block.T * 1e-3)  # small chunks: overshoot stays ~0.1 ms
    return time.perf_counter() - started
