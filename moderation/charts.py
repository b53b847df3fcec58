"""Small server-rendered SVG charts for the back office: bars, a line, a heat map.

Numbers in, markup out; no JavaScript and nothing fetched from elsewhere. Every piece of text
(titles, axis labels, tooltips) is escaped here, so the result is safe to put in a page as is.
No ``style`` attributes: the admin's Content-Security-Policy refuses inline styles; colours are
presentation attributes, sizes come from the ``viewBox``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

BAR = "#417690"  # Django admin's blue
LINE = "#b35900"
GRID = "#dddddd"
TEXT = "#333333"


def _number(value: float) -> str:
    """A value as a chart shows it: whole numbers plainly, others with at most 3 significant
    digits after the point (0.917, 12.5, 1234)."""
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _frame(width: int, height: int, title: str, body: list[str]) -> SafeString:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        'class="crowdmint-chart">',
        f"<title>{escape(title)}</title>",
        *body,
        "</svg>",
    ]
    return mark_safe("".join(parts))  # every text above is escaped


def _axis_labels(labels: Sequence[str], xs: list[float], y: float, every: int) -> list[str]:
    """Every ``every``-th label under its x; the first and last kept inside the frame."""
    last = len(labels) - 1
    shown = [i for i in range(len(labels)) if i % every == 0 and last - i >= every / 2]
    if last >= 0:
        shown.append(last)
    anchors = {0: "start", last: "end"} if last > 0 else {}
    return [
        f'<text x="{xs[i]:.1f}" y="{y:.1f}" font-size="10" '
        f'text-anchor="{anchors.get(i, "middle")}" fill="{TEXT}">{escape(labels[i])}</text>'
        for i in shown
    ]


def _plot_head(
    points: Sequence[tuple[str, float]], title: str, width: int, height: int, unit: str
) -> tuple[int, int, int, int, float, list[str]]:
    """A value chart's frame: its plot's left, top, width and height, the value at the top of
    the scale, and the title (with the maximum) and baseline drawn."""
    top, bottom, left, right = 20, 20, 8, 8
    plot_h = height - top - bottom
    plot_w = width - left - right
    top_value = max((v for _, v in points), default=0.0)
    peak = top_value or 1.0  # the scale; an all-zero chart says max 0
    body = [
        f'<text x="{left}" y="12" font-size="11" fill="{TEXT}">{escape(title)} '
        f"(max {escape(_number(top_value))}{escape(unit)})</text>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="{GRID}"/>',
    ]
    return left, top, plot_w, plot_h, peak, body


def bar_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 560,
    height: int = 160,
    unit: str = "",
) -> SafeString:
    """Vertical bars, one per (label, value); each bar's tooltip gives its exact value."""
    left, top, plot_w, plot_h, peak, body = _plot_head(points, title, width, height, unit)
    if not points:
        body.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" font-size="11" '
            f'text-anchor="middle" fill="{TEXT}">no data</text>'
        )
        return _frame(width, height, title, body)
    slot = plot_w / len(points)
    xs: list[float] = []
    for i, (label, value) in enumerate(points):
        h = plot_h * max(value, 0.0) / peak
        x = left + i * slot
        xs.append(x + slot / 2)
        body.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{escape(label)}: {escape(_number(value))}{escape(unit)}</title></rect>"
        )
    body += _axis_labels([p[0] for p in points], xs, height - 5, max(1, len(points) // 6))
    return _frame(width, height, title, body)


def line_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 560,
    height: int = 160,
    unit: str = "",
) -> SafeString:
    """A polyline through the values, with a dot (and its exact value as a tooltip) at each."""
    left, top, plot_w, plot_h, peak, body = _plot_head(points, title, width, height, unit)
    if not points:
        return _frame(width, height, title, body)
    step = plot_w / max(len(points) - 1, 1)
    coords = [
        (left + i * step, top + plot_h - plot_h * max(v, 0.0) / peak)
        for i, (_, v) in enumerate(points)
    ]
    body.append(
        '<polyline fill="none" stroke-width="2" stroke="'
        + LINE
        + '" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        + '"/>'
    )
    for (label, value), (x, y) in zip(points, coords, strict=True):
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LINE}">'
            f"<title>{escape(label)}: {escape(_number(value))}{escape(unit)}</title></circle>"
        )
    body += _axis_labels(
        [p[0] for p in points], [x for x, _ in coords], height - 5, max(1, len(points) // 6)
    )
    return _frame(width, height, title, body)


def _shade(share: float) -> str:
    """White (0) to Django admin's dark blue (1)."""
    share = min(max(share, 0.0), 1.0)
    r, g, b = (int(255 + (c - 255) * share) for c in (0x26, 0x4B, 0x5D))
    return f"#{r:02x}{g:02x}{b:02x}"


def heat_map(
    matrix: Sequence[Sequence[float]],
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    title: str,
    counts: Sequence[Sequence[int]] | None = None,
    cell: int = 44,
) -> SafeString:
    """A K x L grid of shares (0..1), darker for more; each cell writes its share (and its
    count, when given) and says both in its tooltip. Rows and columns are named."""
    label_w = max((len(r) for r in rows), default=4) * 7 + 12
    head_h = 34
    width = max(label_w + cell * len(columns) + 8, len(title) * 6 + 8)
    height = head_h + cell * len(rows) + 8
    body = [f'<text x="0" y="12" font-size="11" fill="{TEXT}">{escape(title)}</text>']
    for j, name in enumerate(columns):
        x = label_w + j * cell + cell / 2
        body.append(
            f'<text x="{x:.0f}" y="{head_h - 6}" font-size="10" text-anchor="middle" '
            f'fill="{TEXT}">{escape(name[:8])}</text>'
        )
    for i, name in enumerate(rows):
        y = head_h + i * cell
        body.append(
            f'<text x="{label_w - 6}" y="{y + cell / 2 + 4:.0f}" font-size="10" '
            f'text-anchor="end" fill="{TEXT}">{escape(name)}</text>'
        )
        empty = counts is not None and not any(counts[i])  # no evidence for this row
        for j, share in enumerate(matrix[i]):
            x = label_w + j * cell
            count = f" ({counts[i][j]})" if counts is not None else ""
            ink = "#ffffff" if share > 0.55 else TEXT
            shown = "–" if empty else f"{share:.0%}"
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{"#f4f4f4" if empty else _shade(share)}" stroke="{GRID}">'
                f"<title>{escape(name)} → {escape(columns[j])}: {shown}{count}</title></rect>"
                f'<text x="{x + cell / 2 - 1:.0f}" y="{y + cell / 2 + 3:.0f}" font-size="10" '
                f'text-anchor="middle" fill="{ink}">{shown}</text>'
            )
    return _frame(width, height, title, body)


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[float]]],
    *,
    series: Sequence[tuple[str, str]],
    title: str,
    width: int = 560,
    row_height: int = 18,
) -> SafeString:
    """One horizontal bar per row, split into ``series`` (name, colour) in proportion to the
    row's values, with a legend; each segment's tooltip gives its value."""
    label_w = min(max((len(name) for name, _ in rows), default=4) * 6 + 12, 200)
    top = 34
    height = top + row_height * len(rows) + 6
    plot_w = width - label_w - 8
    body = [f'<text x="0" y="12" font-size="11" fill="{TEXT}">{escape(title)}</text>']
    x = 0.0
    for name, colour in series:
        body.append(
            f'<rect x="{x:.0f}" y="18" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.0f}" y="27" font-size="10" fill="{TEXT}">{escape(name)}</text>'
        )
        x += 14 + len(name) * 6 + 12
    for i, (name, values) in enumerate(rows):
        y = top + i * row_height
        short = name if len(name) * 6 + 12 <= label_w else name[: (label_w - 12) // 6 - 1] + "…"
        body.append(
            f'<text x="{label_w - 6}" y="{y + row_height - 5}" font-size="10" text-anchor="end" '
            f'fill="{TEXT}">{escape(short)}<title>{escape(name)}</title></text>'
        )
        total = sum(values) or 1.0
        x = float(label_w)
        for (part, colour), value in zip(series, values, strict=True):
            w = plot_w * value / total
            if w <= 0:
                continue
            body.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row_height - 4}" '
                f'fill="{colour}"><title>{escape(name)}: {escape(_number(value))} '
                f"{escape(part)}</title></rect>"
            )
            x += w
    return _frame(width, height, title, body)
