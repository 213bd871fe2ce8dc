"""ZeroMQ transport between a parent (ROUTER, binds) and its children (DEALER, connect).

Children connect with a stable identity, their node name (``"edge-1"``, ``"worker-1-2"``);
the parent addresses them by it. One thread, no I/O threads of our own: a service drives
its state machine from ``Loop.poll`` (events in) and calls ``send`` (actions out)::

    metrics = EdgeMetrics(CollectorRegistry(), edge=1)
    down = ParentEndpoint("edge-1", metrics, bind="tcp://127.0.0.1:0")   # to workers
    up = ChildEndpoint("edge-1", metrics, connect="tcp://127.0.0.1:5555", parent="master")
    loop = Loop(down, up, offload=None)
    up.send(Register(iteration=-1, role="edge", node="edge-1", edge=1, worker=-1))
    while running:
        for event in loop.poll(timeout_s=0.1):
            match event:
                case Received(peer, message): ...    # peer: node name of the sender
                case PeerUp(peer): ...                # first heard, or heard again after PeerDown
                case PeerDown(peer): ...              # silent for liveness x heartbeat interval
                case TaskDone(key, result, error): ...  # from the Offload thread
        down.send("worker-1-0", msg)

Guarantees:

- Heartbeats both ways every ``heartbeat_interval_s`` (children always, parents to live
  children); any valid message counts as a sign of life; heartbeats are consumed here,
  never returned. A peer silent for ``liveness * heartbeat_interval_s`` gives ``PeerDown``.
- Malformed, oversized, unknown-op or wrong-version frames, and frames from identities not
  in ``allowed_peers``, are dropped and counted in ``hgc_<role>_messages_dropped_total``
  with the reason; the loop never raises on peer input.
- Sends never block: a full queue (high-water mark) or an unknown/disconnected child drops
  the message, counts it (``hwm`` / ``unknown_peer``) and returns ``False``.
- ``drop_if_late(msg, current_iteration, metrics)``: the service's check for messages of an
  old iteration (counted as ``late``).
- ``set_link(peer, link)``: in-process link emulation of outgoing messages (heartbeats are
  exempt so a slow link is not mistaken for a dead peer).

Arrays in a sent message are transmitted without copying: do not mutate them afterwards.
Arrays in received messages are read-only views on the received frames (see ``codec``).
"""

from __future__ import annotations

import abc
import heapq
import itertools
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq
from zmq.utils.monitor import recv_monitor_message

from common.perf.system import Link
from common.runtime.codec import DEFAULT_LIMITS, Frame, Limits, ProtocolError, decode, encode
from common.runtime.emulation import LinkEmulator, link_is_trivial
from common.runtime.memory import tune_allocator
from common.runtime.messages import NO_ITERATION, Heartbeat, Message
from common.runtime.metrics import NodeMetrics
from common.runtime.offload import Offload, TaskDone
from common.runtime.security import AuthConfig, make_client, make_server, unregister_server

log = logging.getLogger(__name__)

_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


@dataclass(frozen=True)
class Received:
    peer: str
    message: Message
    nbytes: int = 0


@dataclass(frozen=True)
class PeerUp:
    peer: str


@dataclass(frozen=True)
class PeerDown:
    peer: str


Event = Received | PeerUp | PeerDown | TaskDone


