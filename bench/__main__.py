"""Run every benchmark module ``bench/bench_*.py`` and print one table.

Each module exposes ``run(quick: bool) -> list[bench.Result]``. Figures that compare two
things (e.g. our transport against raw TCP) are measured side by side in the same run,
because the machines are shared and noisy: read ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

from bench import Result


def discover(only: list[str] | None) -> list[str]:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("only", nargs="*", help="substrings of benchmark modules to run")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    results: list[Result] = []
    for name in discover(args.only):
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        results.extend(module.run(quick=args.quick))
        print(
            f"# {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True
        )

    width = max((len(r.section) + len(r.name) + 3 for r in results), default=20)
    print(f"{'benchmark':<{width}} {'value':>14} {'unit':<12} {'target':<12} met")
    for r in results:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        label = f"{r.section} / {r.name}"
        print(f"{label:<{width}} {r.value:>14.6g} {r.unit:<12} {r.target:<12} {met}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
