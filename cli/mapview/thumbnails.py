"""Small JPEG data URIs of image files, for the map's tooltips."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, ImageOps


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
