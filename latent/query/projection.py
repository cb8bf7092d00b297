"""2-D maps of a collection: PCA (or UMAP) projection, rendered as PNG or self-contained HTML."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from latent.errors import FailedPrecondition, InvalidArgument
from latent.query.navigation import principal_components

WIDTH, HEIGHT = 1000, 800
LEFT, TOP, RIGHT, BOTTOM = 70, 50, 770, 740
LEGEND_X = 790
MAX_LEGEND = 20
OTHER = "other"
OTHER_COLOUR = "#9e9e9e"
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#637939",
)  # fmt: skip
PATH_COLOUR = "#111111"
LIGHT_OUTLINE = "#777777"
# Categories that name a colour are drawn in it: a "red" point in the palette's blue misleads.
NAMED_COLOURS = {
    "red": "#d62728", "green": "#2ca02c", "blue": "#1f77b4", "yellow": "#f2c500",
    "purple": "#8e44ad", "orange": "#ff7f0e", "white": "#ffffff", "black": "#222222",
    "pink": "#f78fc2", "brown": "#8c564b", "gray": "#7f7f7f", "grey": "#7f7f7f",
    "cyan": "#17becf", "magenta": "#e7298a", "violet": "#8e44ad", "gold": "#d4a017",
}  # fmt: skip


class Projection:
    """A fitted map from latent vectors to 2-D points."""

    def __init__(
        self,
        method: Literal["pca", "umap"],
        mean: np.ndarray | None = None,
        axes: np.ndarray | None = None,
        reducer: Any = None,
    ) -> None:
        """Hold a fitted projection; use `Projection.fit` rather than this."""
        self.method = method
        self._mean = mean
        self._axes = axes
        self._reducer = reducer

    @classmethod
    def fit(
        cls,
        vectors: np.ndarray,
        method: Literal["pca", "umap"] = "pca",
        seed: int = 0,
    ) -> Projection:
        """Fit a projection to a collection's vectors.

        Args:
            vectors: (n, d) vectors, n >= 1 (UMAP needs n >= 3).
            method: "pca" (numpy, deterministic) or "umap" (needs umap-learn).
            seed: Random state for UMAP; PCA has none.

        Returns:
            The fitted projection.

        Raises:
            InvalidArgument: bad vectors or method.
            FailedPrecondition: UMAP asked for but not installed.
        """
        x = _rows(vectors)
        if method == "pca":
            if x.shape[1] < 2:
                raise InvalidArgument("a 2-D map needs vectors of dimension 2 or more")
            return cls("pca", mean=x.mean(axis=0), axes=principal_components(x, 2))
        if method == "umap":
            return cls("umap", reducer=_fit_umap(x, seed))
        raise InvalidArgument(f"projection method must be 'pca' or 'umap', got {method!r}")

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project vectors (fitted or new) onto the map.

        Args:
            vectors: (n, d) vectors of the fitted dimension.

        Returns:
            (n, 2) float32 map coordinates.

        Raises:
            InvalidArgument: bad vectors or a dimension other than the fitted one.
        """
        x = _rows(vectors)
        if self._reducer is not None:
            return np.asarray(self._reducer.transform(x), dtype=np.float32)
        assert self._mean is not None and self._axes is not None
        if x.shape[1] != self._mean.shape[0]:
            raise InvalidArgument(f"expected dimension {self._mean.shape[0]}, got {x.shape[1]}")
        return ((x - self._mean) @ self._axes.T).astype(np.float32)


def _rows(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidArgument(f"expected a non-empty (n, d) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidArgument("vectors contain NaN or infinite values")
    return x


def _fit_umap(x: np.ndarray, seed: int) -> Any:
    try:
        import umap  # optional: heavy, not a dependency
    except ImportError as exc:
        raise FailedPrecondition("UMAP is not installed: pip install umap-learn") from exc
    if x.shape[0] < 3:
        raise InvalidArgument("UMAP needs at least 3 vectors")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, x.shape[0] - 1), random_state=seed)
    return reducer.fit(x)


