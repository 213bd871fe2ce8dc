"""``hgc code``: build a code and print its placement, load, K, D and error estimate (or JSON)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from fractions import Fraction

from common.coding import (
    CODE_SCHEMES,
    DEFAULT_TOLERANCE,
    Code,
    FlatCode,
    InfeasibleCodeError,
    make_code,
    optimal_load_fraction,
)
from common.coding.bounds import MAX_K
from common.coding.lagrange import DEFAULT_POINTS, POINT_KINDS
from hgc.cli import UsageError

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
    parser.add_argument("--scheme", choices=CODE_SCHEMES, default="hgc")
    parser.add_argument("--partitions", "-K", type=int, default=None, help="K (default: smallest)")
    parser.add_argument("--points", choices=POINT_KINDS, default=DEFAULT_POINTS)
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="refuse codes whose estimated worst relative decode error exceeds this "
        f"(default {DEFAULT_TOLERANCE:g}; inf turns the check off)",
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


def check_tolerance(tolerance: float) -> None:
    """A finite positive tolerance, or ``inf`` (the explicit off switch); UsageError else.

    NaN compares false with everything, so it would silently turn the check off; 0 would
    refuse every code (or, before, meant "off"): both are refused rather than guessed at.
    """
    if math.isnan(tolerance) or tolerance <= 0:
        raise UsageError(
            f"--tolerance: must be a positive number (or inf to turn the check off), "
            f"got {tolerance}"
        )


def warn_if_unchecked(code: Code, tolerance: float) -> None:
    """With the check off, warn on stderr when the estimate exceeds the default tolerance."""
    if not math.isinf(tolerance):
        return
    err = code.decode_error_estimate()
    if not err <= DEFAULT_TOLERANCE:  # also catches a NaN estimate
        print(
            f"hgc code: WARNING: decode error estimate {err:.3g} exceeds the default "
            f"tolerance {DEFAULT_TOLERANCE:g}; decoded gradients may be garbage",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    m = parse_workers(args.workers, args.edges)
    flat = args.scheme.startswith("flat-")
    if flat and args.s is None:
        raise UsageError(f"--s: required for {args.scheme} (stragglers among all M workers)")
    if not flat and args.s is not None:
        raise UsageError(f"--s: only for flat-frc/flat-crc; {args.scheme} takes --se and --sw")
    check_tolerance(args.tolerance)
    if args.partitions is not None and args.partitions > MAX_K:
        # also checked by the coding core's check_K; here too because the 0/1 (fr) path
        # accepts an explicit K without calling it
        raise UsageError(f"--partitions: K={args.partitions} must be <= {MAX_K}")
    try:
        code = make_code(
            args.scheme,
            m,
            0 if flat else args.se,
            0 if flat else args.sw,
            s=args.s,
            K=args.partitions,
            points=args.points,
            tolerance=None if math.isinf(args.tolerance) else args.tolerance,
        )
    except InfeasibleCodeError as exc:
        raise UsageError(str(exc)) from None
    warn_if_unchecked(code, args.tolerance)
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
