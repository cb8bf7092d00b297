"""Embeddings computed elsewhere: their ids, uris and model specs, and checking a batch.

An imported row becomes an asset with uri ``vector:ID`` and media type ``vector``;
``latent.catalog.bulk`` writes a batch in one transaction. Everything here is pure and
runs before anything is written, so a rejected batch leaves no trace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from latent.errors import InvalidArgument

EXTERNAL_MODEL = "external:unknown"  # default model spec: no encoder, vector queries only
EXTERNAL_PREFIX = "external:"
URI_PREFIX = "vector:"
MEDIA_TYPE = "vector"
MAX_ID_CHARS = 512
MAX_DIM = 65_536
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


def external_uri(external_id: str) -> str:
    """The asset uri of an external id."""
    return URI_PREFIX + external_id


def is_external_model(spec: str) -> bool:
    """Whether a model spec only names where vectors came from (no loadable encoder)."""
    return spec.startswith(EXTERNAL_PREFIX)


def check_dim(dim: int) -> None:
    """Validate the dimension of imported vectors.

    Raises:
        InvalidArgument: not between 1 and ``MAX_DIM``.
    """
    if not 1 <= dim <= MAX_DIM:
        raise InvalidArgument(f"dim must be between 1 and {MAX_DIM}, got {dim}")


def check_id(external_id: Any, where: str) -> str:
    """Validate one external id.

    Raises:
        InvalidArgument: not a 1-512 character string without control characters.
    """
    if not isinstance(external_id, str) or not 1 <= len(external_id) <= MAX_ID_CHARS:
        raise InvalidArgument(f"{where}: an id must be 1 to {MAX_ID_CHARS} characters")
    if _CONTROL.search(external_id):
        raise InvalidArgument(f"{where}: id {external_id!r} contains a control character")
    return external_id


def check_ids(ids: Sequence[str], row_offset: int = 0) -> None:
    """Validate every id and refuse duplicates, naming the rows.

    Raises:
        InvalidArgument: a malformed or repeated id.
    """
    if not ids:
        return
    # Whole-batch checks first (fast); the row-by-row walk only names the culprit.
    well_formed = (
        all(isinstance(i, str) for i in ids)
        and 1 <= min(map(len, ids))
        and max(map(len, ids)) <= MAX_ID_CHARS
        and not _CONTROL.search("".join(ids))
    )
    if well_formed and len(set(ids)) == len(ids):
        return
    first: dict[str, int] = {}
    for row, external_id in enumerate(ids, row_offset):
        check_id(external_id, f"row {row}")
        seen = first.setdefault(external_id, row)
        if seen != row:
            raise InvalidArgument(f"id {external_id!r} appears twice (rows {seen} and {row})")


def row_norms(vectors: np.ndarray, row_offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The rows as float32 and their L2 norms (float64), refusing unusable rows.

    Raises:
        InvalidArgument: not a 2-D array of numbers, or a row that is NaN, infinite or zero.
    """
    if vectors.ndim != 2:
        raise InvalidArgument(
            f"vectors must be a 2-D array (rows x dim), got shape {vectors.shape}"
        )
    if not np.issubdtype(vectors.dtype, np.floating) and not np.issubdtype(
        vectors.dtype, np.integer
    ):
        raise InvalidArgument(f"vectors must be numbers, got dtype {vectors.dtype}")
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        matrix = np.asarray(vectors, dtype=np.float32)
        bad = ~np.isfinite(matrix).all(axis=1)
        if bad.any():
            raise InvalidArgument(
                f"row {row_offset + int(np.argmax(bad))} holds NaN or infinite values "
                f"(as float32); {int(bad.sum())} such rows in this batch"
            )
        norms = np.linalg.norm(matrix, axis=1).astype(np.float64)
    # Squares of huge or tiny float32 values over- or underflow: redo those in float64.
    redo = ~((norms > 1e-18) & (norms < 1e18))
    if redo.any():
        norms[redo] = np.linalg.norm(matrix[redo].astype(np.float64), axis=1)
    zero = ~(norms > 0)
    if zero.any():
        raise InvalidArgument(
            f"row {row_offset + int(np.argmax(zero))} is a zero vector (no direction to search)"
        )
    return matrix, norms


def _unit(vectors: np.ndarray, row_offset: int) -> np.ndarray:
    """Finite, non-zero rows scaled to unit length, as float32.

    Not ``latent.linalg.unit_rows``: that one keeps zero rows and takes float32 norms,
    which over- or underflow for the extreme rows a foreign file may hold.
    """
    matrix, norms = row_norms(vectors, row_offset)
    out = matrix / norms.astype(np.float32)[:, None]
    extreme = ~((norms > 1e-18) & (norms < 1e18))
    if extreme.any():
        out[extreme] = matrix[extreme] / norms[extreme, None]
    return out


def check_batch(
    ids: Sequence[str],
    vectors: np.ndarray,
    metadata: Sequence[dict[str, Any] | None] | None = None,
    row_offset: int = 0,
) -> np.ndarray:
    """Validate a batch; returns its rows as unit float32 vectors.

    Raises:
        InvalidArgument: no rows, counts that disagree, bad ids or bad rows.
    """
    if vectors.ndim == 2 and vectors.shape[0] == 0:
        raise InvalidArgument("there are no vectors to import (0 rows)")
    if vectors.ndim != 2:
        raise InvalidArgument(
            f"vectors must be a 2-D array (rows x dim), got shape {vectors.shape}"
        )
    if len(ids) != vectors.shape[0]:
        raise InvalidArgument(f"{len(ids)} ids for {vectors.shape[0]} vectors: give one id per row")
    if metadata is not None and len(metadata) != len(ids):
        raise InvalidArgument(f"{len(metadata)} metadata objects for {len(ids)} rows")
    check_ids(ids, row_offset)
    return _unit(vectors, row_offset)
