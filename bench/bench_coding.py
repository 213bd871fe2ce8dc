"""Coding core: decode-and-combine against a plain sum, construction time, decode error table.

Ratios are measured side by side in one run (interleaved repetitions, medians), because the
machines are shared and noisy.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from bench import Result
from common.coding import HierarchicalCode, combine, is_feasible, make_code
from common.coding.numerics import measured_decode_error

SECTION = "coding"


def _interleaved(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best wall time of each function, run alternately so noise hits them alike (the minimum
    is the least disturbed run on a shared machine)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for t, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[t].append(time.perf_counter() - start)
    return [min(ts) for ts in times]


def bench_combine(P: int, repeats: int) -> list[Result]:
    """An edge of 8 workers (s_w = 2, Lagrange weights) combines its first 6 answers."""
    code = make_code("hgc", [8, 8, 8], 1, 2)
    assert isinstance(code, HierarchicalCode) and code.variant == "lagrange"
    rng = np.random.default_rng(0)
    vecs = [rng.standard_normal(P) for _ in range(8)]
    order = [3, 0, 7, 5, 1, 6, 2, 4]
    out = np.empty(P)
    plain = np.empty(P)

    def decode_and_combine() -> None:
        w = code.edge_decode_weights(0, order)  # cached after the first call, as in service
        combine([vecs[j] for j in order], w, out=out)

    def plain_sum() -> None:  # the memory-bandwidth floor: the same 6 vectors, added in place
        np.copyto(plain, vecs[order[0]])
        for j in order[1:6]:
            np.add(plain, vecs[j], out=plain)

    t_code, t_plain = _interleaved([decode_and_combine, plain_sum], repeats)
    label = f"P={P:.0e}"
    ratio = t_code / t_plain
    return [
        Result(SECTION, f"decode+combine 6 of 8, {label}", t_code * 1e3, "ms"),
        Result(SECTION, f"plain numpy sum of 6, {label}", t_plain * 1e3, "ms"),
        Result(
            SECTION, f"decode+combine / plain sum, {label}", ratio, "ratio", "<= 1.5", ratio <= 1.5
        ),
    ]


def bench_construction(quick: bool) -> list[Result]:
    """Wall time (best of 3) and CPU time of make_code, including the error-estimate check."""
    n = 16 if quick else 64
    out = []
    for s_e, s_w in [(1, 1), (2, 2)]:
        walls, cpus = [], []
        code: HierarchicalCode | None = None
        for _ in range(3):
            wall, cpu = time.perf_counter(), time.process_time()
            built = make_code("hgc", [n] * n, s_e, s_w)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            assert isinstance(built, HierarchicalCode)
            code = built
        assert code is not None
        label = f"construct hgc n=m={n} s_e={s_e} s_w={s_w} ({code.variant}, K={code.K})"
        out.append(Result(SECTION, label, min(walls), "s", "< 1", min(walls) < 1.0))
        out.append(Result(SECTION, f"{label} CPU", min(cpus), "s"))
    return out


def error_table(quick: bool) -> list[Result]:
    """Worst measured relative decode error (and the estimate) for n = m_i = N."""
    sizes = [4, 8, 12] if quick else [4, 8, 12, 16, 24, 32]
    samples = 500 if quick else 2000
    out = []
    for N in sizes:
        worst_m, worst_e, where = 0.0, 0.0, ""
        for s_e, s_w in sorted({(1, 2), (N // 2, N // 2), (N // 3, 2 * N // 3), (N - 2, N - 2)}):
            if not (0 <= s_e < N and 0 <= s_w < N):
                continue
            code = make_code("hgc", [N] * N, s_e, s_w, tolerance=None)
            est = code.decode_error_estimate()
            meas, _ = measured_decode_error(code, samples=samples)
            if meas >= worst_m:
                worst_m, where = meas, f"s_e={s_e} s_w={s_w}"
            worst_e = max(worst_e, est)
        target = "<= 1e-9" if N <= 12 else ""
        out.append(
            Result(
                SECTION,
                f"worst measured error n=m={N} ({where})",
                worst_m,
                "rel",
                target,
                worst_m <= 1e-9 if N <= 12 else None,
            )
        )
        out.append(Result(SECTION, f"worst error estimate n=m={N}", worst_e, "rel"))
    return out


def grid_check(quick: bool) -> list[Result]:
    """Issue 2's target over the homogeneous grid n = m_i = N <= 12, every s_e < n, s_w < m.

    Every code with a polynomial tier is built and its error estimated; then the measured
    worst error (``measured_decode_error``: exhaustive up to 100,000 patterns, else 10,000
    random + every adversarial window combination) of every such code (full run) or of the
    ``WORST_MEASURED`` worst by estimate (quick run) is checked against 1e-9.
    """
    estimates: list[tuple[float, int, int, int]] = []
    for N in range(2, 13):
        for s_e in range(N):
            for s_w in range(N):
                code = make_code("hgc", [N] * N, s_e, s_w, tolerance=None)
                if isinstance(code, HierarchicalCode) and code.variant == "lagrange":
                    estimates.append((code.decode_error_estimate(), N, s_e, s_w))
    estimates.sort(reverse=True)
    chosen = estimates[:WORST_MEASURED] if quick else estimates
    worst, where, patterns = 0.0, "", 0
    for _, N, s_e, s_w in chosen:
        code = make_code("hgc", [N] * N, s_e, s_w, tolerance=None)
        meas, tried = measured_decode_error(code, samples=10_000)
        patterns += tried
        if meas >= worst:
            worst, where = meas, f"N={N} s_e={s_e} s_w={s_w}"
    scope = f"{len(chosen)} worst-estimate" if quick else f"all {len(chosen)} polynomial"
    return [
        Result(
            SECTION,
            f"grid n=m<=12, {scope} codes, {patterns} patterns: worst measured ({where})",
            worst,
            "rel",
            "<= 1e-9",
            worst <= 1e-9,
        ),
        Result(SECTION, "grid n=m<=12: worst error estimate", estimates[0][0], "rel"),
    ]


WORST_MEASURED = 8  # codes measured by the quick grid check (the worst by estimate)


def large_grid(quick: bool) -> list[tuple[tuple[int, ...], int, int]]:
    """Feasible configurations at the bound for n <= 8 edges, m_i <= 64 (issue 16).

    Homogeneous n = 1..8 with m in LARGE_M, s_e in {0, 1, n/2, n-1}, and s_w over
    LARGE_SW_FRACTIONS of m (plus 1, 2 and m - 1), and heterogeneous topologies mixing those
    m; only codes with a real-coded (non-0/1) tier are measured (0/1 codes have no rounding).
    The quick run takes m in {16, 64}, n in {2, 8} and one heterogeneous topology.
    """
    sizes = [16, 64] if quick else LARGE_M
    edges = [2, 8] if quick else list(range(1, 9))
    out: list[tuple[tuple[int, ...], int, int]] = []
    for n in edges:
        for m in sizes:
            sws = {1, 2, m - 1} | {max(1, int(f * m)) for f in LARGE_SW_FRACTIONS}
            ses = sorted({0, 1, n // 2, n - 1})
            for s_e in ses:
                for s_w in sorted(sws):
                    if 0 <= s_e < n and 0 < s_w < m and (s_e + 1) * m <= n * m:
                        out.append(((m,) * n, s_e, s_w))
    hetero = [(24, 40, 64), (16, 32, 48, 64), (64, 40, 24, 64, 40, 24, 64, 40)]
    for m_h in hetero[:1] if quick else hetero:
        for s_e in range(len(m_h)):
            for s_w in sorted({1, min(m_h) // 3, min(m_h) // 2, min(m_h) - 1}):
                if is_feasible(m_h, s_e, s_w):
                    out.append((m_h, s_e, s_w))
    return out


LARGE_M = [8, 12, 16, 24, 32, 40, 48, 64]
LARGE_SW_FRACTIONS = (0.25, 1 / 3, 0.5, 2 / 3, 0.75)


def grid_large_check(quick: bool) -> list[Result]:
    """Worst measured decode error over ``large_grid`` (sampled + adversarial patterns)."""
    samples = 200 if quick else 500
    worst, where, codes, patterns, gauss_codes = 0.0, "", 0, 0, 0
    started = time.perf_counter()
    for m, s_e, s_w in large_grid(quick):
        code = make_code("hgc", m, s_e, s_w)
        if code.variant != "lagrange":
            continue
        assert isinstance(code, HierarchicalCode)
        gauss_codes += any(t.kind == "gauss" for t in (code.edge_tier, *code.worker_tiers))
        meas, tried = measured_decode_error(code, samples=samples)
        codes += 1
        patterns += tried
        if meas >= worst:
            worst, where = (
                meas,
                f"m={list(m) if len(set(m)) > 1 else f'{m[0]}x{len(m)}'} s_e={s_e} s_w={s_w}",
            )
    scope = "quick subset" if quick else "full grid"
    return [
        Result(
            SECTION,
            f"grid n<=8, m_i<=64 ({scope}): {codes} real-coded codes ({gauss_codes} with Gaussian "
            f"tiers), {patterns} patterns: worst measured ({where})",
            worst,
            "rel",
            "<= 1e-9",
            worst <= 1e-9,
        ),
        Result(SECTION, f"grid n<=8, m_i<=64 ({scope}): time", time.perf_counter() - started, "s"),
    ]


def run(quick: bool) -> list[Result]:
    results: list[Result] = []
    for P in [10**5, 10**6] if quick else [10**6, 10**7]:
        results += bench_combine(P, repeats=5 if quick else 15)
    results += bench_construction(quick)
    results += error_table(quick)
    results += grid_check(quick)
    # the representative subset, end to end; every code of the grid is bench_coding_grid
    results += grid_large_check(True)
    return results


def compare_points(cases: list[tuple[int, int]] | None = None) -> None:
    """Print the tier-level error estimate of every point family (the table in numerics.md).

    One tier of N nodes, tolerance s, item q held by nodes q..q+s (mod N) as in the cyclic
    placements; worst δ + A·ε over straggler patterns (exhaustive up to 5,000, otherwise
    index and point windows plus 2,000 random). Run: ``python -c "import bench.bench_coding
    as b; b.compare_points()"``.
    """
    from common.coding.lagrange import POINT_KINDS
    from common.coding.numerics import EPS, tier_error
    from common.coding.tier import Tier, lagrange_tier

    cases = cases or [
        (6, 3),
        (9, 2),
        (12, 3),
        (12, 6),
        (12, 8),
        (16, 4),
        (24, 6),
        (32, 8),
        (32, 16),
        (32, 24),
    ]
    print("N  s  " + " ".join(f"{k:>12}" for k in POINT_KINDS))
    for N, s in cases:
        holders = [tuple(sorted((q + t) % N for t in range(s + 1))) for q in range(N)]
        row = []
        for kind in POINT_KINDS:
            tier: Tier = lagrange_tier(N, s, holders, kind)
            delta, amp = tier_error(tier)
            row.append(f"{delta + amp * EPS:12.1e}")
        print(f"{N:<2} {s:<2} " + " ".join(row), flush=True)
