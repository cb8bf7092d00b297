"""``assetsearch map``: fetch a collection's 2-D projection and render it as HTML or PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from cli.inputs import query_arg
from cli.options import client_flags, connect, settings_from
from cli.output import usage_error

if TYPE_CHECKING:
    from cli.mapview import MapText
    from latent.settings import Settings

# Thumbnails are inlined in the HTML page: beyond this many points they would bloat it.
MAX_THUMBNAILS = 3000


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``map`` command."""
    p = commands.add_parser("map", help="a 2-D map of a collection as interactive HTML or PNG")
    p.add_argument("--out", required=True, metavar="map.html|map.png", help="output file")
    p.add_argument(
        "--color-by", metavar="FIELD", help="metadata field (dotted: objects.0.color) or media_type"
    )
    p.add_argument(
        "--path", nargs=2, metavar=("EXPR_A", "EXPR_B"), help="draw an interpolation path"
    )
    p.add_argument("--steps", type=int, default=8, help="steps of the path (default 8)")
    p.add_argument(
        "--method", choices=("pca", "umap"), default="pca", help="projection (umap if installed)"
    )
    p.add_argument("--max-points", type=int, default=5000, help="sample at most this many assets")
    client_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render a 2-D map of a collection to HTML (interactive) or PNG."""
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".png"):
        return usage_error("--out must end in .html or .png")
    settings = settings_from(args)
    response = _fetch(args, settings)
    _render(args, response, out, name=args.collection or settings.collection)
    print(f"wrote {out} ({len(response.points)} points, path of {len(response.path)} steps)")
    return 0


def _render(args: argparse.Namespace, response: Any, out: Path, name: str) -> None:
    """Draw the fetched map into `out`; numpy and Pillow load here, for this command alone."""
    import numpy as np

    from cli.mapview import render_html, render_png

    points = np.array([[p.x, p.y] for p in response.points], dtype=np.float32)
    colors = (
        [p.color or "(none)" for p in response.points] if args.color_by else ["asset"] * len(points)
    )
    line = (
        np.array([[p.x, p.y] for p in response.path], dtype=np.float32) if response.path else None
    )
    text = _words(args, response, name=name, count=len(points))
    if out.suffix.lower() == ".png":
        render_png(points, colors, out, path=line, text=text)
    else:
        labels, thumbs = _hover(response.points)
        render_html(points, labels, colors, out, thumbnails=thumbs, path=line, text=text)


def _fetch(args: argparse.Namespace, settings: Settings) -> Any:
    """The server's projection of the collection (and of the path, when one is asked for)."""
    path = (query_arg(args.path[0]), query_arg(args.path[1])) if args.path else None
    with connect(settings) as client:
        return client.project(
            method=args.method,
            max_points=args.max_points,
            color_by=args.color_by or "",
            path=path,
            path_steps=args.steps,
            collection=args.collection or "",
        )


def _words(args: argparse.Namespace, response: Any, name: str, count: int) -> MapText:
    """The caption, legend heading, path ends and axis names of the map."""
    from cli.mapview import MapText

    axis = "PC" if response.method == "pca" else response.method.upper()
    return MapText(
        title=f"{name}: {count} of {response.total} assets ({response.method})",
        legend_title=args.color_by or "",
        path_from=args.path[0] if args.path else "",
        path_to=args.path[1] if args.path else "",
        x_axis=f"{axis} 1",
        y_axis=f"{axis} 2",
    )


def _hover(points: Any) -> tuple[list[str], list[str | None]]:
    """Each point's hover label, and its thumbnail for a local file (the first few thousand)."""
    from cli.mapview import thumbnail_data_uri

    files = [unquote(urlparse(p.uri).path) if p.uri.startswith("file://") else "" for p in points]
    thumbs = [
        thumbnail_data_uri(Path(f)) if f and i < MAX_THUMBNAILS else None
        for i, f in enumerate(files)
    ]
    labels = [
        f"#{p.asset_id} {Path(files[i] or p.uri).name} {p.color}" for i, p in enumerate(points)
    ]
    return labels, thumbs
