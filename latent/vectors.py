"""Vector indexes: FAISS behind the ``VectorIndex`` protocol, with stable int64 ids.

Vectors are L2-normalised, so inner product is cosine similarity. An index object is
never mutated while readers use it: ``LiveIndex`` (latent/live.py) copies, applies
changes to the copy and swaps the reference.
"""

from __future__ import annotations

from typing import Any, Protocol

import faiss
import numpy as np

from latent.errors import DimensionMismatch


class VectorIndex(Protocol):
    """A k-NN index over unit vectors keyed by embedding id."""

    dim: int

    def __len__(self) -> int:
        """Number of vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids; an id already present is replaced."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (absent ones are ignored); returns how many were removed."""
        ...

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; missing slots have id -1.

        ``allowed`` (int64 ids) restricts the search to those ids (a FAISS id selector).
        """
        ...

    def ids(self) -> np.ndarray:
        """Every id in the index."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ids that are present, in the given order."""
        ...

    def matrix(self) -> np.ndarray:
        """Every stored vector, in the order of ``ids()`` (a read-only view where possible)."""
        ...

    def copy(self) -> VectorIndex:
        """An independent copy to apply changes to."""
        ...


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise DimensionMismatch(f"expected vectors of dimension {dim}, got shape {vectors.shape}")
    return matrix


class FlatIndex:
    """Exact inner-product search (``IndexFlatIP``) with an id map supporting removal."""

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        # faiss' SWIG classes are untyped; IndexIDMap2 carries the id_map we read back.
        self._index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors under ids."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        matrix = _as_matrix(vectors, self.dim)
        self.remove(ids)
        self._index.add_with_ids(matrix, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; absent ones are ignored."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids) or not len(self):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k by inner product, optionally only over ``allowed`` ids."""
        matrix = _as_matrix(queries, self.dim)
        if not len(self) or k <= 0 or (allowed is not None and not len(allowed)):
            return np.zeros((len(matrix), 0), np.float32), np.zeros((len(matrix), 0), np.int64)
        k = min(k, len(self))
        if allowed is None:
            return self._index.search(matrix, k)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        return self._index.search(matrix, k, params=faiss.SearchParameters(sel=selector))

    def ids(self) -> np.ndarray:
        """Every id, in storage order."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Reconstruct stored vectors by id."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def matrix(self) -> np.ndarray:
        """The flat storage as an (ntotal, dim) view."""
        if not len(self):
            return np.zeros((0, self.dim), np.float32)
        flat: Any = faiss.downcast_index(self._index.index)
        return faiss.rev_swig_ptr(flat.get_xb(), len(self) * self.dim).reshape(len(self), self.dim)

    def copy(self) -> FlatIndex:
        """A deep copy (``faiss.clone_index``)."""
        return FlatIndex(self.dim, faiss.clone_index(self._index))

    @property
    def faiss_index(self) -> faiss.Index:
        """The underlying FAISS index, for snapshots."""
        return self._index
