"""Start-up plumbing every service shares: flags with ``HGC_*`` environment defaults, the
ready file, the metrics endpoint, signal handling, and ``run_node``, the one start-up
sequence of every role's ``main()``.

Every flag ``--some-flag`` can also come from ``HGC_SOME_FLAG`` (the flag wins), so the same
container image runs any role from its environment alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from prometheus_client import CollectorRegistry

from common.runtime.metrics import NodeMetrics, serve_metrics
from common.runtime.security import KeyFileError, load_auth
from common.runtime.transport import TransportConfig
from services.common.runner import NodeRunner

EXTERNAL_EMULATION_ENV = "HGC_EMULATION_EXTERNAL"

R = TypeVar("R", bound=NodeRunner)


def env_name(flag: str) -> str:
    """``--edge-addr`` -> ``HGC_EDGE_ADDR``."""
    return "HGC_" + flag.lstrip("-").replace("-", "_").upper()


class NodeParser(argparse.ArgumentParser):
    """Argument errors as one line on stderr and exit status 2 (no usage block): the
    launcher shows a failed node's last log line, which must say what was wrong."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser(prog: str, description: str | None) -> NodeParser:
    return NodeParser(prog=prog, description=description)


def port_number(text: str) -> int:
    """A TCP port, 0..65535 (0 = any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 0..65535, got {port}")
    return port


# tcp://HOST:PORT with HOST a name, an IPv4 address, [IPv6] or * (bind only)
_TCP_ADDRESS = re.compile(r"tcp://(\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d+)")


def zmq_address(text: str, *, bind: bool = False) -> str:
    """``tcp://host:port`` (port 0 and host ``*`` only where we bind) or ``ipc://path``."""
    if text.startswith("ipc://") and len(text) > len("ipc://"):
        return text
    match = _TCP_ADDRESS.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected tcp://host:port, got {text!r}")
    port, lowest = int(match.group(2)), 0 if bind else 1
    if not lowest <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in {lowest}..65535, got {port}")
    if match.group(1) == "*" and not bind:
        raise argparse.ArgumentTypeError(f"cannot connect to host '*': {text!r}")
    return text


def seconds(text: str) -> float:
    """A finite duration >= 0, in seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be finite and >= 0, got {text!r}")
    return value


def bind_address(text: str) -> str:
    """A ``zmq_address`` to bind: port 0 (any free port) and host ``*`` allowed."""
    return zmq_address(text, bind=True)


def add_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    type: Callable[[str], Any] = str,
    default: Any = None,
    required: bool = False,
    help: str = "",
) -> None:
    """A flag whose default comes from ``HGC_<FLAG>`` when set (a bad value names both)."""
    env = env_name(flag)
    convert = type

    def checked(text: str) -> Any:
        # argparse shows only an ArgumentTypeError's own text: make it name the env too
        try:
            return convert(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (flag {flag} or env {env})") from None
        except (TypeError, ValueError):
            name = getattr(convert, "__name__", "")
            raise argparse.ArgumentTypeError(
                f"invalid {name} value: {text!r} (flag {flag} or env {env})"
            ) from None

    raw = os.environ.get(env)
    if raw is not None:
        try:
            default = convert(raw)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            parser.error(f"{env}={raw!r} (for {flag}): {exc}")
        required = False
    suffix = f" (env {env})"
    parser.add_argument(flag, type=checked, default=default, required=required, help=help + suffix)


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--metrics-host", default="127.0.0.1", help="address for /metrics")
    add_flag(
        parser, "--metrics-port", type=port_number, default=0, help="/metrics port; 0 = any free"
    )
    add_flag(
        parser,
        "--metrics-linger-s",
        type=seconds,
        default=0.0,
        help="after training, keep /metrics up until scraped once more, at most this long "
        "(so the scraper sees the final values); 0 = exit at once",
    )
    add_flag(parser, "--ready-file", help="write {node, pid, port, metrics_port} here (JSON)")
    add_flag(parser, "--heartbeat-s", type=float, default=0.5, help="heartbeat interval, s")
    add_flag(parser, "--liveness", type=int, default=4, help="missed heartbeats = peer down")
    add_flag(
        parser,
        "--orphan-timeout-s",
        type=float,
        default=60.0,
        help="edges/workers exit (status 3) after their parent is down this long; 0 = never",
    )
    add_flag(
        parser,
        "--keys",
        help="this node's CURVE key folder (secret.key, parent.key, allow/); "
        "without it the node runs unauthenticated, with a WARNING",
    )


class StartupError(Exception):
    """A node cannot start as asked; the message names the flag and its env variable."""


def serve_node_metrics(registry: CollectorRegistry, args: argparse.Namespace) -> tuple[Any, int]:
    """``serve_metrics`` on ``--metrics-host``/``--metrics-port``; a port in use or a bad
    host is a StartupError naming both flags (and env variables) and the port."""
    try:
        return serve_metrics(registry, args.metrics_host, args.metrics_port)
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise StartupError(
            f"--metrics-port {args.metrics_port} on --metrics-host {args.metrics_host} "
            f"(env {env_name('--metrics-port')}, {env_name('--metrics-host')}): "
            f"cannot serve /metrics: {why}"
        ) from None


def transport_config(args: argparse.Namespace, name: str = "node") -> TransportConfig:
    """Heartbeats and, from ``--keys``, CURVE; a bad key folder is one line and exit 2."""
    if args.heartbeat_s <= 0:
        raise SystemExit(fail(f"--heartbeat-s: must be > 0, got {args.heartbeat_s}"))
    keys = getattr(args, "keys", None)
    auth = None
    if keys:
        try:
            auth = load_auth(keys)
        except KeyFileError as exc:
            raise SystemExit(fail(f"{name}: --keys (env {env_name('--keys')}): {exc}")) from None
    else:
        print(
            f"WARNING: {name}: CURVE is off (no --keys): any process that reaches this node's "
            "ports can join, read and inject messages",
            file=sys.stderr,
            flush=True,
        )
    return TransportConfig(heartbeat_interval_s=args.heartbeat_s, liveness=args.liveness, auth=auth)


def announce(path: str | None, info: dict[str, Any]) -> None:
    """Print ``HGC_READY {json}`` and, if asked, write the JSON atomically to ``path``.

    The cluster library learns bound ports (port 0) and pids from this.
    """
    line = json.dumps(info, sort_keys=True)
    print(f"HGC_READY {line}", flush=True)
    if path:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(line + "\n")
        tmp.replace(path)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT end the loop cleanly (status 130); only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def fail(message: str) -> int:
    """A start-up error: one line on stderr, exit status 2."""
    print(message, file=sys.stderr, flush=True)
    return 2


def mark_external_emulation(metrics: NodeMetrics, environ: dict[str, str] | None = None) -> None:
    """Export emulation done outside the process (cgroup quota, tc qdiscs), which the
    launcher / container entry point lists in ``HGC_EMULATION_EXTERNAL`` (comma-separated
    mechanisms), as ``hgc_<role>_emulation_active{mechanism} = 1``. An unknown mechanism is
    an error naming the variable."""
    raw = (environ if environ is not None else os.environ).get(EXTERNAL_EMULATION_ENV, "")
    for mechanism in filter(None, (m.strip() for m in raw.split(","))):
        try:
            metrics.emulation_active(mechanism, True)
        except ValueError as exc:
            raise ValueError(f"{EXTERNAL_EMULATION_ENV}={raw!r}: {exc}") from None


def inprocess_links_enabled(environ: dict[str, str] | None = None) -> bool:
    """False when ``HGC_INPROCESS_LINK=0``: the container's kernel (netem) already delays this
    node's traffic, so ``link`` entries of the emulation spec are not applied in-process."""
    value = (environ if environ is not None else os.environ).get("HGC_INPROCESS_LINK", "1")
    if value not in ("0", "1"):
        raise ValueError(f"HGC_INPROCESS_LINK={value!r}: must be 0 or 1")
    return value == "1"


