"""Charts as inline SVG, drawn on the server.

The page must work offline, behind a strict Content-Security-Policy and without
a build step, so there is no charting library: each chart is a few dozen SVG
elements computed here. Every chart carries ``role="img"`` and an
``aria-label`` that says what a sighted reader sees ("win probability fell from
48% to 31%"), and the page shows the same numbers as text or a table next to
it. Colours are never the only signal: signs, labels and dash patterns repeat
them. Only SVG presentation attributes are used (no ``style``), which the
policy allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from dealscore_service.ui.format import compact, pct

UP = "#1f6feb"  # blue: raises the odds
DOWN = "#c2410c"  # dark orange: lowers them (distinguishable from blue for colour-blind readers)
INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d0d7de"
SERIES = ("#1f6feb", "#8250df", "#1a7f37", "#c2410c")
DASHES = ("", "6 3", "2 3", "8 3 2 3")


def _f(x: float) -> str:
    """Compact coordinates (two decimals are plenty at screen resolution)."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def sparkline(values: Sequence[float], *, width: int = 96, height: int = 24) -> Markup:
    """A tiny trend line of win probabilities (0–1), oldest first; last point marked."""
    vals = [float(v) for v in values]
    if not vals:
        return Markup("")
    if len(vals) == 1:
        # a trend needs two scores: one score draws no line (a flat line would read "steady")
        return Markup('<span class="spark spark-none sub">one score, no trend yet</span>')
    label = f"Win probability trend over the last {len(vals)} scores: {pct(vals[0])} to {pct(vals[-1])}"
    lo, hi = min(vals), max(vals)
    span = max(hi - lo, 0.10)  # a 2-point wiggle should not look like a cliff
    mid = (hi + lo) / 2
    pad = 3.0

    def y(v: float) -> float:
        return height / 2 - (v - mid) / span * (height - 2 * pad)

    step = (width - 2 * pad) / max(len(vals) - 1, 1)
    pts = [(pad + i * step, y(v)) for i, v in enumerate(vals)]
    colour = DOWN if vals[-1] < vals[0] - 0.03 else UP
    line = " ".join(f"{_f(x)},{_f(yy)}" for x, yy in pts)
    lx, ly = pts[-1]
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
        f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.6" stroke-linejoin="round"/>'
        f'<circle cx="{_f(lx)}" cy="{_f(ly)}" r="2.4" fill="{colour}"/></svg>'
    )


def diverging_bar(points: float, scale: float, *, width: int = 220, height: int = 18) -> Markup:
    """One bar of a diverging bar chart: ``points`` (±) against a shared ``scale`` (max |points|).

    Rows of these beside their text make the reasons chart: the text wraps like
    any HTML, the bars stay aligned on the zero line.
    """
    scale = max(abs(scale), 1e-9)
    half = width / 2
    length = min(abs(points) / scale, 1.0) * (half - 2)
    x = half if points >= 0 else half - length
    colour = UP if points >= 0 else DOWN
    sign = "+" if points >= 0 else "−"
    label = f"{sign}{abs(points):.1f} points"
    return Markup(
        f'<svg class="bar" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}">'
        f'<line x1="{_f(half)}" y1="0" x2="{_f(half)}" y2="{height}" stroke="{MUTED}" stroke-width="1"/>'
        f'<rect x="{_f(x)}" y="3" width="{_f(max(length, 1.0))}" height="{height - 6}" rx="2" fill="{colour}"/>'
        f"</svg>"
    )


def share_bar(p: float, *, width: int = 160, height: int = 14, highlight: bool = False) -> Markup:
    """A 0–1 bar (stage probabilities)."""
    p = min(max(float(p), 0.0), 1.0)
    colour = UP if highlight else "#8c959f"
    return Markup(
        f'<svg class="share" viewBox="0 0 {width} {height}" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect x="0" y="2" width="{width}" height="{height - 4}" rx="2" fill="#eaeef2"/>'
        f'<rect x="0" y="2" width="{_f(max(p * width, 0.5))}" height="{height - 4}" rx="2" fill="{colour}"/>'
        f"</svg>"
    )


