"""``hgc report RUN_FOLDER``: a self-contained HTML page of a run (figures, table, the
simulator's prediction beside the measurement) that opens offline, with no server."""

from __future__ import annotations

import argparse
from pathlib import Path

from hgc.cli import UsageError

HELP = "write a self-contained HTML report of a run folder (hgc run or a compose stack)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="run folder (holds summary.json)")
    parser.add_argument(
        "-o", "--out", type=Path, help="output file (default: RUN_FOLDER/report.html)"
    )


def run(args: argparse.Namespace) -> int:
    from hgc.report import ReportError, write_report

    if not args.folder.is_dir():
        raise UsageError(f"RUN_FOLDER: not a directory: {args.folder}")
    try:
        path = write_report(args.folder, args.out)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--out: cannot write {args.out or args.folder}: {exc.strerror}") from None
    print(path)
    return 0
