"""Decoding a file's bytes and filling in its asset write: shared by the indexer and uploads.

The indexer reads files from a library and the server's UpsertAsset receives them over
the network; both decode them here (bounded by the pixel limit, restricted to the
supported formats), so one file gets the same verdict and the same asset row either way.
"""

from __future__ import annotations

import logging
from typing import IO

import numpy as np

from latent.catalog import AssetWrite
from latent.media.images import DecodedImage, DecodeError, decode_image_file

log = logging.getLogger(__name__)


def decode(source: IO[bytes], size: int, max_pixels: int, name: str) -> DecodedImage | str:
    """Decode a file's bytes as an image, or say why they cannot be.

    Args:
        source: The bytes, as a seekable binary stream at its start.
        size: How many bytes the stream holds.
        max_pixels: The decompression-bomb limit.
        name: The file's name or uri, for the log.

    Returns:
        The decoded image, or the reason it could not be decoded (stored as a failed
        asset's error by the indexer, sent back as INVALID_ARGUMENT by an upload).
    """
    if size == 0:
        return "empty file (0 bytes)"
    try:
        return decode_image_file(source, max_pixels)
    except DecodeError as exc:
        return str(exc)
    except Exception as exc:  # a decoder bug must cost this one file, not the run
        log.warning("decoder failed on %s", name, exc_info=True)
        return f"the image decoder failed unexpectedly: {type(exc).__name__}: {exc}"


def set_image(write: AssetWrite, image: DecodedImage, vector: np.ndarray) -> None:
    """Fill in an indexed image's size and its one vector (shape (dim,)) on its write."""
    write.width, write.height = image.width, image.height
    write.vectors = np.asarray(vector, dtype=np.float32)[None, :]
