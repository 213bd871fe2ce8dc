"""Restarts at every tier (issue 11): the parts of the protocol the state machines share.

A parent that restarted (same name, same key, same address) has lost its registrations, but
its children's connections come back by themselves (zmq reconnects) and keep heartbeating:
it hears from children it does not know. ``Rejoiner`` tells each such child, at most once
every ``SETUP_RETRY_S``, to register again (:class:`Rejoin`). The child keeps its set-up and
data; it answers a repeated identical set-up with Ready again, so the parent's barrier passes
without the child reloading anything.

Models are ordered by ``(epoch, iteration)`` (``model_key``): a resumed master starts a new
run epoch and its iteration numbers restart from its checkpoint, lower than the last ones the
tree saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from common.runtime.messages import NO_ITERATION, SETUP_RETRY_S, Rejoin
from services.common.actions import Action, SendDown


class Rejoiner:
    """Rate-limited :class:`Rejoin` requests from a parent to children it does not know."""

    def __init__(self, parent: str, retry_s: float = SETUP_RETRY_S) -> None:
        self.parent = parent
        self.retry_s = retry_s
        self._asked: dict[str, float] = {}  # child -> when it was last asked
        self.sent = 0  # Rejoin messages sent (tests, logs)

    def ask(self, peers: Iterable[str], known: Callable[[str], bool], now: float) -> list[Action]:
        """A :class:`Rejoin` to every peer in ``peers`` that ``known`` does not accept and
        that was not asked within ``retry_s``; forgets peers that became known."""
        acts: list[Action] = []
        for peer in sorted(peers):
            if known(peer):
                self._asked.pop(peer, None)
                continue
            last = self._asked.get(peer)
            if last is not None and now - last < self.retry_s:
                continue
            self._asked[peer] = now
            self.sent += 1
            acts.append(SendDown(peer, Rejoin(NO_ITERATION, f"{self.parent} restarted")))
        # bounded: only peers asked recently are kept
        for peer in [p for p, t in self._asked.items() if now - t > 10 * self.retry_s]:
            del self._asked[peer]
        return acts


def model_key(epoch: int, iteration: int) -> tuple[int, int]:
    """The order of models across master restarts."""
    return (epoch, iteration)
