"""Media decoding: bounded, safe image loading with EXIF orientation, always RGB."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from latent.errors import InvalidArgument

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
# Decoders Pillow may use; anything else (EPS, PSD, ...) is refused before parsing.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
# Leading bytes of formats often found under an image's name, to say what a file really is.
_OTHER_CONTENT = (
    (b"<!doctype html", "an HTML page"),
    (b"<html", "an HTML page"),
    (b"<?xml", "an XML document"),
    (b"pk\x03\x04", "a ZIP archive"),
    (b"%pdf", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"8bps", "a Photoshop document"),
)


class DecodeError(Exception):
    """A file could not be decoded; its message is stored as the asset's error."""


@dataclass(frozen=True)
class DecodedImage:
    """An RGB image ready for the encoder, with its original size."""

    image: Image.Image
    width: int
    height: int


def media_type_for(path: Path) -> str | None:
    """The media type the indexer handles for this file name, or None to skip it."""
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else None


def _open(source: Path | IO[bytes], max_pixels: int) -> DecodedImage:
    # MAX_IMAGE_PIXELS is process-global in Pillow; we only ever lower-or-equal it.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            # A bomb warning (between 1x and 2x the limit) becomes an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=IMAGE_FORMATS) as img:
                img.seek(0)
                oriented = ImageOps.exif_transpose(img)
                rgb = _to_rgb(oriented)
                rgb.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError(
            f"image too large (decompression-bomb limit {max_pixels} px): {exc}"
        ) from exc
    except UnidentifiedImageError as exc:
        found = _other_content(source)
        raise DecodeError(
            (f"the content is {found}, " if found else "")
            + "not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF)"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"cannot decode image (damaged or truncated file): {exc}") from exc
    return DecodedImage(rgb, rgb.width, rgb.height)


def _other_content(source: Path | IO[bytes]) -> str | None:
    """What a file that is no supported image seems to be, from its first bytes."""
    try:
        if isinstance(source, Path):
            with source.open("rb") as fh:
                head = fh.read(64)
        else:
            source.seek(0)
            head = source.read(64)
    except OSError:
        return None
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()  # a BOM or blank lines before HTML
    return next((name for magic, name in _OTHER_CONTENT if head.startswith(magic)), None)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB, compositing transparency over white."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    return img.convert("RGB") if img.mode != "RGB" else img.copy()


def decode_image_file(source: Path | IO[bytes], max_pixels: int) -> DecodedImage:
    """Decode an image file (a path or an open binary stream).

    Raises:
        DecodeError: the file is not a decodable image within the pixel limit.
    """
    return _open(source, max_pixels)


def decode_image_bytes(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode image bytes from a request.

    Raises:
        InvalidArgument: the bytes are empty or not a decodable image.
    """
    if not data:
        raise InvalidArgument("image bytes are empty")
    try:
        return _open(io.BytesIO(data), max_pixels)
    except DecodeError as exc:
        raise InvalidArgument(f"query image: {exc}") from exc
