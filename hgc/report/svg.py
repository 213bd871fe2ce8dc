"""Small, dependency-free SVG charts for the run report: line/step charts, grouped bars and a
heat-map. Each function returns one ``<svg>`` element as a string; every text that comes from
data is escaped. The charts are static (no script), so the page renders anywhere, offline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 300
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 62, 150, 18, 44
# Colour-blind-safe palette (Okabe-Ito), cycled per series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000")


@dataclass(frozen=True)
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 5 x 10^k steps); at most ~2 * count ticks,
    and one tick for a range below float resolution (where stepping would not advance)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = (hi - lo) / max(count, 1)
    if raw <= 1e-12 * max(abs(lo), abs(hi)):
        return [lo]
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    n = int(math.floor((hi - first) / step + 1e-9)) + 1  # ticks by index: no accumulation
    return [round(first + i * step, 12) for i in range(max(n, 1))]


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.3g}"


def _extent(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):  # one value, up to rounding: pad around it
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    return lo, hi


def _frame(fig_id: str, title: str, body: list[str]) -> str:
    return (
        f'<svg id="{escape(fig_id)}" class="figure" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _axes(
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    x_label: str,
    y_label: str,
    *,
    x_ticks: bool = True,
) -> tuple[list[str], Callable[[float], float], Callable[[float], float]]:
    (x0, x1), (y0, y1) = x_range, y_range
    pw, ph = WIDTH - MARGIN_L - MARGIN_R, HEIGHT - MARGIN_T - MARGIN_B

    def sx(x: float) -> float:
        return MARGIN_L + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return MARGIN_T + ph - (y - y0) / (y1 - y0) * ph

    out = [
        f'<rect x="{MARGIN_L}" y="{MARGIN_T}" width="{pw}" height="{ph}" fill="#fff" '
        'stroke="#999"/>'
    ]
    for t in nice_ticks(x0, x1) if x_ticks else []:
        x = sx(t)
        out.append(
            f'<line x1="{x:.1f}" y1="{MARGIN_T + ph}" x2="{x:.1f}" y2="{MARGIN_T + ph + 4}" '
            'stroke="#666"/>'
            f'<text x="{x:.1f}" y="{MARGIN_T + ph + 16}" font-size="11" '
            f'text-anchor="middle">{fmt(t)}</text>'
        )
    for t in nice_ticks(y0, y1):
        y = sy(t)
        out.append(
            f'<line x1="{MARGIN_L}" y1="{y:.1f}" x2="{MARGIN_L + pw}" y2="{y:.1f}" '
            'stroke="#eee"/>'
            f'<text x="{MARGIN_L - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end">{fmt(t)}</text>'
        )
    out.append(
        f'<text x="{MARGIN_L + pw / 2}" y="{HEIGHT - 8}" font-size="12" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="14" y="{MARGIN_T + ph / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {MARGIN_T + ph / 2})">{escape(y_label)}</text>'
    )
    return out, sx, sy


def _legend(labels: Sequence[str]) -> list[str]:
    out = []
    for i, label in enumerate(labels):
        y = MARGIN_T + 10 + 18 * i
        x = WIDTH - MARGIN_R + 12
        out.append(
            f'<rect x="{x}" y="{y - 8}" width="12" height="10" fill="{colour(i)}"/>'
            f'<text x="{x + 18}" y="{y + 1}" font-size="12">{escape(label)}</text>'
        )
    return out


def line_chart(
    fig_id: str,
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    *,
    step: bool = False,
    markers: bool = True,
) -> str:
    """One polyline per series (a step function when ``step``), shared axes, a legend."""
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys]
    body, sx, sy = _axes(_extent(xs), _extent(ys), x_label, y_label)
    for i, s in enumerate(series):
        pts = [(x, y) for x, y in zip(s.xs, s.ys, strict=True) if math.isfinite(y)]
        if not pts:
            continue
        if step:
            stepped = [pts[0]]
            for (_, y_prev), (x, y) in zip(pts, pts[1:], strict=False):
                stepped += [(x, y_prev), (x, y)]
            pts_draw = stepped
        else:
            pts_draw = pts
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts_draw)
        body.append(
            f'<polyline class="series" data-series="{escape(s.label)}" points="{path}" '
            f'fill="none" stroke="{colour(i)}" stroke-width="1.6"/>'
        )
        if markers and len(pts) <= 400:
            body += [
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2" '
                f'fill="{colour(i)}"><title>{escape(s.label)}: {fmt(x)}, {fmt(y)}</title></circle>'
                for x, y in pts
            ]
    body += _legend([s.label for s in series])
    return _frame(fig_id, title, body)


def grouped_bars(
    fig_id: str,
    title: str,
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    y_label: str,
) -> str:
    """Bars per group (x) and series (colour); ``None`` values leave a gap marked ``n/a``."""
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    top = max(values, default=1.0) * 1.1 or 1.0
    body, _, sy = _axes((0.0, 1.0), (0.0, top), "", y_label, x_ticks=False)
    pw = WIDTH - MARGIN_L - MARGIN_R
    slot = pw / max(len(groups), 1)
    bar = slot * 0.8 / max(len(series), 1)
    for g, group in enumerate(groups):
        gx = MARGIN_L + g * slot + slot * 0.1
        body.append(
            f'<text x="{gx + slot * 0.4:.1f}" y="{HEIGHT - MARGIN_B + 16}" font-size="11" '
            f'text-anchor="middle">{escape(group)}</text>'
        )
        for i, (label, vs) in enumerate(series):
            v = vs[g]
            x = gx + i * bar
            if v is None or not math.isfinite(v):
                body.append(
                    f'<text x="{x + bar / 2:.1f}" y="{sy(0) - 4:.1f}" font-size="9" '
                    f'text-anchor="middle">n/a</text>'
                )
                continue
            y = sy(v)
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar * 0.95:.1f}" '
                f'height="{sy(0) - y:.1f}" fill="{colour(i)}">'
                f"<title>{escape(group)} / {escape(label)}: {fmt(v)}</title></rect>"
            )
    body += _legend([label for label, _ in series])
    return _frame(fig_id, title, body)


def heat_map(
    fig_id: str,
    title: str,
    rows: Sequence[str],
    columns: int,
    cells: Sequence[Sequence[float | None]],
    *,
    straggled: Sequence[Sequence[bool]],
    idle_rows: Sequence[str] = (),
) -> str:
    """Node x iteration grid: shade = arrival time (darker = later), red = ignored as a
    straggler, hatched grey = a node the plan left out (``idle_rows``)."""
    cell_h = 14
    label_w = 150
    width = max(WIDTH, label_w + 20 + columns * 6)
    cell_w = (width - label_w - 20) / max(columns, 1)
    height = MARGIN_T + cell_h * len(rows) + 40
    finite = [v for r in cells for v in r if v is not None and math.isfinite(v)]
    hi = max(finite, default=1.0) or 1.0
    body = []
    for r, name in enumerate(rows):
        y = MARGIN_T + r * cell_h
        idle = name in idle_rows
        body.append(
            f'<text x="{label_w - 6}" y="{y + cell_h - 3}" font-size="11" text-anchor="end">'
            f"{escape(name)}{' (left out)' if idle else ''}</text>"
        )
        for c in range(columns):
            x = label_w + c * cell_w
            v = cells[r][c] if c < len(cells[r]) else None
            if idle:
                fill, tip = "#ddd", "left out by the plan"
            elif straggled[r][c]:
                fill, tip = "#D55E00", "straggler (ignored)"
            elif v is None:
                fill, tip = "#f4f4f4", "no answer recorded"
            else:
                shade = int(235 - 190 * min(v / hi, 1.0))
                fill, tip = f"rgb({shade},{shade},255)", f"arrived at {fmt(v)} s"
            body.append(
                f'<rect class="cell" x="{x:.1f}" y="{y}" width="{cell_w + 0.3:.1f}" '
                f'height="{cell_h - 1}" fill="{fill}"><title>{escape(name)}, iteration {c}: '
                f"{tip}</title></rect>"
            )
    body.append(
        f'<text x="{label_w}" y="{height - 12}" font-size="12">iteration → '
        "(blue: arrival time, darker = later; red: ignored straggler; grey: left out)</text>"
    )
    return (
        f'<svg id="{escape(fig_id)}" class="figure" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width:.0f} {height}" width="{width:.0f}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )
