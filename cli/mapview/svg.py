"""The map as one self-contained HTML page: inline SVG, with the script of `page`."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cli.mapview.layout import (
    BOTTOM,
    HEIGHT,
    LEFT,
    LEGEND_X,
    LIGHT_OUTLINE,
    PATH_COLOUR,
    RIGHT,
    TOP,
    WIDTH,
    Frame,
    Legend,
    MapText,
    check_path,
    check_points,
    dot_radius,
    is_light,
    label_every,
    path_legend,
    shorten,
)
from cli.mapview.page import page


def render_html(
    points: np.ndarray,
    labels: Sequence[str],
    colors: Sequence[str],
    out: Path,
    thumbnails: Sequence[str | None] | None = None,
    path: np.ndarray | None = None,
    title: str = "",
    text: MapText | None = None,
) -> None:
    """Write the map as one self-contained HTML file (inline SVG and JS, no network).

    Hovering a dot shows its label and, when given, its thumbnail; clicking a legend
    entry hides or shows its category; the mouse wheel zooms and dragging pans.
    All user text is HTML-escaped; only `data:image/` thumbnails are used.

    Args:
        points: (n, 2) map coordinates.
        labels: One label per point (shown on hover).
        colors: One category value per point.
        out: File to write.
        thumbnails: Optional data URIs (see `thumbnail_data_uri`), one per point or None.
        path: Optional (m, 2) path drawn as a numbered polyline.
        title: Page title and caption (`text.title` when `text` is given).
        text: Legend heading, path and axis names, and the caption.

    Raises:
        InvalidArgument: malformed points, per-point sequences or path.
    """
    pts = check_points(points, [labels, colors, thumbnails])
    track = check_path(path)
    frame = Frame.around(pts, track)
    legend = Legend.of([str(c) for c in colors])
    thumbs = [t if isinstance(t, str) and t.startswith("data:image/") else None
              for t in (thumbnails or [None] * len(pts))]  # fmt: skip
    words = text or MapText(title=title)
    svg = "\n".join([
        f'<svg id="map" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<clipPath id="plotclip"><rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" '
        f'height="{BOTTOM - TOP}"/></clipPath>',
        _svg_axes(frame, words),
        '<g clip-path="url(#plotclip)"><g id="plot">',
        _svg_dots(frame.pixels(pts), labels, colors, legend),
        _svg_path(frame.pixels(track)),
        "</g></g>",
        _svg_legend(legend, words, len(track)),
        f'<text x="{WIDTH / 2}" y="{TOP / 2}" class="title">{html.escape(words.title)}</text>',
        "</svg>",
    ])  # fmt: skip
    out.write_text(page(words.title, svg, thumbs), encoding="utf-8")


def _svg_axes(frame: Frame, words: MapText) -> str:
    parts = [f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" '
             'fill="none" stroke="#444"/>',
             f'<text x="{RIGHT}" y="{BOTTOM + 40}" class="tick" text-anchor="end">'
             f"{html.escape(words.x_axis)}</text>",
             f'<text x="{LEFT}" y="{TOP - 8}" class="tick">{html.escape(words.y_axis)}</text>',
             '<g id="ticks">']  # fmt: skip
    for value, px in frame.ticks(0):
        parts.append(f'<line x1="{px:.1f}" y1="{BOTTOM}" x2="{px:.1f}" y2="{BOTTOM + 5}" '
                     f'stroke="#444"/><text x="{px:.1f}" y="{BOTTOM + 20}" class="tick" '
                     f'text-anchor="middle">{value}</text>')  # fmt: skip
    for value, py in frame.ticks(1):
        parts.append(f'<line x1="{LEFT - 5}" y1="{py:.1f}" x2="{LEFT}" y2="{py:.1f}" '
                     f'stroke="#444"/><text x="{LEFT - 8}" y="{py + 4:.1f}" class="tick" '
                     f'text-anchor="end">{value}</text>')  # fmt: skip
    parts.append("</g>")
    return "\n".join(parts)


def _svg_dots(
    pixels: np.ndarray, labels: Sequence[str], colors: Sequence[str], legend: Legend
) -> str:
    r = dot_radius(len(pixels))
    cats = {category: i for i, (category, _, _) in enumerate(legend.entries)}
    other = len(legend.entries) - 1
    rows = []
    for i, ((x, y), label, colour) in enumerate(zip(pixels, labels, colors, strict=True)):
        cat = cats.get(str(colour), other)
        fill = legend.colour(str(colour))
        light = ' class="light"' if is_light(fill) else ""
        rows.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}"{light} data-i="{i}" '
            f'data-c="{cat}" data-label="{html.escape(str(label), quote=True)}"/>'
        )
    return "\n".join(rows)


def _svg_path(pixels: np.ndarray) -> str:
    if len(pixels) == 0:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pixels)
    parts = [f'<g id="path"><polyline points="{coords}" fill="none" stroke="{PATH_COLOUR}" '
             'stroke-width="2" vector-effect="non-scaling-stroke"/>']  # fmt: skip
    every = label_every(len(pixels))
    for i, (x, y) in enumerate(pixels):
        big = i % every == 0 or i == len(pixels) - 1
        number = f'<text class="stepno" y="4">{i}</text>' if big else ""
        parts.append(
            f'<g class="step" transform="translate({x:.1f},{y:.1f})"><circle r="{9 if big else 3}"'
            f' fill="#fff" stroke="{PATH_COLOUR}" stroke-width="2"/>{number}</g>'
        )
    return "\n".join(parts) + "</g>"


def _svg_legend(legend: Legend, words: MapText, path_steps: int) -> str:
    rows, top = [], TOP
    if words.legend_title:
        rows.append(f'<text x="{LEGEND_X}" y="{top + 14}" class="legendtitle">'
                    f"{html.escape(shorten(words.legend_title, 24))}</text>")  # fmt: skip
        top += 26
    for i, (category, colour, count) in enumerate(legend.entries):
        y = top + 22 * i
        edge = f' stroke="{LIGHT_OUTLINE}"' if is_light(colour) else ""
        rows.append(
            f'<g class="legend" data-c="{i}"><circle cx="{LEGEND_X + 6}" cy="{y + 9}" r="6" '
            f'fill="{colour}"{edge}/><text x="{LEGEND_X + 20}" y="{y + 14}">'
            f"{html.escape(shorten(category, 22))} ({count})</text>"
            f"<title>{html.escape(category)}</title></g>"
        )
    if path_steps:
        rows.append(_svgpath_legend(words, path_steps, top + 22 * len(legend.entries) + 10))
    return "\n".join(rows)


def _svgpath_legend(words: MapText, steps: int, y: float) -> str:
    parts = [
        f'<line x1="{LEGEND_X - 2}" y1="{y + 9}" x2="{LEGEND_X + 14}" y2="{y + 9}" '
        f'stroke="{PATH_COLOUR}" stroke-width="2"/><circle cx="{LEGEND_X + 6}" '
        f'cy="{y + 9}" r="5" fill="#fff" stroke="{PATH_COLOUR}" stroke-width="2"/>'
    ]
    for i, line in enumerate(path_legend(words, steps)):
        parts.append(f'<text x="{LEGEND_X + 20}" y="{y + 14 + 18 * i}">{html.escape(line)}</text>')
    return "".join(parts)
