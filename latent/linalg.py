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


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1; zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    safe = np.where(norms < EPS, 1.0, norms)
    return np.where(norms < EPS, 0.0, matrix / safe).astype(np.float32)


def unit_or_zero(vector: np.ndarray) -> np.ndarray:
    """The vector scaled to length 1, or unchanged when it is (nearly) zero."""
    norm = float(np.linalg.norm(vector))
    return vector / max(norm, EPS)