@dataclass(frozen=True)
class _Frame:
    """Maps data coordinates into the plot rectangle (y up)."""

    lo: np.ndarray
    span: np.ndarray

    @classmethod
    def around(cls, *arrays: np.ndarray) -> _Frame:
        data = np.concatenate([a for a in arrays if a.size])
        lo, hi = data.min(axis=0), data.max(axis=0)
        span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
        return cls(lo - 0.04 * span, span * 1.08)

    def pixels(self, pts: np.ndarray) -> np.ndarray:
        unit = (pts - self.lo) / self.span
        x = LEFT + unit[:, 0] * (RIGHT - LEFT)
        y = BOTTOM - unit[:, 1] * (BOTTOM - TOP)
        return np.stack([x, y], axis=1)

    def ticks(self, axis: int) -> list[tuple[str, float]]:
        """(text, pixel) pairs of round-numbered ticks on one axis."""
        lo, span = float(self.lo[axis]), float(self.span[axis])
        step = _nice_step(span / 6)
        decimals = max(0, -math.floor(math.log10(step)))
        out = []
        for k in range(math.ceil(lo / step), math.floor((lo + span) / step) + 1):
            frac = (k * step - lo) / span
            pixel = LEFT + frac * (RIGHT - LEFT) if axis == 0 else BOTTOM - frac * (BOTTOM - TOP)
            out.append((f"{k * step:.{decimals}f}" if k else "0", float(pixel)))
        return out


def _nice_step(rough: float) -> float:
    """1, 2 or 5 times a power of ten, the nearest to `rough` on a log scale."""
    power = 10.0 ** math.floor(math.log10(rough))
    return min((m * power for m in (1.0, 2.0, 5.0, 10.0)), key=lambda s: abs(math.log(s / rough)))


@dataclass(frozen=True)
class _Legend:
    """Category → colour, biggest categories first, the tail folded into 'other'."""

    entries: list[tuple[str, str, int]]  # (category, colour, count)
    colour_of: dict[str, str]

    @classmethod
    def of(cls, categories: Sequence[str]) -> _Legend:
        counts = sorted(Counter(categories).items(), key=lambda kv: (-kv[1], kv[0]))
        shown = counts if len(counts) <= MAX_LEGEND else counts[: MAX_LEGEND - 1]
        colour_of = _colours([c for c, _ in shown])
        entries = [(c, colour_of[c], n) for c, n in shown]
        rest = counts[len(shown) :]
        if rest:
            entries.append((f"{OTHER} ({len(rest)} more)", OTHER_COLOUR, sum(n for _, n in rest)))
        return cls(entries, colour_of)

    def colour(self, category: str) -> str:
        return self.colour_of.get(category, OTHER_COLOUR)


def _colours(categories: Sequence[str]) -> dict[str, str]:
    """A colour per category: its own for a colour name, else the next unused palette one."""
    named = {c: NAMED_COLOURS[c.strip().lower()] for c in categories
             if c.strip().lower() in NAMED_COLOURS}  # fmt: skip
    free = [p for p in PALETTE if p not in named.values()]
    rest = [c for c in categories if c not in named]
    return {**named, **{c: free[i % len(free)] for i, c in enumerate(rest)}}


