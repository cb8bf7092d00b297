"""Tests of the map's rendering (the CLI's `map`): PNG, self-contained HTML, thumbnails."""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli.mapview import HEIGHT, WIDTH, MapText, render_html, render_png, thumbnail_data_uri
from latent.errors import InvalidArgument
from latent.query.projection import Projection
from tests.test_projection import clustered


def test_render_png_writes_an_image_with_the_category_colours(tmp_path: Path):
    vectors, categories = clustered()
    points = Projection.fit(vectors).transform(vectors)
    out = tmp_path / "map.png"
    path = points[[0, 60, 120]]
    render_png(points, categories, out, path=path, title="demo map")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
        colours = {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 16)}
    # the first two palette colours (the two biggest categories) are drawn
    assert (0x1F, 0x77, 0xB4) in colours and (0xFF, 0x7F, 0x0E) in colours


def test_render_png_handles_a_single_point_and_many_categories(tmp_path: Path):
    render_png(np.zeros((1, 2)), ["only"], tmp_path / "one.png")
    many = [f"cat{i}" for i in range(40)]
    render_png(np.random.default_rng(0).normal(size=(40, 2)), many, tmp_path / "many.png")
    with Image.open(tmp_path / "many.png") as image:
        assert image.size == (WIDTH, HEIGHT)
    with pytest.raises(InvalidArgument, match="per-point"):
        render_png(np.zeros((3, 2)), ["a"], tmp_path / "bad.png")


def test_render_html_escapes_labels_and_is_self_contained(tmp_path: Path):
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    labels = ["<script>alert(1)</script>", 'quote " & amp', "plain.jpg"]
    colors = ["<b>cat</b>", "x", "x"]
    out = tmp_path / "map.html"
    render_html(points, labels, colors, out, path=points[:2], title="<i>t</i>")
    text = out.read_text(encoding="utf-8")
    assert "<svg" in text and "<polyline" in text
    for label in labels:
        assert html.escape(label, quote=True) in text
    assert "<script>alert(1)</script>" not in text
    assert "<b>cat</b>" not in text and "<i>t</i>" not in text
    assert not re.search(r"(src|href)=[\"']?https?:", text)  # nothing fetched from the network
    assert text.count("<script>") == 1


def test_render_html_embeds_only_data_thumbnails(tmp_path: Path):
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    thumbs = ["data:image/jpeg;base64,AAAA", "javascript:alert(1)", None]
    out = tmp_path / "map.html"
    render_html(points, ["a", "b", "c"], ["x", "y", "x"], out, thumbnails=thumbs)
    text = out.read_text(encoding="utf-8")
    assert "data:image/jpeg;base64,AAAA" in text
    assert "javascript:alert" not in text


def test_render_html_script_data_cannot_close_the_script(tmp_path: Path):
    out = tmp_path / "map.html"
    evil = "data:image/png;base64,</script><script>alert(1)</script>"
    render_html(np.zeros((1, 2)), ["a"], ["x"], out, thumbnails=[evil])
    assert out.read_text(encoding="utf-8").count("</script>") == 1


def test_thumbnail_data_uri(tmp_path: Path):
    image_path = tmp_path / "big.png"
    Image.new("RGBA", (400, 200), (255, 0, 0, 128)).save(image_path)
    uri = thumbnail_data_uri(image_path, size=64)
    assert uri is not None and uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as thumb:
        assert thumb.size == (64, 32)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    assert thumbnail_data_uri(broken) is None
    assert thumbnail_data_uri(tmp_path / "missing.png") is None


def test_colour_names_are_drawn_in_their_colour_and_white_stays_visible(tmp_path: Path):
    points = np.random.default_rng(3).normal(size=(30, 2))
    colours = ["white", "red", "blue"] * 10  # by palette order red would be orange
    text = MapText(title="t", legend_title="objects.0.color", path_from="asset:1", path_to="x")
    out = tmp_path / "named.png"
    render_png(points, colours, out, path=points[:4], text=text)
    with Image.open(out) as image:
        drawn = {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 16)}
    assert {(0xD6, 0x27, 0x28), (0x1F, 0x77, 0xB4), (0x77, 0x77, 0x77)} <= drawn
    render_html(points, colours, colours, tmp_path / "named.html", path=points[:4], text=text)
    page = (tmp_path / "named.html").read_text(encoding="utf-8")
    assert 'fill="#d62728"' in page and 'fill="#ffffff" class="light"' in page
    assert "objects.0.color</text>" in page and "0 = asset:1" in page and "3 = x" in page
