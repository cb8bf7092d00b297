"""Unit vectors: the one normalisation every layer uses."""

from __future__ import annotations

import numpy as np

from latent.errors import InvalidArgument

EPS = 1e-12


def unit(vector: np.ndarray, what: str = "query vector") -> np.ndarray:
    """The vector scaled to length 1, as float32.

    Raises:
        InvalidArgument: the vector is (nearly) zero or not finite; ``what`` names it.
    """
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm < EPS:
        raise InvalidArgument(f"{what} is zero or not finite; it has no direction to search")
    return vector / np.float32(norm)


def unit_rows(matrix: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Each row scaled to length 1, in the matrix's own float type.

    Rows shorter than ``eps`` become zero rows: callers that treat tiny differences as
    noise (navigation) pass a larger ``eps``.
    """
    matrix = np.asarray(matrix)
    if not np.issubdtype(matrix.dtype, np.floating):
        matrix = matrix.astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    safe = np.where(norms < eps, 1.0, norms)
    return np.where(norms < eps, 0.0, matrix / safe).astype(matrix.dtype)


def unit_or_zero(vector: np.ndarray) -> np.ndarray:
    """The vector scaled to length 1, or unchanged when it is (nearly) zero."""
    norm = float(np.linalg.norm(vector))
    return vector / max(norm, EPS)