@dataclass(frozen=True)
class HistoryPoint:
    """One stored score on the deal's history chart."""

    when: datetime
    p_win: float
    label: str  # tooltip, e.g. "12 May 2025: 34% (C), declared discovery"


def history_chart(points: Sequence[HistoryPoint], *, typical: float | None = None, width: int = 640,
                  height: int = 240) -> Markup:
    """Win probability over time (one point per stored score), with the declared stage's usual win rate."""
    if not points:
        return Markup("")
    left, right, top, bottom = 44.0, 16.0, 14.0, 34.0
    pw, ph = width - left - right, height - top - bottom
    t0 = points[0].when.timestamp()
    t1 = points[-1].when.timestamp()
    tspan = max(t1 - t0, 1.0)

    def x(t: datetime) -> float:
        return left + (pw / 2 if len(points) == 1 else (t.timestamp() - t0) / tspan * pw)

    def y(p: float) -> float:
        return top + (1 - p) * ph

    first, last = points[0].p_win, points[-1].p_win
    if len(points) == 1:
        label = f"Win probability of the one score so far, on {points[0].when:%d %b %Y}: {pct(last)}"
    else:
        label = (f"Win probability over {len(points)} scores from {points[0].when:%d %b %Y} to "
                 f"{points[-1].when:%d %b %Y}: {pct(first)} to {pct(last)}")
    if typical is not None:
        label += f"; deals in this stage usually win {pct(typical)}"
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
           f"<title>{escape(label)}</title>"]
    for g in (0.0, 0.25, 0.5, 0.75, 1.0):
        gy = y(g)
        out.append(f'<line x1="{_f(left)}" y1="{_f(gy)}" x2="{_f(width - right)}" y2="{_f(gy)}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
        out.append(f'<text x="{_f(left - 6)}" y="{_f(gy + 4)}" text-anchor="end" font-size="11" '
                   f'fill="{MUTED}">{pct(g)}</text>')
    ticks = [points[0].when] if len(points) == 1 else [points[0].when, points[-1].when]
    if len(points) >= 5:
        ticks.insert(1, points[len(points) // 2].when)
    for i, t in enumerate(ticks):
        anchor = "middle" if len(ticks) == 1 else ("start" if i == 0 else "end" if i == len(ticks) - 1 else "middle")
        out.append(f'<text x="{_f(x(t))}" y="{_f(height - 10)}" text-anchor="{anchor}" font-size="11" '
                   f'fill="{MUTED}">{t:%d %b %Y}</text>')
    if typical is not None:
        ty = y(typical)
        out.append(f'<line x1="{_f(left)}" y1="{_f(ty)}" x2="{_f(width - right)}" y2="{_f(ty)}" stroke="{MUTED}" '
                   f'stroke-width="1.2" stroke-dasharray="5 4"/>')
        out.append(f'<text x="{_f(width - right)}" y="{_f(ty - 5)}" text-anchor="end" font-size="11" '
                   f'fill="{MUTED}">stage usually wins {escape(pct(typical))}</text>')
    coords = [(x(p.when), y(p.p_win)) for p in points]
    if len(coords) > 1:
        line = " ".join(f"{_f(a)},{_f(b)}" for a, b in coords)
        out.append(f'<polyline points="{line}" fill="none" stroke="{UP}" stroke-width="2.2" '
                   f'stroke-linejoin="round"/>')
    for (cx, cy), p in zip(coords, points, strict=True):
        out.append(f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="3.6" fill="#ffffff" stroke="{UP}" stroke-width="2">'
                   f"<title>{escape(p.label)}</title></circle>")
    out.append("</svg>")
    return Markup("".join(out))


@dataclass(frozen=True)
class Series:
    """A named line of (x, y) points for the evaluation charts."""

    name: str
    points: Sequence[tuple[float, float]]


def _legend(series: Sequence[Series], x0: float, y0: float) -> list[str]:
    out = []
    for i, s in enumerate(series):
        yy = y0 + i * 16
        dash = f' stroke-dasharray="{DASHES[i % len(DASHES)]}"' if DASHES[i % len(DASHES)] else ""
        out.append(f'<line x1="{_f(x0)}" y1="{_f(yy)}" x2="{_f(x0 + 22)}" y2="{_f(yy)}" '
                   f'stroke="{SERIES[i % len(SERIES)]}" stroke-width="2.2"{dash}/>')
        out.append(f'<text x="{_f(x0 + 28)}" y="{_f(yy + 4)}" font-size="11" fill="{INK}">{escape(s.name)}</text>')
    return out


def calibration_chart(series: Sequence[Series], *, label: str, size: int = 340) -> Markup:
    """Reliability diagram: observed win rate (y) against mean predicted probability (x), both 0–1."""
    left, right, top, bottom = 44.0, 14.0, 12.0, 40.0
    pw, ph = size - left - right, size - top - bottom

    def px(v: float) -> float:
        return left + v * pw

    def py(v: float) -> float:
        return top + (1 - v) * ph

    out = [f'<svg class="chart square" viewBox="0 0 {size} {size}" role="img" aria-label="{escape(label)}">'
           f"<title>{escape(label)}</title>"]
    for g in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{_f(px(0))}" y1="{_f(py(g))}" x2="{_f(px(1))}" y2="{_f(py(g))}" stroke="{GRID}"/>')
        out.append(f'<text x="{_f(left - 6)}" y="{_f(py(g) + 4)}" text-anchor="end" font-size="11" '
                   f'fill="{MUTED}">{pct(g)}</text>')
        out.append(f'<text x="{_f(px(g))}" y="{_f(top + ph + 15)}" text-anchor="middle" font-size="11" '
                   f'fill="{MUTED}">{pct(g)}</text>')
    out.append(f'<line x1="{_f(px(0))}" y1="{_f(py(0))}" x2="{_f(px(1))}" y2="{_f(py(1))}" stroke="{MUTED}" '
               f'stroke-dasharray="4 4"/>')
    out.append(f'<text x="{_f(left + pw / 2)}" y="{_f(size - 6)}" text-anchor="middle" font-size="11" '
               f'fill="{INK}">predicted win probability</text>')
    for i, s in enumerate(series):
        colour = SERIES[i % len(SERIES)]
        dash = f' stroke-dasharray="{DASHES[i % len(DASHES)]}"' if DASHES[i % len(DASHES)] else ""
        pts = " ".join(f"{_f(px(a))},{_f(py(b))}" for a, b in s.points)
        if len(s.points) > 1:
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for a, b in s.points:
            out.append(f'<circle cx="{_f(px(a))}" cy="{_f(py(b))}" r="3" fill="{colour}">'
                       f"<title>{escape(s.name)}: predicted {escape(pct(a))}, won {escape(pct(b))}</title></circle>")
    out += _legend(series, left + 10, top + 12)
    out.append("</svg>")
    return Markup("".join(out))


def lift_chart(model: Sequence[float], baselines: Sequence[Series], *, label: str, width: int = 400,
               height: int = 340) -> Markup:
    """Lift per score decile (1 = highest scores): bars for the model, lines for baselines, 1.0 dashed."""
    left, right, top, bottom = 40.0, 12.0, 12.0, 40.0
    pw, ph = width - left - right, height - top - bottom
    n = max(len(model), 1)
    values = [v for v in model if v == v] + [b for s in baselines for _, b in s.points if b == b]
    ymax = max([1.5, *values]) * 1.1

    def py(v: float) -> float:
        return top + (1 - v / ymax) * ph

    slot = pw / n
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
           f"<title>{escape(label)}</title>"]
    step = 0.5 if ymax <= 3 else 1.0
    g = 0.0
    while g <= ymax:
        out.append(f'<line x1="{_f(left)}" y1="{_f(py(g))}" x2="{_f(width - right)}" y2="{_f(py(g))}" '
                   f'stroke="{GRID}"/>')
        out.append(f'<text x="{_f(left - 6)}" y="{_f(py(g) + 4)}" text-anchor="end" font-size="11" '
                   f'fill="{MUTED}">{g:.1f}×</text>')
        g += step
    for i, v in enumerate(model):
        if v != v:  # NaN: empty decile
            continue
        x = left + i * slot + slot * 0.15
        out.append(f'<rect x="{_f(x)}" y="{_f(py(v))}" width="{_f(slot * 0.7)}" height="{_f(py(0) - py(v))}" '
                   f'fill="{SERIES[0]}"><title>decile {i + 1}: lift {v:.2f}×</title></rect>')
        out.append(f'<text x="{_f(left + (i + 0.5) * slot)}" y="{_f(top + ph + 15)}" text-anchor="middle" '
                   f'font-size="11" fill="{MUTED}">{i + 1}</text>')
    out.append(f'<line x1="{_f(left)}" y1="{_f(py(1))}" x2="{_f(width - right)}" y2="{_f(py(1))}" '
               f'stroke="{INK}" stroke-dasharray="4 4"/>')
    out.append(f'<text x="{_f(left + pw / 2)}" y="{_f(height - 6)}" text-anchor="middle" font-size="11" '
               f'fill="{INK}">score decile (1 = highest scores)</text>')
    for j, s in enumerate(baselines, start=1):
        colour = SERIES[j % len(SERIES)]
        dash = DASHES[j % len(DASHES)]
        pts = [(left + (d - 0.5) * slot, py(v)) for d, v in s.points if v == v]
        if len(pts) > 1:
            out.append(f'<polyline points="{" ".join(f"{_f(a)},{_f(b)}" for a, b in pts)}" fill="none" '
                       f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        for (a, b), (d, v) in zip(pts, [(d, v) for d, v in s.points if v == v], strict=True):
            out.append(f'<circle cx="{_f(a)}" cy="{_f(b)}" r="2.6" fill="{colour}">'
                       f"<title>{escape(s.name)}, decile {int(d)}: lift {v:.2f}×</title></circle>")
    legend = [Series("dealscore model", []), *baselines]
    out += _legend(legend, width - right - 150, top + 12)
    out.append("</svg>")
    return Markup("".join(out))


def fan_chart(months: Sequence[str], bands: dict[str, Sequence[float]], *, title: str, width: int = 340,
              height: int = 170) -> Markup:
    """Cumulative bookings by month end: P10–P90 and P25–P75 bands and the median line (a forecast's fan)."""
    n = len(months)
    if n == 0:
        return Markup("")
    top = max(max(bands["q90"]), 1.0)
    left, right, pad_top, bottom = 52.0, 8.0, 8.0, 22.0
    step = (width - left - right) / max(n - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return pad_top + (1 - v / top) * (height - pad_top - bottom)

    def band(lo: str, hi: str) -> str:
        pts = [(x(i), y(v)) for i, v in enumerate(bands[hi])] + [
            (x(i), y(v)) for i, v in reversed(list(enumerate(bands[lo])))]
        return " ".join(f"{_f(a)},{_f(b)}" for a, b in pts)

    median = " ".join(f"{_f(x(i))},{_f(y(v))}" for i, v in enumerate(bands["q50"]))
    label = (f"{title}: by the end of {months[-1]}, median {compact(bands['q50'][-1])}, "
             f"P10 {compact(bands['q10'][-1])} to P90 {compact(bands['q90'][-1])}")
    ticks = "".join(
        f'<text x="{_f(x(i))}" y="{height - 6}" font-size="9" text-anchor="middle" fill="{MUTED}">'
        f'{escape(m[2:])}</text>' for i, m in enumerate(months))
    grid = "".join(
        f'<line x1="{left}" x2="{width - right}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>'
        f'<text x="{left - 4}" y="{_f(y(v) + 3)}" font-size="9" text-anchor="end" fill="{MUTED}">{compact(v)}</text>'
        for v in (0.0, top / 2, top))
    return Markup(
        f'<svg class="fan" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}">{grid}'
        f'<polygon points="{band("q10", "q90")}" fill="{UP}" fill-opacity="0.18"/>'
        f'<polygon points="{band("q25", "q75")}" fill="{UP}" fill-opacity="0.32"/>'
        f'<polyline points="{median}" fill="none" stroke="{UP}" stroke-width="2"/>{ticks}</svg>'
    )