def _is_light(colour: str) -> bool:
    """True for a fill too pale to see on white (it needs an outline)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b > 215


@dataclass(frozen=True)
class MapText:
    """Words around the plot: the caption, the legend's heading, the path's ends, axis names."""

    title: str = ""
    legend_title: str = ""
    path_from: str = ""
    path_to: str = ""
    x_axis: str = ""
    y_axis: str = ""


def _check_inputs(points: np.ndarray, per_point: Sequence[Sequence[Any] | None]) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.all(np.isfinite(pts)):
        raise InvalidArgument(f"points must be a finite (n, 2) array, got shape {pts.shape}")
    for seq in per_point:
        if seq is not None and len(seq) != len(pts):
            raise InvalidArgument(f"expected {len(pts)} per-point values, got {len(seq)}")
    return pts


def _check_path(path: np.ndarray | None) -> np.ndarray:
    if path is None:
        return np.zeros((0, 2))
    arr = np.asarray(path, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"path must be a finite (m, 2) array, got shape {arr.shape}")
    return arr


def _dot_radius(n: int) -> float:
    return 4.0 if n <= 2000 else 2.5 if n <= 20000 else 1.5


def _label_every(m: int) -> int:
    return max(1, math.ceil(m / 20))


def render_png(
    points: np.ndarray,
    colors: Sequence[str],
    out: Path,
    path: np.ndarray | None = None,
    title: str = "",
    text: MapText | None = None,
) -> None:
    """Draw the map as a 1000x800 PNG scatter plot with Pillow.

    Args:
        points: (n, 2) map coordinates.
        colors: One category value per point; each distinct value gets a colour
            (biggest 20 in the legend, the rest grey "other").
        out: File to write.
        path: Optional (m, 2) interpolation/traversal path, drawn with step numbers.
        title: Caption at the top (`text.title` when `text` is given).
        text: Legend heading, path and axis names, and the caption.

    Raises:
        InvalidArgument: malformed points, colors or path.
    """
    pts = _check_inputs(points, [colors])
    track = _check_path(path)
    frame = _Frame.around(pts, track) if len(pts) or len(track) else _Frame.around(np.zeros((1, 2)))
    legend = _Legend.of([str(c) for c in colors])
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    words = text or MapText(title=title)
    _png_axes(draw, frame, font, words)
    _png_dots(draw, frame.pixels(pts), [legend.colour(str(c)) for c in colors])
    _png_path(draw, frame.pixels(track), font)
    _png_legend(draw, legend, font, words, path_steps=len(track))
    draw.text((WIDTH / 2, TOP / 2), words.title, fill="black", font=_sized(font, 17),
              anchor="mm")  # fmt: skip
    image.save(out, format="PNG")


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _png_axes(draw: ImageDraw.ImageDraw, frame: _Frame, font: Font, words: MapText) -> None:
    draw.rectangle((LEFT, TOP, RIGHT, BOTTOM), outline="#444444", width=1)
    draw.text((RIGHT, BOTTOM + 30), words.x_axis, fill="#444444", font=font, anchor="rt")
    draw.text((LEFT, TOP - 6), words.y_axis, fill="#444444", font=font, anchor="ld")
    for value, px in frame.ticks(0):
        draw.line((px, BOTTOM, px, BOTTOM + 5), fill="#444444")
        draw.text((px, BOTTOM + 8), value, fill="#444444", font=font, anchor="mt")
    for value, py in frame.ticks(1):
        draw.line((LEFT - 5, py, LEFT, py), fill="#444444")
        draw.text((LEFT - 8, py), value, fill="#444444", font=font, anchor="rm")


def _png_dots(draw: ImageDraw.ImageDraw, pixels: np.ndarray, fills: list[str]) -> None:
    r = _dot_radius(len(pixels))
    edge = "#ffffff" if r >= 3 else None
    for (x, y), fill in zip(pixels, fills, strict=True):
        outline = LIGHT_OUTLINE if _is_light(fill) else edge
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=outline)


def _png_path(draw: ImageDraw.ImageDraw, pixels: np.ndarray, font: Font) -> None:
    if len(pixels) == 0:
        return
    if len(pixels) > 1:
        draw.line([tuple(p) for p in pixels], fill=PATH_COLOUR, width=2, joint="curve")
    every = _label_every(len(pixels))
    for i, (x, y) in enumerate(pixels):
        last = i == len(pixels) - 1
        r = 9 if i % every == 0 or last else 3
        draw.ellipse((x - r, y - r, x + r, y + r), fill="white", outline=PATH_COLOUR, width=2)
        if r == 9:
            draw.text((x, y), str(i), fill=PATH_COLOUR, font=_small(font), anchor="mm")


def _small(font: Font) -> Font:
    return _sized(font, 11)


def _sized(font: Font, size: int) -> Font:
    if isinstance(font, ImageFont.FreeTypeFont):
        return font.font_variant(size=size)
    return font


def _png_legend(
    draw: ImageDraw.ImageDraw, legend: _Legend, font: Font, words: MapText, path_steps: int
) -> None:
    y = TOP
    if words.legend_title:
        text = _shorten(words.legend_title, 24)
        draw.text((LEGEND_X, y + 9), text, fill="black", font=_sized(font, 15), anchor="lm")
        y += 26
    for category, colour, count in legend.entries:
        outline = LIGHT_OUTLINE if _is_light(colour) else None
        draw.ellipse((LEGEND_X, y + 3, LEGEND_X + 12, y + 15), fill=colour, outline=outline)
        text = _shorten(category, 22) + f"  ({count})"
        draw.text((LEGEND_X + 20, y + 9), text, fill="black", font=font, anchor="lm")
        y += 22
    if path_steps:
        y += 10
        draw.line((LEGEND_X - 2, y + 9, LEGEND_X + 14, y + 9), fill=PATH_COLOUR, width=2)
        draw.ellipse((LEGEND_X + 1, y + 4, LEGEND_X + 11, y + 14), fill="white",
                     outline=PATH_COLOUR, width=2)  # fmt: skip
        for line in _path_legend(words, path_steps):
            draw.text((LEGEND_X + 20, y + 9), line, fill="black", font=font, anchor="lm")
            y += 18


def _path_legend(words: MapText, steps: int) -> list[str]:
    """The path's legend lines: its length and, when named, what its ends are."""
    lines = [f"path, {steps} steps"]
    if words.path_from:
        lines.append(_shorten(f"0 = {words.path_from}", 24))
    if words.path_to:
        lines.append(_shorten(f"{steps - 1} = {words.path_to}", 24))
    return lines


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    pts = _check_inputs(points, [labels, colors, thumbnails])
    track = _check_path(path)
    frame = _Frame.around(pts, track) if len(pts) or len(track) else _Frame.around(np.zeros((1, 2)))
    legend = _Legend.of([str(c) for c in colors])
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
    out.write_text(_page(words.title, svg, thumbs), encoding="utf-8")


