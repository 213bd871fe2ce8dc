"""The ``hgc`` console script: a thin dispatcher over ``hgc.commands``.

Each sub-command lives in its own module ``hgc.commands.<name>`` exposing
``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
lazily so ``hgc code`` does not pay for zmq or matplotlib imports.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

# sub-command -> module under hgc.commands
COMMANDS: dict[str, str] = {
    "code": "code",
    "simulate": "simulate",
    "optimize": "optimize",
    "cluster": "cluster",
    "run": "run",
    "compose": "compose",
    "report": "report",
    "keys": "keys",
    "data": "data",
    "calibrate": "calibrate",
}

EXIT_USAGE = 2


class UsageError(Exception):
    """A bad or impossible request from the user: printed without a traceback, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): every CLI error is one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hgc",
        description="Hierarchical gradient coding for straggler-tolerant learning at the edge.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"hgc.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hgc.commands.{module_name}":
                raise
            continue  # command not built yet
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def interruptible() -> None:
    """Make SIGINT raise KeyboardInterrupt even when this process inherited it ignored (a
    background job of a non-interactive shell does): ``kill -INT`` must end a run cleanly,
    with its summary and clean-up, however the launcher was started."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # SIGTERM / SIGHUP end a run exactly as Ctrl-C does (summary written, a message)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    interruptible()
    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"hgc {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        name = str(exc) if str(exc).startswith("SIG") else "SIGINT"
        print(f"hgc {args.command}: interrupted ({name}); stopped", file=sys.stderr)
        return 128 + int(signal.Signals[name])


if __name__ == "__main__":
    # Import through the package so ``UsageError`` is the same class the commands raise
    # (``python -m hgc.cli`` would otherwise load this module twice).
    from hgc.cli import main as _main

    sys.exit(_main())
