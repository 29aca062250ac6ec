"""SVG charts rendered on the server: no script, no font, nothing fetched from elsewhere.

Every text is escaped; colours are fixed per status so two reports read the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

#: A status's colour, the same in every chart.
STATUS_COLOURS = {
    "delivered": "#2e9e5b",
    "read": "#1f7a46",
    "sent": "#6cb6e0",
    "processing": "#f0b429",
    "scheduled": "#b794f4",
    "undeliverable": "#d64545",
    "expired": "#a0522d",
    "unknown": "#9aa5b1",
}
_PALETTE = ("#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444", "#14b8a6", "#64748b")


def colour(name: str, index: int) -> str:
    return STATUS_COLOURS.get(name, _PALETTE[index % len(_PALETTE)])


def stacked_bar(counts: Mapping[str, int], *, title: str, width: int = 640) -> str:
    """One horizontal bar split by ``counts`` (largest first), with a legend."""
    total = sum(counts.values())
    parts = sorted(counts.items(), key=lambda item: -item[1])
    x = 0.0
    rects, legend = [], []
    for index, (name, count) in enumerate(parts):
        share = count / total if total else 0
        fill = colour(name, index)
        rects.append(
            f'<rect x="{x:.1f}" y="24" width="{share * width:.1f}" height="28" fill="{fill}">'
            f"<title>{escape(name)}: {count:,} ({share:.1%})</title></rect>"
        )
        x += share * width
        legend.append(
            f'<rect x="{(index % 4) * 160}" y="{64 + (index // 4) * 20}" width="12" height="12" '
            f'fill="{fill}"/><text x="{(index % 4) * 160 + 18}" y="{74 + (index // 4) * 20}" '
            f'class="legend">{escape(name)} {count:,} ({share:.1%})</text>'
        )
    height = 84 + ((len(parts) - 1) // 4) * 20
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="0" y="14" class="title">{escape(title)}</text>{"".join(rects)}'
        f"{''.join(legend)}</svg>"
    )


def bars(counts: Mapping[str, int], *, title: str, width: int = 640) -> str:
    """One bar per name (largest first), labelled with its count."""
    parts = sorted(counts.items(), key=lambda item: -item[1])
    top = max((count for _, count in parts), default=0) or 1
    rows = []
    for index, (name, count) in enumerate(parts):
        y = 24 + index * 26
        length = count / top * (width - 260)
        rows.append(
            f'<text x="0" y="{y + 14}" class="label">{escape(name)}</text>'
            f'<rect x="130" y="{y}" width="{length:.1f}" height="18" '
            f'fill="{colour(name, index)}"/>'
            f'<text x="{136 + length:.1f}" y="{y + 14}" class="label">{count:,}</text>'
        )
    height = 30 + len(parts) * 26
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="0" y="14" class="title">{escape(title)}</text>{"".join(rows)}</svg>'
    )


def timeline(points: Sequence[Sequence[float]], *, title: str, width: int = 640) -> str:
    """Messages sent against seconds since the send started: one line."""
    height, left, bottom = 180, 60, 150
    if not points:
        return ""
    if points[0][0] > 0:  # the line starts at the send's start, with nothing sent
        points = [[0.0, 0.0], *points]
    last_t = max(point[0] for point in points) or 1.0
    last_n = max(point[1] for point in points) or 1.0
    coords = " ".join(
        f"{left + t / last_t * (width - left - 10):.1f},{bottom - n / last_n * (bottom - 30):.1f}"
        for t, n in points
    )
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="0" y="14" class="title">{escape(title)}</text>'
        f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" class="axis"/>'
        f'<line x1="{left}" y1="30" x2="{left}" y2="{bottom}" class="axis"/>'
        f'<text x="{left - 6}" y="34" class="tick" text-anchor="end">{last_n:,.0f}</text>'
        f'<text x="{left - 6}" y="{bottom}" class="tick" text-anchor="end">0</text>'
        f'<text x="{width - 10}" y="{bottom + 16}" class="tick" text-anchor="end">'
        f"{last_t:.1f} s</text>"
        f'<polyline points="{coords}" fill="none" stroke="#3b82f6" stroke-width="2"/></svg>'
    )