@dataclass(frozen=True)
class TransportConfig:
    heartbeat_interval_s: float = 1.0
    liveness: int = 3  # missed heartbeat intervals before a peer is declared dead
    sndhwm: int = 1000  # messages queued per peer before sends drop
    rcvhwm: int = 1000
    linger_ms: int = 1000  # on close, how long queued messages (e.g. Shutdown) may still go out
    max_batch: int = 256  # messages read per socket per poll round (fairness between sockets)
    # a child reconnecting to a lost parent backs off from reconnect_ms up to reconnect_max_ms
    reconnect_ms: int = 100
    reconnect_max_ms: int = 2000
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    # Creating an endpoint applies memory.tune_allocator() once per process (glibc): large
    # received gradients then reuse heap pages instead of being page-faulted in per message
    # (bench_transport, 40 MB: ~0.65 of raw TCP with glibc defaults, ~1.0 tuned).
    tune_allocator: bool = True
    # CURVE (common.runtime.security): None = plain TCP, anyone who can connect is trusted
    auth: AuthConfig | None = None

    def __post_init__(self) -> None:
        if not self.heartbeat_interval_s > 0:
            raise ValueError(f"heartbeat_interval_s must be > 0, got {self.heartbeat_interval_s}")
        for name in ("liveness", "sndhwm", "rcvhwm", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"TransportConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.linger_ms < 0:
            raise ValueError(f"linger_ms must be >= 0, got {self.linger_ms}")
        if not 0 < self.reconnect_ms <= self.reconnect_max_ms:
            raise ValueError(
                "need 0 < reconnect_ms <= reconnect_max_ms, got "
                f"{self.reconnect_ms}, {self.reconnect_max_ms}"
            )


_allocator_tuned = False


def _tune_allocator_once() -> None:
    """Process-wide and irreversible, so done at most once (the first endpoint asks)."""
    global _allocator_tuned
    if not _allocator_tuned:
        _allocator_tuned = True
        tune_allocator()


def drop_if_late(msg: Message, current_iteration: int, metrics: NodeMetrics) -> bool:
    """True (and counted as ``late``) if ``msg`` belongs to an iteration before the current one."""
    if msg.iteration != NO_ITERATION and msg.iteration < current_iteration:
        metrics.dropped("late")
        return True
    return False


class Endpoint(abc.ABC):
    """Common part of both ends: socket options, decoding, liveness, delayed sends."""

    def __init__(
        self,
        name: str,
        socket_type: int,
        metrics: NodeMetrics,
        config: TransportConfig,
        context: zmq.Context | None,
    ) -> None:
        if not name:
            raise ValueError("endpoint name (the node name) must not be empty")
        self.name = name
        self.metrics = metrics
        self.config = config
        if config.tune_allocator:
            _tune_allocator_once()
        self.socket = (context or zmq.Context.instance()).socket(socket_type)
        s = self.socket
        s.setsockopt(zmq.SNDHWM, config.sndhwm)
        s.setsockopt(zmq.RCVHWM, config.rcvhwm)
        s.setsockopt(zmq.LINGER, config.linger_ms)
        # zmq drops a peer that sends a frame over this size before we ever allocate it
        s.setsockopt(zmq.MAXMSGSIZE, config.limits.max_total_bytes)
        self._last_heard: dict[str, float] = {}
        self._alive: set[str] = set()
        self._next_heartbeat = time.monotonic()
        self._links: dict[str, LinkEmulator] = {}
        self._delayed: list[tuple[float, int, str, list[Frame]]] = []
        self._seq = itertools.count()
        self._closed = False
        self._logged_unexpected = False

    # ------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _raw_send(self, peer: str, frames: list[Frame]) -> None: ...

    @abc.abstractmethod
    def _split(self, frames: list[zmq.Frame]) -> tuple[str | None, list[zmq.Frame]]: ...

    @abc.abstractmethod
    def _heartbeat_targets(self) -> list[str]: ...

    # ------------------------------------------------------------ sending
    @property
    def alive(self) -> frozenset[str]:
        return frozenset(self._alive)

    def set_link(self, peer: str, link: Link | None, seed: int = 0) -> None:
        """Delay messages to ``peer`` as ``link`` would (None or a trivial link: no delay)."""
        if link is None or link_is_trivial(link):
            self._links.pop(peer, None)
        else:
            self._links[peer] = LinkEmulator(link, seed)
        source = f"{type(self).__name__}:{self.name}"  # an edge has two endpoints
        self.metrics.emulation_source("inprocess_link", source, bool(self._links))

    def _send_frames(
        self, peer: str, frames: list[Frame], emulate: bool = True, iteration: int = -1
    ) -> bool:
        if self._closed:
            raise RuntimeError(f"endpoint {self.name} is closed")
        link = self._links.get(peer) if emulate else None
        if link is not None:
            nbytes = sum(memoryview(f).nbytes for f in frames)
            release = link.schedule(nbytes, time.monotonic(), iteration)
            heapq.heappush(self._delayed, (release, next(self._seq), peer, frames))
            return True
        try:
            self._raw_send(peer, frames)
        except zmq.Again:
            self.metrics.dropped("hwm")
            return False
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                self.metrics.dropped("unknown_peer")
                return False
            raise
        self.metrics.sent_bytes.inc(sum(memoryview(f).nbytes for f in frames))
        return True

    # ------------------------------------------------------------ receiving
    def _receive(self, now: float) -> list[Event]:
        events: list[Event] = []
        for _ in range(self.config.max_batch):
            try:
                raw = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.metrics.received_bytes.inc(sum(len(f) for f in raw))
            peer, frames = self._split(raw)
            if peer is None:
                continue  # counted by _split
            msg = self._decode(peer, frames)
            if msg is None or not self._claim_ok(peer, msg, frames):
                continue
            if peer not in self._alive:
                self._alive.add(peer)
                self.metrics.peers_alive.set(len(self._alive))
                events.append(PeerUp(peer))
            self._last_heard[peer] = now
            if not isinstance(msg, Heartbeat):
                events.append(Received(peer, msg, sum(len(f) for f in frames)))
        return events

    def _decode(self, peer: str, frames: list[zmq.Frame]) -> Message | None:
        """The decoded message, or None after counting why it was dropped.

        ``decode`` raises only ``ProtocolError``; anything else would be a codec bug, and a
        bug triggered by peer input must cost one dropped message, never the node."""
        try:
            return decode(frames, self.config.limits)
        except ProtocolError as exc:
            self.metrics.dropped(exc.reason)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            self.metrics.dropped("malformed")
            if not self._logged_unexpected:  # once: a flood of such frames must not flood logs
                self._logged_unexpected = True
                log.error("%s: decode of a frame from %r raised %r", self.name, peer, exc)
        return None

    def _claim_ok(self, peer: str, msg: Message, frames: list[zmq.Frame]) -> bool:
        return True

    # ------------------------------------------------------------ timers
    @property
    def pending_delayed(self) -> int:
        """Messages held back by in-process link emulation, not yet handed to zmq."""
        return len(self._delayed)

    def next_deadline(self) -> float:
        """Monotonic time of the next heartbeat, liveness check or delayed release."""
        times = [self._next_heartbeat]
        if self._delayed:
            times.append(self._delayed[0][0])
        if self._alive:
            expiry = self.config.liveness * self.config.heartbeat_interval_s
            times.append(min(self._last_heard[p] for p in self._alive) + expiry)
        return min(times)

    def _tick(self, now: float) -> list[Event]:
        self._drain_monitor()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, peer, frames = heapq.heappop(self._delayed)
            self._send_frames(peer, frames, emulate=False)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_interval_s
            targets = self._heartbeat_targets()
            if targets:
                frames = encode(Heartbeat(iteration=NO_ITERATION, node=self.name))
                for peer in targets:
                    self._send_heartbeat(peer, frames)
        events: list[Event] = []
        if self.socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return events  # unread input may be the very heartbeats we would miss
        expiry = self.config.liveness * self.config.heartbeat_interval_s
        for peer in sorted(self._alive):
            if now - self._last_heard[peer] > expiry:
                self._alive.discard(peer)
                events.append(PeerDown(peer))
        if events:
            self.metrics.peers_alive.set(len(self._alive))
        return events

    def _drain_monitor(self) -> None:  # noqa: B027 - a hook: only a CURVE server monitors
        return None

    def _send_heartbeat(self, peer: str, frames: list[Frame]) -> None:
        # A heartbeat that cannot go out is not a dropped message: the peer's liveness
        # check is exactly what notices it.
        try:
            self._raw_send(peer, frames)
            self.metrics.sent_bytes.inc(sum(memoryview(f).nbytes for f in frames))
        except zmq.ZMQError:
            pass

    def poll(self, timeout_s: float) -> list[Event]:
        """Shorthand for ``Loop(self).poll(timeout_s)``."""
        return Loop(self).poll(timeout_s)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close_extra()
            self.socket.close()

    def _close_extra(self) -> None:  # noqa: B027 - a hook: only a CURVE server has extras
        return None


class ParentEndpoint(Endpoint):
    """ROUTER that binds; children are addressed by their node name.

    ``bind`` may use port 0 (``tcp://127.0.0.1:0``); ``address`` / ``port`` give the port
    chosen. ``allowed_peers``: if given (a set of names, or a predicate on a name for a
    membership that changes, e.g. an edge that learns its worker count at set-up), messages
    from other identities are dropped (``unknown_peer``) before decoding; they never count
    as a sign of life.
    """

    def __init__(
        self,
        name: str,
        metrics: NodeMetrics,
        bind: str = "tcp://127.0.0.1:0",
        *,
        allowed_peers: set[str] | frozenset[str] | Callable[[str], bool] | None = None,
        config: TransportConfig | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        super().__init__(name, zmq.ROUTER, metrics, config or TransportConfig(), context)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unknown peer -> error, not silence
        self.auth = self.config.auth
        # With CURVE the sender's name is the ZAP User-Id (the name its key is listed under),
        # never the routing id it chose: _route maps each name to the routing id of its
        # newest authenticated connection (a restarted child takes its name back).
        self._route: dict[str, bytes] = {}
        self._retired: set[bytes] = set()
        self._monitor: zmq.Socket | None = None  # type: ignore[type-arg]
        self._auth_logged = 0
        if self.auth is None:
            self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted child takes its name
        else:
            make_server(self.socket, name, self.auth)
            self._monitor = self.socket.get_monitor_socket(_HANDSHAKE_EVENTS)
        self.allowed_peers: frozenset[str] | Callable[[str], bool] | None = (
            allowed_peers
            if allowed_peers is None or callable(allowed_peers)
            else frozenset(allowed_peers)
        )
        try:
            self.socket.bind(bind)
        except zmq.ZMQError as exc:
            self.close()
            raise OSError(f"{name}: cannot bind {bind}: {exc}") from exc
        self.address: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.port = int(self.address.rsplit(":", 1)[1]) if self.address.startswith("tcp") else 0

    def send(self, peer: str, msg: Message) -> bool:
        """Queue ``msg`` for child ``peer``; False (and counted) if it cannot be queued."""
        return self._send_frames(peer, encode(msg), iteration=msg.iteration)

    def send_many(self, peers: list[str] | tuple[str, ...], msg: Message) -> dict[str, bool]:
        """Send one message to several children, encoding it once."""
        frames = encode(msg)
        return {peer: self._send_frames(peer, frames, iteration=msg.iteration) for peer in peers}

    def _raw_send(self, peer: str, frames: list[Frame]) -> None:
        if self.auth is None:
            rid = peer.encode()
        else:
            route = self._route.get(peer)
            if route is None:  # never authenticated: nobody to send to
                raise zmq.ZMQError(zmq.EHOSTUNREACH)
            rid = route
        self.socket.send_multipart([rid, *frames], zmq.NOBLOCK, copy=False)

    def _split(self, frames: list[zmq.Frame]) -> tuple[str | None, list[zmq.Frame]]:
        if self.auth is not None:
            return self._split_authenticated(frames)
        try:
            peer = frames[0].bytes.decode("utf-8")
        except UnicodeDecodeError:
            peer = None  # zmq's generated identities: a child that did not name itself
        if peer is None or not self._allowed(peer):
            self.metrics.dropped("unknown_peer")
            return None, []
        return peer, frames[1:]

    def _split_authenticated(self, frames: list[zmq.Frame]) -> tuple[str | None, list[zmq.Frame]]:
        rid = frames[0].bytes
        try:
            got = frames[-1].get("User-Id") if len(frames) > 1 else None
        except zmq.ZMQError:
            got = None
        user = got if isinstance(got, str) else None
        if not user:
            self._refuse("no_identity", frames, "a message without an authenticated identity")
            return None, []
        if not self._allowed(user):
            self.metrics.dropped("unknown_peer")
            return None, []
        if self._route.get(user) != rid:
            if rid in self._retired:
                self.metrics.dropped("late")  # the connection a restart replaced
                return None, []
            old = self._route.get(user)
            if old is not None:
                self._retired.add(old)
                log.warning("%s: %s reconnected (new connection, same key)", self.name, user)
            self._route[user] = rid
        return user, frames[1:]

    def _claim_ok(self, peer: str, msg: Message, frames: list[zmq.Frame]) -> bool:
        """With CURVE, a message naming a node (register, ready, heartbeat) must name the
        node whose key sent it."""
        claimed = getattr(msg, "node", None)
        if self.auth is None or claimed is None or claimed == peer:
            return True
        self._refuse("impersonation", frames, f"{peer} (by its key) claimed to be {claimed!r}")
        return False

    def _refuse(self, reason: str, frames: list[zmq.Frame], what: str) -> None:
        self.metrics.auth_rejected(reason)
        try:
            address = frames[-1].get("Peer-Address")
        except zmq.ZMQError:
            address = "?"
        self._log_refusal(f"{self.name}: refused {what} from {address} ({reason})")

    def _log_refusal(self, text: str) -> None:
        # every refusal is counted; the log gets the first 20, then one in 100 (no flooding)
        self._auth_logged += 1
        if self._auth_logged <= 20 or self._auth_logged % 100 == 0:
            log.warning("%s [refusal %d]", text, self._auth_logged)

    def _drain_monitor(self) -> None:
        if self._monitor is None:
            return
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            failed_auth = event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH
            reason = "unknown_key" if failed_auth else "handshake"
            self.metrics.auth_rejected(reason)
            raw = event.get("endpoint", b"")
            where = raw.decode() if isinstance(raw, bytes) else str(raw)
            self._log_refusal(
                f"{self.name}: CURVE handshake failed on {where} ({reason}; a client without "
                "a listed key, or a plain one)"
            )

    def _close_extra(self) -> None:
        if self._monitor is not None:
            self._drain_monitor()
            self.socket.disable_monitor()
            self._monitor.close(0)
            self._monitor = None
        unregister_server(self.socket)

    def _allowed(self, peer: str) -> bool:
        allowed = self.allowed_peers
        if allowed is None:
            return True
        return allowed(peer) if callable(allowed) else peer in allowed

    def _heartbeat_targets(self) -> list[str]:
        return sorted(self._alive)


class ChildEndpoint(Endpoint):
    """DEALER that connects to its parent with identity ``name``; events name the parent
    ``parent`` (e.g. ``"master"`` or ``"edge-0"``)."""

    def __init__(
        self,
        name: str,
        metrics: NodeMetrics,
        connect: str,
        *,
        parent: str,
        config: TransportConfig | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        super().__init__(name, zmq.DEALER, metrics, config or TransportConfig(), context)
        self.parent = parent
        if self.config.auth is None:
            self.socket.setsockopt(zmq.ROUTING_ID, name.encode())
        else:
            # the parent names us by our key, not by this id: a unique id per connection
            # keeps a restarted node's new connection apart from the old one
            self.socket.setsockopt(zmq.ROUTING_ID, f"{name}/{os.urandom(4).hex()}".encode())
            make_client(self.socket, self.config.auth)
        self.socket.setsockopt(zmq.RECONNECT_IVL, self.config.reconnect_ms)
        self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, self.config.reconnect_max_ms)
        self.socket.connect(connect)

    def send(self, msg: Message) -> bool:
        return self._send_frames(self.parent, encode(msg), iteration=msg.iteration)

    def _raw_send(self, peer: str, frames: list[Frame]) -> None:
        self.socket.send_multipart(frames, zmq.NOBLOCK, copy=False)

    def _split(self, frames: list[zmq.Frame]) -> tuple[str | None, list[zmq.Frame]]:
        return self.parent, frames

    def _heartbeat_targets(self) -> list[str]:
        return [self.parent]  # always: that is how a parent learns we are (still) here


class Loop:
    """Polls several endpoints (an edge has one up, one down) and an ``Offload`` together.

    Timers (delayed sends of the link emulation, heartbeats) fire on time to well under a
    millisecond: ``zmq_poll`` counts whole milliseconds, so the loop polls for the whole
    milliseconds before a timer (rounded *down*) and sleeps the sub-millisecond rest. The
    earlier rule, rounding the poll *up*, released every emulated message 0-1 ms (0.5 ms on
    average) late, a cost per hop the model does not have (``hgc.testbed.overhead``'s hop
    profile, docs/running.md). ``precise_timers = False`` (or ``HGC_COARSE_TIMERS=1`` in a
    node's environment) restores it, for before/after comparisons only.
    """

    precise_timers = os.environ.get("HGC_COARSE_TIMERS") != "1"
    _SLEEP_BELOW_S = 0.001  # a rest shorter than this is slept, not polled

    def __init__(self, *endpoints: Endpoint, offload: Offload | None = None) -> None:
        if not endpoints:
            raise ValueError("Loop needs at least one endpoint")
        self.endpoints = endpoints
        self.offload = offload
        self._poller = zmq.Poller()
        for ep in endpoints:
            self._poller.register(ep.socket, zmq.POLLIN)
        if offload is not None:
            self._poller.register(offload.fileno(), zmq.POLLIN)

    def poll(self, timeout_s: float) -> list[Event]:
        """Service timers and sockets; return as soon as there are events, or after
        ``timeout_s`` seconds with an empty list."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            now = time.monotonic()
            wake = min([deadline, *(ep.next_deadline() for ep in self.endpoints)])
            ready = self._wait(wake - now)
            now = time.monotonic()
            events: list[Event] = []
            # Read before checking liveness: after a stall the peers' heartbeats are waiting
            # in the sockets, and they must not be declared dead for our own slowness.
            for ep in self.endpoints:
                if ep.socket in ready:
                    events.extend(ep._receive(now))
            if self.offload is not None and self.offload.fileno() in ready:
                events.extend(self.offload.drain())
            for ep in self.endpoints:
                events.extend(ep._tick(now))
            if events or now >= deadline:
                return events

    def _wait(self, rest_s: float) -> dict[object, int]:
        """Poll the sockets for at most ``rest_s`` seconds; what is ready."""
        if not self.precise_timers:
            return dict(self._poller.poll(max(0, math.ceil(rest_s * 1000))))
        if rest_s <= 0:
            return dict(self._poller.poll(0))
        if rest_s >= self._SLEEP_BELOW_S:
            return dict(self._poller.poll(math.floor(rest_s * 1000)))
        ready = dict(self._poller.poll(0))  # input first; else sleep the sub-ms rest
        if not ready:
            time.sleep(rest_s)
        return ready
