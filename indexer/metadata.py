"""User metadata sidecars: a JSON Lines file with one object per file, keyed by ``file``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from latent.errors import InvalidArgument

MAX_METADATA_BYTES = 64 * 1024


def load_metadata(path: Path) -> dict[str, dict[str, Any]]:
    """Read a sidecar: ``{"file": "a/b.jpg", "tag": "x", ...}`` per line.

    ``file`` is relative to the sidecar's folder (or absolute); every other key becomes
    the asset's user metadata.

    Returns:
        Metadata by file uri.

    Raises:
        InvalidArgument: a line is not a JSON object with a ``file`` string, or too large.
    """
    base = path.expanduser().resolve().parent
    out: dict[str, dict[str, Any]] = {}
    for number, row in json_lines(path):
        if not isinstance(row, dict) or not isinstance(row.get("file"), str):
            raise InvalidArgument(f'{path}:{number}: expected an object with a "file" string')
        file = Path(row.pop("file"))
        out[(file if file.is_absolute() else base / file).resolve().as_uri()] = row
    return out


def json_lines(path: Path, max_line: int = MAX_METADATA_BYTES) -> Iterator[tuple[int, Any]]:
    """The JSON value of each non-blank line of a JSON Lines file, with its line number.

    Raises:
        InvalidArgument: the file cannot be read, a line is not JSON or is too long.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read metadata file {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > max_line:
            raise InvalidArgument(f"{path}:{number}: metadata larger than {max_line} bytes")
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"{path}:{number}: not JSON ({exc.msg})") from exc
