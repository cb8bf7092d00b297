"""Library scanning: media files under the given roots, never following a link outside them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from latent.errors import InvalidArgument, NotFound
from latent.media.images import media_type_for


@dataclass(frozen=True)
class ScannedFile:
    """A media file found on disk, with what the diff needs."""

    path: Path
    uri: str
    media_type: str
    size: int
    mtime_ns: int


def root_prefix(root: Path) -> str:
    """The uri prefix that covers every file under ``root`` (or the file itself)."""
    uri = root.as_uri()
    return uri if root.is_file() else uri.rstrip("/") + "/"


def resolve_root(path: str | Path) -> Path:
    """An absolute, resolved library root.

    Raises:
        NotFound: the path does not exist.
        InvalidArgument: it is neither a file nor a directory.
    """
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise NotFound(f"library path {path} does not exist")
    if not (root.is_dir() or root.is_file()):
        raise InvalidArgument(f"library path {path} is neither a file nor a directory")
    return root


def scan(root: Path) -> Iterator[ScannedFile]:
    """Yield media files under ``root`` in a stable order.

    Hidden files and folders are skipped; a symlink is followed only when its target
    stays inside ``root``.
    """
    if root.is_file():
        found = _file(root, root)
        if found:
            yield found
        return
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # unreadable folder: nothing in it can be indexed
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink() and not path.resolve().is_relative_to(root):
                continue
            if entry.is_dir():
                subfolders.append(path)
            elif entry.is_file():
                found = _file(path, root)
                if found:
                    yield found
        stack.extend(reversed(subfolders))


def _file(path: Path, root: Path) -> ScannedFile | None:
    media_type = media_type_for(path)
    if media_type is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    # A symlinked file is recorded under its own name inside the library.
    absolute = path if path.is_absolute() else root / path
    return ScannedFile(absolute, absolute.as_uri(), media_type, stat.st_size, stat.st_mtime_ns)
