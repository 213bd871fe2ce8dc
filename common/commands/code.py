"""``hgc code``: build a code and print its placement, load, K, D and error estimate (or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction

from common.cli import UsageError
from common.coding import (
    DEFAULT_TOLERANCE,
    SCHEMES,
    Code,
    FlatCode,
    InfeasibleCodeError,
    make_code,
    optimal_load_fraction,
)
from common.coding.lagrange import DEFAULT_POINTS, POINT_KINDS

HELP = "build a hierarchical (or baseline) gradient code and print it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--edges", type=int, required=True, help="number of edges n")
    parser.add_argument(
        "--workers",
        required=True,
        help="workers per edge: comma-separated m_i (one per edge), or one number for all",
    )
    parser.add_argument("--se", type=int, default=0, help="edge stragglers tolerated (s_e)")
    parser.add_argument("--sw", type=int, default=0, help="worker stragglers per edge (s_w)")
    parser.add_argument("--s", type=int, default=None, help="stragglers among all M (flat-*)")
    parser.add_argument("--scheme", choices=SCHEMES, default="hgc")
    parser.add_argument("--partitions", "-K", type=int, default=None, help="K (default: smallest)")
    parser.add_argument("--points", choices=POINT_KINDS, default=DEFAULT_POINTS)
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="refuse codes whose estimated worst relative decode error exceeds this "
        f"(default {DEFAULT_TOLERANCE:g}; 0 disables the check)",
    )
    parser.add_argument("--json", action="store_true", help="write the whole code as JSON")


def parse_workers(text: str, n_edges: int) -> list[int]:
    """``"3,3,3"`` or ``"3"`` (for every edge) -> [3, 3, 3]; UsageError naming the problem."""
    if n_edges < 1:
        raise UsageError(f"--edges: must be >= 1, got {n_edges}")
    try:
        m = [int(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"--workers: expected comma-separated integers, got {text!r}") from None
    if len(m) == 1:
        m = m * n_edges
    if len(m) != n_edges:
        raise UsageError(f"--workers: {len(m)} values given for --edges {n_edges}")
    return m


def run(args: argparse.Namespace) -> int:
    m = parse_workers(args.workers, args.edges)
    flat = args.scheme.startswith("flat-")
    if flat and args.s is None:
        raise UsageError(f"--s: required for {args.scheme} (stragglers among all M workers)")
    if not flat and args.s is not None:
        raise UsageError(f"--s: only for flat-frc/flat-crc; {args.scheme} takes --se and --sw")
    if args.tolerance < 0:
        raise UsageError(f"--tolerance: must be >= 0, got {args.tolerance}")
    try:
        code = make_code(
            args.scheme,
            m,
            0 if flat else args.se,
            0 if flat else args.sw,
            s=args.s,
            K=args.partitions,
            points=args.points,
            tolerance=args.tolerance or None,
        )
    except InfeasibleCodeError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        out = code.to_json()
        out["decode_error_estimate"] = code.decode_error_estimate()
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(describe(code))
    return 0


def describe(code: Code) -> str:
    """Human-readable summary: tolerances, K, D, load against the bound, error, placement."""
    m = list(code.workers_per_edge)
    M = sum(m)
    if isinstance(code, FlatCode):
        tol = f"s={code.s}"
        bound = Fraction(code.s + 1, M)
    else:
        tol = f"s_e={code.s_e} s_w={code.s_w}"
        bound = optimal_load_fraction(m, code.s_e, code.s_w)
    variant = code.variant
    loads = sorted({Fraction(len(p), code.K) for edge in code.placement for p in edge})
    load = " / ".join(str(x) for x in loads)
    verdict = "meets the bound" if loads == [bound] else "does NOT meet the bound"
    if code.scheme == "ignore":
        verdict = "(uncoded placement, approximate decode)"
    lines = [
        f"scheme {code.scheme} ({variant}, {'exact' if code.exact else 'approximate'})  "
        f"n_edges={code.n_edges} workers_per_edge={','.join(map(str, m))} {tol}",
        f"K={code.K} D={code.D}  load D/K={load}  bound={bound} (~{float(bound):.4g})  {verdict}",
        f"decode error estimate (worst relative, float64): {code.decode_error_estimate():.3g}",
        "placement (worker: partitions):",
    ]
    for i, edge in enumerate(code.placement):
        lines.append(f"  edge {i}:")
        for j, parts in enumerate(edge):
            lines.append(f"    worker {j}: {' '.join(map(str, parts))}")
    return "\n".join(lines) + "\n"
