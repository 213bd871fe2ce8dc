"""Start-up plumbing every service shares: flags with ``HGC_*`` environment defaults, the
ready file, the metrics endpoint, signal handling.

Every flag ``--some-flag`` can also come from ``HGC_SOME_FLAG`` (the flag wins), so the same
container image runs any role from its environment alone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.runtime.metrics import NodeMetrics
from common.runtime.transport import TransportConfig

EXTERNAL_EMULATION_ENV = "HGC_EMULATION_EXTERNAL"


def env_name(flag: str) -> str:
    """``--edge-addr`` -> ``HGC_EDGE_ADDR``."""
    return "HGC_" + flag.lstrip("-").replace("-", "_").upper()


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
    raw = os.environ.get(env)
    if raw is not None:
        try:
            default = type(raw)
        except (TypeError, ValueError) as exc:
            parser.error(f"{env}={raw!r}: {exc}")
        required = False
    suffix = f" (env {env})"
    parser.add_argument(flag, type=type, default=default, required=required, help=help + suffix)


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--metrics-host", default="127.0.0.1", help="address for /metrics")
    add_flag(parser, "--metrics-port", type=int, default=0, help="/metrics port; 0 = any free")
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


def transport_config(args: argparse.Namespace) -> TransportConfig:
    if args.heartbeat_s <= 0:
        raise SystemExit(f"--heartbeat-s: must be > 0, got {args.heartbeat_s}")
    return TransportConfig(heartbeat_interval_s=args.heartbeat_s, liveness=args.liveness)


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
