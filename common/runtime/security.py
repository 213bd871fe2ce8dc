"""CurveZMQ keys, allow-lists and the ZAP handler that binds a node's name to its key.

Every node has a CURVE keypair. A parent (the master for edges, an edge for its workers)
holds an allow-list ``node name -> public key``; its ROUTER is a CURVE server whose ZAP
handler (:class:`ZapHandler`, one per zmq context) accepts only listed keys and sets the
frame property ``User-Id`` to the *name* the key belongs to. The transport
(``common.runtime.transport``) takes the sender's name from ``User-Id`` only, so a message
can never be attributed to a node whose secret key the sender does not hold.

Key folder of one node (what ``hgc keys`` writes per node, and what a container mounts)::

    NODE_DIR/secret.key        this node's keypair (zmq certificate format; mode 0600)
    NODE_DIR/parent.key        the parent's public key (edges, workers)
    NODE_DIR/allow/<child>.key the public key of every child it accepts (master, edges)

``load_auth(NODE_DIR)`` reads that into an :class:`AuthConfig` for ``TransportConfig.auth``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth

log = logging.getLogger(__name__)

SECRET_FILE = "secret.key"
PARENT_FILE = "parent.key"
ALLOW_DIR = "allow"
MAX_KEY_FILE_BYTES = 4096
ZAP_ENDPOINT = "inproc://zeromq.zap.01"


class KeyFileError(ValueError):
    """A key file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class AuthConfig:
    """CURVE settings of one node (z85-encoded keys, 40 ASCII bytes each).

    ``allowed``: for a parent, child name -> public key (only these may connect, and each
    only under its own name). ``parent_key``: for a child, the parent's public key (the
    child refuses a parent that cannot prove it).
    """

    public_key: bytes
    secret_key: bytes = field(repr=False)
    parent_key: bytes | None = None
    allowed: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, key in [("public_key", self.public_key), ("secret_key", self.secret_key)]:
            _check_z85(key, what)
        if self.parent_key is not None:
            _check_z85(self.parent_key, "parent_key")
        for name, key in self.allowed.items():
            _check_z85(key, f"allowed[{name!r}]")


def _check_z85(key: bytes, what: str) -> None:
    if not isinstance(key, bytes) or len(key) != 40:
        raise KeyFileError(f"{what}: expected a 40-character z85 CURVE key")
    try:
        zmq.utils.z85.decode(key)
    except Exception:  # noqa: BLE001 - any decode failure is the same error to the user
        raise KeyFileError(f"{what}: not a z85 CURVE key") from None


def curve_available() -> bool:
    return bool(zmq.has("curve"))


# ------------------------------------------------------------------ key files
def _read_small(path: Path) -> None:
    if not path.is_file():
        raise KeyFileError(f"{path}: no such key file")
    if path.stat().st_size > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path}: too large for a key file")


def load_public(path: str | Path) -> bytes:
    """The public key of a zmq certificate file (public or secret)."""
    p = Path(path)
    _read_small(p)
    try:
        public, _ = zmq.auth.load_certificate(p)
    except (ValueError, OSError) as exc:
        raise KeyFileError(f"{p}: not a CURVE certificate ({exc})") from None
    _check_z85(public, str(p))
    return public


def load_secret(path: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) of a secret certificate file."""
    p = Path(path)
    _read_small(p)
    try:
        public, secret = zmq.auth.load_certificate(p)
    except (ValueError, OSError) as exc:
        raise KeyFileError(f"{p}: not a CURVE certificate ({exc})") from None
    if secret is None:
        raise KeyFileError(f"{p}: holds no secret key")
    return public, secret


def load_auth(node_dir: str | Path) -> AuthConfig:
    """The :class:`AuthConfig` of a node's key folder (see the module docstring)."""
    d = Path(node_dir)
    if not d.is_dir():
        raise KeyFileError(f"{d}: no such key folder")
    public, secret = load_secret(d / SECRET_FILE)
    parent = load_public(d / PARENT_FILE) if (d / PARENT_FILE).exists() else None
    allowed: dict[str, bytes] = {}
    allow = d / ALLOW_DIR
    if allow.is_dir():
        for f in sorted(allow.glob("*.key")):
            allowed[f.stem] = load_public(f)
    return AuthConfig(public, secret, parent, allowed)


def _write_cert(path: Path, public: bytes, secret: bytes | None) -> None:
    lines = ["metadata", "curve", f'    public-key = "{public.decode()}"']
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    tmp.replace(path)


def write_keys(directory: str | Path, parents: Mapping[str, str | None]) -> dict[str, Path]:
    """Generate one keypair per node and each node's key folder; returns node -> folder.

    ``parents``: node name -> its parent's name (None for the master). Writes
    ``DIR/public/<node>.key`` (every public key, to distribute freely) and
    ``DIR/nodes/<node>/`` (``secret.key``, ``parent.key``, ``allow/<child>.key``): mount or
    copy only a node's own folder onto that node.
    """
    root = Path(directory)
    (root / "public").mkdir(parents=True, exist_ok=True)
    keys = {node: zmq.curve_keypair() for node in parents}
    out: dict[str, Path] = {}
    for node, (public, secret) in keys.items():
        _write_cert(root / "public" / f"{node}.key", public, None)
        d = root / "nodes" / node
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        _write_cert(d / SECRET_FILE, public, secret)
        parent = parents[node]
        if parent is not None:
            _write_cert(d / PARENT_FILE, keys[parent][0], None)
        children = [c for c, p in parents.items() if p == node]
        if children:
            (d / ALLOW_DIR).mkdir(exist_ok=True)
            for child in children:
                _write_cert(d / ALLOW_DIR / f"{child}.key", keys[child][0], None)
        out[node] = d
    return out


