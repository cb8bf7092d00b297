"""The ``VectorIndex`` protocol and what every FAISS-backed index shares.

Vectors are L2-normalised, so inner product is cosine similarity. Three families
implement the protocol, one module each:

    flat.py   FlatIndex   exact (IndexIDMap2 over IndexFlatIP)
    hnsw.py   HNSWIndex   graph (IndexIDMap2 over IndexHNSWFlat); removal is a tombstone
    ivf.py    IVFIndex    inverted lists with Flat, SQ8 or PQ codes (ids and a hash
                          direct map live in the IVF index itself)

An index object is never mutated while readers use it: ``LiveIndex`` (latent/index/live.py)
publishes immutable layered views (latent/index/layers.py) and builds new bases on copies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

from latent.errors import DimensionMismatch
from latent.index.policy import IndexSpec

# faiss' type stubs lack newer classes (SearchParametersHNSW, DirectMap) and most fields.
_faiss: Any = faiss

MAX_FILTER_BOOST = 8  # at most this many times more IVF lists / HNSW beam under a filter


class VectorIndex(Protocol):
    """A k-NN index over unit vectors keyed by embedding id."""

    dim: int
    spec: IndexSpec

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

    def search_selected(
        self, queries: np.ndarray, k: int, selector: Any, fraction: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over the ids a prepared FAISS selector accepts (about ``fraction`` of them)."""
        ...

    def ids(self) -> np.ndarray:
        """Every id in the index."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ids (each must be present), in the given order."""
        ...

    def matrix(self) -> np.ndarray:
        """Every stored vector, in the order of ``ids()`` (a read-only view where possible)."""
        ...

    def copy(self) -> VectorIndex:
        """An independent copy to apply changes to."""
        ...

    def memory_bytes(self) -> int:
        """Estimated resident bytes (codes, links, ids and the id map)."""
        ...

    def write(self, path: Path) -> None:
        """Write the FAISS index file (for snapshots; ``snapshot.read_index`` loads it back)."""
        ...

    def state(self) -> dict[str, Any]:
        """What the FAISS bytes do not hold (HNSW tombstones), JSON-able."""
        ...


def as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Vectors as a contiguous float32 (n, dim) matrix (one vector becomes one row).

    Raises:
        DimensionMismatch: the vectors have another dimension.
    """
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise DimensionMismatch(f"expected vectors of dimension {dim}, got shape {vectors.shape}")
    return matrix


def no_hits(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty (scores, ids) result for ``rows`` queries."""
    return np.zeros((rows, 0), np.float32), np.zeros((rows, 0), np.int64)


def member(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which ``values`` occur in ``sorted_ids`` (binary search: O(v log n), no big sort)."""
    if not len(sorted_ids) or not len(values):
        return np.zeros(len(values), bool)
    pos = np.searchsorted(sorted_ids, values).clip(max=len(sorted_ids) - 1)
    return np.asarray(sorted_ids[pos] == values)


def filter_boost(base: int, fraction: float, cap: int) -> int:
    """Widen a search under a selective filter, so enough accepted ids are still reached.

    Args:
        base: The unfiltered search width (IVF lists probed, HNSW beam).
        fraction: The share of the index the filter accepts.
        cap: The widest search that makes sense.

    Returns:
        The width to search with.
    """
    if fraction >= 0.9:  # a few tombstones: not worth a wider search
        return base
    factor = min(MAX_FILTER_BOOST, 1.0 / max(fraction, 1e-9))
    return max(1, min(cap, math.ceil(base * factor)))


class FaissIndex:
    """What every FAISS-backed index shares: validation, ``search`` and bytes."""

    dim: int
    spec: IndexSpec
    _index: Any  # faiss' SWIG classes are untyped

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors under ids."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        matrix = as_matrix(vectors, self.dim)
        self.remove(ids)
        self._index.add_with_ids(matrix, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; absent ones are ignored. Each index type removes its own way."""
        raise NotImplementedError

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product, optionally only over ``allowed`` ids."""
        matrix = as_matrix(queries, self.dim)
        if allowed is None:
            return self.search_selected(matrix, k, None)
        allowed = np.unique(np.asarray(allowed, dtype=np.int64))
        if not len(allowed):
            return no_hits(len(matrix))
        selector = faiss.IDSelectorBatch(allowed)
        return self.search_selected(matrix, k, selector, len(allowed) / max(len(self), 1))

    def search_selected(
        self, queries: np.ndarray, k: int, selector: Any, fraction: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over the ids ``selector`` accepts (None: all)."""
        matrix = as_matrix(queries, self.dim)
        if not len(self) or k <= 0:
            return no_hits(len(matrix))
        k = min(k, len(self))
        params, _keep = self._params(selector, fraction, k)  # _keep: selectors params point to
        if params is None:
            return self._index.search(matrix, k)
        return self._index.search(matrix, k, params=params)

    def _params(self, selector: Any, fraction: float, k: int) -> tuple[Any, tuple[Any, ...]]:
        if selector is None:
            return None, ()
        params = _faiss.SearchParameters()
        params.sel = selector
        return params, (selector,)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Reconstruct stored vectors by id."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def write(self, path: Path) -> None:
        """Write the FAISS index file (streamed: no copy of the index in memory)."""
        faiss.write_index(self._index, str(path))

    def state(self) -> dict[str, Any]:
        """Nothing beyond the FAISS bytes."""
        return {}
