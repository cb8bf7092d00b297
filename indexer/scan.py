"""Library scanning: regular media files under a root, never leaving it, never looping."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlparse

from latent.errors import InvalidArgument, NotFound
from latent.media.images import media_type_for

log = logging.getLogger(__name__)


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


def path_from_uri(uri: str) -> Path:
    """The path a ``file://`` uri names; the inverse of ``Path.as_uri`` for any file name.

    Args:
        uri: a uri made by the scan (non-UTF-8 name bytes are percent-encoded in it).

    Returns:
        The path, with undecodable bytes as surrogate escapes like ``os.fsdecode``.
    """
    return Path(os.fsdecode(unquote_to_bytes(urlparse(uri).path)))


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


def scan(root: Path, exclude: Collection[Path] = ()) -> Iterator[ScannedFile]:
    """Yield the regular media files under ``root`` in a stable order.

    Hidden files and folders are skipped. A symlink is followed only when its target stays
    inside ``root``; a symlinked file is recorded under its own name. Each directory is
    entered once, known by ``(st_dev, st_ino)``: real folders are walked before symlinked
    ones, so a link back to the root, to a parent or to a sibling (a loop) is skipped with a
    logged reason. FIFOs, sockets and devices are skipped without being opened. A hard link
    is just another name of a file, indistinguishable from its first name, so one inside the
    library is indexed as a file of the library wherever its other names live. Folders that
    cannot be read are logged and skipped; the scan goes on.

    Args:
        root: a resolved library root (see ``resolve_root``), a folder or one file.
        exclude: folders never entered, such as the data directory when it lies inside.

    Yields:
        One ``ScannedFile`` per regular media file.
    """
    if root.is_file():
        found = _file(root, os.stat(root))
        if found:
            yield found
        return
    walk = _Walk(root, [Path(os.path.realpath(x)) for x in exclude])
    yield from walk.files()


class _Walk:
    """One depth-first walk: real folders first, then the symlinked ones it found."""

    def __init__(self, root: Path, exclude: list[Path]) -> None:
        self.root = root
        self.exclude = exclude
        self.excluded = {(s.st_dev, s.st_ino) for s in map(_stat_or_none, exclude) if s}
        root_stat = os.stat(root)
        self.visited = {(root_stat.st_dev, root_stat.st_ino)}
        self.folders = [root]
        self.linked: list[tuple[Path, Path, tuple[int, int]]] = []

    def files(self) -> Iterator[ScannedFile]:
        while self.folders or self.linked:
            # Symlinked folders wait until every real one is visited: the real name wins.
            if self.folders:
                folder = self.folders.pop()
            else:
                folder, real, key = self.linked.pop(0)
                if not self._first_visit(folder, real, key):
                    continue
            subfolders: list[Path] = []
            for entry in self._entries(folder):
                found = self._entry(entry, subfolders)
                if found:
                    yield found
            self.folders.extend(reversed(subfolders))

    def _entries(self, folder: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            log.warning("skipped folder %s: cannot read it: %s", folder, exc.strerror or exc)
            return []

    def _entry(self, entry: os.DirEntry[str], subfolders: list[Path]) -> ScannedFile | None:
        if entry.name.startswith("."):
            return None
        path = Path(entry.path)
        is_link = entry.is_symlink()
        real = Path(os.path.realpath(path)) if is_link else path
        if is_link and not real.is_relative_to(self.root):
            log.info("skipped %s: symlink to %s, outside the library", path, real)
            return None
        if is_link and self._excluded(real):
            log.info("skipped %s: symlink into %s, which is excluded", path, real)
            return None
        try:
            st = os.stat(path)  # follows a link; never opens the file
        except OSError as exc:
            log.info("skipped %s: cannot stat it: %s", path, exc.strerror or exc)
            return None
        if stat.S_ISDIR(st.st_mode):
            self._folder(path, real, st, is_link, subfolders)
            return None
        if not stat.S_ISREG(st.st_mode):
            if media_type_for(path):
                log.info("skipped %s: not a regular file (FIFO, socket or device)", path)
            return None
        return _file(path, st)

    def _excluded(self, real: Path) -> bool:
        return any(real.is_relative_to(x) for x in self.exclude)

    def _folder(
        self, path: Path, real: Path, st: os.stat_result, is_link: bool, subfolders: list[Path]
    ) -> None:
        key = (st.st_dev, st.st_ino)
        if key in self.excluded or self._excluded(real):
            log.info("skipped %s: excluded from the scan (the data directory)", path)
            return
        if is_link:
            self.linked.append((path, real, key))  # its turn comes after every real folder
        elif self._first_visit(path, real, key):
            subfolders.append(path)

    def _first_visit(self, path: Path, real: Path, key: tuple[int, int]) -> bool:
        """Mark a folder visited; False (logged) when it was already."""
        if key in self.visited:
            log.info(
                "skipped %s: it leads to %s, a folder already scanned (a loop or a second link)",
                path,
                real,
            )
            return False
        self.visited.add(key)
        return True


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None  # an exclusion that does not exist yet excludes nothing


def _file(path: Path, st: os.stat_result) -> ScannedFile | None:
    media_type = media_type_for(path)
    if media_type is None:
        return None
    return ScannedFile(path, path.as_uri(), media_type, st.st_size, st.st_mtime_ns)