def _svg_axes(frame: _Frame, words: MapText) -> str:
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
    pixels: np.ndarray, labels: Sequence[str], colors: Sequence[str], legend: _Legend
) -> str:
    r = _dot_radius(len(pixels))
    cats = {category: i for i, (category, _, _) in enumerate(legend.entries)}
    other = len(legend.entries) - 1
    rows = []
    for i, ((x, y), label, colour) in enumerate(zip(pixels, labels, colors, strict=True)):
        cat = cats.get(str(colour), other)
        fill = legend.colour(str(colour))
        light = ' class="light"' if _is_light(fill) else ""
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
    every = _label_every(len(pixels))
    for i, (x, y) in enumerate(pixels):
        big = i % every == 0 or i == len(pixels) - 1
        number = f'<text class="stepno" y="4">{i}</text>' if big else ""
        parts.append(
            f'<g class="step" transform="translate({x:.1f},{y:.1f})"><circle r="{9 if big else 3}"'
            f' fill="#fff" stroke="{PATH_COLOUR}" stroke-width="2"/>{number}</g>'
        )
    return "\n".join(parts) + "</g>"


def _svg_legend(legend: _Legend, words: MapText, path_steps: int) -> str:
    rows, top = [], TOP
    if words.legend_title:
        rows.append(f'<text x="{LEGEND_X}" y="{top + 14}" class="legendtitle">'
                    f"{html.escape(_shorten(words.legend_title, 24))}</text>")  # fmt: skip
        top += 26
    for i, (category, colour, count) in enumerate(legend.entries):
        y = top + 22 * i
        edge = f' stroke="{LIGHT_OUTLINE}"' if _is_light(colour) else ""
        rows.append(
            f'<g class="legend" data-c="{i}"><circle cx="{LEGEND_X + 6}" cy="{y + 9}" r="6" '
            f'fill="{colour}"{edge}/><text x="{LEGEND_X + 20}" y="{y + 14}">'
            f"{html.escape(_shorten(category, 22))} ({count})</text>"
            f"<title>{html.escape(category)}</title></g>"
        )
    if path_steps:
        rows.append(_svg_path_legend(words, path_steps, top + 22 * len(legend.entries) + 10))
    return "\n".join(rows)


def _svg_path_legend(words: MapText, steps: int, y: float) -> str:
    parts = [
        f'<line x1="{LEGEND_X - 2}" y1="{y + 9}" x2="{LEGEND_X + 14}" y2="{y + 9}" '
        f'stroke="{PATH_COLOUR}" stroke-width="2"/><circle cx="{LEGEND_X + 6}" '
        f'cy="{y + 9}" r="5" fill="#fff" stroke="{PATH_COLOUR}" stroke-width="2"/>'
    ]
    for i, line in enumerate(_path_legend(words, steps)):
        parts.append(f'<text x="{LEGEND_X + 20}" y="{y + 14 + 18 * i}">{html.escape(line)}</text>')
    return "".join(parts)


def _script_json(value: object) -> str:
    """JSON safe to inline in a <script> element (no way to close the tag)."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, svg: str, thumbs: list[str | None]) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{html.escape(title or "assetsearch map")}</title>
<style>
body {{ font-family: sans-serif; margin: 12px; }}
svg text {{ font-size: 13px; fill: #222; }}
svg .title {{ font-size: 16px; text-anchor: middle; }}
svg .tick {{ fill: #444; }}
svg .stepno {{ font-size: 11px; text-anchor: middle; font-weight: bold; }}
svg .legend {{ cursor: pointer; }}
svg .legend.off {{ opacity: 0.3; }}
svg .legendtitle {{ font-size: 14px; font-weight: bold; }}
#plot circle[data-i] {{ stroke: #fff; stroke-width: 0.5; }}
#plot circle.light {{ stroke: #777; stroke-width: 1; }}
#plot circle[data-i]:hover {{ stroke: #000; stroke-width: 2; }}
#map {{ cursor: grab; user-select: none; }}
#tip {{ position: fixed; display: none; pointer-events: none; background: #fff;
  border: 1px solid #888; padding: 4px 6px; font-size: 13px; max-width: 260px;
  box-shadow: 2px 2px 4px rgba(0,0,0,.2); overflow-wrap: anywhere; }}
#tip img {{ display: block; margin-top: 4px; max-width: 96px; max-height: 96px; }}
.help {{ color: #666; font-size: 12px; }}
</style></head><body>
{svg}
<div class="help">Hover a dot for details; wheel to zoom, drag to pan, double-click to reset,
click a legend entry to hide or show it.</div>
<div id="tip"></div>
<script>
{_SCRIPT.replace("__THUMBS__", _script_json(thumbs))}
</script>
</body></html>
"""


