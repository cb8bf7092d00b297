"""User metadata sidecars: a JSON Lines file with one object per file, keyed by ``file``."""

from __future__ import annotations

import json
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
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read metadata file {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("file"), str):
            raise InvalidArgument(f'{path}:{number}: expected an object with a "file" string')
        if len(line) > MAX_METADATA_BYTES:
            raise InvalidArgument(
                f"{path}:{number}: metadata larger than {MAX_METADATA_BYTES} bytes"
            )
        file = Path(row.pop("file"))
        out[(file if file.is_absolute() else base / file).resolve().as_uri()] = row
    return out
