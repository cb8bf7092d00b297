"""The library roots rule: an index job reads only paths that resolve inside a configured root.

A relative path is taken relative to the first root. Containment is checked on the
path with every symlink resolved (the path itself or any parent), before its existence,
so a client learns nothing about files outside the roots: ``..`` escapes, absolute paths
elsewhere and links that lead out are PERMISSION_DENIED whether or not they exist.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from latent.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

NO_ROOTS = "no library roots configured: set ASSETSEARCH_LIBRARY_ROOTS"


class LibraryRoots:
    """The folders index jobs may read, resolved once."""

    def __init__(self, roots: Sequence[Path]) -> None:
        # A root that does not exist (yet) holds nothing; it is kept so it can appear.
        self.configured = [Path(os.path.abspath(r)) for r in roots]
        self.roots = [r.resolve() for r in self.configured]

    def resolve(self, path: str) -> Path:
        """The real path of ``path``, checked to lie inside a root.

        Args:
            path: As the client gave it: absolute, or relative to the first root.

        Returns:
            The resolved path of an existing file or folder inside a root.

        Raises:
            FailedPrecondition: no roots are configured.
            InvalidArgument: the path is empty, holds a NUL, or is not a file or folder.
            PermissionDenied: it resolves outside every root.
            NotFound: it lies inside a root but does not exist.
        """
        if not self.roots:
            raise FailedPrecondition(NO_ROOTS)
        if not path or "\x00" in path:
            raise InvalidArgument(f"library path {path!r} is empty or holds a NUL character")
        candidate = Path(path) if os.path.isabs(path) else self.configured[0] / path
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise InvalidArgument(f"library path {path!r} cannot be resolved: {exc}") from None
        if not any(real.is_relative_to(root) for root in self.roots):
            raise PermissionDenied(
                f"library path {path!r} lies outside the library roots "
                "(ASSETSEARCH_LIBRARY_ROOTS); '..' and links that lead out are refused"
            )
        if not real.exists():
            raise NotFound(f"library path {path!r} does not exist")
        if not (real.is_dir() or real.is_file()):
            raise InvalidArgument(f"library path {path!r} is neither a file nor a folder")
        return real

    def resolve_all(self, paths: Sequence[str]) -> list[Path]:
        """``resolve`` each path (at least one).

        Raises:
            InvalidArgument: no path was given; or as ``resolve``.
        """
        if not self.roots:
            raise FailedPrecondition(NO_ROOTS)
        if not paths:
            raise InvalidArgument("give at least one path to index")
        return [self.resolve(p) for p in paths]
