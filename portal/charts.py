"""Small SVG charts drawn on the server: no script, readable without colour (labels and
values are printed), each with its data table beside it in the page."""

from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = ["#1b7a3a", "#a35a00", "#5a5a5a", "#b00020", "#0b4f9c", "#6b3fa0"]


def stacked_bars(
    title: str, labels: list[str], series: dict[str, list[int]], width: int = 860, left: int = 260
) -> Markup:
    """Horizontal stacked bars, one per label; series are the stacked parts (`left`: the labels' room)."""
    row, top = 22, 28
    height = top + row * len(labels) + 40
    total_max = max([sum(vals) for vals in zip(*series.values(), strict=True)] or [1]) or 1
    scale = (width - left - 60) / total_max
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" class="chart"><title>{escape(title)}</title>'
    ]
    for i, label in enumerate(labels):
        y = top + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" font-size="12">{escape(label[:22])}</text>'
        )
        x: float = left
        for j, (name, values) in enumerate(series.items()):
            w = values[i] * scale
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{PALETTE[j % 6]}">'
                    f"<title>{escape(label)} · {escape(name)}: {values[i]}</title></rect>"
                )
            x += w
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="11">{sum(v[i] for v in series.values())}</text>'
        )
    legend_y = top + row * len(labels) + 20
    for j, name in enumerate(series):
        parts.append(
            f'<rect x="{left + j * 130}" y="{legend_y - 10}" width="12" height="12" fill="{PALETTE[j % 6]}"/>'
            f'<text x="{left + j * 130 + 16}" y="{legend_y}" font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line(title: str, points: list[tuple[str, int]], width: int = 860, height: int = 240) -> Markup:
    """A line over days (label, value), with the axis labelled at the ends and the peak."""
    left, bottom, top = 40, 30, 20
    peak = max([v for _, v in points] or [1]) or 1
    step = (width - left - 20) / max(len(points) - 1, 1)
    coords = [
        (left + i * step, top + (height - top - bottom) * (1 - v / peak)) for i, (_, v) in enumerate(points)
    ]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" class="chart"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="11">0</text>',
    ]
    if points:
        parts.append(f'<path d="{path}" fill="none" stroke="{PALETTE[4]}" stroke-width="2"/>')
        for (x, y), (label, v) in zip(coords, points, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{PALETTE[4]}"><title>{escape(label)}: {v}</title></circle>'
            )
        parts.append(f'<text x="{left}" y="{height - 8}" font-size="11">{escape(points[0][0])}</text>')
        parts.append(
            f'<text x="{width - 20}" y="{height - 8}" text-anchor="end" font-size="11">{escape(points[-1][0])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(
    title: str, labels: list[str], series: dict[str, list[int]], width: int = 640, height: int = 260
) -> Markup:
    """Several lines over the same labels (days, months), each in its colour and dash, with a
    legend; the axis labelled at the ends and the peak, every point's value in its tooltip."""
    left, bottom, top = 48, 48, 20
    peak = max([v for values in series.values() for v in values] or [1]) or 1
    step = (width - left - 20) / max(len(labels) - 1, 1)
    plot = height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" class="chart"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot}" x2="{width - 20}" y2="{top + plot}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="12">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot}" text-anchor="end" font-size="12">0</text>',
    ]
    dashes = ["", ' stroke-dasharray="6 4"', ' stroke-dasharray="2 3"']
    for j, (name, values) in enumerate(series.items()):
        colour = PALETTE[(4, 1, 0)[j % 3]]
        coords = [(left + i * step, top + plot * (1 - v / peak)) for i, v in enumerate(values)]
        if coords:
            path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
            parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dashes[j % 3]}/>')
        for (x, y), label, v in zip(coords, labels, values, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(label)} · {escape(name)}: {v}</title></circle>"
            )
        parts.append(
            f'<line x1="{left + j * 170}" y1="{height - 10}" x2="{left + j * 170 + 24}" y2="{height - 10}" '
            f'stroke="{colour}" stroke-width="2"{dashes[j % 3]}/>'
            f'<text x="{left + j * 170 + 30}" y="{height - 6}" font-size="12">{escape(name)}</text>'
        )
    if labels:
        parts.append(f'<text x="{left}" y="{top + plot + 18}" font-size="12">{escape(labels[0])}</text>')
        parts.append(
            f'<text x="{width - 20}" y="{top + plot + 18}" text-anchor="end" font-size="12">{escape(labels[-1])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
