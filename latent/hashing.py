"""SHA-256 digests as hex: of a file (streamed, never read whole) or of bytes in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20  # 1 MiB reads: an index or weights file of gigabytes never sits in memory


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes already in memory."""
    return hashlib.sha256(data).hexdigest()
