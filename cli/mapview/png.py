"""The map as a PNG scatter plot, drawn with Pillow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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
    pts = check_points(points, [colors])
    track = check_path(path)
    frame = Frame.around(pts, track)
    legend = Legend.of([str(c) for c in colors])
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


def _png_axes(draw: ImageDraw.ImageDraw, frame: Frame, font: Font, words: MapText) -> None:
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
    r = dot_radius(len(pixels))
    edge = "#ffffff" if r >= 3 else None
    for (x, y), fill in zip(pixels, fills, strict=True):
        outline = LIGHT_OUTLINE if is_light(fill) else edge
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=outline)


def _png_path(draw: ImageDraw.ImageDraw, pixels: np.ndarray, font: Font) -> None:
    if len(pixels) == 0:
        return
    if len(pixels) > 1:
        draw.line([tuple(p) for p in pixels], fill=PATH_COLOUR, width=2, joint="curve")
    every = label_every(len(pixels))
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
    draw: ImageDraw.ImageDraw, legend: Legend, font: Font, words: MapText, path_steps: int
) -> None:
    y = TOP
    if words.legend_title:
        text = shorten(words.legend_title, 24)
        draw.text((LEGEND_X, y + 9), text, fill="black", font=_sized(font, 15), anchor="lm")
        y += 26
    for category, colour, count in legend.entries:
        outline = LIGHT_OUTLINE if is_light(colour) else None
        draw.ellipse((LEGEND_X, y + 3, LEGEND_X + 12, y + 15), fill=colour, outline=outline)
        text = shorten(category, 22) + f"  ({count})"
        draw.text((LEGEND_X + 20, y + 9), text, fill="black", font=font, anchor="lm")
        y += 22
    if path_steps:
        y += 10
        draw.line((LEGEND_X - 2, y + 9, LEGEND_X + 14, y + 9), fill=PATH_COLOUR, width=2)
        draw.ellipse((LEGEND_X + 1, y + 4, LEGEND_X + 11, y + 14), fill="white",
                     outline=PATH_COLOUR, width=2)  # fmt: skip
        for line in path_legend(words, path_steps):
            draw.text((LEGEND_X + 20, y + 9), line, fill="black", font=font, anchor="lm")
            y += 18