def tree_parents(workers_per_edge: Iterable[int]) -> dict[str, str | None]:
    """node -> parent for the standard tree (``master``, ``edge-i``, ``worker-i-j``)."""
    parents: dict[str, str | None] = {"master": None}
    for i, m in enumerate(workers_per_edge):
        parents[f"edge-{i}"] = "master"
        for j in range(m):
            parents[f"worker-{i}-{j}"] = f"edge-{i}"
    return parents


# ------------------------------------------------------------------ ZAP
class ZapHandler:
    """The ZAP handler of one zmq context (libzmq allows one per context).

    Each CURVE server (parent endpoint) registers its own ZAP domain with its allow-list;
    a client is accepted only when its public key is listed in that domain, and ``User-Id``
    of its messages is then the listed name. Denials are logged with the peer's address.
    """

    _by_context: dict[int, ZapHandler] = {}
    _lock = threading.Lock()

    @classmethod
    def for_context(cls, context: zmq.Context) -> ZapHandler:  # type: ignore[type-arg]
        with cls._lock:
            handler = cls._by_context.get(id(context))
            if handler is None or not handler._thread.is_alive():
                handler = cls(context)
                cls._by_context[id(context)] = handler
            return handler

    def __init__(self, context: zmq.Context) -> None:  # type: ignore[type-arg]
        self._domains: dict[str, dict[bytes, str]] = {}
        self._guard = threading.Lock()
        self._socket = context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(ZAP_ENDPOINT)
        self._thread = threading.Thread(target=self._serve, name="hgc-zap", daemon=True)
        self._thread.start()

    def register(self, domain: str, allowed: Mapping[str, bytes]) -> None:
        table = {zmq.utils.z85.decode(key): name for name, key in allowed.items()}
        with self._guard:
            self._domains[domain] = table

    def unregister(self, pattern: str) -> None:
        """Forget a domain (``hgc:*:<id>``: whatever name the socket of that id had)."""
        suffix = pattern.rsplit(":", 1)[-1]
        with self._guard:
            for domain in [d for d in self._domains if d.rsplit(":", 1)[-1] == suffix]:
                del self._domains[domain]

    def _serve(self) -> None:
        sock = self._socket
        while True:
            try:
                msg = sock.recv_multipart()
            except zmq.ZMQError:
                return  # the context was terminated
            try:
                sock.send_multipart(self._reply(msg))
            except zmq.ZMQError:
                return

    def _reply(self, msg: list[bytes]) -> list[bytes]:
        if len(msg) < 6:
            return [b"1.0", msg[1] if len(msg) > 1 else b"", b"400", b"bad request", b"", b""]
        version, request_id, domain, address, _identity, mechanism = msg[:6]
        credentials = msg[6:]
        where = address.decode("utf-8", "replace")
        if version != b"1.0" or mechanism != b"CURVE" or len(credentials) != 1:
            log.warning("auth: refused a %s connection from %s", mechanism.decode(), where)
            return [b"1.0", request_id, b"400", b"CURVE only", b"", b""]
        with self._guard:
            table = self._domains.get(domain.decode("utf-8", "replace"), {})
            name = table.get(credentials[0])
        if name is None:
            z = zmq.utils.z85.encode(credentials[0]).decode() if len(credentials[0]) == 32 else "?"
            log.warning(
                "auth: %s refused an unknown key %s from %s", domain.decode(), z[:8] + "...", where
            )
            return [b"1.0", request_id, b"400", b"unknown key", b"", b""]
        return [b"1.0", request_id, b"200", b"OK", name.encode(), b""]


def make_server(socket: zmq.Socket, name: str, auth: AuthConfig) -> None:  # type: ignore[type-arg]
    """Make ``socket`` (before bind) a CURVE server whose clients must be in ``auth.allowed``."""
    handler = ZapHandler.for_context(socket.context)
    domain = f"hgc:{name}:{id(socket)}"
    handler.register(domain, auth.allowed)
    socket.setsockopt_string(zmq.ZAP_DOMAIN, domain)
    socket.setsockopt(zmq.CURVE_SERVER, 1)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, auth.public_key)
    socket.setsockopt(zmq.CURVE_SECRETKEY, auth.secret_key)


def unregister_server(socket: zmq.Socket) -> None:  # type: ignore[type-arg]
    """Forget the allow-list of a closed server socket."""
    with ZapHandler._lock:
        handler = ZapHandler._by_context.get(id(socket.context))
    if handler is not None:
        handler.unregister(f"hgc:*:{id(socket)}")


def make_client(socket: zmq.Socket, auth: AuthConfig) -> None:  # type: ignore[type-arg]
    """Make ``socket`` (before connect) a CURVE client of the parent ``auth.parent_key``."""
    if auth.parent_key is None:
        raise KeyFileError("no parent key: a child needs its parent's public key (parent.key)")
    socket.setsockopt(zmq.CURVE_SERVERKEY, auth.parent_key)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, auth.public_key)
    socket.setsockopt(zmq.CURVE_SECRETKEY, auth.secret_key)
