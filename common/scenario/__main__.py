"""``python -m common.scenario FILE...``: validate scenario files and print what they resolve to.

Exit status 0 when every file is valid, 2 otherwise (one ``FILE: field: message`` line each).
"""

from __future__ import annotations

import sys

from common.scenario.describe import describe
from common.scenario.fields import ScenarioError
from common.scenario.parse import load_scenario


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m common.scenario FILE...", file=sys.stderr)
        return 2
    status = 0
    for path in argv:
        try:
            print(describe(load_scenario(path)))
        except ScenarioError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
