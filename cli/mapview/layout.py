"""The map's layout, shared by PNG and HTML: plot frame, ticks, legend and colours, words."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latent.errors import InvalidArgument

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


@dataclass(frozen=True)
class Frame:
    """Maps data coordinates into the plot rectangle (y up)."""

    lo: np.ndarray
    span: np.ndarray

    @classmethod
    def around(cls, *arrays: np.ndarray) -> Frame:
        """The frame around all the given (k, 2) arrays, with a small margin."""
        # an empty map (no points, no path) gets the frame of one point at the origin
        data = np.concatenate([a for a in arrays if a.size] or [np.zeros((1, 2))])
        lo, hi = data.min(axis=0), data.max(axis=0)
        span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
        return cls(lo - 0.04 * span, span * 1.08)

    def pixels(self, pts: np.ndarray) -> np.ndarray:
        """Pixel coordinates of (n, 2) data points."""
        unit = (pts - self.lo) / self.span
        x = LEFT + unit[:, 0] * (RIGHT - LEFT)
        y = BOTTOM - unit[:, 1] * (BOTTOM - TOP)
        return np.stack([x, y], axis=1)

    def ticks(self, axis: int) -> list[tuple[str, float]]:
        """(text, pixel) pairs of round-numbered ticks on one axis."""
        lo, span = float(self.lo[axis]), float(self.span[axis])
        step = nice_step(span / 6)
        decimals = max(0, -math.floor(math.log10(step)))
        out = []
        for k in range(math.ceil(lo / step), math.floor((lo + span) / step) + 1):
            frac = (k * step - lo) / span
            pixel = LEFT + frac * (RIGHT - LEFT) if axis == 0 else BOTTOM - frac * (BOTTOM - TOP)
            out.append((f"{k * step:.{decimals}f}" if k else "0", float(pixel)))
        return out


def nice_step(rough: float) -> float:
    """1, 2 or 5 times a power of ten, the nearest to `rough` on a log scale."""
    power = 10.0 ** math.floor(math.log10(rough))
    return min((m * power for m in (1.0, 2.0, 5.0, 10.0)), key=lambda s: abs(math.log(s / rough)))


@dataclass(frozen=True)
class Legend:
    """Category → colour, biggest categories first, the tail folded into 'other'."""

    entries: list[tuple[str, str, int]]  # (category, colour, count)
    colour_of: dict[str, str]

    @classmethod
    def of(cls, categories: Sequence[str]) -> Legend:
        """The legend of one category value per point."""
        counts = sorted(Counter(categories).items(), key=lambda kv: (-kv[1], kv[0]))
        shown = counts if len(counts) <= MAX_LEGEND else counts[: MAX_LEGEND - 1]
        colour_of = colours([c for c, _ in shown])
        entries = [(c, colour_of[c], n) for c, n in shown]
        rest = counts[len(shown) :]
        if rest:
            entries.append((f"{OTHER} ({len(rest)} more)", OTHER_COLOUR, sum(n for _, n in rest)))
        return cls(entries, colour_of)

    def colour(self, category: str) -> str:
        """The colour of a category (grey for one folded into 'other')."""
        return self.colour_of.get(category, OTHER_COLOUR)


def colours(categories: Sequence[str]) -> dict[str, str]:
    """A colour per category: its own for a colour name, else the next unused palette one."""
    named = {c: NAMED_COLOURS[c.strip().lower()] for c in categories
             if c.strip().lower() in NAMED_COLOURS}  # fmt: skip
    free = [p for p in PALETTE if p not in named.values()]
    rest = [c for c in categories if c not in named]
    return {**named, **{c: free[i % len(free)] for i, c in enumerate(rest)}}


def is_light(colour: str) -> bool:
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


def check_points(points: np.ndarray, per_point: Sequence[Sequence[Any] | None]) -> np.ndarray:
    """The points as a finite (n, 2) array, each per-point sequence of length n.

    Raises:
        InvalidArgument: malformed points or a sequence of another length.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.all(np.isfinite(pts)):
        raise InvalidArgument(f"points must be a finite (n, 2) array, got shape {pts.shape}")
    for seq in per_point:
        if seq is not None and len(seq) != len(pts):
            raise InvalidArgument(f"expected {len(pts)} per-point values, got {len(seq)}")
    return pts


def check_path(path: np.ndarray | None) -> np.ndarray:
    """The path as a finite (m, 2) array; an empty one when there is none.

    Raises:
        InvalidArgument: a malformed path.
    """
    if path is None:
        return np.zeros((0, 2))
    arr = np.asarray(path, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"path must be a finite (m, 2) array, got shape {arr.shape}")
    return arr


def dot_radius(n: int) -> float:
    """Dot size for n points: smaller dots as the map fills up."""
    return 4.0 if n <= 2000 else 2.5 if n <= 20000 else 1.5


def label_every(m: int) -> int:
    """Number every k-th step of an m-step path, so at most about 20 numbers show."""
    return max(1, math.ceil(m / 20))


def path_legend(words: MapText, steps: int) -> list[str]:
    """The path's legend lines: its length and, when named, what its ends are."""
    lines = [f"path, {steps} steps"]
    if words.path_from:
        lines.append(shorten(f"0 = {words.path_from}", 24))
    if words.path_to:
        lines.append(shorten(f"{steps - 1} = {words.path_to}", 24))
    return lines


def shorten(text: str, limit: int) -> str:
    """The text cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