def run_node(
    name: str,
    args: argparse.Namespace,
    registry: CollectorRegistry,
    start: Callable[[threading.Event, dict[str, Any]], tuple[R, dict[str, Any]]],
    finish: Callable[[R], None] | None = None,
) -> int:
    """The start-up sequence of every role; returns the process exit status.

    1. Serve ``registry`` on ``--metrics-host``/``--metrics-port`` (a ``StartupError``: one
       line ``<name>: ...`` on stderr, status 2).
    2. SIGTERM/SIGINT set a ``stop`` event: the loop ends cleanly, status 130.
    3. ``start(stop, info)`` builds and binds the role and returns its runner and what the
       ready line adds to ``info`` = ``{"node": name, "pid", "metrics_port"}`` (e.g. the
       bound ``port``).
    4. ``announce`` the merged info (``HGC_READY`` line, ``--ready-file``).
    5. ``runner.run()``, then ``finish(runner)`` if given; the status is ``run()``'s.
    6. Unless stopped by a signal, keep ``/metrics`` up until one more scrape has read the
       final values, at most ``--metrics-linger-s`` (``MetricsServer.linger``).

    An ``OSError`` or ``ValueError`` in steps 3-5 is one line ``<name>: ...`` and status 2
    (the launcher shows a failed node's last line). The metrics server is closed on every path.
    """
    try:
        server, metrics_port = serve_node_metrics(registry, args)
    except StartupError as exc:
        return fail(f"{name}: {exc}")
    stop = threading.Event()
    stop_on_signals(stop)
    info: dict[str, Any] = {"node": name, "pid": os.getpid(), "metrics_port": metrics_port}
    try:
        runner, extra = start(stop, dict(info))
        announce(args.ready_file, {**info, **extra})
        status = runner.run()
        if finish is not None:
            finish(runner)
        linger_s = getattr(args, "metrics_linger_s", 0.0) or 0.0
        if linger_s > 0 and not stop.is_set():
            scraped = server.linger(linger_s)
            if not scraped:
                print(
                    f"{name}: no scrape of /metrics within --metrics-linger-s {linger_s:g}",
                    file=sys.stderr,
                    flush=True,
                )
        return status
    except (OSError, ValueError) as exc:
        return fail(f"{name}: {exc}")
    finally:
        server.close()