_SCRIPT = """
"use strict";
const THUMBS = __THUMBS__;
const svg = document.getElementById("map");
const plot = document.getElementById("plot");
const tip = document.getElementById("tip");
const dots = Array.from(plot.querySelectorAll("circle[data-i]"));
const steps = Array.from(plot.querySelectorAll("g.step"));
const R = dots.length ? parseFloat(dots[0].getAttribute("r")) : 4;
let view = {s: 1, x: 0, y: 0};
const ticks = document.getElementById("ticks");
function apply() {
  plot.setAttribute("transform", `translate(${view.x},${view.y}) scale(${view.s})`);
  // the axis values describe the unzoomed map only
  const home = view.s === 1 && view.x === 0 && view.y === 0;
  ticks.style.visibility = home ? "" : "hidden";
  for (const d of dots) d.setAttribute("r", R / Math.sqrt(view.s));
  for (const g of steps) {
    const t = g.getAttribute("transform").replace(/ scale\\(.*\\)$/, "");
    g.setAttribute("transform", `${t} scale(${1 / view.s})`);
  }
}
function svgPoint(ev) {
  const box = svg.getBoundingClientRect();
  return [(ev.clientX - box.left) * svg.viewBox.baseVal.width / box.width,
          (ev.clientY - box.top) * svg.viewBox.baseVal.height / box.height];
}
svg.addEventListener("wheel", (ev) => {
  ev.preventDefault();
  const [px, py] = svgPoint(ev);
  const f = ev.deltaY < 0 ? 1.2 : 1 / 1.2;
  const s = Math.min(50, Math.max(1, view.s * f));
  view.x = px - (px - view.x) * s / view.s;
  view.y = py - (py - view.y) * s / view.s;
  view.s = s;
  apply();
}, {passive: false});
let drag = null;
svg.addEventListener("mousedown", (ev) => { drag = [svgPoint(ev), view.x, view.y]; });
window.addEventListener("mouseup", () => { drag = null; });
svg.addEventListener("mousemove", (ev) => {
  if (!drag) return;
  const [px, py] = svgPoint(ev);
  view.x = drag[1] + px - drag[0][0];
  view.y = drag[2] + py - drag[0][1];
  apply();
});
svg.addEventListener("dblclick", () => { view = {s: 1, x: 0, y: 0}; apply(); });
plot.addEventListener("mouseover", (ev) => {
  const d = ev.target.closest("circle[data-i]");
  if (!d) return;
  tip.replaceChildren(document.createTextNode(d.dataset.label));
  const src = THUMBS[+d.dataset.i];
  if (src) { const img = new Image(); img.src = src; tip.appendChild(img); }
  tip.style.display = "block";
});
plot.addEventListener("mousemove", (ev) => {
  tip.style.left = (ev.clientX + 14) + "px";
  tip.style.top = (ev.clientY + 14) + "px";
});
plot.addEventListener("mouseout", (ev) => {
  if (ev.target.closest("circle[data-i]")) tip.style.display = "none";
});
for (const g of svg.querySelectorAll("g.legend")) {
  g.addEventListener("click", () => {
    const off = g.classList.toggle("off");
    for (const d of dots) if (d.dataset.c === g.dataset.c) d.style.display = off ? "none" : "";
  });
}
"""


def thumbnail_data_uri(path: Path, size: int = 96) -> str | None:
    """A small JPEG data URI of an image file, for map tooltips.

    Pillow's decompression-bomb limit stays on; a file that cannot be read or
    decoded (or is a bomb) gives None rather than an error.

    Args:
        path: Image file.
        size: Longest side of the thumbnail in pixels.

    Returns:
        "data:image/jpeg;base64,..." or None.
    """
    try:
        with Image.open(path) as im:
            im.draft("RGB", (size, size))
            rgb = _flatten(ImageOps.exif_transpose(im))
            rgb.thumbnail((size, size))
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=80)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _flatten(im: Image.Image) -> Image.Image:
    """RGB on white, so transparent images do not turn black in JPEG."""
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, "white")
    return Image.alpha_composite(background, rgba).convert("RGB")
