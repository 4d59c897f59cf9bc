"""A small SVG writer for the results plot: ratio bars and log-log lines, no plotting library.

Two kinds of panel, stacked vertically in one file:

* ``BarPanel`` -- one bar per row for a ratio to asyncio on a log scale
  centred on 1.0: bars to the right are better than asyncio, to the left
  worse; a whisker spans the min--max of the repetitions.
* ``LinePanel`` -- series of (x, y) points on log-log axes (pool cycle time
  against the number of idle fds).
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

WIDTH = 960
LABEL_W = 300
PLOT_W = WIDTH - LABEL_W - 90
ROW_H = 17
TITLE_H = 26
RATIO_MIN, RATIO_MAX = 1 / 16, 16

COLOURS = {"poorio": "#d9480f", "asyncio": "#1c7ed6", "uvloop": "#7048e8", "trio": "#2b8a3e", "c": "#495057"}
LINE_COLOURS = ("#d9480f", "#c2255c", "#1c7ed6", "#2b8a3e", "#7048e8", "#f08c00", "#0c8599", "#5c940d")


def colour(label: str) -> str:
    for prefix, value in COLOURS.items():
        if label.startswith(prefix):
            return value
    return "#868e96"


class BarPanel:
    def __init__(self, title: str, rows) -> None:
        self.title = title
        self.rows = rows  # [(label, ratio, lo, hi, faded)]

    def height(self) -> int:
        return TITLE_H + ROW_H * len(self.rows) + 24

    def draw(self, y: int) -> list:
        out = [_text(10, y + 18, self.title, size=14, weight="bold")]
        x0 = LABEL_W

        def xpos(r):
            r = min(max(r, RATIO_MIN), RATIO_MAX)
            return x0 + PLOT_W * (math.log2(r) - math.log2(RATIO_MIN)) / (math.log2(RATIO_MAX) - math.log2(RATIO_MIN))

        top = y + TITLE_H
        bottom = top + ROW_H * len(self.rows)
        for tick in (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16):
            tx = xpos(tick)
            out.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{bottom}" stroke="#dee2e6"/>')
            name = f"{tick:g}×" if tick >= 1 else f"1/{round(1 / tick)}"
            out.append(_text(tx, bottom + 14, name, size=10, anchor="middle", fill="#868e96"))
        one = xpos(1)
        for i, (label, ratio, lo, hi, faded) in enumerate(self.rows):
            ry = top + i * ROW_H
            out.append(_text(x0 - 8, ry + 12, label, size=11, anchor="end"))
            if ratio is None:
                out.append(_text(one + 6, ry + 12, "no baseline", size=10, fill="#868e96"))
                continue
            x = xpos(ratio)
            left, width = (x, one - x) if x < one else (one, x - one)
            opacity = "0.45" if faded else "0.9"
            out.append(
                f'<rect x="{left:.1f}" y="{ry + 3}" width="{max(width, 1):.1f}" height="{ROW_H - 6}" '
                f'fill="{colour(label)}" fill-opacity="{opacity}"/>'
            )
            if lo is not None and hi is not None:
                out.append(
                    f'<line x1="{xpos(lo):.1f}" y1="{ry + ROW_H / 2}" x2="{xpos(hi):.1f}" y2="{ry + ROW_H / 2}" '
                    f'stroke="#212529" stroke-width="1"/>'
                )
            out.append(_text(max(x, one) + 6, ry + 12, f"{ratio:.2f}×", size=10))
        out.append(f'<line x1="{one:.1f}" y1="{top - 4}" x2="{one:.1f}" y2="{bottom}" stroke="#212529"/>')
        return out


class LinePanel:
    def __init__(self, title: str, series, xlabel: str, ylabel: str) -> None:
        self.title = title
        self.series = series  # [(name, [(x, y), ...])]
        self.xlabel = xlabel
        self.ylabel = ylabel

    def height(self) -> int:
        return TITLE_H + 260

    def draw(self, y: int) -> list:
        out = [_text(10, y + 18, self.title, size=14, weight="bold")]
        points = [p for _, pts in self.series for p in pts if p[0] > 0 and p[1] > 0]
        if not points:
            return out
        lx = [math.log10(p[0]) for p in points]
        ly = [math.log10(p[1]) for p in points]
        xmin, xmax = math.floor(min(lx)), math.ceil(max(lx))
        ymin, ymax = math.floor(min(ly)), math.ceil(max(ly))
        xmax, ymax = max(xmax, xmin + 1), max(ymax, ymin + 1)
        left, top, w, h = 90, y + TITLE_H + 10, 520, 200

        def pos(px, py):
            return (
                left + w * (math.log10(px) - xmin) / (xmax - xmin),
                top + h - h * (math.log10(py) - ymin) / (ymax - ymin),
            )

        for d in range(xmin, xmax + 1):
            tx = left + w * (d - xmin) / (xmax - xmin)
            out.append(f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{top + h}" stroke="#dee2e6"/>')
            out.append(_text(tx, top + h + 14, f"{10 ** d:,}", size=10, anchor="middle", fill="#868e96"))
        for d in range(ymin, ymax + 1):
            ty = top + h - h * (d - ymin) / (ymax - ymin)
            out.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{left + w}" y2="{ty:.1f}" stroke="#dee2e6"/>')
            out.append(_text(left - 6, ty + 4, f"{10.0 ** d:g}", size=10, anchor="end", fill="#868e96"))
        out.append(_text(left + w / 2, top + h + 30, self.xlabel, size=11, anchor="middle"))
        out.append(_text(18, top + h / 2, self.ylabel, size=11, anchor="middle", rotate=True))
        # one colour per series name without its "(PyPy)" suffix; PyPy's line is dashed
        bases = []
        for name, _ in self.series:
            base = name.replace(" (PyPy)", "")
            if base not in bases:
                bases.append(base)
        for i, (name, pts) in enumerate(self.series):
            pts = [p for p in pts if p[0] > 0 and p[1] > 0]
            if not pts:
                continue
            c = LINE_COLOURS[bases.index(name.replace(" (PyPy)", "")) % len(LINE_COLOURS)]
            dash = ' stroke-dasharray="6 3"' if "(PyPy)" in name else ""
            path = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in (pos(*p) for p in pts))
            out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
            for p in pts:
                cx, cy = pos(*p)
                out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{c}"/>')
            ly_ = top + 10 + i * 18
            out.append(f'<line x1="{left + w + 20}" y1="{ly_}" x2="{left + w + 40}" y2="{ly_}" stroke="{c}" stroke-width="2"{dash}/>')
            out.append(_text(left + w + 46, ly_ + 4, name, size=11))
        return out


def render(title: str, subtitles, panels) -> str:
    """The whole SVG: a title, one line per subtitle, then the panels stacked."""
    top = 30 + 15 * len(subtitles)
    height = top + sum(p.height() for p in panels)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        _text(10, 22, title, size=17, weight="bold"),
    ]
    out += [_text(10, 40 + 15 * i, line, size=11, fill="#495057") for i, line in enumerate(subtitles)]
    y = top
    for panel in panels:
        out.extend(panel.draw(y))
        y += panel.height()
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _text(x, y, text, size=12, anchor="start", weight="normal", fill="#212529", rotate=False) -> str:
    transform = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="{fill}"{transform}>{escape(str(text))}</text>'
    )
