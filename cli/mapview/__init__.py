"""Rendering a 2-D map of a collection: a PNG with Pillow, or self-contained HTML."""

from cli.mapview.layout import HEIGHT, WIDTH, MapText
from cli.mapview.png import render_png
from cli.mapview.svg import render_html
from cli.mapview.thumbnails import thumbnail_data_uri

__all__ = ["HEIGHT", "WIDTH", "MapText", "render_html", "render_png", "thumbnail_data_uri"]
