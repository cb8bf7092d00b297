"""Query arguments read on the client: expressions, image files, examples, filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assetsearch_client import terms

from latent.query.expressions import terms_from_expression


def read_image(path: str) -> bytes:
    """The bytes of an image file named on the command line (``~`` expanded)."""
    return Path(path).expanduser().read_bytes()


def query_arg(text: str) -> list[terms.Term]:
    """Terms of an expression argument; image:PATH files are read here, on the client.

    Raises:
        ExpressionError: the expression is malformed.
        OSError: an image file cannot be read.
    """
    return terms_from_expression(text, read_image)


def example_arg(text: str) -> terms.Example:
    """A direction example: asset:ID, image:PATH, or a plain text."""
    if text.startswith("asset:") and text[6:].isdigit():
        return terms.Asset(int(text[6:]))
    if text.startswith("image:"):
        return terms.Image(read_image(text[6:]))
    return terms.Text(text)


def filter_arg(texts: list[str] | None) -> Any:
    """The --filter flags (all must hold) as one Filter message; None when none is given.

    Raises:
        InvalidArgument: a filter is malformed, or the filters contradict each other.
    """
    if not texts:
        return None
    from latent.query.filters import combine, parse_filter
    from service.convert.filters import filter_message

    return filter_message(combine([parse_filter(t, _absolute) for t in texts]))


def _absolute(path: str) -> str:
    """A filter's path, resolved here on the client like the indexer resolves its roots."""
    return str(Path(path).expanduser().resolve())
